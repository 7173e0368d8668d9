"""Sổ sử dụng bản lưu: the kept copy (bản lưu) of an issued văn bản đi lent for use, and its
return, as log entries.

A use names who used the copy, who allowed it and when; its return is a second entry. Both name
the document (a classified document's uses are withheld from sync with it) and are projected
into ``copy_uses`` by ``project``, which the live path and rebuild.py both call. Lending a copy
changes no record, so it is allowed while the document is frozen or its fonds closed; a
destroyed document has no copy left to lend.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import clock as clockmod
from . import writes
from .errors import ConflictError, LuutruError, NotFoundError, ValidationError, refusal
from .kinds import Kind
from .ledger import Entry
from .postal import check_issued
from .text import nfc
from .writer import Txn
from .writes import WriteContext

TABLE = "copy_uses"
DDL = """
CREATE TABLE IF NOT EXISTS copy_uses (
  id TEXT PRIMARY KEY,
  document_id TEXT NOT NULL,
  used_on TEXT NOT NULL CHECK (used_on GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]'),
  user_name TEXT NOT NULL CHECK (length(user_name) BETWEEN 1 AND 100),
  approved_by TEXT NOT NULL CHECK (length(approved_by) BETWEEN 1 AND 100),
  note TEXT CHECK (note IS NULL OR length(note) <= 500),
  returned_on TEXT CHECK (returned_on IS NULL OR returned_on >= used_on),
  return_note TEXT CHECK (return_note IS NULL OR length(return_note) <= 500),
  actor TEXT NOT NULL,
  at TEXT NOT NULL,
  log_index INTEGER NOT NULL,
  return_index INTEGER);
