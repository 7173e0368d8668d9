"""Legacy rows: records from paper-era registers that arrive with their numbers already given.

Validation runs outside the writer; insertion runs inside it, a batch at a time. A bad row
fails alone: it is refused before it writes anything (and a batch that meets an unexpected
error is run again with a savepoint per row). Numbers are kept, checked for uniqueness in
their series and year, and advance the counters; a row already present is skipped, so a
re-run resumes an import.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol

from . import numbering, records, writes
from .codelists import CodeLists
from .config import ApplianceConfig
from .documents import prepare_document
from .errors import ConflictError, NotFoundError, ReadOnlyError, ValidationError
from .files import insert_file, prepare_file
from .kinds import Kind
from .results import WriteResult
from .search import flush_search_rows
from .store import Store
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


class Context(Protocol):
    """What validating a row needs: the code lists and the appliance's identity (a Store)."""

    @property
    def codes(self) -> CodeLists: ...

    @property
    def config(self) -> ApplianceConfig: ...


@dataclass(frozen=True)
class PrepareContext:
    """A Context without a store, for validating rows in another process."""

    codes: CodeLists
    config: ApplianceConfig


def prepare(ctx: Context, kind: str, raw: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """Validate one legacy row (outside the writer); returns (record type, data)."""
    if kind == "fonds":
        data = records.normalise("fonds", raw, ctx.codes)
        data.setdefault("Status", "open")
        if "FondCode" not in data or "FondName" not in data:
            raise ValidationError("a fonds needs FondCode and FondName", "FondCode")
        return "fonds", data
    if kind == "file":
        return "file", prepare_file(ctx.codes, ctx.config, raw)
    if kind in ("incoming", "outgoing"):
        data = prepare_document(ctx.codes, kind, raw)
        if kind == "incoming":
            for f in ("ArrivalNumber", "ArrivalDate"):
                if f not in data:
                    raise ValidationError(f"{f} is required for an imported incoming document", f)
        else:
            data.setdefault("OrganName", ctx.config.org_name)
            for f in ("CodeNumber", "IssuedDate"):
                if f not in data:
                    raise ValidationError(f"{f} is required for an imported outgoing document", f)
            if "CodeNotation" not in data:
                data["CodeNotation"] = numbering.default_notation(
                    data, ctx.codes, ctx.config.agency_abbr
                )
        return "document", data
    raise ValidationError(f"kind must be incoming, outgoing, file or fonds, not '{kind}'", "kind")


@dataclass
class BatchMemo:
    """What rows of one batch share inside its job: fonds looked up once, counters advanced
    once at the end (they only move forward, to the highest number kept)."""

    fonds: dict[str | None, tuple[str, str | None, str | None]] = field(default_factory=dict)
    observed: dict[tuple[str, str, int], int] = field(default_factory=dict)

    def flush(self, txn: Txn) -> None:
        for (fond, series, year), n in self.observed.items():
            numbering.observe_number(txn.conn, fond, series, year, n)
        self.observed.clear()


def _fonds(
    store: Store, txn: Txn, code: str | None, memo: BatchMemo | None
) -> tuple[str, str | None, str | None]:
    """(FondCode, Status, ClosedDate) of the named fonds, or of the one open fonds."""
    if memo is not None and code in memo.fonds:
        return memo.fonds[code]
    resolved = writes.fonds_state(txn.conn, store.config.fond_code, code)["FondCode"]
    row = txn.conn.execute(
        'SELECT "Status", "ClosedDate" FROM fonds WHERE "FondCode" = ?', (resolved,)
    ).fetchone()
    out = (resolved, row[0] if row else None, row[1] if row else None)
    if memo is not None:
        memo.fonds[code] = out
    return out


def insert(
    store: Store,
    txn: Txn,
    record_type: str,
    data: dict[str, Any],
    actor: str,
    memo: BatchMemo | None = None,
) -> WriteResult | None:
    """Insert one validated legacy row inside a job; None when it is already present."""
    if record_type == "fonds":
        if txn.conn.execute(
            'SELECT 1 FROM fonds WHERE "FondCode" = ?', (data["FondCode"],)
        ).fetchone():
            return None
        return WriteResult(writes.put(txn, "fonds", Kind.FONDS_IMPORT, actor, data))
    if record_type == "file":
        if txn.conn.execute(
            'SELECT 1 FROM files WHERE "FileCode" = ?', (data["FileCode"],)
        ).fetchone():
            return None
        start = data.get("StartDate") or f"{int(data['FileCatalog']):04d}-01-01"
        _check_closed_fonds(txn, data["FondCode"], start, "hồ sơ")
        return WriteResult(insert_file(txn, store.config, data, actor, legacy=True))
    d = dict(data)
    fond, status, closed = _fonds(store, txn, d.get("FondCode"), memo)
    d["FondCode"] = fond
    when = d.get("ArrivalDate") if d["Direction"] == "incoming" else d.get("IssuedDate")
    _refuse_after_closing(fond, status, closed, when, "document")
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
        observed = (numbering.INCOMING, int(d["ArrivalNumber"]))
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
        observed = (d["Series"], int(d["CodeNumber"]))
    writes.place_in_file(txn, d, legacy=True)
    warnings = writes.duplicate_warnings(txn.conn, d, None)
    rec = writes.put(txn, "document", Kind.DOCUMENT_IMPORT, actor, d)
    if memo is None:
        numbering.observe_number(txn.conn, d["FondCode"], observed[0], d["Year"], observed[1])
    else:
        key = (d["FondCode"], observed[0], d["Year"])
        memo.observed[key] = max(memo.observed.get(key, 0), observed[1])
    return WriteResult(rec, tuple(warnings))


def _check_closed_fonds(txn: Txn, fond_code: str, when: str | None, what: str) -> None:
    """A closed fonds takes the backlog dated before its closing (a merger), nothing later."""
    row = txn.conn.execute(
        'SELECT "Status", "ClosedDate" FROM fonds WHERE "FondCode" = ?', (fond_code,)
    ).fetchone()
    if row is not None:
        _refuse_after_closing(fond_code, row[0], row[1], when, what)


def _refuse_after_closing(
    fond_code: str, status: str | None, closed: str | None, when: str | None, what: str
) -> None:
    if status != "closed" or not closed:
        return
    if not when or when >= closed:
        raise ReadOnlyError(
            f"fonds {fond_code} was closed on {closed}: a {what} dated {when or '(no date)'} "
            "cannot be imported into it"
        )


def import_batch(
    store: Store, rows: Iterable[tuple[int, str, str, dict[str, Any]]], actor: str
) -> list[ImportOutcome]:
    """Insert validated rows (line, kind, record type, data) in one transaction, each alone."""
    return submit_batch(store, rows, actor).result()


# Raised by a row before it writes anything (Store.put writes the projection row first and
# turns its refusal into RefusedRowError), so the row fails alone without a savepoint.
_CLEAN_FAILURES = (ValidationError, ConflictError, NotFoundError)


def submit_batch(
    store: Store, rows: Iterable[tuple[int, str, str, dict[str, Any]]], actor: str
) -> Future[list[ImportOutcome]]:
    """As ``import_batch``, returning at once; the future resolves after the durable commit.

    Rows run inside one savepoint: a per-row savepoint would make SQLite's full-text index
    write a segment per row, which more than doubles the cost of an import. A row that fails
    cleanly (before writing) is reported alone; any other failure rolls the batch back and
    runs it again with a savepoint per row.
    """
    rows = list(rows)

    def outcome(line: int, kind: str, res: WriteResult | None) -> ImportOutcome:
        if res is None:
            return ImportOutcome(line, kind, True, "already present", skipped=True)
        return ImportOutcome(line, kind, True, "", res.record.id, warnings=res.warnings)

    def fast(txn: Txn) -> list[ImportOutcome]:
        out = []
        txn.search_rows = []
        memo = BatchMemo()
        for line, kind, record_type, data in rows:
            try:
                res = insert(store, txn, record_type, data, actor, memo)
            except _CLEAN_FAILURES as exc:
                out.append(ImportOutcome(line, kind, False, str(exc)))
            else:
                out.append(outcome(line, kind, res))
        memo.flush(txn)
        flush_search_rows(txn)
        return out

    def careful(txn: Txn) -> list[ImportOutcome]:
        out = []
        for line, kind, record_type, data in rows:
            saved = txn.ledger.state
            txn.conn.execute("SAVEPOINT row")
            try:
                res = insert(store, txn, record_type, data, actor)
            except (*_CLEAN_FAILURES, sqlite3.IntegrityError) as exc:
                txn.conn.execute("ROLLBACK TO row")
                txn.conn.execute("RELEASE row")
                txn.ledger.state = saved
                out.append(ImportOutcome(line, kind, False, str(exc)))
                continue
            txn.conn.execute("RELEASE row")
            out.append(outcome(line, kind, res))
        return out

    def job(txn: Txn) -> list[ImportOutcome]:
        saved = txn.ledger.state
        txn.conn.execute("SAVEPOINT batch")
        try:
            out = fast(txn)
        except Exception:
            txn.search_rows = None
            txn.conn.execute("ROLLBACK TO batch")
            txn.conn.execute("RELEASE batch")
            txn.ledger.state = saved
            return careful(txn)
        txn.conn.execute("RELEASE batch")
        return out

    return store.writer_or_fail().submit(job)
