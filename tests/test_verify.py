"""`verify` detects and names each kind of tampering, and finds a clean store intact."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from appliance import cbor
from appliance.checkpoint import verify_checkpoint
from appliance.errors import SignatureError
from appliance.keys.verify import load_public_key
from appliance.store import Store
from appliance.verify import Report, verify_data_dir

from .conftest import incoming


@pytest.fixture(autouse=True, params=["one process", "worker processes"])
def entry_pass(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every check runs twice: the entry pass in this process, and split across workers."""
    import appliance.verify_scan

    monkeypatch.setattr(
        appliance.verify_scan, "PARALLEL_FROM", 0 if request.param == "worker processes" else 10**9
    )
    monkeypatch.setattr(appliance.verify_scan.os, "cpu_count", lambda: 3)


@pytest.fixture
def filled(data_dir: Path, open_store: Callable[..., Store]) -> Path:
    s = open_store()
    f = s.open_file(
        {"FileCatalog": 2025, "FileNotation": "01.VP", "Title": "Tập lưu", "Maintenance": "01"}
    )
    stored = s.content.put_bytes(b"%PDF-1.7 scanned page")
    for i in range(12):
        doc = s.register_incoming(
            incoming(CodeNumber=str(100 + i), FileCode=f.data["FileCode"])
        ).record
    s.attach_content(
        doc.id,
        [
            {
                "sha256": stored.sha256,
                "size": stored.size,
                "name": "cv.pdf",
                "mime": "application/pdf",
            }
        ],
    )
    s.close()
    return data_dir


def db(d: Path) -> sqlite3.Connection:
    return sqlite3.connect(d / "luutru.db", isolation_level=None)


def codes(rep: Report) -> set[str]:
    return {f.code for f in rep.findings if f.severity.value == "error"}


def test_clean_store_is_intact(filled: Path) -> None:
    """An untouched store verifies with no findings."""
    rep = verify_data_dir(filled)
    assert rep.ok, rep.findings
    assert rep.entries == rep.tree_size and rep.checkpoints >= 1 and rep.content_files == 1


def test_edited_projection_row(filled: Path) -> None:
    """A trích yếu changed in the table the UI reads is named as a projection mismatch."""
    db(filled).execute("UPDATE documents SET \"Subject\" = 'sửa trộm' WHERE rid = 3")
    rep = verify_data_dir(filled)
    assert "projection.mismatch" in codes(rep)
    assert any("documents row" in f.message for f in rep.findings)


def _rewrite_entry(d: Path, idx: int, change: Callable[[dict], None]) -> None:  # type: ignore[type-arg]
    conn = db(d)
    raw = conn.execute("SELECT entry FROM log WHERE idx = ?", (idx,)).fetchone()[0]
    m = cbor.loads(raw)
    change(m)
    conn.execute("UPDATE log SET entry = ? WHERE idx = ?", (cbor.dumps(m), idx))


def test_edited_log_entry(filled: Path) -> None:
    """An entry rewritten in the log is named by index, and the signed root no longer matches."""
    _rewrite_entry(filled, 5, lambda m: m["data"].update(Subject="sửa trộm"))
    rep = verify_data_dir(filled)
    assert {"entry.hash", "checkpoint.root"} <= codes(rep)
    assert any(f.index == 5 for f in rep.findings if f.code == "entry.hash")


def test_edited_entry_with_recomputed_hashes(filled: Path) -> None:
    """Even with every Merkle node recomputed to match, the signed checkpoint catches the edit."""
    from appliance import merkle

    _rewrite_entry(filled, 5, lambda m: m["data"].update(Subject="sửa trộm"))
    conn = db(filled)
    leaves = [
        merkle.leaf_hash(bytes(r[0])) for r in conn.execute("SELECT entry FROM log ORDER BY idx")
    ]
    source = merkle.list_source(leaves)
    for level, idx in conn.execute("SELECT level, idx FROM merkle_nodes").fetchall():
        conn.execute(
            "UPDATE merkle_nodes SET hash = ? WHERE level = ? AND idx = ?",
            (source(level, idx), level, idx),
        )
    rep = verify_data_dir(filled)
    assert "checkpoint.root" in codes(rep)
    assert "entry.hash" not in codes(rep)


