"""Distribution (phát hành): the nơi nhận of an issued văn bản đi as deliveries, each with
its channel and status, in the document's ``Deliveries`` field::

    [{"n": 1, "channel": "electronic" | "paper" | "internal",
      "to": {"OrganId"?, "OrganName"} | {"username"}, "status": STATUS, "envelopes": 1,
      "package"?: sha256 of the edXML package, "history": [{"at", "by", "status", "note"?}]}]

An addressee with a mã định danh goes electronically (an edXML package, signed with the
agency key: appliance/edxml/export.py); one without, on paper, which the Sổ gửi văn bản đi
bưu điện lists (``post_rows``); colleagues in the office are internal deliveries. Each change
of status is ``document.delivery``. Classified (mật) documents are never sent
electronically: their addressees go on paper.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import clock as clockmod
from .. import writes
from ..classified import is_classified
from ..errors import NotFoundError, ValidationError
from ..kinds import Kind
from ..results import Record
from ..text import nfc
from ..writer import Txn
from .errors import WorkflowError

if TYPE_CHECKING:
    from ..store import Store

CHANNELS = ("electronic", "paper", "internal")
STATUSES = ("pending", "packaged", "sent", "received", "accepted", "returned")
STATUS_VI = {"pending": "chờ gửi", "packaged": "đã đóng gói edXML", "sent": "đã gửi",
             "received": "đã nhận", "accepted": "đã tiếp nhận", "returned": "bị trả lại"}
# What may follow what (a returned delivery can be sent again). The addressee's status
# messages (appliance/edxml/answers.py) move an electronic one: 01 received, 03 accepted
# (vào sổ), 02 returned; a package answered before its sending was logged is sent all the same.
NEXT = {"pending": ("packaged", "sent"), "packaged": ("sent",),
        "sent": ("received", "accepted", "returned"), "received": ("accepted", "returned"),
        "returned": ("sent",), "accepted": ()}


def plan(data: Mapping[str, Any], internal: Sequence[str], at: str) -> list[dict[str, Any]]:
    """The deliveries of a document being issued: one per addressee, one per colleague."""
    secret = is_classified(data)
    out: list[dict[str, Any]] = []
    for r in data.get("To") or []:
        electronic = bool(r.get("OrganId")) and not secret
        to = {k: r[k] for k in ("OrganId", "OrganName") if r.get(k)}
        out.append({"n": len(out) + 1, "channel": "electronic" if electronic else "paper",
                    "to": to, "status": "pending", "envelopes": 1, "history": []})
    for username in dict.fromkeys(internal):
        out.append({"n": len(out) + 1, "channel": "internal", "to": {"username": username},
                    "status": "sent", "envelopes": 0,
                    "history": [{"at": at, "by": "system", "status": "sent"}]})
    return out


def status_time(delivery: Mapping[str, Any]) -> str | None:
    """When the delivery reached its status (ISO): the addressee's own time for a status
    message it sent (``reported_at``), else when the step was logged; None when unknown."""
    for step in reversed(delivery.get("history") or []):
        if step.get("status") == delivery.get("status"):
            return str(step.get("reported_at") or step.get("at") or "") or None
    return None


def _issued(txn: Txn, doc_id: str) -> Record:
    rec = writes.current(txn, "document", id=doc_id)
    if rec.data.get("Direction") != "outgoing" or rec.data.get("Status") != "issued":
        raise WorkflowError("Chỉ gửi được văn bản đi đã ban hành.",
                            "Only an issued văn bản đi is sent.")
    writes.check_writable(txn.conn, rec)
    return rec


def set_status(store: Store, doc_id: str, n: int, status: str, actor: str,
               note: str | None = None, package: str | None = None,
               envelopes: int | None = None) -> Record:
    """Move delivery ``n`` to ``status`` (sent, received, returned …), with a note."""
    if status not in STATUSES:
        raise ValidationError(f"status {status!r}", "Status",
                              msgid="%(label)s: '%(value)s' is not one of the choices.",
                              value=status)
    text = nfc(note or "")[:500] or None

    def job(txn: Txn) -> Record:
        return move(txn, doc_id, n, status, actor, text, package=package,
                    envelopes=envelopes)

    return store.writer_or_fail().call(job)


def allowed(current: str, status: str, answered: bool = False) -> bool:
    """May a delivery in ``current`` become ``status`` (``answered``: by the addressee's
    status message, which may also find it packaged, its sending not logged yet)?"""
    if answered and current == "packaged":
        return status in ("received", "accepted", "returned")
    return status in NEXT.get(current, ())


def move(txn: Txn, doc_id: str, n: int, status: str, actor: str, note: str | None, *,
         package: str | None = None, envelopes: int | None = None,
         extra: Mapping[str, Any] | None = None, answered: bool = False) -> Record:
    """Inside the writer's transaction: delivery ``n`` of ``doc_id`` to ``status``, one step
    more in its history (``extra``: what the step also records, e.g. the addressee's time)."""
    rec = _issued(txn, doc_id)
    items = [dict(d) for d in rec.data.get("Deliveries") or []]
    item = next((d for d in items if d.get("n") == n), None)
    if item is None:
        raise NotFoundError(f"document {doc_id} has no delivery {n}")
    if not allowed(str(item["status"]), status, answered):
        raise WorkflowError(
            f"Không chuyển được từ '{STATUS_VI[item['status']]}' sang "
            f"'{STATUS_VI[status]}'.",
            f"A delivery cannot go from {item['status']} to {status}.")
    step: dict[str, Any] = {"at": clockmod.iso(txn.clock.now()), "by": actor,
                            "status": status}
    if note:
        step["note"] = note
    step.update(extra or {})
    item.update(status=status, history=[*item.get("history", []), step])
    if package:
        item["package"] = package
    if envelopes is not None:
        item["envelopes"] = max(1, min(99, envelopes))
    data = dict(rec.data, Deliveries=items)
    return writes.put(txn, "document", Kind.DOCUMENT_DELIVERY, actor, data, rec.id,
                      rec.version)


def package_electronic(store: Store, doc_id: str, n: int, actor: str, key: Any) -> Record:
    """The edXML package of delivery ``n``, signed with the agency key; status packaged."""
    import hashlib

    from ..edxml.export import export_document

    rec = store.get("document", doc_id)
    item = next((d for d in rec.data.get("Deliveries") or [] if d.get("n") == n), None)
    if item is None or item.get("channel") != "electronic":
        raise WorkflowError("Nơi nhận này không nhận văn bản điện tử.",
                            "This addressee does not take electronic documents.")
    raw = export_document(store, doc_id, str(item["to"]["OrganId"]), key, actor)
    return set_status(store, doc_id, n, "packaged", actor,
                      package=hashlib.sha256(raw).hexdigest())


@dataclass(frozen=True)
class PostRow:
    """A line of the Sổ gửi văn bản đi bưu điện (Phụ lục IV): 6 columns."""

    sent_date: str | None  # Ngày chuyển
    number: str  # Số, ký hiệu văn bản
    to: str  # Nơi nhận văn bản
    envelopes: int  # Số lượng bì
    signature: str  # Ký nhận và dấu bưu điện (signed on the printed register)
    note: str  # Ghi chú
    document_id: str
    delivery: int
    status: str


def post_rows(conn: sqlite3.Connection, year: int,
              include_classified: bool = True) -> list[PostRow]:
    """Paper deliveries of the year's issued văn bản đi, in order of number then delivery."""
    rows = conn.execute(
        'SELECT id, "CodeNumber", "CodeNotation", "Deliveries", "Mode" FROM documents '
        'WHERE "Direction" = \'outgoing\' AND "Year" = ? AND "Deliveries" IS NOT NULL '
        'ORDER BY CAST("CodeNumber" AS INTEGER)', (year,)).fetchall()
    out = []
    for doc_id, number, notation, raw, mode in rows:
        if mode == "03" and not include_classified:
            continue
        for d in json.loads(raw):
            if d.get("channel") != "paper":
                continue
            sent = next((h["at"] for h in d.get("history", []) if h.get("status") == "sent"),
                        None)
            out.append(PostRow(sent[:10] if sent else None, f"{number}/{notation}",
                               str(d["to"].get("OrganName", "")), int(d.get("envelopes") or 1),
                               "", STATUS_VI.get(str(d.get("status")), ""), doc_id,
                               int(d["n"]), str(d.get("status"))))
    return out
