"""Legacy rows: records from paper-era registers that arrive with their numbers already given.

Validation runs outside the writer; insertion runs inside it, one savepoint per row, so a bad
row fails alone. Numbers are kept, checked for uniqueness in their series and year, and
advance the counters; a row already present is skipped, so a re-run resumes an import.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from . import numbering, records
from .errors import ConflictError, NotFoundError, ValidationError
from .store import Store, WriteResult
from .writer import Txn


@dataclass(frozen=True)
class ImportOutcome:
    line: int
    kind: str
    ok: bool
    message: str = ""
    record_id: str | None = None
    skipped: bool = False
    warnings: tuple[str, ...] = field(default=())


def prepare(store: Store, kind: str, raw: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """Validate one legacy row (outside the writer); returns (record type, data)."""
    if kind == "fonds":
        data = records.normalise("fonds", raw, store.codes)
        data.setdefault("Status", "open")
        if "FondCode" not in data or "FondName" not in data:
            raise ValidationError("a fonds needs FondCode and FondName", "FondCode")
        return "fonds", data
    if kind == "file":
        return "file", store.prepare_file(raw)
    if kind in ("incoming", "outgoing"):
        data = store.prepare_document(kind, raw)
        if kind == "incoming":
            for f in ("ArrivalNumber", "ArrivalDate"):
                if f not in data:
                    raise ValidationError(f"{f} is required for an imported incoming document", f)
        else:
            data.setdefault("OrganName", store.config.org_name)
            for f in ("CodeNumber", "IssuedDate"):
                if f not in data:
                    raise ValidationError(f"{f} is required for an imported outgoing document", f)
            if "CodeNotation" not in data:
                data["CodeNotation"] = numbering.default_notation(
                    data, store.codes, store.config.agency_abbr
                )
        return "document", data
    raise ValidationError(f"kind must be incoming, outgoing, file or fonds, not '{kind}'", "kind")


def insert(
    store: Store, txn: Txn, record_type: str, data: dict[str, Any], actor: str
) -> WriteResult | None:
    """Insert one validated legacy row inside a job; None when it is already present."""
    if record_type == "fonds":
        if txn.conn.execute(
            'SELECT 1 FROM fonds WHERE "FondCode" = ?', (data["FondCode"],)
        ).fetchone():
            return None
        return WriteResult(store.put(txn, "fonds", "fonds.import", actor, data))
    if record_type == "file":
        if txn.conn.execute(
            'SELECT 1 FROM files WHERE "FileCode" = ?', (data["FileCode"],)
        ).fetchone():
            return None
        return WriteResult(store.insert_file(txn, data, actor, legacy=True))
    d = dict(data)
    d["FondCode"] = store.fonds_state(txn.conn, d.get("FondCode"))["FondCode"]
    d.setdefault("Status", "registered" if d["Direction"] == "incoming" else "issued")
    if d["Direction"] == "incoming":
        d["Series"] = numbering.INCOMING
        d["Year"] = int(d["ArrivalDate"][:4])
        clash = txn.conn.execute(
            'SELECT "CodeNumber", "CodeNotation", "OrganName" FROM documents WHERE '
            '"Direction" = \'incoming\' AND "FondCode" = ? AND "Year" = ? '
            'AND "ArrivalNumber" = ?',
            (d["FondCode"], d["Year"], d["ArrivalNumber"]),
        ).fetchone()
        if clash:
            if tuple(clash) == (d.get("CodeNumber"), d.get("CodeNotation"), d.get("OrganName")):
                return None
            raise ConflictError(
                f"số đến {d['ArrivalNumber']}/{d['Year']} is already used by another document"
            )
        numbering.observe_number(
            txn.conn, d["FondCode"], numbering.INCOMING, d["Year"], d["ArrivalNumber"]
        )
    else:
        d["Series"] = numbering.series_for(
            "outgoing", d, store.codes, store.config.numbering.own_series_types
        )
        d["Year"] = int(d["IssuedDate"][:4])
        clash = txn.conn.execute(
            'SELECT "CodeNotation", "Subject" FROM documents WHERE "Direction" = \'outgoing\' '
            'AND "FondCode" = ? AND "Series" = ? AND "Year" = ? AND "CodeNumber" = ?',
            (d["FondCode"], d["Series"], d["Year"], d["CodeNumber"]),
        ).fetchone()
        if clash:
            if tuple(clash) == (d.get("CodeNotation"), d.get("Subject")):
                return None
            raise ConflictError(
                f"số {d['CodeNumber']} of {d['Year']} is already used in series {d['Series']}"
            )
        numbering.observe_number(
            txn.conn, d["FondCode"], d["Series"], d["Year"], int(d["CodeNumber"])
        )
    store.place_in_file(txn, d)
    warnings = store.duplicate_warnings(txn, d, None)
    rec = store.put(txn, "document", "document.import", actor, d)
    return WriteResult(rec, tuple(warnings))


def import_batch(
    store: Store, rows: Iterable[tuple[int, str, str, dict[str, Any]]], actor: str
) -> list[ImportOutcome]:
    """Insert validated rows (line, kind, record type, data) in one transaction, each alone."""
    return submit_batch(store, rows, actor).result()


def submit_batch(
    store: Store, rows: Iterable[tuple[int, str, str, dict[str, Any]]], actor: str
) -> Future[list[ImportOutcome]]:
    """As ``import_batch``, returning at once; the future resolves after the durable commit."""
    rows = list(rows)

    def job(txn: Txn) -> list[ImportOutcome]:
        out = []
        for line, kind, record_type, data in rows:
            saved = txn.ledger.state
            txn.conn.execute("SAVEPOINT row")
            try:
                res = insert(store, txn, record_type, data, actor)
            except (
                ValidationError,
                ConflictError,
                NotFoundError,
                sqlite3.IntegrityError,
            ) as exc:
                txn.conn.execute("ROLLBACK TO row")
                txn.conn.execute("RELEASE row")
                txn.ledger.state = saved
                out.append(ImportOutcome(line, kind, False, str(exc)))
                continue
            txn.conn.execute("RELEASE row")
            if res is None:
                out.append(ImportOutcome(line, kind, True, "already present", skipped=True))
            else:
                out.append(
                    ImportOutcome(line, kind, True, "", res.record.id, warnings=res.warnings)
                )
        return out

    return store.writer_or_fail().submit(job)