CREATE INDEX IF NOT EXISTS copy_uses_document ON copy_uses (document_id);
CREATE INDEX IF NOT EXISTS copy_uses_day ON copy_uses (used_on);
"""
MAX_NAME = 100
MAX_NOTE = 500
COLUMNS = ("id, document_id, used_on, user_name, approved_by, note, returned_on, return_note, "
           "actor, at, log_index, return_index")


@dataclass(frozen=True)
class CopyUse:
    id: str
    document_id: str
    used_on: str
    user_name: str
    approved_by: str
    note: str | None
    returned_on: str | None
    return_note: str | None
    actor: str
    at: str
    log_index: int
    return_index: int | None

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _bad(vi: str, en: str, field: str) -> LuutruError:
    return refusal(vi, en, field)


def _day(raw: Any, field: str, label: str, today: dt.date) -> str:
    try:
        day = clockmod.parse_date(raw or "", field)
    except ValidationError:
        raise _bad(f"{label} không hợp lệ (dd/mm/yyyy)", f"{field} is not a date",
                   field) from None
    if day > today:
        raise _bad(f"{label} sau ngày hôm nay", f"{field} is in the future", field)
    return day.isoformat()


def _text(raw: Any, field: str, label: str, limit: int, required: bool) -> str | None:
    text = nfc(str(raw or "")).strip()
    if required and not text:
        raise _bad(f"Hãy ghi {label.lower()}", f"{field} is required", field)
    if len(text) > limit:
        raise _bad(f"{label} tối đa {limit} ký tự", f"{field} is at most {limit} characters",
                   field)
    return text or None


def prepare_use(raw: Mapping[str, Any], today: dt.date) -> dict[str, Any]:
    """A use checked on its own: its day, who used the copy and who allowed it, a note."""
    data: dict[str, Any] = {
        "used_on": _day(raw.get("used_on"), "used_on", "Ngày sử dụng", today),
        "user_name": _text(raw.get("user_name"), "user_name", "Họ tên người sử dụng",
                           MAX_NAME, True),
        "approved_by": _text(raw.get("approved_by"), "approved_by", "Người cho phép sử dụng",
                             MAX_NAME, True),
    }
    note = _text(raw.get("note"), "note", "Ghi chú", MAX_NOTE, False)
    if note:
        data["note"] = note
    return data


def lend(store: WriteContext, doc_id: str, raw: Mapping[str, Any],
         actor: str = "system") -> CopyUse:
    """Record that the kept copy of the văn bản đi ``doc_id`` was lent for use."""
    data = prepare_use(raw, store.clock.now().date())

    def job(txn: Txn) -> CopyUse:
        rec = check_issued(txn, doc_id, "cho sử dụng bản lưu của", "lent",
                           ("issued", "recalled"))
        if any(h[2] == "destroyed" for h in writes.holds_on(txn.conn, [("document", doc_id)])):
            raise refusal("Văn bản đã bị hủy, không còn bản lưu",
                          "the document was destroyed: no kept copy is left", None, ConflictError)
        issued = rec.data.get("IssuedDate")
        if issued and data["used_on"] < issued:
            raise _bad(f"Ngày sử dụng trước ngày ban hành {clockmod.vn_date(issued)}",
                       "used_on is before the document was issued", "used_on")
        d = {"id": writes.new_id(), **data}
        entry = writes.append_event(txn, Kind.COPY_USE, actor, d, "document", doc_id)
        project(txn.conn, entry)
        return _get(txn.conn, d["id"])

    return store.writer_or_fail().call(job)


def give_back(store: WriteContext, doc_id: str, use_id: str, raw: Mapping[str, Any],
              actor: str = "system") -> CopyUse:
    """Record that the copy lent in use ``use_id`` came back."""
    today = store.clock.now().date()
    returned = _day(raw.get("returned_on"), "returned_on", "Ngày trả", today)
    note = _text(raw.get("note"), "note", "Ghi chú", MAX_NOTE, False)

    def job(txn: Txn) -> CopyUse:
        use = _get(txn.conn, use_id)
        if use.document_id != doc_id:
            raise NotFoundError(f"no use {use_id} of document {doc_id}")
        if use.returned_on:
            raise refusal(f"Bản lưu đã được trả ngày {clockmod.vn_date(use.returned_on)}",
                          f"already returned on {clockmod.vn_date(use.returned_on)}", None,
                          ConflictError)
        if returned < use.used_on:
            raise _bad(f"Ngày trả trước ngày sử dụng {clockmod.vn_date(use.used_on)}",
                       "returned_on is before used_on", "returned_on")
        d: dict[str, Any] = {"id": use_id, "returned_on": returned}
        if note:
            d["note"] = note
        entry = writes.append_event(txn, Kind.COPY_RETURN, actor, d, "document", doc_id)
        project(txn.conn, entry)
        return _get(txn.conn, use_id)

    return store.writer_or_fail().call(job)


def project(conn: sqlite3.Connection, entry: Entry) -> None:
    """Write a ``copy.use`` entry's row, or a ``copy.return``'s onto it (live and rebuild)."""
    d = entry.data or {}
    if entry.kind == Kind.COPY_USE:
        conn.execute(
            f"INSERT INTO {TABLE} (id, document_id, used_on, user_name, approved_by, note, "
            "actor, at, log_index) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (d["id"], entry.id, d["used_on"], d["user_name"], d["approved_by"], d.get("note"),
             entry.actor, entry.at, entry.index))
    else:
        conn.execute(
            f"UPDATE {TABLE} SET returned_on = ?, return_note = ?, return_index = ? "
            "WHERE id = ?", (d["returned_on"], d.get("note"), entry.index, d["id"]))


def _row(row: Any) -> CopyUse:
    return CopyUse(*row)


def _get(conn: sqlite3.Connection, use_id: str) -> CopyUse:
    row = conn.execute(f"SELECT {COLUMNS} FROM {TABLE} WHERE id = ?", (use_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"no use {use_id} of a kept copy")
    return _row(tuple(row))


def uses_of(conn: sqlite3.Connection, doc_id: str) -> list[CopyUse]:
    """The uses of a document's kept copy, oldest first."""
    rows = conn.execute(f"SELECT {COLUMNS} FROM {TABLE} WHERE document_id = ? "
                        "ORDER BY used_on, log_index", (doc_id,)).fetchall()
    return [_row(tuple(r)) for r in rows]
