"""Fonds (phông lưu trữ): created open; closed when the agency merges, after which its
records are read-only and its numbering stops (writes.check_writable, numbering)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import clock as clockmod
from . import records, writes
from .errors import ConflictError, ValidationError
from .identifiers import validate_organ_id
from .kinds import Kind
from .results import Record
from .writer import Txn
from .writes import WriteContext


def create_fonds(store: WriteContext, raw: Mapping[str, Any], actor: str = "system") -> Record:
    """A new fonds (phông): its mã phông is an organ code; it is open."""
    data = records.normalise("fonds", raw, store.codes)
    if "FondCode" not in data or "FondName" not in data:
        raise ValidationError("a fonds needs FondCode and FondName", "FondCode")
    data["FondCode"] = validate_organ_id(data["FondCode"], "FondCode", strict=False)
    data.setdefault("Status", "open")

    def job(txn: Txn) -> Record:
        if txn.conn.execute(
            'SELECT 1 FROM fonds WHERE "FondCode" = ?', (data["FondCode"],)
        ).fetchone():
            raise ConflictError(f"fonds {data['FondCode']} already exists")
        return writes.put(txn, "fonds", Kind.FONDS_CREATE, actor, data)

    return store.writer_or_fail().call(job)


def close_fonds(
    store: WriteContext,
    fond_code: str,
    closed_date: str,
    successor: str | None = None,
    actor: str = "system",
) -> Record:
    """Close a fonds (a merger): its records become read-only and its numbering stops."""
    when = clockmod.parse_date(closed_date, "ClosedDate").isoformat()

    def job(txn: Txn) -> Record:
        return mark_closed(txn, open_fonds(txn, fond_code), when, successor, actor)

    return store.writer_or_fail().call(job)


def open_fonds(txn: Txn, fond_code: str) -> Record:
    """The fonds ``fond_code`` as it stands, refused when it is closed already."""
    rec = writes.current(txn, "fonds", FondCode=fond_code)
    if rec.data.get("Status") == "closed":
        raise ConflictError(f"fonds {fond_code} is already closed")
    return rec


def mark_closed(txn: Txn, rec: Record, when: str, successor: str | None, actor: str) -> Record:
    """The fonds.close entry: closed on ``when`` (ISO date), naming its successor if any."""
    data = dict(rec.data, Status="closed", ClosedDate=when)
    if successor:
        data["SuccessorFondCode"] = successor
    return writes.put(txn, "fonds", Kind.FONDS_CLOSE, actor, data, rec.id, rec.version)