def test_deleted_log_entry(filled: Path) -> None:
    """A deleted entry is named as a gap."""
    db(filled).execute("DELETE FROM log WHERE idx = 7")
    rep = verify_data_dir(filled)
    assert "log.gap" in codes(rep)
    assert any("7" in f.message for f in rep.findings if f.code == "log.gap")


def test_deleted_tail_entry(filled: Path) -> None:
    """Deleting the newest entry leaves a checkpoint that covers more than the log holds."""
    conn = db(filled)
    last = conn.execute("SELECT max(idx) FROM log").fetchone()[0]
    conn.execute("DELETE FROM log WHERE idx = ?", (last,))
    assert "checkpoint.beyond" in codes(verify_data_dir(filled))


def test_reordered_log_entries(filled: Path) -> None:
    """Two entries swapped are named as reordered."""
    conn = db(filled)
    a = conn.execute("SELECT entry FROM log WHERE idx = 4").fetchone()[0]
    b = conn.execute("SELECT entry FROM log WHERE idx = 6").fetchone()[0]
    conn.execute("UPDATE log SET entry = ? WHERE idx = 4", (b,))
    conn.execute("UPDATE log SET entry = ? WHERE idx = 6", (a,))
    rep = verify_data_dir(filled)
    assert "entry.position" in codes(rep)
    assert {4, 6} <= {f.index for f in rep.findings if f.code == "entry.position"}


def test_flipped_byte_in_content(filled: Path) -> None:
    """One flipped byte in a scan is named with its hash and path."""
    files = [p for p in (filled / "content" / "sha256").rglob("*") if p.is_file()]
    assert len(files) == 1
    p = files[0]
    p.chmod(0o644)
    raw = bytearray(p.read_bytes())
    raw[3] ^= 0x01
    p.write_bytes(bytes(raw))
    rep = verify_data_dir(filled)
    assert codes(rep) == {"content.corrupt"}
    assert p.name in rep.findings[0].message


def test_missing_content(filled: Path) -> None:
    """A content file removed from disk is named as missing."""
    for p in (filled / "content" / "sha256").rglob("*"):
        if p.is_file():
            p.unlink()
    assert codes(verify_data_dir(filled)) == {"content.missing"}


def test_forged_checkpoint_signature(filled: Path) -> None:
    """A checkpoint whose signature was altered is named as a forged signature."""
    conn = db(filled)
    size, cose = conn.execute(
        "SELECT tree_size, cose FROM checkpoints ORDER BY tree_size DESC LIMIT 1"
    ).fetchone()
    forged = bytearray(cose)
    forged[-5] ^= 0x40
    conn.execute("UPDATE checkpoints SET cose = ? WHERE tree_size = ?", (bytes(forged), size))
    rep = verify_data_dir(filled)
    assert "checkpoint.signature" in codes(rep)


def test_checkpoint_signed_by_another_key(filled: Path, tmp_path: Path) -> None:
    """A checkpoint re-signed with a different key (a stolen disk, a new key) is refused."""
    from appliance.checkpoint import Checkpoint, sign_checkpoint
    from appliance.keys.software import SoftwareKey

    other = SoftwareKey.create(tmp_path / "other.key")
    conn = db(filled)
    size, root, cose = conn.execute(
        "SELECT tree_size, root_hash, cose FROM checkpoints ORDER BY tree_size DESC LIMIT 1"
    ).fetchone()
    pub = load_public_key((filled / "keys" / "device.pub.pem").read_bytes())
    cp = verify_checkpoint(cose, pub)
    forged = sign_checkpoint(
        Checkpoint(cp.origin, size, root, cp.time, other.backing, other.alg), other
    )
    with pytest.raises(SignatureError):
        verify_checkpoint(forged, pub)
    conn.execute("UPDATE checkpoints SET cose = ? WHERE tree_size = ?", (forged, size))
    assert "checkpoint.signature" in codes(verify_data_dir(filled))


