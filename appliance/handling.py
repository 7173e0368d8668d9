"""Văn bản đến from direction to its answer (Decree 30 Điều 24): the leader writes a direction
(ý kiến chỉ đạo, bút phê), names the lead handler (chủ trì), co-handlers (phối hợp) and a
deadline; the handlers record progress and mark it done, linking the văn bản đi that answers
it. Every step is the document's full new version (``document.direct``, ``document.progress``)
with its ``Handling`` field:

    {"status": "assigned" | "in_progress" | "done", "direction", "directed_by", "directed_at",
     "lead", "support": [...], "due": "YYYY-MM-DD", "progress": [{"at", "by", "note", "done"}],
     "answer": document id or None, "done_at": ISO time or None, "info": true when only for
     information}

Many văn bản đến only inform (để biết, lưu): the leader says so (``for_information``) and the
document is then handled, with no handler and no deadline.

The deadline is also the document's ``DueDate`` (thời hạn giải quyết) and the handlers its
``ToPlaces`` (đơn vị hoặc người nhận), which the Decree 30 registers print. Any active user may
be named a handler; a mật document only a user cleared for mật records.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import clock as clockmod
from . import records, writes
from .accounts import CLEARED_ROLES, Role
from .classified import document_is_classified
from .errors import ConflictError, ForbiddenActionError, ValidationError
from .kinds import Kind
from .results import Record
from .text import nfc_multiline
from .writer import Txn
from .writes import WriteContext

STATUSES = ("assigned", "in_progress", "done")
MAX_TEXT = 2000


def _user(conn: sqlite3.Connection, username: str, field: str, mat: bool) -> tuple[str, str]:
    """(username, full name) of an active user who may handle the document."""
    row = conn.execute(
        "SELECT username, full_name, role FROM web_users WHERE username = ? AND disabled = 0",
        (username,),
    ).fetchone()
    if row is None:
        raise ValidationError(f"no active user {username!r}", field,
                              msgid="%(label)s: there is no active user '%(value)s'.",
                              value=username)
    if mat and Role(row[2]) not in CLEARED_ROLES:
        raise ValidationError(f"{username} may not handle a classified document", field,
                              msgid="%(label)s: '%(value)s' may not see classified "
                              "(mật) documents.", value=username)
    return str(row[0]), str(row[1] or row[0])


def _text(value: str, field: str) -> str:
    text = nfc_multiline(value or "")
    records.require({field: text}, field)
    if len(text) > MAX_TEXT:
        raise ValidationError(f"{field} is longer than {MAX_TEXT}", field,
                              msgid="%(label)s has %(n)d characters; at most %(max)d are "
                              "allowed.", n=len(text), max=MAX_TEXT)
    return text


def _handled(txn: Txn, doc_id: str) -> Record:
    rec = writes.current(txn, "document", id=doc_id)
    if rec.data.get("Direction") != "incoming" or rec.data.get("Status") != "registered":
        raise ConflictError(f"document {doc_id} is not a registered văn bản đến")
    writes.check_correctable(txn.conn, rec)
    return rec


def direct(
    store: WriteContext,
    doc_id: str,
    direction: str,
    lead: str,
    support: Sequence[str] = (),
    due: str | dt.date | None = None,
    actor: str = "system",
) -> Record:
    """The leader's direction: who leads, who helps, by when (a new direction replaces it)."""
    text = _text(direction, "Instruction")
    when = clockmod.parse_date(due, "Due").isoformat() if due else None

    def job(txn: Txn) -> Record:
        rec = _handled(txn, doc_id)
        mat = document_is_classified(txn.conn, rec.data, rec.id)
        lead_user = _user(txn.conn, lead, "Lead", mat)
        helpers = [_user(txn.conn, u, "Support", mat) for u in dict.fromkeys(support)
                   if u != lead_user[0]]
        today = txn.clock.now().date()
        if when is not None and when < today.isoformat():
            raise ValidationError(f"deadline {when} is in the past", "Due",
                                  msgid="%(label)s %(value)s is already past.",
                                  value=clockmod.vn_date(when))
        old = dict(rec.data.get("Handling") or {})
        handling = {
            "status": "assigned" if not old.get("progress") else old.get("status", "assigned"),
            "direction": text,
            "directed_by": actor,
            "directed_at": clockmod.iso(txn.clock.now()),
            "lead": lead_user[0],
            "support": [u for u, _ in helpers],
            "due": when,
            "progress": old.get("progress", []),
            "answer": old.get("answer"),
            "done_at": None if old.get("info") else old.get("done_at"),
        }
        data = dict(rec.data, Handling=handling)
        names = "; ".join([lead_user[1] + " (chủ trì)", *(n + " (phối hợp)" for _, n in helpers)])
        data["ToPlaces"] = names[:1000]
        if when is not None:
            data["DueDate"] = when
        return writes.put(txn, "document", Kind.DOCUMENT_DIRECT, actor, data, rec.id,
                          rec.version)

    return store.writer_or_fail().call(job)


