"""Sổ gửi văn bản đi bưu điện: an issued văn bản đi handed to the post, as a log entry.

A sending is a plain record — the day, the addressees, the number of envelopes, a note — so
that whatever sends a document (the clerk at the post office today, the deliveries of its nơi
nhận later) can produce one with ``send``. Each is a ``postal.send`` entry naming the document
(so a classified document's sendings are withheld from sync with it), projected into
``postal_sendings`` by ``project``: the live path and rebuild.py call the same function.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import clock as clockmod
from . import writes
from .errors import ConflictError, LuutruError, ValidationError, refusal
from .kinds import Kind
from .ledger import Entry
from .results import Record
from .text import nfc
from .writer import Txn
from .writes import WriteContext

TABLE = "postal_sendings"
DDL = """
CREATE TABLE IF NOT EXISTS postal_sendings (
  id TEXT PRIMARY KEY,
  document_id TEXT NOT NULL,
  sent_on TEXT NOT NULL CHECK (sent_on GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]'),
  addressees TEXT NOT NULL CHECK (json_valid(addressees)),
  envelopes INTEGER NOT NULL CHECK (envelopes BETWEEN 1 AND 9999),
  note TEXT CHECK (note IS NULL OR length(note) <= 500),
  actor TEXT NOT NULL,
  at TEXT NOT NULL,
  log_index INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS postal_sendings_document ON postal_sendings (document_id);
CREATE INDEX IF NOT EXISTS postal_sendings_day ON postal_sendings (sent_on);
"""
MAX_NOTE = 500
MAX_ADDRESSEES = 200


@dataclass(frozen=True)
class Sending:
    id: str
    document_id: str
    sent_on: str
    addressees: tuple[dict[str, str], ...]
    envelopes: int
    note: str | None
    actor: str
    at: str
    log_index: int

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "document_id": self.document_id, "sent_on": self.sent_on,
                "addressees": list(self.addressees), "envelopes": self.envelopes,
                "note": self.note, "actor": self.actor, "at": self.at,
                "log_index": self.log_index}


def _bad(vi: str, en: str, field: str) -> LuutruError:
    return refusal(vi, en, field)


def addressee(value: Any) -> dict[str, str]:
    """One nơi nhận: a name, or ``{"OrganName", "OrganId"?}`` as a document's ``To`` holds."""
    if isinstance(value, str):
        value = {"OrganName": value}
    if not isinstance(value, Mapping):
        raise _bad("Nơi nhận phải là tên cơ quan, tổ chức", "an addressee is a name",
                   "addressees")
    name = nfc(str(value.get("OrganName") or "")).strip()
    if not name or len(name) > 200:
        raise _bad("Tên nơi nhận phải có từ 1 đến 200 ký tự",
                   "an addressee's name is 1–200 characters", "addressees")
    out = {"OrganName": name}
    organ = nfc(str(value.get("OrganId") or "")).strip()
    if organ:
        if len(organ) > 35:
            raise _bad("Mã định danh nơi nhận quá dài", "addressee OrganId too long",
                       "addressees")
        out["OrganId"] = organ
    return out


def prepare(raw: Mapping[str, Any], today: dt.date) -> dict[str, Any]:
    """A sending checked on its own: the day (not after today), the addressees (names, one per
    line in a text, or a list), envelopes 1–9999, a note of at most 500 characters."""
    try:
        sent = clockmod.parse_date(raw.get("sent_on") or "", "sent_on")
    except ValidationError:
        raise _bad("Ngày chuyển không hợp lệ (dd/mm/yyyy)", "sent_on is not a date",
                   "sent_on") from None
    if sent > today:
        raise _bad("Ngày chuyển sau ngày hôm nay", "sent_on is in the future", "sent_on")
    places = raw.get("addressees")
    if isinstance(places, str):
        places = [p for p in (x.strip() for x in places.splitlines()) if p]
    if not isinstance(places, list) or not places:
        raise _bad("Hãy ghi ít nhất một nơi nhận", "give at least one addressee", "addressees")
    if len(places) > MAX_ADDRESSEES:
        raise _bad(f"Nhiều nhất {MAX_ADDRESSEES} nơi nhận một lần gửi",
                   f"at most {MAX_ADDRESSEES} addressees", "addressees")
    given = raw.get("envelopes")
    try:
        envelopes = len(places) if given is None or given == "" else int(given)
    except (TypeError, ValueError):
        raise _bad("Số lượng bì phải là số", "envelopes is a whole number",
                   "envelopes") from None
    if isinstance(raw.get("envelopes"), bool) or not 1 <= envelopes <= 9999:
        raise _bad("Số lượng bì từ 1 đến 9999", "envelopes is 1–9999", "envelopes")
    note = nfc(str(raw.get("note") or "")).strip() or None
    if note and len(note) > MAX_NOTE:
        raise _bad(f"Ghi chú tối đa {MAX_NOTE} ký tự", f"note is at most {MAX_NOTE} characters",
                   "note")
    data: dict[str, Any] = {"sent_on": sent.isoformat(),
                            "addressees": [addressee(p) for p in places],
                            "envelopes": envelopes}
    if note:
        data["note"] = note
    return data


def check_issued(txn: Txn, doc_id: str, what_vi: str, what_en: str,
                 statuses: tuple[str, ...] = ("issued",)) -> Record:
    """The văn bản đi ``doc_id`` if its status is one of ``statuses`` and it was not cancelled
    (a draft has no number and no kept copy yet; a cancelled one is not sent nor lent)."""
    rec = writes.current(txn, "document", id=doc_id)
    if rec.data.get("Direction") != "outgoing" or rec.data.get("Status") not in statuses \
            or rec.data.get("CancelledDate"):
        raise refusal(f"Chỉ {what_vi} văn bản đi đã ban hành",
                      f"only an issued outgoing document can be {what_en}", None, ConflictError)
    return rec


def send(store: WriteContext, doc_id: str, raw: Mapping[str, Any],
         actor: str = "system") -> Sending:
    """Record that the issued văn bản đi ``doc_id`` was handed to the post."""
    data = prepare(raw, store.clock.now().date())

    def job(txn: Txn) -> Sending:
        rec = check_issued(txn, doc_id, "gửi bưu điện", "sent by post")
        writes.check_writable(txn.conn, rec)
        issued = rec.data.get("IssuedDate")
        if issued and data["sent_on"] < issued:
            raise _bad(f"Ngày chuyển trước ngày ban hành {clockmod.vn_date(issued)}",
                       "sent_on is before the document was issued", "sent_on")
        d = {"id": writes.new_id(), **data}
        entry = writes.append_event(txn, Kind.POSTAL_SEND, actor, d, "document", doc_id)
        project(txn.conn, entry)
        return _sending(txn.conn.execute(f"SELECT * FROM {TABLE} WHERE id = ?",
                                         (d["id"],)).fetchone())

    return store.writer_or_fail().call(job)


def project(conn: sqlite3.Connection, entry: Entry) -> None:
    """Write a ``postal.send`` entry's row (the live path and rebuild.py)."""
    d = entry.data or {}
    conn.execute(
        f"INSERT INTO {TABLE} (id, document_id, sent_on, addressees, envelopes, note, actor, "
        "at, log_index) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (d["id"], entry.id, d["sent_on"],
         json.dumps(d["addressees"], ensure_ascii=False, sort_keys=True), int(d["envelopes"]),
         d.get("note"), entry.actor, entry.at, entry.index))


def _sending(row: Any) -> Sending:
    return Sending(str(row[0]), str(row[1]), str(row[2]), tuple(json.loads(row[3])),
                   int(row[4]), row[5], str(row[6]), str(row[7]), int(row[8]))


def sendings_of(conn: sqlite3.Connection, doc_id: str) -> list[Sending]:
    """A document's postal sendings, oldest first."""
    rows = conn.execute(
        "SELECT id, document_id, sent_on, addressees, envelopes, note, actor, at, log_index "
        f"FROM {TABLE} WHERE document_id = ? ORDER BY sent_on, log_index", (doc_id,)).fetchall()
    return [_sending(r) for r in rows]
