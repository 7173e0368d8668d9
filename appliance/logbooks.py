"""The projections of entries that are not records' versions but keep registers of their own:
postal sendings and uses of kept copies (Phụ lục IV), the Danh mục hồ sơ's headings and
approvals, the agency's identifiers and units. One table of kind → projector, which the live
paths call in their transaction and rebuild.py calls when it replays the log."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from . import adminunits, agency_ids, copyuse, fileplan, postal
from .kinds import Kind
from .ledger import Entry

Projector = Callable[[sqlite3.Connection, Entry], None]

PROJECTORS: dict[str, Projector] = {
    Kind.POSTAL_SEND: postal.project,
    Kind.COPY_USE: copyuse.project,
    Kind.COPY_RETURN: copyuse.project,
    Kind.FILEPLAN_HEADINGS: fileplan.project,
    Kind.FILEPLAN_APPROVE: fileplan.project,
    Kind.AGENCY_REKEY: agency_ids.project,
    Kind.AGENCY_UNITS: adminunits.project,
}
TABLES = (postal.TABLE, copyuse.TABLE, *fileplan.TABLES, agency_ids.TABLE, adminunits.TABLE)
_DDL = (postal.DDL, copyuse.DDL, fileplan.DDL, agency_ids.DDL, adminunits.DDL)


def create_tables(conn: sqlite3.Connection) -> None:
    """Their tables (part of every data folder's schema)."""
    for ddl in _DDL:
        conn.executescript(ddl)