def for_information(store: WriteContext, doc_id: str, direction: str,
                    actor: str = "system") -> Record:
    """The leader's direction that a văn bản đến is for information only (để biết, lưu): no
    handler, no deadline; it is handled as of now and leaves the inbox."""
    text = _text(direction, "Instruction")

    def job(txn: Txn) -> Record:
        rec = _handled(txn, doc_id)
        old = rec.data.get("Handling") or {}
        if old.get("progress") or (old.get("status") == "done" and not old.get("info")):
            raise ConflictError(
                "Văn bản đã có người xử lý báo cáo: không chuyển thành để biết được (document "
                f"{doc_id} is already being handled)")
        now = clockmod.iso(txn.clock.now())
        handling: dict[str, Any] = {"status": "done", "direction": text, "directed_by": actor,
                    "directed_at": now, "lead": None, "support": [], "due": None,
                    "progress": [], "answer": None, "done_at": now, "info": True}
        data = {k: v for k, v in rec.data.items() if k not in ("DueDate", "ToPlaces")}
        data["Handling"] = handling
        return writes.put(txn, "document", Kind.DOCUMENT_DIRECT, actor, data, rec.id,
                          rec.version)

    return store.writer_or_fail().call(job)


def report_progress(
    store: WriteContext,
    doc_id: str,
    note: str,
    actor: str,
    done: bool = False,
    answer: str | None = None,
    on_behalf: bool = False,
) -> Record:
    """A handler's progress (``done`` closes it; ``answer`` is the văn bản đi that answers it).
    Only the lead or a co-handler may report, unless ``on_behalf`` (the leader or the clerk)."""
    text = _text(note, "Note")

    def job(txn: Txn) -> Record:
        rec = _handled(txn, doc_id)
        handling = dict(rec.data.get("Handling") or {})
        if not handling:
            raise ConflictError(f"document {doc_id} has no direction yet")
        if handling.get("status") == "done":
            raise ConflictError(f"document {doc_id} is already handled")
        if not on_behalf and actor not in (handling.get("lead"), *handling.get("support", ())):
            raise ForbiddenActionError(f"{actor} is not a handler of document {doc_id}")
        if answer:
            reply = txn.conn.execute(
                'SELECT "Direction", "Status" FROM documents WHERE id = ?', (answer,)
            ).fetchone()
            if reply is None or reply[0] != "outgoing":
                raise ValidationError(f"{answer} is not a văn bản đi", "Answer",
                                      msgid="%(label)s: choose a văn bản đi.")
            handling["answer"] = answer
        now = clockmod.iso(txn.clock.now())
        handling["progress"] = [*handling.get("progress", []),
                                {"at": now, "by": actor, "note": text, "done": done}]
        handling["status"] = "done" if done else "in_progress"
        if done:
            handling["done_at"] = now
        data = dict(rec.data, Handling=handling)
        return writes.put(txn, "document", Kind.DOCUMENT_PROGRESS, actor, data, rec.id,
                          rec.version)

    return store.writer_or_fail().call(job)


