"""Fixity: the audit names rotted copies here and on the backup; healing fixes and logs it."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import cbor2
import pikepdf

from appliance.archive import fixity
from appliance.archive.backup import backup
from appliance.archive.medium import open_medium
from appliance.clock import TZ, ManualClock
from appliance.store import Store
from tests.archive.conftest import Hoso


def _flip(path: Path, at: int = 200) -> None:
    path.chmod(0o644)
    b = bytearray(path.read_bytes())
    b[at % len(b)] ^= 0x01
    path.write_bytes(bytes(b))


def _kinds(store: Store) -> list[str]:
    return [cbor2.loads(raw)["kind"] for _, raw in store.entries()]


def test_clean_audit_logs_minutes(
    store: Store, make_hoso: Callable[..., Hoso], tmp_path: Path
) -> None:
    """Every file and entry is checked; the minutes PDF is kept as content and referenced."""
    make_hoso(n=3)
    backup(store, tmp_path / "usb", label="USB-01")
    res = fixity.audit(store, [tmp_path / "usb"], actor="lan", minutes_to=tmp_path / "bb.pdf")
    assert res.ok, res.failures
    assert res.content_checked == 6 and res.entries_checked > 10
    assert res.media == ["USB-01"]
    pdf = pikepdf.Pdf.open(tmp_path / "bb.pdf")
    assert len(pdf.pages) >= 1
    assert store.content.hash_file(res.minutes_sha256 or "") == res.minutes_sha256
    last = cbor2.loads(dict(store.entries())[res.logged_index])  # type: ignore[index]
    assert last["kind"] == "archive.fixity_audit" and last["refs"] == [
        bytes.fromhex(res.minutes_sha256 or "")]


def test_bit_rot_named_on_both_media_and_healed(
    store: Store, make_hoso: Callable[..., Hoso], tmp_path: Path
) -> None:
    """Flip a byte in a content file and in (another file of) the backup: the audit names
    both with medium and path; healing copies each from the good side; the log records it."""
    h = make_hoso(n=2)
    medium = tmp_path / "usb"
    backup(store, medium, label="USB-01")
    a = h.docs[0].data["Content"][0]["sha256"]
    b = h.docs[1].data["Content"][0]["sha256"]
    _flip(store.content.path(a))
    _flip(open_medium(medium).content_path(b))
    res = fixity.audit(store, [medium], actor="lan")
    named = {(f.medium, f.sha256, f.kind) for f in res.failures}
    assert named == {(fixity.PRIMARY, a, "content.corrupt"),
                     ("USB-01", b, "backup.content.corrupt")}
    paths = {f.path for f in res.failures}
    assert str(store.content.path(a)) in paths and str(open_medium(medium).content_path(b)) in paths
    healed = fixity.heal(store, [medium], res, actor="lan")
    assert not healed.unhealed
    assert {(x["sha256"], x["from"], x["to"]) for x in healed.healed} == {
        (a, "USB-01", fixity.PRIMARY), (b, fixity.PRIMARY, "USB-01")}
    assert fixity.audit(store, [medium]).ok
    assert _kinds(store).count("archive.heal") == 2
    assert [x["event"] for x in open_medium(medium).read_log()].count("heal") == 1


def test_a_rotted_snapshot_is_healed_by_a_new_full_set(
    store: Store, make_hoso: Callable[..., Hoso], tmp_path: Path
) -> None:
    """A corrupt database snapshot on the medium is named; healing writes a fresh full set."""
    make_hoso(n=1)
    medium = tmp_path / "usb"
    first = backup(store, medium)
    _flip(open_medium(medium).sets_dir / first.set_id / "db.sqlite", 3000)
    res = fixity.audit(store, [medium], record=False)
    assert [(f.kind, f.set_id) for f in res.failures] == [("backup.set.corrupt", first.set_id)]
    healed = fixity.heal(store, [medium], res)
    assert "new full set" in healed.healed[0]["action"]
    assert len(open_medium(medium).set_ids()) == 2


def test_a_tampered_log_entry_fails_the_audit(
    store: Store, make_hoso: Callable[..., Hoso]
) -> None:
    """The log part reuses verify: an edited entry is a failure, never healed silently."""
    make_hoso(n=1)
    store.wait_sealed()
    import sqlite3

    conn = sqlite3.connect(store.db_path)
    raw = bytearray(conn.execute("SELECT entry FROM log WHERE idx = 3").fetchone()[0])
    raw[-2] ^= 0x01
    conn.execute("UPDATE log SET entry = ? WHERE idx = 3", (bytes(raw),))
    conn.commit()
    conn.close()
    res = fixity.audit(store, record=False)
    assert any(f.kind.startswith("log.") for f in res.failures)
    assert fixity.heal(store, [], res).unhealed


def test_scheduled_audit_runs_yearly(
    store: Store, clock: ManualClock, make_hoso: Callable[..., Hoso]
) -> None:
    """run_scheduled audits when none ran within the interval, then waits."""
    make_hoso(n=1)
    assert fixity.run_scheduled(store, []) is not None
    assert fixity.run_scheduled(store, []) is None
    clock.set(dt.datetime(2026, 9, 16, 9, 0, tzinfo=TZ))
    assert fixity.run_scheduled(store, []) is not None


def test_cli_exit_codes(store: Store, make_hoso: Callable[..., Hoso], tmp_path: Path) -> None:
    """`luutru fixity` exits 1 with a failure named, 0 after --heal repaired it."""
    h = make_hoso(n=1)
    medium = tmp_path / "usb"
    backup(store, medium)
    store.wait_sealed()
    _flip(store.content.path(h.docs[0].data["Content"][0]["sha256"]))
    data = str(store.data_dir)
    store.close()
    run = [sys.executable, "-m", "luutru", "fixity", "--data", data, "--media", str(medium)]
    first = subprocess.run(run, capture_output=True, text=True, timeout=300)
    assert first.returncode == 1 and "LỖI" in first.stdout
    second = subprocess.run([*run, "--heal"], capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stdout + second.stderr
    third = subprocess.run([sys.executable, "-m", "luutru", "verify", "--data", data],
                           capture_output=True, text=True, timeout=300)
    assert third.returncode == 0, third.stdout


def test_scheduler_run_once(
    store: Store, clock: ManualClock, make_hoso: Callable[..., Hoso], tmp_path: Path
) -> None:
    """The serve loop's pass: a backup per medium per day and a yearly audit, idempotent."""
    import json

    from appliance.archive.scheduler import load_archive_config, run_once

    make_hoso(n=1)
    (store.data_dir / "archive.json").write_text(
        json.dumps({"backup_media": [str(tmp_path / "usb")], "fixity_interval_days": 30}))
    cfg = load_archive_config(store.data_dir)
    first = run_once(store, cfg)
    assert [b["kind"] for b in first["backups"]] == ["full"] and first["audit"]["ok"]
    again = run_once(store, cfg)
    assert again["backups"] == [] and again["audit"] is None and again["errors"] == []
    clock.advance(86400)
    assert [b["kind"] for b in run_once(store, cfg)["backups"]] == ["incremental"]
