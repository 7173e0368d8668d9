"""Rebuilding every projection from the log alone gives back the tables the live paths wrote."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import cbor2
import pytest

from appliance import (
    adminunits,
    agency_ids,
    copyuse,
    fileplan,
    postal,
    rebuild,
    renditions,
    replay,
    schema,
    writes,
)
from appliance import rebuild_rules as rules
from appliance.archive import custody, destruction, holds, publication, use
from appliance.archive import fonds as archive_fonds
from appliance.archive.backup import backup
from appliance.archive.fixity import audit as fixity_audit
from appliance.capture import filing
from appliance.capture.separator import Target
from appliance.clock import TZ, ManualClock
from appliance.config import DB_NAME
from appliance.importer import import_file
from appliance.ledger import Entry
from appliance.rebuild import rebuild_projections
from appliance.rebuild_rules import RebuildError, UnknownKindError
from appliance.search import indexed_rows
from appliance.store import Store
from appliance.verify import verify_data_dir
from tests.archive.conftest import attach_pdf, pdf_bytes
from tests.conftest import ORG_ID, incoming, outgoing
from tests.edxml_field import edxml_everything

SEARCH_TABLES = {"document_fts", "search_pending"}  # compared through search.indexed_rows
SAMPLE = Path(str(resources.files("appliance").joinpath("data/sample")))
OTHER_FONDS = "000.21.09.H49"
NEW_ORG_ID = "000.00.37.H22"
# Tables that are not projections of the log (or are rebuilt by their own module).
NOT_PROJECTIONS = {
    "meta", "log", "merkle_nodes", "checkpoints",
    # appliance.accounts: password and token hashes are never logged, so not rebuildable.
    "web_users", "web_sessions", "web_tokens",
    "web_log_index",  # web_ui.history brings its own index up to date from the log
    # store.Store.audit: reads while the log was halted, waiting to be appended to it
    "held_audits",
}


# -- helpers ------------------------------------------------------------------------------


def _db(data_dir: Path) -> sqlite3.Connection:
    return schema.connect(str(data_dir / DB_NAME))


def _projection_tables(conn: sqlite3.Connection) -> list[str]:
    present = {
        r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    }
    return [t for t in (*rules.CORE_TABLES, *rules.ARCHIVE_TABLES, *rules.EDXML_TABLES)
            if t in present]


def _rows(conn: sqlite3.Connection, sql: str) -> list[tuple[Any, ...]]:
    return sorted((tuple(r) for r in conn.execute(sql)), key=repr)


def snapshot(conn: sqlite3.Connection, with_rid: bool = True) -> dict[str, Any]:
    """Every projection table's rows in a natural order. Without ``with_rid`` record rows
    drop their rid and search rows are keyed by their document's id instead of the rid."""
    out: dict[str, Any] = {}
    # The search index as search.py reads it: which of its halves (document_fts, rows
    # pending a merge) holds a row is no projection of the log, so they are compared as one,
    # and no document may have a row in both.
    indexed = list(indexed_rows(conn))
    rids = [r[0] for r in indexed]
    out["search.duplicates"] = len(rids) - len(set(rids))
    if with_rid:
        out["search"] = sorted(indexed)
    else:
        ids = dict(conn.execute("SELECT rid, id FROM documents").fetchall())
        out["search"] = sorted((ids[rid], body, ocr) for rid, body, ocr in indexed if rid in ids)
        out["search.orphans"] = sum(1 for rid in rids if rid not in ids)
    for table in _projection_tables(conn):
        if table in SEARCH_TABLES:
            continue
        if table in schema.TABLES.values() and not with_rid:
            cols = [r[1] for r in conn.execute(f"PRAGMA table_info({table})") if r[1] != "rid"]
            out[table] = _rows(conn, f"SELECT {', '.join(schema.q(c) for c in cols)} FROM {table}")
        else:
            out[table] = _rows(conn, f"SELECT * FROM {table}")
    return out


