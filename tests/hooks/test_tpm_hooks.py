"""Hooks against a real (software) TPM: health's TPM check and factory-reset's key destruction."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.datadir import init_data_dir
from appliance.keys.loader import TPM_KEY_PATH
from firmware_hooks.checks import check_tpm
from firmware_hooks.health import health
from firmware_hooks.reset import ResetOptions, factory_reset
from firmware_hooks.result import CheckStatus, Status
from firmware_hooks.runner import HookConfig
from tests.conftest import ORG_ID, ORG_NAME
from tests.swtpm import Swtpm, SwtpmFactory, swtpm, swtpm_factory

from .conftest import check

__all__ = ["swtpm", "swtpm_factory"]
PERSISTENT = 0x81000123


def _tpm_folder(tmp_path: Path, tpm: Swtpm) -> Path:
    d = tmp_path / "tpm-appliance"
    init_data_dir(d, ORG_ID, ORG_NAME, "tpm", key_options={"tcti": tpm.tcti})
    return d


def test_health_passes_with_its_own_tpm(tmp_path: Path, swtpm: Swtpm) -> None:
    d = _tpm_folder(tmp_path, swtpm)
    res = health(HookConfig(d))
    assert check(res, "tpm").status is CheckStatus.PASS, res.to_json()
    assert res.status is Status.OK


def test_health_fails_when_the_tpm_is_gone_or_another(
    tmp_path: Path, swtpm: Swtpm, swtpm_factory: SwtpmFactory
) -> None:
    d = _tpm_folder(tmp_path, swtpm)
    swtpm.stop()
    gone = health(HookConfig(d))
    assert check(gone, "tpm").status is CheckStatus.FAIL and gone.status is Status.FAILED
    # Another chip answering on the same port: its storage key is not the provisioned one.
    other = swtpm_factory()
    other.stop()
    other.port = swtpm.port
    other.start()
    from appliance.config import load_config

    res = check_tpm(load_config(d))
    assert res.status is CheckStatus.FAIL and "not the one" in res.reason


def test_reset_evicts_our_persistent_handle_and_destroys_the_blob(
    tmp_path: Path, swtpm: Swtpm
) -> None:
    d = _tpm_folder(tmp_path, swtpm)
    from tpm2_pytss.constants import ESYS_TR, TPM2_CAP, TPM2_HC
    from tpm2_pytss.tsskey import TSSPrivKey

    from appliance.keys.tpm import owner_srk, tpm_context

    blob = TSSPrivKey.from_pem((d / TPM_KEY_PATH).read_bytes())

    def persistent(ectx: object) -> list[int]:
        _, data = ectx.get_capability(  # type: ignore[attr-defined]
            TPM2_CAP.HANDLES, TPM2_HC.PERSISTENT_FIRST, 64)
        return list(data.data.handles)

    with tpm_context(swtpm.tcti) as ectx:
        srk = owner_srk(ectx)
        handle = ectx.load(srk, blob.private, blob.public)
        ectx.evict_control(ESYS_TR.OWNER, handle, PERSISTENT)
        ectx.flush_context(handle)
        ectx.flush_context(srk)
        assert PERSISTENT in persistent(ectx)
    res = factory_reset(HookConfig(d), ResetOptions(force=True, confirm=f"XOA DU LIEU {ORG_ID}"))
    assert res.status is Status.OK, res.to_json()
    assert f"evicted persistent handle 0x{PERSISTENT:08x}" in res.details["destroyed"]
    assert TPM_KEY_PATH in res.details["destroyed"]
    assert not d.exists()
    with tpm_context(swtpm.tcti) as ectx:
        assert PERSISTENT not in persistent(ectx)


def test_reset_with_clear_changes_the_owner_seed(tmp_path: Path, swtpm: Swtpm) -> None:
    """--clear-tpm: even a copy of the key blob kept elsewhere no longer loads in this TPM."""
    from appliance.errors import LuutruError
    from appliance.keys.tpm import TpmKey, srk_name, tpm_context

    d = _tpm_folder(tmp_path, swtpm)
    kept = tmp_path / "blob-copy.pem"
    kept.write_bytes((d / TPM_KEY_PATH).read_bytes())
    with tpm_context(swtpm.tcti) as ectx:
        before = srk_name(ectx)
    res = factory_reset(HookConfig(d), ResetOptions(
        force=True, confirm=f"XOA DU LIEU {ORG_ID}", clear_tpm=True))
    assert res.status is Status.OK, res.to_json()
    assert "TPM cleared (owner seed changed)" in res.details["destroyed"]
    with tpm_context(swtpm.tcti) as ectx:
        assert srk_name(ectx) != before
    with pytest.raises(LuutruError):  # the old blob no longer loads
        TpmKey.open(kept, swtpm.tcti)