def _set_search_column(conn: sqlite3.Connection, rid: int, column: str, text: str) -> None:
    """Rewrite a search row in whichever half of the index holds it."""
    changed = conn.execute(
        f"UPDATE document_fts SET {column} = ? WHERE rowid = ?", (text, rid)
    ).rowcount + conn.execute(
        f"UPDATE search_pending SET {column} = ? WHERE rid = ?", (text, rid)
    ).rowcount
    assert changed == 1


def _merge_search_rows(d: Path) -> None:
    from appliance.search import merge_pending

    conn = db(d)
    conn.execute("BEGIN IMMEDIATE")
    assert merge_pending(conn) > 0
    conn.execute("COMMIT")


@pytest.mark.parametrize("merged", [False, True], ids=["pending row", "merged row"])
def test_search_index_and_counter_tampering(filled: Path, merged: bool) -> None:
    """A rewritten search row and a rewound number counter are each named."""
    if merged:
        _merge_search_rows(filled)
    assert verify_data_dir(filled).ok
    conn = db(filled)
    _set_search_column(conn, 2, "body", "khong lien quan")
    conn.execute("UPDATE number_counters SET last = last - 1")
    found = codes(verify_data_dir(filled))
    assert {"search.mismatch", "numbering.counter"} <= found


def test_search_row_in_both_halves_of_the_index(filled: Path) -> None:
    """A document's search row copied into the merged index as well as pending is named."""
    conn = db(filled)
    conn.execute(
        "INSERT INTO document_fts (rowid, body, ocr) SELECT rid, body, ocr FROM search_pending "
        "WHERE rid = 2"
    )
    assert "search.mismatch" in codes(verify_data_dir(filled))


def test_deleted_search_row(filled: Path) -> None:
    """A document missing from the search index is named."""
    db(filled).execute("DELETE FROM search_pending WHERE rid = 2")
    assert "search.mismatch" in codes(verify_data_dir(filled))


def test_unsealed_tail_is_a_warning_then_sealed_on_open(filled: Path) -> None:
    """Entries appended without a checkpoint are reported; opening the store seals them."""
    conn = db(filled)
    last = conn.execute("SELECT max(tree_size) FROM checkpoints").fetchone()[0]
    conn.execute("DELETE FROM checkpoints WHERE tree_size = ?", (last,))
    rep = verify_data_dir(filled)
    assert rep.ok and any(f.code == "log.unsealed" for f in rep.findings)
    with Store.open(filled) as s:
        assert s.wait_sealed(10)
    rep = verify_data_dir(filled)
    assert rep.ok and not rep.findings


def test_ocr_text_projection_and_index_are_checked(
    filled: Path, open_store: Callable[..., Store]
) -> None:
    """OCR text is a projection of its log entry, and its search column follows it."""
    from appliance.capture.filing import add_text

    s = open_store()
    doc = s.find("document")[0]
    add_text(s, doc.id, "ab" * 32, "Biên bản họp dân về đường giao thông nông thôn", "ocr")
    s.close()
    assert verify_data_dir(filled).ok
    conn = db(filled)
    conn.execute("UPDATE document_text SET text = 'khác' WHERE document_id = ?", (doc.id,))
    assert "projection.mismatch" in codes(verify_data_dir(filled))
    conn.execute(
        "UPDATE document_text SET text = 'Biên bản họp dân về đường giao thông nông thôn'"
    )
    assert verify_data_dir(filled).ok
    rid = conn.execute("SELECT rid FROM documents WHERE id = ?", (doc.id,)).fetchone()[0]
    _set_search_column(conn, rid, "ocr", "khong lien quan")
    assert "search.mismatch" in codes(verify_data_dir(filled))
    conn.execute("DELETE FROM document_text")
    assert "projection.missing" in codes(verify_data_dir(filled))
