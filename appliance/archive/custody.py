"""Custody of a hồ sơ: accepted into the current archive, held back, transferred onwards."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from .. import writes
from ..clock import parse_date
from ..errors import ConflictError, ValidationError
from ..kinds import Kind
from ..writer import Txn
from . import publication, state
from .due import Stage, add_months, deadlines, load_rules

if TYPE_CHECKING:
    from ..store import Store


def _file(store: Store, txn: Txn, file_code: str) -> Any:
    return writes.current(txn, "file", FileCode=file_code)


def accession(
    store: Store, file_code: str, on: str | dt.date | None = None, actor: str = "system"
) -> dict[str, Any]:
    """Record that a closed hồ sơ was handed to the current archive (nộp lưu, Điều 30)."""

    def job(txn: Txn) -> dict[str, Any]:
        state.ensure_schema(txn.conn)
        rec = _file(store, txn, file_code)
        if rec.data.get("Status") != "closed":
            raise ConflictError(f"hồ sơ {file_code} must be closed before it is handed over")
        if state.custody(txn.conn, file_code).get("accessioned_on"):
            raise ConflictError(f"hồ sơ {file_code} is already in the current archive")
        when = parse_date(on, "on") if on else txn.clock.now().date()
        entry = writes.append_event(
            txn, Kind.ARCHIVE_ACCESSION, actor, {"FileCode": file_code, "on": when.isoformat()},
            "file", rec.id,
        )
        state.update_custody(txn, entry, file_code, accessioned_on=when.isoformat())
        return state.custody(txn.conn, file_code)

    return store.writer_or_fail().call(job)


def hold(
    store: Store,
    file_code: str,
    until: str | dt.date,
    approval_ref: str,
    actor: str = "system",
) -> dict[str, Any]:
    """Keep a due hồ sơ in the unit, with the head's written consent, ≤ 2 years (Điều 31.3)."""
    if not approval_ref.strip():
        raise ValidationError("a hold needs the written approval (số văn bản đồng ý)", "ref")
    until_d = parse_date(until, "until")
    rules = load_rules(store.data_dir)

    def job(txn: Txn) -> dict[str, Any]:
        state.ensure_schema(txn.conn)
        rec = _file(store, txn, file_code)
        current = state.custody(txn.conn, file_code)
        pending = [
            d for d in deadlines(rec.data, {**current, "hold_until": None}, rules)
            if d[0] is Stage.CURRENT
        ]
        if not pending:
            raise ConflictError(f"hồ sơ {file_code} is not due for the current archive")
        due = pending[0][1]
        limit = add_months(due, 12 * rules.hold_max_years)
        if until_d > limit:
            raise ValidationError(
                f"a hold may last at most {rules.hold_max_years} years past the deadline "
                f"{due.isoformat()} (until {limit.isoformat()})",
                "until",
            )
        entry = writes.append_event(
            txn,
            Kind.ARCHIVE_HOLD,
            actor,
            {"FileCode": file_code, "until": until_d.isoformat(), "ref": approval_ref.strip()},
            "file",
            rec.id,
        )
        state.update_custody(
            txn, entry, file_code, hold_until=until_d.isoformat(), hold_ref=approval_ref.strip()
        )
        return state.custody(txn.conn, file_code)

    return store.writer_or_fail().call(job)


def record_transfer(
    store: Store,
    file_code: str,
    package: str,
    on: str | dt.date | None = None,
    actor: str = "system",
) -> dict[str, Any]:
    """Record that the historical archive accepted the package of a permanent hồ sơ."""

    def job(txn: Txn) -> dict[str, Any]:
        state.ensure_schema(txn.conn)
        rec = _file(store, txn, file_code)
        if rec.data.get("Maintenance") != "01":
            raise ConflictError(f"hồ sơ {file_code} is not permanent; it stays here")
        when = parse_date(on, "on") if on else txn.clock.now().date()
        # What was transferred, version by version: the centre publishes exactly these.
        released = publication.release_items(txn.conn, file_code)
        entry = writes.append_event(
            txn,
            Kind.ARCHIVE_TRANSFER,
            actor,
            {"FileCode": file_code, "on": when.isoformat(), "package": package, **released},
            "file",
            rec.id,
        )
        publication.project(txn.conn, entry)
        state.update_custody(
            txn, entry, file_code, transferred_on=when.isoformat(), package=package
        )
        return state.custody(txn.conn, file_code)

    return store.writer_or_fail().call(job)