def strip_projections(conn: sqlite3.Connection) -> None:
    """Leave what a box restored from the centre starts with: the log and its Merkle nodes
    (and the checkpoints), every projection empty, the archive tables not created."""
    conn.execute("BEGIN IMMEDIATE")
    for table in (*rules.ARCHIVE_TABLES, *rules.EDXML_TABLES):
        conn.execute(f"DROP TABLE IF EXISTS {table}")
    for table in rules.CORE_TABLES:
        conn.execute(f"DELETE FROM {table}")
    conn.execute("COMMIT")


def run_rebuild(conn: sqlite3.Connection, **kw: Any) -> rules.RebuildReport:
    conn.execute("BEGIN IMMEDIATE")
    try:
        report = rebuild_projections(conn, **kw)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return report


def other_codelists() -> bytes:
    raw = resources.files("appliance").joinpath("data/codelists.json").read_bytes()
    doc = json.loads(raw)
    doc["version"] = "2026.1"
    return json.dumps(doc, ensure_ascii=False, indent=1).encode()


def png_bytes() -> bytes:
    """A small scanned-looking PNG (300 dpi), as a photo or a plan would be filed."""
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (60, 40), (200, 180, 90)).save(out, "PNG", dpi=(300, 300))
    return out.getvalue()


def _content(store: Store, text: str) -> dict[str, Any]:
    stored = store.content.put_bytes(pdf_bytes(text))
    return filing.content_ref(stored.sha256, stored.size, "scan.pdf")


