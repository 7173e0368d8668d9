"""Backups: full + incrementals restore exactly onto an empty folder, and verify clean."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from appliance.archive.backup import SetKind, backup, chain, rebuild_db, run_scheduled
from appliance.archive.errors import BackupError, RestoreError
from appliance.archive.medium import open_medium
from appliance.archive.restore import BackupDirSource, restore_data_dir
from appliance.clock import TZ, ManualClock
from appliance.store import Store
from tests.archive.conftest import Hoso
from tests.conftest import incoming


def _luutru(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "luutru", *args], capture_output=True, text=True, timeout=300
    )


def test_policy_full_then_incremental_then_full_next_month(
    store: Store, clock: ManualClock, tmp_path: Path, make_hoso: Callable[..., Hoso]
) -> None:
    """First backup and the first of each month are full; the others are incremental."""
    medium = tmp_path / "usb"
    make_hoso(n=2)
    first = backup(store, medium, label="USB-01")
    assert first.kind is SetKind.FULL and first.content_new == 2
    clock.advance(86400)
    store.register_incoming(incoming(CodeNumber="501"))
    second = backup(store, medium)
    assert second.kind is SetKind.INCREMENTAL and second.content_new == 0
    assert 0 < second.pages_written < first.pages_written
    clock.set(dt.datetime(2025, 10, 1, 8, 0, tzinfo=TZ))
    assert backup(store, medium).kind is SetKind.FULL
    assert run_scheduled(store, [medium]) == []  # one set a day
    clock.advance(86400)
    assert [r.kind for r in run_scheduled(store, [medium])] == [SetKind.INCREMENTAL]
    log = open_medium(medium).read_log()
    assert [x["kind"] for x in log] == ["full", "incremental", "full", "incremental"]


def test_full_plus_incrementals_rebuild_the_exact_database(
    store: Store, clock: ManualClock, tmp_path: Path, make_hoso: Callable[..., Hoso]
) -> None:
    """Each set's rebuilt database is byte-for-byte the snapshot taken at that set."""
    medium = tmp_path / "usb"
    make_hoso(n=3)
    backup(store, medium)
    for k in range(3):
        clock.advance(86400)
        make_hoso(n=2)
        store.register_incoming(incoming(CodeNumber=str(900 + k)))
        res = backup(store, medium)
        assert res.kind is SetKind.INCREMENTAL
        rebuilt = tmp_path / f"r{k}.db"
        got = rebuild_db(open_medium(medium), chain(open_medium(medium)), rebuilt)
        assert got == res.db_sha256 == hashlib.sha256(rebuilt.read_bytes()).hexdigest()
        conn = sqlite3.connect(str(rebuilt))
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        log = conn.execute("SELECT idx, entry FROM log ORDER BY idx").fetchall()
        conn.close()
        assert len(log) == res.tree_size
        assert [(i, bytes(e)) for i, e in log] == list(store.entries(0, res.tree_size))


def test_restore_onto_empty_folder_verifies_clean(
    store: Store, clock: ManualClock, tmp_path: Path, make_hoso: Callable[..., Hoso]
) -> None:
    """`luutru restore --from-backup` then `luutru verify` exits 0; the restore is logged."""
    medium = tmp_path / "usb"
    h = make_hoso(n=3, close=True)
    backup(store, medium)
    clock.advance(3600)
    make_hoso(n=2)
    backup(store, medium)
    size_before = store.tree_head()[0]
    store.wait_sealed()
    target = tmp_path / "restored"
    proc = _luutru("restore", "--data", str(target), "--from-backup", str(medium), "--json")
    assert proc.returncode == 0, proc.stderr
    proc = _luutru("verify", "--data", str(target))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with Store.open(target, readonly=True) as restored:
        assert restored.find_one("file", FileCode=h.code) is not None
        assert restored.tree_head()[0] == size_before  # the set (taken before its own
        # archive.backup entry) + the archive.restore entry
        for d in h.docs:
            sha = d.data["Content"][0]["sha256"]
            assert restored.content.hash_file(sha) == sha


def test_restore_refuses_a_non_empty_target_and_a_rotted_set(
    store: Store, tmp_path: Path, make_hoso: Callable[..., Hoso]
) -> None:
    """Nothing is written over existing data; a corrupt snapshot is named, not restored."""
    medium = tmp_path / "usb"
    make_hoso(n=1)
    res = backup(store, medium)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("x")
    with pytest.raises(RestoreError, match="not empty"):
        restore_data_dir(busy, BackupDirSource(medium))
    assert [p.name for p in busy.iterdir()] == ["keep.txt"]
    snap = open_medium(medium).sets_dir / res.set_id / "db.sqlite"
    snap.chmod(0o644)
    b = bytearray(snap.read_bytes())
    b[5000] ^= 0x10
    snap.write_bytes(bytes(b))
    with pytest.raises(RestoreError, match="corrupt"):
        restore_data_dir(tmp_path / "fresh", BackupDirSource(medium))
    assert not (tmp_path / "fresh").exists()


def test_medium_of_another_appliance_is_refused(
    store: Store, tmp_path: Path, open_store: Callable[..., Store]
) -> None:
    """A medium belongs to the appliance that first wrote it."""
    medium = tmp_path / "usb"
    backup(store, medium)
    other = tmp_path / "other"
    from appliance.datadir import init_data_dir

    init_data_dir(other, "000.21.09.H49", "Ủy ban nhân dân xã khác")
    with Store.open(other) as s2, pytest.raises(BackupError, match="another appliance"):
        backup(s2, medium)


