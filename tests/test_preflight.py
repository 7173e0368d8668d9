"""The start-up check, through real processes: a damaged database, a foreign device key and a
lost or cut write-ahead log each stop writes with the fault and its repair named, `verify`
turns each into findings (exit 1, valid JSON), and nothing ever ends in a traceback."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import cbor2
import pytest

from appliance.config import DB_NAME
from appliance.datadir import init_data_dir
from appliance.preflight import check_file, quick_check
from tests.conftest import ORG_ID, ORG_NAME
from tests.faults import (
    add_clerk,
    call,
    kill,
    lose_wal,
    no_traceback,
    register,
    swap_keys,
    tree_size,
    wait_sealed,
)
from tests.synth import write_jsonl
from tests.web.server import ROOT, luutru, serve

pytestmark = pytest.mark.slow


def _verify(data_dir: Path) -> tuple[int, dict[str, object], str]:
    done = luutru("verify", "--data", str(data_dir), "--json")
    no_traceback(done.stdout, done.stderr)
    return done.returncode, json.loads(done.stdout), done.stderr


def _codes(report: dict[str, object]) -> set[str]:
    findings = report["findings"]
    assert isinstance(findings, list)
    return {str(f["code"]) for f in findings}


def _serve_fails(data_dir: Path) -> str:
    """`luutru serve` on a folder it must not open: it exits with a message, no traceback."""
    done = subprocess.run(
        [sys.executable, "-m", "luutru", "serve", "--data", str(data_dir), "--port", "0",
         "--no-mdns"], cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    no_traceback(done.stdout, done.stderr)
    assert done.returncode != 0
    return done.stdout + done.stderr


@pytest.fixture
def imported(data_dir: Path, tmp_path: Path) -> Path:
    """A folder holding 600 imported documents, written by a real `luutru import`."""
    src = write_jsonl(tmp_path / "reg.jsonl", 600, seed=3)
    done = luutru("import", "--data", str(data_dir), str(src))
    assert done.returncode == 0, done.stderr
    return data_dir


@pytest.mark.parametrize("cut", ["one page", "half"])
def test_a_database_cut_short_is_a_finding_and_stops_every_writer(imported: Path,
                                                                    cut: str) -> None:
    db = imported / DB_NAME
    size = db.stat().st_size
    os.truncate(db, size - 4096 if cut == "one page" else size // 2)
    rc, report, _ = _verify(imported)
    assert rc == 1 and report["ok"] is False
    assert "database.damaged" in _codes(report)
    text = luutru("verify", "--data", str(imported))
    no_traceback(text.stdout, text.stderr)
    assert text.returncode == 1 and "database.damaged" in text.stdout
    out = _serve_fails(imported)
    assert "Cơ sở dữ liệu của máy bị hỏng" in out and "luutru restore" in out
    add = luutru("user", "add", "--data", str(imported), "--username", "x", "--role", "clerk",
                 "--password-stdin", stdin="mật khẩu dài dài dài\n")
    no_traceback(add.stdout, add.stderr)
    assert add.returncode == 1 and "--from-backup" in add.stderr


def test_a_damaged_page_inside_is_found_by_the_quick_check(imported: Path) -> None:
    """Damage the header cannot show (a page overwritten in the middle) is found by
    PRAGMA quick_check within the start-up budget, and by verify."""
    db = imported / DB_NAME
    conn = sqlite3.connect(db)
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'documents'").fetchone()
    conn.close()
    page = 4096
    with db.open("r+b") as fh:  # the documents table's root page, overwritten
        fh.seek((int(root[0]) - 1) * page + 8)
        fh.write(os.urandom(page - 8))
    assert check_file(db) is None
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    fault = quick_check(conn, 5.0)
    conn.close()
    assert fault is not None and fault.code == "database.damaged"
    rc, report, _ = _verify(imported)
    assert rc == 1 and "database.damaged" in _codes(report)
    assert "Cơ sở dữ liệu của máy bị hỏng" in _serve_fails(imported)


def test_a_folder_without_its_database_or_configuration_is_reported(data_dir: Path) -> None:
    (data_dir / "appliance.json").write_text("{not json")
    rc, report, _ = _verify(data_dir)
    assert rc == 1 and _codes(report) == {"config.unreadable"}


def test_foreign_key_files_stop_writes_reads_go_on_and_are_logged_later(
    data_dir: Path, tmp_path: Path
) -> None:
    token = add_clerk(data_dir)
    with serve(data_dir) as srv:
        doc = register(srv, token, 3)[0]
        wait_sealed(srv, tree_size(data_dir), data_dir)
    other = tmp_path / "other"
    init_data_dir(other, ORG_ID, ORG_NAME, "software")
    original = {n: (data_dir / "keys" / n).read_bytes()
                for n in ("device-ed25519.key", "device.pub.pem")}
    swap_keys(data_dir, other)
    rc, report, _ = _verify(data_dir)
    assert rc == 1 and "key.foreign" in _codes(report)
    add = luutru("user", "add", "--data", str(data_dir), "--username", "x", "--role", "clerk",
                 "--password-stdin", stdin="mật khẩu dài dài dài\n")
    no_traceback(add.stdout, add.stderr)
    assert add.returncode == 1 and "khóa của máy khác" in add.stderr
    before = tree_size(data_dir)
    with serve(data_dir, ready=(503,)) as srv:
        status, health = call(srv.url + "/healthz")
        assert status == 503 and health["status"] == "halted"
        assert [f["code"] for f in health["faults"]] == ["key.foreign"]
        status, body = call(srv.url + "/api/v1/documents/incoming", token, {
            "TypeName": "Công văn", "CodeNumber": "99", "CodeNotation": "UBND-VP",
            "IssuedDate": "2025-09-03", "OrganName": "Sở Nội vụ", "Subject": "V/v thử"})
        assert status == 503, body
        assert "khóa của máy khác" in body["error"]["message"]
        # Reading still works; its audit entry is held until the log can take it.
        status, body = call(srv.url + f"/api/v1/documents/{doc['id']}", token)
        assert status == 200 and body["id"] == doc["id"]
    assert tree_size(data_dir) == before  # nothing was signed with the foreign key
    for name, raw in original.items():
        (data_dir / "keys" / name).write_bytes(raw)
    with serve(data_dir) as srv:  # the right key back: writes again, the held view logged
        status, health = call(srv.url + "/healthz")
        assert status == 200 and health["status"] == "ok"
    rc, report, _ = _verify(data_dir)
    assert rc == 0, report
    conn = sqlite3.connect(f"file:{data_dir / DB_NAME}?mode=ro", uri=True)
    later = [cbor2.loads(r[0]) for r in conn.execute(
        "SELECT entry FROM log WHERE idx >= ?", (before,)).fetchall()]
    conn.close()
    views = [e for e in later if e["kind"] == "audit.view" and e.get("id") == doc["id"]]
    assert len(views) == 1 and views[0]["data"]["held"] and views[0]["data"]["read_at"]


@pytest.mark.parametrize("keep", [0.0, 0.5])
def test_a_lost_or_cut_wal_is_noticed_and_stops_numbering(data_dir: Path, keep: float) -> None:
    token = add_clerk(data_dir)
    with serve(data_dir) as srv:
        register(srv, token, 12)
        acked = tree_size(data_dir)
        wait_sealed(srv, acked, data_dir)
        kill(srv)
    lose_wal(data_dir, keep)
    assert tree_size(data_dir) < acked
    rc, report, _ = _verify(data_dir)
    assert rc == 1 and "log.behind_anchor" in _codes(report), report
    with serve(data_dir, ready=(503,)) as srv:
        status, health = call(srv.url + "/healthz")
        assert status == 503 and health["faults"][0]["code"] == "log.behind_anchor"
        assert "--tail-from-centre" in health["faults"][0]["recovery"]
        status, body = call(srv.url + "/api/v1/documents/incoming", token, {
            "TypeName": "Công văn", "CodeNumber": "99", "CodeNotation": "UBND-VP",
            "IssuedDate": "2025-09-03", "OrganName": "Sở Nội vụ", "Subject": "V/v thử"})
        assert status == 503 and "mất phần cuối" in body["error"]["message"]
    sync = luutru("sync", "--data", str(data_dir), "--once")
    no_traceback(sync.stdout, sync.stderr)
    assert sync.returncode != 0 and "tail-from-centre" in sync.stderr