def build_everything(store: Store, clock: ManualClock, work: Path) -> None:
    """One of every kind of change, through the live code paths."""
    # Legacy registers: fonds (one closed by a merger), hồ sơ, đến and đi with their numbers.
    for name, fond in (
        ("registers.jsonl", None),
        ("so-den-2024.csv", "000.21.07.H49"),
        ("so-di-2024.csv", "000.21.07.H49"),
    ):
        assert import_file(store, SAMPLE / name, fond=fond).ok
    store.load_codelists(other_codelists(), actor="lead")
    store.create_fonds({"FondCode": OTHER_FONDS, "FondName": "Phông xã Đông Hưng (cũ)"})

    # A hồ sơ with registered, issued, edited, scanned and shared documents, then closed.
    f = store.open_file(
        {"FileCatalog": 2025, "FileNotation": "21.VP", "Title": "Hồ sơ thiên tai 2025",
         "Maintenance": "06"}
    )
    code = f.data["FileCode"]
    d1 = store.register_incoming(incoming(FileCode=code)).record
    d2 = store.issue_outgoing(store.draft_outgoing(outgoing(FileCode=code)).record.id).record
    store.update_document(d1.id, {"Subject": "V/v phòng, chống bão số 3 (đã sửa)"})
    store.update_document(d1.id, {"Keyword": "bão; lũ"})
    attach_pdf(store, store.get("document", d1.id), "Công văn về bão số 3")
    attach_pdf(store, d2, "Quyết định thành lập tổ công tác", pages=2)
    secret = store.issue_outgoing(
        store.draft_outgoing(outgoing(Mode="03", Subject="Về công tác bảo vệ bí mật")).record.id
    ).record
    draft = store.draft_outgoing(outgoing(Subject="Dự thảo chưa ban hành")).record
    g = store.open_file(
        {"FileCatalog": 2025, "FileNotation": "22.TP", "Title": "Hồ sơ tư pháp 2025",
         "Maintenance": "01"}
    )
    store.add_to_file(d1.id, g.data["FileCode"])
    store.add_to_file(secret.id, g.data["FileCode"])
    store.add_to_file(d2.id, g.data["FileCode"])
    store.remove_from_file(d2.id, g.data["FileCode"], "Đưa nhầm hồ sơ")
    store.close_file(code)

    # Capture: a digitised draft with its OCR text, registered later, text replaced after.
    scan = filing.new_document(store, Target(), {}, _content(store, "bản quét"), 1, "scanner")
    filing.add_text(store, scan.id, scan.data["Content"][0]["sha256"], "Công văn số 77 về đê điều",
                    "ocr")
    store.register_draft(scan.id, {"CodeNumber": "77", "CodeNotation": "UBND-NN",
                                   "OrganName": "Ủy ban nhân dân huyện Hải Hà",
                                   "TypeName": "Công văn"})
    filing.add_text(store, scan.id, scan.data["Content"][0]["sha256"],
                    "Công văn số 77/UBND-NN về tu bổ đê điều năm 2025", "ocr")
    filed = filing.new_document(
        store, Target(file_code=g.data["FileCode"]), incoming(CodeNumber="88"),
        _content(store, "văn bản đến có số"), 1, "scanner",
    )
    filing.attach(store, filed.id, _content(store, "bản quét lần hai"), "scanner")
    photo = store.content.put_bytes(png_bytes())
    store.attach_content(filed.id, [{"sha256": photo.sha256, "size": photo.size,
                                     "name": "anh.png", "mime": "image/png"}])
    renditions.migrate(store, filed.id, photo.sha256, renditions.image_to_pdf, "lưu trữ")

    # Archive: freeze and unfreeze, a frozen document, recalls, custody, audits.
    holds.freeze(store, "file", g.data["FileCode"], "Thanh tra", "QĐ 12/QĐ-TTr")
    holds.unfreeze(store, "file", g.data["FileCode"], "Xong thanh tra")
    holds.freeze(store, "document", draft.id, "Chờ ý kiến", "CV 3/UBND")
    out_doc = store.issue_outgoing(store.draft_outgoing(outgoing()).record.id).record
    holds.recall(store, out_doc.id, "Sai thẩm quyền", "QĐ 5/QĐ-UBND")
    in_doc = attach_pdf(store, store.register_incoming(incoming(CodeNumber="991")).record, "thu")
    holds.recall(store, in_doc.id, "Cơ quan gửi thu hồi", "CV 99/UBND-VP")
    end = dt.date.fromisoformat(store.get("file", f.id).data["EndDate"])
    custody.hold(store, code, end + dt.timedelta(days=200), "CV 12/UBND-VP")
    custody.accession(store, code, "2025-12-01")
    perm = store.open_file(
        {"FileCatalog": 2025, "FileNotation": "23.VP", "Title": "Hồ sơ vĩnh viễn",
         "Maintenance": "01"}
    )
    store.close_file(perm.data["FileCode"])
    custody.record_transfer(store, perm.data["FileCode"], "uuid-pkg-1", "2026-01-05")

    # Use of the archive: a request approved and read on screen; a hồ sơ opened, withdrawn.
    desk = use.Actor("vanthu", cleared=True, approver=True, desk=True)
    req = use.create_request(store, desk, {
        "purpose": "Xác minh hồ sơ thiên tai", "purpose_code": "03",
        "reader": {"kind": "outside", "name": "Nguyễn Văn An"},
        "items": [{"document": d1.id, "form": "read"}]})
    use.decide(store, desk, req["id"], True, "Đọc tại phòng lưu trữ")
    use.deliver(store, desk, req["id"], 0, "screen")
    publication.publish(store, perm.data["FileCode"], "QĐ 40/QĐ-UBND")
    publication.unpublish(store, perm.data["FileCode"], "Rà soát lại trước khi công bố")
    publication.publish(store, perm.data["FileCode"], "QĐ 41/QĐ-UBND")

    # Destruction: an expired hồ sơ listed, approved and destroyed; another list rejected.
    exp = store.open_file(
        {"FileCatalog": 2025, "FileNotation": "24.VP", "Title": "Hồ sơ hết hạn",
         "Maintenance": "06"}
    )
    e1 = attach_pdf(store, store.register_incoming(
        incoming(FileCode=exp.data["FileCode"], CodeNumber="501")).record, "hết hạn")
    store.close_file(exp.data["FileCode"])
    assert e1.data["Content"]
    exp_end = dt.date.fromisoformat(store.get("file", exp.id).data["EndDate"])
    today = dt.date(exp_end.year + 11, 1, 15)
    dl = destruction.propose(store, today, actor="lưu trữ")
    destruction.decide(store, dl.list_id, approve=True, decision_ref="QĐ 30/QĐ-UBND",
                       council=["Chủ tịch UBND", "Công chức Văn phòng"], exclude=[code])
    destruction.execute(store, dl.list_id, actor="lưu trữ")
    rej = store.open_file(
        {"FileCatalog": 2025, "FileNotation": "25.VP", "Title": "Hồ sơ giữ lại",
         "Maintenance": "06"}
    )
    store.register_incoming(incoming(FileCode=rej.data["FileCode"], CodeNumber="502"))
    store.close_file(rej.data["FileCode"])
    dl2 = destruction.propose(store, today)
    destruction.decide(store, dl2.list_id, approve=False, decision_ref="BB 2",
                       council=["Chủ tịch"], note="còn giá trị")

    # Backup and fixity audit (archive_audits), a view audit, a merger closing a fonds.
    backup(store, work / "usb1", label="USB-01")
    fixity_audit(store, [work / "usb1"])
    store.audit("view", "lan", "document", d1.id, {"via": "web"})
    store.open_file(
        {"FileCatalog": 2025, "FileNotation": "01.VP", "FondCode": OTHER_FONDS,
         "OrganId": OTHER_FONDS, "Title": "Hồ sơ của phông cũ", "Maintenance": "01"}
    )
    archive_fonds.close_fonds(store, OTHER_FONDS, "2025-10-01", successor=ORG_ID)

    # Electronic documents: the inbox (edxml.*), its decisions and status messages, an export.
    edxml_everything(store)
    # Registers beside the documents: a postal sending, a kept copy lent and returned; the
    # Danh mục of 2025 given headings (twice), a hồ sơ under one, approved; the units.
    postal.send(store, d2.id, {"sent_on": d2.data["IssuedDate"], "addressees": ["Sở Nội vụ"]})
    lent = copyuse.lend(store, d2.id, {"used_on": d2.data["IssuedDate"],
                                       "user_name": "Nguyễn Văn Bình", "approved_by": "Chủ tịch"})
    copyuse.give_back(store, d2.id, lent.id, {"returned_on": d2.data["IssuedDate"]})
    fileplan.set_headings(store, 2025, [{"title": "Văn phòng", "abbr": "VP"}])
    fileplan.set_headings(store, 2025, [{"title": "Văn phòng", "abbr": "VP", "children": [
        {"title": "Văn thư, lưu trữ"}]}, {"title": "Tư pháp", "abbr": "TP"}])
    store.open_file({"FileCatalog": 2025, "FileNotation": "26.VP", "Heading": "I.1",
                     "Title": "Hồ sơ văn thư 2025", "Maintenance": "05"})
    fileplan.approve(store, 2025, "Quyết định số 01/QĐ-UBND ngày 02/01/2025", "2025-09-15",
                     {"username": "lanhdao", "full_name": "Trần Văn Hùng",
                      "position": "Chủ tịch"})
    adminunits.set_units(store, "22", "07123", "2025-07-01", [
        {"province": "22", "district": "201", "commune": "06880", "name": "Xã Đông Xá",
         "until": "2025-06-30"}])

    # Numbering restarts on 1 January.
    clock.set(dt.datetime(2026, 1, 2, 8, 0, tzinfo=TZ))
    store.register_incoming(incoming(CodeNumber="1", IssuedDate="2025-12-30"))
    store.issue_outgoing(store.draft_outgoing(outgoing()).record.id)
    # The agency gets a new mã định danh; the old one is kept as an alias.
    agency_ids.rekey(store, NEW_ORG_ID, "2026-01-02", "Công văn 15/STTTT-BCVT")
    store.wait_sealed()


