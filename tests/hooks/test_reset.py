"""factory-reset: refused while records exist only here; then keys and data are destroyed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from appliance.clock import TZ, iso
from appliance.store import Store
from firmware_hooks.reset import ResetOptions, factory_reset, phrase_for
from firmware_hooks.result import ExitCode, Status
from tests.conftest import ORG_ID, incoming

from .conftest import RunHook, log_size, write_sync_state


def _reset(run: RunHook, **opts: object) -> object:
    return run("factory-reset", lambda c: factory_reset(c, ResetOptions(**opts)))  # type: ignore[arg-type]


def _key_files(data_dir: Path) -> list[Path]:
    return sorted(p for p in (data_dir / "keys").rglob("*") if p.is_file())


def _all_confirmed(data_dir: Path) -> None:
    size = log_size(data_dir)
    write_sync_state(data_dir, centre_url="http://centre.invalid", acknowledged_size=size,
                     confirmed_size=size, last_contact=iso(dt.datetime.now(TZ)))


def test_refused_when_never_enrolled(run: RunHook, data_dir: Path) -> None:
    keys = {p: p.read_bytes() for p in _key_files(data_dir)}
    res = _reset(run)
    assert res.status is Status.REFUSED and res.exit_code is ExitCode.REFUSED  # type: ignore[attr-defined]
    assert "not enrolled" in res.message  # type: ignore[attr-defined]
    assert phrase_for(ORG_ID) in res.message  # type: ignore[attr-defined]
    assert {p: p.read_bytes() for p in _key_files(data_dir)} == keys


def test_refused_while_entries_wait_for_the_centre(run: RunHook, data_dir: Path) -> None:
    _all_confirmed(data_dir)
    with Store.open(data_dir) as store:
        store.register_incoming(incoming())
    res = _reset(run)
    assert res.status is Status.REFUSED  # type: ignore[attr-defined]
    assert "not confirmed by the centre" in res.message  # type: ignore[attr-defined]


def test_classified_documents_block_even_when_synced(run: RunHook, data_dir: Path) -> None:
    with Store.open(data_dir) as store:
        store.register_incoming(incoming(Mode="03"))
    _all_confirmed(data_dir)
    res = _reset(run)
    assert res.status is Status.REFUSED  # type: ignore[attr-defined]
    assert "classified" in res.message  # type: ignore[attr-defined]


def test_force_needs_the_exact_phrase(run: RunHook, data_dir: Path) -> None:
    for wrong in ("", "yes", "XOA DU LIEU 000.21.08.H50"):
        res = _reset(run, force=True, confirm=wrong)
        assert res.status is Status.REFUSED, wrong  # type: ignore[attr-defined]
    assert _key_files(data_dir)


@pytest.mark.parametrize("phrase", ["XOA DU LIEU 000.21.08.H49", "xóa dữ liệu 000.21.08.H49"])
def test_forced_reset_destroys_keys_and_data(run: RunHook, data_dir: Path, phrase: str) -> None:
    res = _reset(run, force=True, confirm=phrase)
    assert res.status is Status.OK, res.to_json()  # type: ignore[attr-defined]
    assert not data_dir.exists()
    assert not data_dir.with_name(f".{data_dir.name}.erasing").exists()
    destroyed = res.details["destroyed"]  # type: ignore[attr-defined]
    assert "keys/device-ed25519.key" in destroyed


def test_confirmed_appliance_resets_without_force(run: RunHook, data_dir: Path) -> None:
    _all_confirmed(data_dir)
    res = _reset(run)
    assert res.status is Status.OK, res.to_json()  # type: ignore[attr-defined]
    assert res.details["blockers"] == []  # type: ignore[attr-defined]
    assert not data_dir.exists()


def test_overwrite_replaces_the_bytes_before_unlinking(tmp_path: Path) -> None:
    """The key file's blocks are rewritten (seen through a hard link kept by the test)."""
    from firmware_hooks.reset import overwrite

    key = tmp_path / "k.key"
    secret = b"S" * 4096
    key.write_bytes(secret)
    witness = tmp_path / "witness"
    witness.hardlink_to(key)
    overwrite(key)
    assert not key.exists()
    after = witness.read_bytes()
    assert len(after) == len(secret) and after != secret and b"SSSSSSSS" not in after
