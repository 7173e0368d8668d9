"""Filing: a captured PDF becomes (part of) a sealed record, and later versions join it.

A segment aimed at an existing document becomes a new content version of it. Otherwise a new
document is made: a registered văn bản đến when the caller gave the fields registration needs
(số, ký hiệu, cơ quan ban hành, …), else a digitised draft (Direction incoming, Status draft,
ConfidenceLevel 02 "Số hóa") for the clerk to describe later. Either way the record and its
scan are committed in one log entry, so the record is sealed as soon as the images are safe.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

from .. import clock as clockmod
from .. import writes
from ..errors import ReadOnlyError
from ..kinds import Kind
from ..search import OCR_TEXT_KIND, index_document
from ..store import Record, Store, Txn
from ..text import nfc_multiline
from .errors import CaptureError
from .separator import Target

PDF = "application/pdf"
INCOMING_REQUIRED = ("CodeNumber", "CodeNotation", "OrganName")
TEXT_KIND = OCR_TEXT_KIND
DIGITISE_KIND = Kind.DOCUMENT_DIGITISE


def base_name(data: Mapping[str, Any], doc_id: str) -> str:
    """File name stem from the mã hồ sơ (Circular 05/2025 Điều 8.1.d): {mã hồ sơ}.{ordinal}."""
    if data.get("FileCode") and data.get("DocOrdinal"):
        return f"{data['FileCode']}.{data['DocOrdinal']}"
    if data.get("FileCode"):
        return str(data["FileCode"])
    if data.get("ArrivalNumber") and data.get("Year"):
        return f"{data.get('FondCode', '')}.{data['Year']}.den.{data['ArrivalNumber']}".lstrip(".")
    return doc_id


def content_ref(
    sha256: str, size: int, name: str, derived_from: str | None = None,
    rendition: str | None = None,
) -> dict[str, Any]:
    """A content entry; a rendition (OCR, signing) names the file it was made from."""
    ref: dict[str, Any] = {"sha256": sha256, "size": size, "name": name, "mime": PDF}
    if derived_from is not None:
        ref.update({"from": derived_from, "rendition": rendition or "derived"})
    return ref


def find_by_content(store: Store, sha256: str) -> Record | None:
    """The document already holding this content (a batch re-run after a crash)."""
    row = (
        store.reader()
        .execute(
            'SELECT id FROM documents WHERE "Content" LIKE ? ORDER BY rid LIMIT 1',
            (f'%"{sha256}"%',),
        )
        .fetchone()
    )
    return None if row is None else store.get("document", row[0])


def _draft_fields(metadata: Mapping[str, Any], pages: int, today: str) -> dict[str, Any]:
    raw = dict(metadata)
    raw.setdefault("TypeName", "Khác")
    raw.setdefault("Subject", f"Tài liệu số hóa {pages} trang, quét ngày {today} (chưa mô tả)")
    raw.setdefault("ConfidenceLevel", "02")
    raw["PageAmount"] = pages
    return raw


def new_document(
    store: Store,
    target: Target,
    metadata: Mapping[str, Any],
    content: dict[str, Any],
    pages: int,
    actor: str,
) -> Record:
    """A new document holding ``content`` (already in the content store), in one log entry."""
    raw = dict(metadata)
    if target.file_code:
        raw["FileCode"] = target.file_code
    raw["Content"] = [content]
    if all(raw.get(f) for f in INCOMING_REQUIRED):
        raw.setdefault("ConfidenceLevel", "02")
        raw.setdefault("PageAmount", pages)
        return store.register_incoming(raw, actor).record
    today = clockmod.vn_date(store.clock.now().date().isoformat())
    data = store.prepare_document("incoming", _draft_fields(raw, pages, today))

    def job(txn: Txn) -> Record:
        # A scan filed into a hồ sơ belongs to that hồ sơ's fonds, not the box's own.
        code = data.get("FondCode") or writes.file_fonds(txn.conn, data.get("FileCode"))
        fonds = writes.fonds_state(txn.conn, store.config.fond_code, code)
        if fonds["Status"] != "open":
            raise ReadOnlyError(f"fonds {fonds['FondCode']} is closed: no new documents")
        d = dict(data, FondCode=fonds["FondCode"], Status="draft")
        writes.place_in_file(txn, d)
        return writes.put(txn, "document", DIGITISE_KIND, actor, d)

    return store.writer_or_fail().call(job)


def attach(store: Store, doc_id: str, content: dict[str, Any], actor: str) -> Record:
    """Add a content version to a document, keeping every earlier one."""
    return store.attach_content(doc_id, [content], actor)


def add_text(store: Store, doc_id: str, sha256: str, text: str, actor: str) -> int:
    """Log the OCR text of a document's content and let search find the document by it."""
    text = nfc_multiline(text)

    def job(txn: Txn) -> int:
        row = txn.conn.execute("SELECT rid FROM documents WHERE id = ?", (doc_id,)).fetchone()
        if row is None:
            raise CaptureError(f"document {doc_id} does not exist")
        data = writes.current(txn, "document", id=doc_id).data
        entry = writes.append_event(
            txn, TEXT_KIND, actor, {"sha256": sha256, "text": text}, "document", doc_id
        )
        txn.conn.execute(
            "INSERT OR REPLACE INTO document_text (document_id, sha256, text, log_index) "
            "VALUES (?, ?, ?, ?)",
            (doc_id, sha256, text, entry.index),
        )
        index_document(txn.conn, int(row[0]), data, text, new=False)
        return entry.index

    return int(store.writer_or_fail().call(job))


def document_text(conn: sqlite3.Connection, doc_id: str) -> str | None:
    row = conn.execute("SELECT text FROM document_text WHERE document_id = ?", (doc_id,)).fetchone()
    return None if row is None else str(row[0])