@pytest.fixture
def built(
    open_store: Callable[..., Store], clock: ManualClock, tmp_path: Path
) -> Iterator[Path]:
    """A data folder holding every kind of change, closed (its database at rest)."""
    store = open_store()
    build_everything(store, clock, tmp_path)
    data_dir = store.data_dir
    store.close()
    yield data_dir


def _copy(data_dir: Path, to: Path) -> Path:
    shutil.copytree(data_dir, to)
    return to


def _tiny_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(replay, "CHUNK_ENTRIES", 3)
    monkeypatch.setattr(replay, "CHUNK_BYTES", 1500)
    monkeypatch.setattr(rebuild, "FTS_CHUNK", 2)


def _codelist_source(sha: str) -> bytes | None:
    body = other_codelists()
    return body if hashlib.sha256(body).hexdigest() == sha else None


# -- the rebuild gives back what the live paths wrote -------------------------------------


@pytest.mark.parametrize("chunks", ["default", "tiny"])
def test_rebuild_from_log_alone_equals_live_projections(
    built: Path, tmp_path: Path, chunks: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every projection (rids and search rowids included) comes back equal from the log and
    Merkle nodes alone, and `luutru verify` is clean on the rebuilt folder; also when the log
    is read and the index written in chunks of a few rows (records span chunks)."""
    if chunks == "tiny":
        _tiny_chunks(monkeypatch)
    live = _db(built)
    want = snapshot(live)
    kinds = {Entry.decode(bytes(r[0]), strict=False).kind for r in live.execute(
        "SELECT entry FROM log")}
    live.close()
    for k in ("archive.freeze", "archive.unfreeze", "archive.recall", "archive.accession",
              "archive.hold", "archive.transfer", "archive.destruction_list",
              "archive.destruction_decision", "archive.destroy", "archive.backup",
              "archive.fixity_audit", "document.text", "document.digitise", "codelists.load",
              "fonds.import", "document.import", "fonds.close", "file.close",
              "file.add_document", "document.recall", "document.destroy", "audit.view",
              "edxml.received", "edxml.verified", "edxml.registered", "edxml.returned",
              "edxml.status_sent", "edxml.exported", "edxml.trust", "edxml.refused",
              "edxml.status_received"):
        assert k in kinds, k  # the scenario really exercised it
    assert all(want[t] for t in want if "." not in t), [t for t in want if not want[t]]

    copy = _copy(built, tmp_path / "restored")
    conn = _db(copy)
    strip_projections(conn)
    report = run_rebuild(conn, codelist_body=_codelist_source)
    got = snapshot(conn)
    conn.close()
    for table in want:
        assert got[table] == want[table], table
    assert report.withheld == 0 and report.version_gaps == 0 and not report.unknown
    assert report.inert.get("audit.view") == 1 and report.inert.get("file.contents")
    assert report.tables["documents"] == len(want["documents"])
    assert report.entries == report.replayed + sum(report.inert.values())
    rep = verify_data_dir(copy)
    assert rep.ok, [f.message for f in rep.findings]


def test_rebuild_in_place_over_existing_projections(built: Path) -> None:
    """Rebuilding a folder whose projections are already there rewrites them unchanged."""
    conn = _db(built)
    want = snapshot(conn)
    # Damage every table the way a bad copy could: a row too many, a row edited.
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("UPDATE documents SET \"Subject\" = 'sửa tay' WHERE rid = 1")
    conn.execute("INSERT INTO document_fts (rowid, body, ocr) VALUES (99999, 'x', '')")
    conn.execute("INSERT INTO search_pending (rid, body, ocr) VALUES (99998, 'y', '')")
    conn.execute("UPDATE number_counters SET last = last + 5")
    conn.execute("DELETE FROM archive_holds")
    conn.execute("COMMIT")
    run_rebuild(conn, codelist_body=_codelist_source)
    assert snapshot(conn) == want
    conn.close()
    assert verify_data_dir(built).ok


@pytest.mark.parametrize("chunks", ["default", "tiny"])
def test_withheld_rows_are_skipped_and_counted(
    built: Path, tmp_path: Path, chunks: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Empty rows (a classified record's entries, kept as leaf hashes) are skipped and
    counted; every other record comes back, each search row with its own document."""
    if chunks == "tiny":
        _tiny_chunks(monkeypatch)
    copy = _copy(built, tmp_path / "restored")
    conn = _db(copy)
    secret_ids = {r[0] for r in conn.execute('SELECT id FROM documents WHERE "Mode" = \'03\'')}
    assert secret_ids
    withheld = []
    for idx, raw in conn.execute("SELECT idx, entry FROM log ORDER BY idx").fetchall():
        m = cbor2.loads(raw)
        data = m.get("data") or {}
        if m.get("id") in secret_ids or data.get("Mode") == "03" or data.get(
            "DocumentId"
        ) in secret_ids:
            withheld.append(idx)
    # A version in the middle of an ordinary record's history, withheld as well: the record
    # still comes back whole from its later versions, and the gap is counted.
    middle = [
        idx for idx, raw in conn.execute("SELECT idx, entry FROM log ORDER BY idx").fetchall()
        if (m := cbor2.loads(raw))["kind"] == "document.update" and m["ver"] == 2
        and conn.execute("SELECT version FROM documents WHERE id = ?", (m["id"],)).fetchone()[0]
        > 2
    ]
    assert middle
    withheld.append(middle[0])
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany("UPDATE log SET entry = x'' WHERE idx = ?", [(i,) for i in withheld])
    conn.execute("COMMIT")
    # What the rebuild must give: the live projections without the classified records.
    want = snapshot(conn, with_rid=False)
    want["documents"] = [r for r in want["documents"] if r[0] not in secret_ids]
    want["search"] = [r for r in want["search"] if r[0] not in secret_ids]
    want["memberships"] = [r for r in want["memberships"] if r[4] not in secret_ids]
    strip_projections(conn)
    report = run_rebuild(conn, codelist_body=_codelist_source)
    got = snapshot(conn, with_rid=False)
    assert report.withheld == len(withheld) > 0
    assert report.version_gaps == 1
    assert report.entries == report.withheld + report.replayed + sum(report.inert.values())
    # The numbers classified documents took are logged on their own (numbering.used), so no
    # counter comes back low and the new box never gives such a number again.
    mat = [r for r in want["number_counters"] if r[1] == "mat"]
    assert mat and [r for r in got["number_counters"] if r[1] == "mat"] == mat
    for table in want:
        assert got[table] == want[table], table
    conn.close()


def test_unknown_kind_is_a_clear_error(
    built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kind with no replay rule (written by a later version, which declared it) stops the
    rebuild, names the entry and changes nothing; told to let unknown kinds through, the
    rebuild lists them."""
    from appliance import ledger

    monkeypatch.setattr(ledger, "KNOWN", ledger.KNOWN | {"document.teleport"})
    copy = _copy(built, tmp_path / "restored")
    with Store.open(copy) as store:
        d = store.register_incoming(incoming(CodeNumber="4242")).record
        idx = store.writer_or_fail().call(
            lambda txn: writes.append_event(txn, "document.teleport", "x", {"to": "Huế"},
                                           "document", d.id).index
        )
        store.wait_sealed()
    conn = _db(copy)
    before = snapshot(conn)
    with pytest.raises(UnknownKindError) as err:
        run_rebuild(conn, codelist_body=_codelist_source)
    assert err.value.kind == "document.teleport" and err.value.index == idx
    assert "document.teleport" in str(err.value) and f"log entry {idx}" in str(err.value)
    assert snapshot(conn) == before  # the caller's transaction was rolled back whole
    report = run_rebuild(conn, codelist_body=_codelist_source, allow_unknown=True)
    assert report.unknown == {"document.teleport": 1}
    assert snapshot(conn) == before
    conn.close()


def test_missing_codelist_body_is_an_error_unless_allowed(built: Path, tmp_path: Path) -> None:
    """The log names a code-list version by SHA-256 only: without its body the rebuild stops
    (or, if allowed, reports it); a body that does not match the SHA-256 is refused."""
    copy = _copy(built, tmp_path / "restored")
    conn = _db(copy)
    with pytest.raises(RebuildError, match=r"2026\.1"):
        run_rebuild(conn)
    with pytest.raises(RebuildError, match="does not have the SHA-256"):
        run_rebuild(conn, codelist_body=lambda sha: b'{"version": "2026.1", "lists": {}}')
    report = run_rebuild(conn, allow_missing_codelists=True)
    assert report.missing_codelists == ["2026.1"]
    versions = [r[0] for r in conn.execute("SELECT version FROM codelist_versions")]
    assert versions == ["2025.1"]  # the bundled version is found without help
    conn.close()


def test_rebuild_needs_an_open_transaction(built: Path) -> None:
    """Outside a transaction nothing is emptied."""
    conn = _db(built)
    with pytest.raises(RebuildError, match="transaction"):
        rebuild_projections(conn)
    assert conn.execute("SELECT count(*) FROM documents").fetchone()[0] > 0
    conn.close()


def test_corrupt_entry_is_named(built: Path, tmp_path: Path) -> None:
    """An entry that is not CBOR, or rows missing from the log, fail the rebuild, named."""
    copy = _copy(built, tmp_path / "restored")
    conn = _db(copy)
    conn.execute("UPDATE log SET entry = x'ff00' WHERE idx = 3")
    with pytest.raises(RebuildError, match="log entry 3"):
        run_rebuild(conn, codelist_body=_codelist_source)
    conn.execute("DELETE FROM log WHERE idx IN (3, 4)")
    with pytest.raises(RebuildError, match="log entries 3–4 are missing"):
        run_rebuild(conn, codelist_body=_codelist_source)
    conn.close()


def test_every_table_is_rebuilt_or_known_not_to_be_a_projection(built: Path) -> None:
    """A new table in the database must be either rebuilt here or named as no projection."""
    conn = _db(built)
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    conn.close()
    fts_shadow = {n for n in names if n.startswith("document_fts_")}
    rebuilt = set(rules.CORE_TABLES) | set(rules.ARCHIVE_TABLES) | set(rules.EDXML_TABLES)
    assert names - rebuilt - fts_shadow - NOT_PROJECTIONS == set()


# -- random histories -------------------------------------------------------------------

OPS = (
    "register", "draft", "issue", "update", "content", "open_file", "add_to_file",
    "close_file", "ocr", "freeze", "unfreeze", "recall", "new_year", "secret", "audit",
    "register", "issue", "open_file", "add_to_file", "content", "ocr", "update", "take_out",
)


def _apply(store: Store, clock: ManualClock, op: str, n: int) -> None:
    """One operation picked by ``op``, its targets picked by ``n``; refusals are fine."""
    from appliance.errors import LuutruError

    def pick(rows: list[Any]) -> Any:
        return rows[n % len(rows)] if rows else None

    docs = store.find("document")
    files = store.find("file")
    try:
        if op == "register":
            store.register_incoming(incoming(CodeNumber=str(n), Subject=f"V/v việc số {n}",
                                             FileCode=pick([None, *(f.data["FileCode"]
                                                                    for f in files)])))
        elif op == "draft":
            store.draft_outgoing(outgoing(Subject=f"Dự thảo {n}"))
        elif op == "secret":
            store.draft_outgoing(outgoing(Subject=f"Mật {n}", Mode="03"))
        elif op == "issue":
            drafts = [d for d in docs if d.data.get("Status") == "draft"
                      and d.data["Direction"] == "outgoing"]
            if drafts:
                store.issue_outgoing(pick(drafts).id)
        elif op == "update" and docs:
            store.update_document(pick(docs).id, {"Description": f"Ghi chú {n} — đã sửa"})
        elif op == "content" and docs:
            stored = store.content.put_bytes(f"tệp {n}".encode())
            store.attach_content(pick(docs).id, [{"sha256": stored.sha256, "size": stored.size,
                                                  "name": f"{n}.txt", "mime": "text/plain"}])
        elif op == "open_file":
            store.open_file({"FileCatalog": 2025, "FileNotation": f"{n % 90 + 10:02d}.VP",
                             "Title": f"Hồ sơ {n}", "Maintenance": "06"})
        elif op == "add_to_file" and docs and files:
            store.add_to_file(pick(docs).id, files[(n // 7) % len(files)].data["FileCode"])
        elif op == "take_out":
            row = store.reader().execute(
                'SELECT "DocumentId", "FileCode" FROM memberships ORDER BY rid LIMIT 1 OFFSET ?',
                (n % 3,)).fetchone()
            if row is not None:
                store.remove_from_file(row[0], row[1], f"Nhầm {n}")
        elif op == "close_file" and files:
            store.close_file(pick(files).data["FileCode"])
        elif op == "ocr" and docs:
            filing.add_text(store, pick(docs).id, "0" * 64, f"Văn bản quét số {n} về đê điều",
                            "ocr")
        elif op == "freeze" and docs:
            holds.freeze(store, "document", pick(docs).id, f"Lý do {n}", "QĐ 1")
        elif op == "unfreeze" and docs:
            holds.unfreeze(store, "document", pick(docs).id, "Xong")
        elif op == "recall" and docs:
            holds.recall(store, pick(docs).id, f"Thu hồi {n}", "QĐ 2")
        elif op == "new_year":
            now = clock.now()
            clock.set(now.replace(year=now.year + 1, month=1, day=1 + n % 20))
        elif op == "audit" and docs:
            store.audit("print", "lan", "document", pick(docs).id)
    except LuutruError:
        pass  # a refused operation leaves nothing behind, which the rebuild must agree with


def test_random_histories_rebuild_exactly(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever sequence of changes made the log, the rebuild (reading it a few rows at a
    time) equals the live projections and verify is clean."""
    _tiny_chunks(monkeypatch)
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from appliance.datadir import init_data_dir
    from tests.conftest import ORG_NAME

    @settings(max_examples=10, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(st.lists(st.tuples(st.sampled_from(OPS), st.integers(0, 10_000)), min_size=20,
                    max_size=60))
    def check(ops: list[tuple[str, int]]) -> None:
        data_dir = tmp_path_factory.mktemp("random") / "appliance"
        init_data_dir(data_dir, ORG_ID, ORG_NAME, "software")
        clock = ManualClock(dt.datetime(2025, 9, 15, 9, 30, tzinfo=TZ))
        with Store.open(data_dir, clock=clock) as store:
            for op, n in ops:
                _apply(store, clock, op, n)
            store.wait_sealed()
        conn = _db(data_dir)
        want = snapshot(conn)
        strip_projections(conn)
        report = run_rebuild(conn)
        got = snapshot(conn)
        conn.close()
        assert got == want
        assert report.version_gaps == 0 and report.withheld == 0
        rep = verify_data_dir(data_dir)
        assert rep.ok, [f.message for f in rep.findings]
        shutil.rmtree(data_dir.parent)

    check()


def test_kinds_named_in_the_code_all_have_a_rule() -> None:
    """Every entry kind the live code names by a constant is replayed or known inert."""
    from appliance.capture.filing import DIGITISE_KIND, TEXT_KIND
    from appliance.handover import HANDOVER_KIND
    from luutru.provision.identity import IDENTITY_KIND
    from luutru.provision.wizard import ATTEST_KIND
    from sync.agent.outbox import RECEIPT_KIND

    for kind in (DIGITISE_KIND, TEXT_KIND, HANDOVER_KIND, IDENTITY_KIND, ATTEST_KIND,
                 RECEIPT_KIND, "audit.view", "audit.print", "user.add", "user.token_revoke"):
        assert rules.known_kind(kind), kind
    assert not rules.known_kind("archive.teleport")
    assert not rules.known_kind("document.teleport")


def test_restored_backup_rebuilds_with_its_restore_audit(built: Path, tmp_path: Path) -> None:
    """A folder restored from a backup medium logs an archive.restore audit; rebuilding that
    folder gives back its audit rows and every other projection."""
    from appliance.archive.restore import BackupDirSource, restore_data_dir

    target = tmp_path / "from-backup"
    res = restore_data_dir(target, BackupDirSource(tmp_path / "usb1"))
    assert res.logged_index is not None, res.notes
    conn = _db(target)
    want = snapshot(conn)
    assert [r[1] for r in want["archive_audits"]].count("restore") == 1
    strip_projections(conn)
    run_rebuild(conn, codelist_body=_codelist_source)
    assert snapshot(conn) == want
    conn.close()


def test_entry_missing_what_its_replay_needs_is_named(built: Path, tmp_path: Path) -> None:
    """An archive entry without the fields its rule reads fails the rebuild with its index."""
    copy = _copy(built, tmp_path / "restored")
    with Store.open(copy) as store:
        idx = store.writer_or_fail().call(
            lambda txn: writes.append_event(txn, "archive.freeze", "x", {"reason": "?"}).index
        )
        store.wait_sealed()
    conn = _db(copy)
    with pytest.raises(RebuildError, match=f"log entry {idx} \\(archive.freeze\\)") as err:
        run_rebuild(conn, codelist_body=_codelist_source)
    assert err.value.index == idx
    conn.close()