@dataclass(frozen=True)
class Task:
    """A văn bản đến someone must handle: the handler's work list and the leader's inbox."""

    id: str
    arrival_number: int | None
    arrival_date: str | None
    subject: str
    organ_name: str
    status: str  # awaiting direction, assigned, in_progress, done
    lead: str | None
    support: tuple[str, ...]
    due: str | None
    overdue: bool
    mode: str | None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "arrival_number": self.arrival_number,
                "arrival_date": self.arrival_date, "subject": self.subject,
                "organ_name": self.organ_name, "status": self.status, "lead": self.lead,
                "support": list(self.support), "due": self.due, "overdue": self.overdue}


_TASK_SQL = (
    'SELECT id, "ArrivalNumber", "ArrivalDate", "Subject", "OrganName", "Handling", '
    '"DueDate", "Mode" FROM documents WHERE "Direction" = \'incoming\' '
    'AND "Status" = \'registered\' AND "CancelledDate" IS NULL'
)


def _task(row: Any, today: dt.date) -> Task:
    import json

    h = json.loads(row[5]) if row[5] else {}
    status = str(h.get("status") or "awaiting")
    due = h.get("due") or row[6]
    overdue = status != "done" and due is not None and str(due) < today.isoformat()
    return Task(str(row[0]), row[1], row[2], str(row[3] or ""), str(row[4] or ""), status,
                h.get("lead"), tuple(h.get("support") or ()), due, overdue, row[7])


def tasks(
    conn: sqlite3.Connection,
    today: dt.date,
    username: str | None = None,
    overdue_only: bool = False,
    include_done: bool = False,
    include_classified: bool = True,
) -> list[Task]:
    """Văn bản đến with a direction: ``username``'s own (lead or co-handler), or everyone's;
    overdue first, then by deadline."""
    sql = _TASK_SQL + ' AND "Handling" IS NOT NULL'
    args: list[Any] = []
    if username is not None:
        sql += (' AND (json_extract("Handling", \'$.lead\') = ? OR EXISTS (SELECT 1 FROM '
                'json_each("Handling", \'$.support\') WHERE value = ?))')
        args += [username, username]
    if not include_done:
        sql += ' AND json_extract("Handling", \'$.status\') <> \'done\''
    if not include_classified:
        sql += " AND coalesce(\"Mode\", '01') <> '03'"
    out = [_task(r, today) for r in conn.execute(sql, args)]
    if overdue_only:
        out = [t for t in out if t.overdue]
    return sorted(out, key=lambda t: (not t.overdue, t.due or "9999", t.arrival_number or 0))


AWAITING_DAYS = 30  # how far back the leader's inbox looks for documents without a direction


def awaiting_direction(
    conn: sqlite3.Connection, today: dt.date, include_classified: bool = True, limit: int = 200,
    days: int = AWAITING_DAYS,
) -> list[Task]:
    """Registered văn bản đến of the last ``days`` days that no one has directed yet, oldest
    first (the leader's inbox). Older ones are not waiting for a direction any more: the
    registers imported from paper, and what was handled before the box recorded handling,
    would otherwise fill the inbox with documents of years ago."""
    sql = _TASK_SQL + ' AND "Handling" IS NULL AND "ArrivalDate" >= ?'
    if not include_classified:
        sql += " AND coalesce(\"Mode\", '01') <> '03'"
    sql += ' ORDER BY "ArrivalDate", "ArrivalNumber" LIMIT ?'
    since = (today - dt.timedelta(days=days)).isoformat()
    return [_task(r, today) for r in conn.execute(sql, (since, limit))]


def handler_of(rec: Record, username: str) -> bool:
    """Whether ``username`` is the lead or a co-handler of the document."""
    h = rec.data.get("Handling") or {}
    return bool(username) and username in (h.get("lead"), *h.get("support", ()))