def test_independent_copies_count_media(
    store: Store, tmp_path: Path, make_hoso: Callable[..., Hoso]
) -> None:
    """Two media with a set are two independent copies; the centre counts once it confirmed."""
    from appliance.archive.copies import independent_copies

    make_hoso(n=1)
    a, b = tmp_path / "usb1", tmp_path / "usb2"
    backup(store, a, label="USB-01")
    status = independent_copies(store, [a, b])
    assert status.count == 1 and not status.ok
    backup(store, b, label="HDD-02")
    status = independent_copies(store, [a, b])
    assert status.count == 2 and status.ok
    assert [c["label"] for c in status.copies if c["kind"] == "medium"] == ["USB-01", "HDD-02"]
    # The centre is always listed, and counts for nothing until a receipt confirms a size.
    centre = [c for c in status.copies if c["kind"] == "centre"]
    assert centre == [{"kind": "centre", "label": "Trung tâm dữ liệu tỉnh", "tree_size": 0,
                       "pending_content": 0, "enrolled": True, "counts": False}]


def test_each_set_carries_its_metadata_xml_and_minutes(
    store: Store, tmp_path: Path, make_hoso: Callable[..., Hoso]
) -> None:
    """A full set has every record's metadata as XML beside the data and the biên bản sao
    lưu (PDF, Vietnamese, with the set, the medium and its life); an incremental set's XML
    holds only the records changed since its base; the manifest names both by SHA-256."""
    import hashlib
    import subprocess

    from lxml import etree

    from appliance.archive import paperwork

    h = make_hoso(n=2)
    medium = tmp_path / "usb"
    full = backup(store, medium, full=True, label="USB-01", rated_years=5)
    sets = medium / "luutru-backup" / "sets"
    xml = etree.parse(str(sets / full.set_id / paperwork.METADATA_FILE)).getroot()
    assert [e.get("id") for e in xml.iter("HoSo")] == [h.file.id]
    assert {e.get("id") for e in xml.iter("TaiLieu")} == {d.id for d in h.docs}
    assert xml.find("HoSoList/HoSo/FileCode").text == h.code  # type: ignore[union-attr]
    assert len(list(xml.iter("ContentFile"))) == 2
    minutes = sets / full.set_id / paperwork.MINUTES_FILE
    text = subprocess.run(["pdftotext", "-layout", str(minutes), "-"], capture_output=True,
                          text=True, check=True).stdout
    assert "BIÊN BẢN SAO LƯU" in text and "Sao lưu toàn bộ" in text and "USB-01" in text
    assert "5 năm" in text and full.set_id in text
    manifest = json.loads((sets / full.set_id / "manifest.json").read_text("utf-8"))
    assert manifest["paperwork"][paperwork.MINUTES_FILE] == hashlib.sha256(
        minutes.read_bytes()).hexdigest()
    store.update_document(h.docs[0].id, {"Keyword": "bão lũ"})
    inc = backup(store, medium, full=False)
    xml = etree.parse(str(sets / inc.set_id / paperwork.METADATA_FILE)).getroot()
    assert [e.get("id") for e in xml.iter("TaiLieu")] == [h.docs[0].id]
    assert list(xml.iter("HoSo")) == []


def test_a_medium_label_warns_a_year_before_its_rated_life_ends(
    store: Store, tmp_path: Path, make_hoso: Callable[..., Hoso], clock: Any
) -> None:
    """The label names the rated life and the migration date; a year before the end the
    copies status warns; past the end the medium no longer counts as a copy."""
    import datetime as dt

    from appliance.archive.copies import independent_copies
    from appliance.archive.paperwork import LABEL_FILE

    make_hoso(n=1)
    medium = tmp_path / "hdd"
    backup(store, medium, label="HDD-02", rated_years=5)
    label = (medium / "luutru-backup" / LABEL_FILE).read_text("utf-8")
    assert "HDD-02" in label and "Tuổi thọ định mức: 5 năm" in label
    assert "Hết tuổi thọ: 15/09/2030" in label
    start = store.clock.now().date()
    fine = independent_copies(store, [medium], today=start + dt.timedelta(days=3 * 365))
    assert fine.warnings == [] and fine.count == 1
    soon = independent_copies(store, [medium], today=dt.date(2029, 10, 1))
    assert soon.count == 1 and any("HDD-02" in w and "15/09/2030" in w for w in soon.warnings)
    late = independent_copies(store, [medium], today=dt.date(2030, 9, 16))
    assert late.count == 0 and any("đã hết tuổi thọ" in w for w in late.warnings)


def test_the_centre_counts_only_once_its_receipts_cover_everything(
    store: Store, tmp_path: Path, make_hoso: Callable[..., Hoso]
) -> None:
    """A receipt behind the log, or content not yet sent, is not a copy; all of it is."""
    from appliance.archive.copies import independent_copies

    make_hoso(n=1)
    size = store.tree_head()[0]
    medium = tmp_path / "usb"
    backup(store, medium, label="USB-01", rated_years=10)
    size = store.tree_head()[0]
    assert independent_copies(store, [medium], centre_confirmed=size - 1).count == 1
    assert independent_copies(store, [medium], centre_confirmed=size,
                              centre_pending_content=1).count == 1
    status = independent_copies(store, [medium], centre_confirmed=size)
    assert status.count == 2 and status.ok and status.message() is None
    assert "Chỉ có 1 bản sao" in (independent_copies(store, [medium]).message() or "")
