"""Backup media (appliance/archive/medium.py): a medium belongs to one appliance, says what
it is, keeps a durable log, and takes content only through a checked copy."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pytest

from appliance.archive.errors import BackupError
from appliance.archive.medium import ROOT, copy_verified, open_medium

ORIGIN = "luutru/000.21.08.H49/ab"


def test_a_new_medium_is_created_only_when_asked(tmp_path: Path) -> None:
    """Without create it is 'not a medium'; created, it has its folders and medium.json; the
    folder may be named as the medium or its luutru-backup folder."""
    with pytest.raises(BackupError, match="is not a luutru backup medium"):
        open_medium(tmp_path / "usb")
    m = open_medium(tmp_path / "usb", label="USB-01", origin=ORIGIN, create=True)
    assert (m.path, m.label, m.origin) == (tmp_path / "usb" / ROOT, "USB-01", ORIGIN)
    assert sorted(p.name for p in m.path.iterdir()) == ["content", "medium.json", "sets", "tmp"]
    assert open_medium(tmp_path / "usb" / ROOT) == m
    assert m.set_ids() == [] and list(m.iter_content()) == []


def test_a_medium_of_another_appliance_or_format_is_refused(tmp_path: Path) -> None:
    """Another origin, an unknown format or an unreadable medium.json is a BackupError."""
    open_medium(tmp_path / "usb", origin=ORIGIN, create=True)
    with pytest.raises(BackupError, match="holds the backups of another appliance"):
        open_medium(tmp_path / "usb", origin="luutru/000.21.09.H49/cd")
    info = tmp_path / "usb" / ROOT / "medium.json"
    info.write_text(json.dumps({"format": 2, "origin": ORIGIN}), "utf-8")
    with pytest.raises(BackupError, match="unknown backup format 2"):
        open_medium(tmp_path / "usb")
    info.write_text("{", "utf-8")
    with pytest.raises(BackupError, match="cannot be read"):
        open_medium(tmp_path / "usb")


def test_sets_are_complete_only_with_a_manifest(tmp_path: Path) -> None:
    """A set folder without manifest.json (an interrupted backup) is not listed or read."""
    m = open_medium(tmp_path / "usb", label="USB", create=True)
    (m.sets_dir / "20250915-0930-full").mkdir()
    done = m.sets_dir / "20250914-0930-full"
    done.mkdir()
    (done / "manifest.json").write_text(json.dumps({"set_id": done.name, "tree_size": 4}))
    assert m.set_ids() == [done.name]
    assert m.manifest(done.name)["tree_size"] == 4
    with pytest.raises(BackupError, match="backup set 20250915-0930-full does not exist on USB"):
        m.manifest("20250915-0930-full")
    (done / "manifest.json").write_text("[")
    with pytest.raises(BackupError, match="cannot be read"):
        m.manifest(done.name)


def test_the_backup_log_appends_lines(tmp_path: Path) -> None:
    """nhật ký sao lưu: one JSON line per record, read back in order, UTF-8."""
    m = open_medium(tmp_path / "usb", create=True)
    assert m.read_log() == []
    m.log({"kind": "full", "by": "Nguyễn Thị Lan"})
    m.log({"kind": "audit"})
    assert m.read_log() == [{"kind": "full", "by": "Nguyễn Thị Lan"}, {"kind": "audit"}]
    assert "Nguyễn" in (m.path / "backup-log.jsonl").read_text("utf-8")


def test_copy_verified_keeps_only_the_expected_bytes(tmp_path: Path) -> None:
    """The copy lands read-only when its SHA-256 is the one asked for; a copy whose bytes
    differ by one bit is refused and leaves neither the file nor a temporary."""
    body = b"scan " * 1000
    sha = hashlib.sha256(body).hexdigest()
    m = open_medium(tmp_path / "usb", create=True)
    dest = m.content_path(sha)
    assert copy_verified(io.BytesIO(body), dest, sha, m.path / "tmp") == len(body)
    assert dest.read_bytes() == body and dest.stat().st_mode & 0o777 == 0o444
    assert list(m.iter_content()) == [sha]
    flipped = bytearray(body)
    flipped[10] ^= 0x01
    other = m.content_path("ab" * 32)
    with pytest.raises(BackupError, match=f"source does not have SHA-256 {sha}"):
        copy_verified(io.BytesIO(bytes(flipped)), other, sha, m.path / "tmp")
    assert not other.exists() and list((m.path / "tmp").iterdir()) == []
