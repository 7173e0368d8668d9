"""The SQLite schema: the log, its Merkle nodes and checkpoints, and the projections the UI reads.

Projection tables are generated from the field schemas so that every Phụ lục VI field has a
column with its CHECK at the decree's length.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .fields import SCHEMAS, Field, Kind
from .fsutil import private_dirs, private_file

SCHEMA_VERSION = 1

TABLES = {"fonds": "fonds", "file": "files", "document": "documents", "membership": "memberships"}


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _column(f: Field) -> str:
    col = q(f.name)
    if f.kind in (Kind.STR, Kind.TEXT, Kind.CODE):
        check = f"length({col}) <= {f.max_len}" if f.max_len else "1"
        return f"{col} TEXT CHECK ({col} IS NULL OR ({check}))"
    if f.kind is Kind.INT:
        hi = f.max_int if f.max_int is not None else 2**62
        return f"{col} INTEGER CHECK ({col} IS NULL OR ({col} BETWEEN 0 AND {hi}))"
    if f.kind is Kind.DATE:
        pattern = "[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]"
        return f"{col} TEXT CHECK ({col} IS NULL OR {col} GLOB '{pattern}')"
    if f.kind is Kind.BOOL:
        return f"{col} INTEGER CHECK ({col} IS NULL OR {col} IN (0, 1))"
    if f.kind is Kind.ENUM:
        choices = ", ".join("'" + c + "'" for c in f.choices)
        return f"{col} TEXT CHECK ({col} IS NULL OR {col} IN ({choices}))"
    return f"{col} TEXT CHECK ({col} IS NULL OR json_valid({col}))"


def projection_ddl(record_type: str) -> str:
    cols = ",\n  ".join(_column(f) for f in SCHEMAS[record_type])
    return (
        f"CREATE TABLE IF NOT EXISTS {TABLES[record_type]} (\n"
        "  rid INTEGER PRIMARY KEY,\n"
        "  id TEXT NOT NULL UNIQUE,\n"
        "  version INTEGER NOT NULL CHECK (version >= 1),\n"
        "  log_index INTEGER NOT NULL,\n"
        f"  {cols}\n)"
    )


BASE_DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS log (idx INTEGER PRIMARY KEY, entry BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS merkle_nodes (
  level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL,
  PRIMARY KEY (level, idx)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (
  tree_size INTEGER PRIMARY KEY, root_hash BLOB NOT NULL, signed_at TEXT NOT NULL,
  cose BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS number_counters (
  fond TEXT NOT NULL, series TEXT NOT NULL, year INTEGER NOT NULL, last INTEGER NOT NULL,
  PRIMARY KEY (fond, series, year)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS content (
  sha256 TEXT PRIMARY KEY, size INTEGER NOT NULL, mime TEXT, first_log_index INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS codelist_versions (
  version TEXT PRIMARY KEY, sha256 TEXT NOT NULL, body BLOB NOT NULL, log_index INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS held_audits (
  id INTEGER PRIMARY KEY, at TEXT NOT NULL, action TEXT NOT NULL, actor TEXT NOT NULL,
  target_type TEXT, target_id TEXT, detail TEXT NOT NULL);
"""

INDEX_DDL = """
CREATE UNIQUE INDEX IF NOT EXISTS fonds_code ON fonds ("FondCode");
CREATE UNIQUE INDEX IF NOT EXISTS files_code ON files ("FileCode");
CREATE UNIQUE INDEX IF NOT EXISTS documents_out_number
  ON documents ("FondCode", "Series", "Year", "CodeNumber")
  WHERE "Direction" = 'outgoing' AND "CodeNumber" IS NOT NULL AND "Series" IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS documents_in_number
  ON documents ("FondCode", "Year", "ArrivalNumber")
  WHERE "Direction" = 'incoming' AND "ArrivalNumber" IS NOT NULL;
CREATE INDEX IF NOT EXISTS documents_triple
  ON documents ("CodeNumber", "CodeNotation", "OrganName");
CREATE INDEX IF NOT EXISTS documents_file ON documents ("FileCode");
CREATE INDEX IF NOT EXISTS documents_year ON documents ("Year", "Direction");
CREATE INDEX IF NOT EXISTS documents_handled ON documents ("DueDate")
  WHERE "Handling" IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS memberships_pair ON memberships ("FileCode", "DocumentId");
"""


class Connection(sqlite3.Connection):
    """A connection that can carry per-connection state (search.py keeps its cache here)."""

    search_cache: Any = None


def connect(path: str, readonly: bool = False) -> sqlite3.Connection:
    """Open the database in WAL mode with full durability; callers manage transactions."""
    uri = f"file:{path}?mode=ro" if readonly else f"file:{path}"
    if not readonly and path != ":memory:":
        private_dirs(Path(path).parent)
        private_file(Path(path))
    conn = sqlite3.connect(
        uri, uri=True, isolation_level=None, check_same_thread=False, factory=Connection
    )
    conn.execute("PRAGMA busy_timeout = 15000")
    if not readonly:
        conn.execute("PRAGMA journal_mode = WAL")
    # FULL: a commit is fsynced to the WAL before it is acknowledged (WAL+NORMAL is not durable).
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA cache_size = -16000")
    conn.execute("PRAGMA temp_store = MEMORY")  # savepoint journals stay off the SD card
    return conn


def create_schema(conn: sqlite3.Connection) -> None:
    """The log, the Merkle nodes, checkpoints, counters and the projections (the search
    index's tables are search.py's: ``search.create_index``)."""
    conn.executescript(BASE_DDL)
    for record_type in SCHEMAS:
        conn.execute(projection_ddl(record_type))
        _add_new_columns(conn, record_type)
    conn.executescript(INDEX_DDL)
    conn.execute(
        "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
        (str(SCHEMA_VERSION),),
    )


def _add_new_columns(conn: sqlite3.Connection, record_type: str) -> None:
    """A folder made before a field joined the schema gets its column (empty in old rows)."""
    table = TABLES[record_type]
    have = {str(r[1]) for r in conn.execute(f"PRAGMA table_info({table})")}
    for f in SCHEMAS[record_type]:
        if f.name not in have:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {_column(f)}")


def to_row(record_type: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """Field values as SQLite stores them (JSON text, 0/1)."""
    row: dict[str, Any] = {}
    for f in SCHEMAS[record_type]:
        value = data.get(f.name)
        if value is None:
            row[f.name] = None
        elif f.kind is Kind.JSON:
            row[f.name] = json.dumps(
                value, ensure_ascii=False, sort_keys=True, separators=(",", ":")
            )
        elif f.kind is Kind.BOOL:
            row[f.name] = 1 if value else 0
        else:
            row[f.name] = value
    return row


_ROW_SHAPES: dict[str, tuple[tuple[str, ...], tuple[int, ...], tuple[int, ...]]] = {}


def _row_shape(record_type: str) -> tuple[tuple[str, ...], tuple[int, ...], tuple[int, ...]]:
    shape = _ROW_SHAPES.get(record_type)
    if shape is None:
        fields = SCHEMAS[record_type]
        shape = (
            tuple(f.name for f in fields),
            tuple(i for i, f in enumerate(fields) if f.kind is Kind.JSON),
            tuple(i for i, f in enumerate(fields) if f.kind is Kind.BOOL),
        )
        _ROW_SHAPES[record_type] = shape
    return shape


def field_columns(record_type: str) -> tuple[str, ...]:
    """The projection's field columns, in the order ``row_values`` gives them."""
    return _row_shape(record_type)[0]


def row_values(record_type: str, data: Mapping[str, Any]) -> tuple[Any, ...]:
    """``to_row`` as a tuple in ``field_columns`` order: what a projection row must hold."""
    names, json_at, bool_at = _row_shape(record_type)
    values = [data.get(n) for n in names]
    for i in json_at:
        if values[i] is not None:
            values[i] = json.dumps(
                values[i], ensure_ascii=False, sort_keys=True, separators=(",", ":")
            )
    for i in bool_at:
        if values[i] is not None:
            values[i] = 1 if values[i] else 0
    return tuple(values)


# (record type, the row's column names) -> (position, field name, kind) of each field: a
# sqlite3.Row looked up by name costs more than the rest of from_row.
_ROW_PLANS: dict[tuple[str, tuple[str, ...]], list[tuple[int, str, Kind]]] = {}


def from_row(record_type: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """The record data that a projection row holds (the inverse of ``to_row``)."""
    data: dict[str, Any] = {}
    if isinstance(row, sqlite3.Row):
        names = tuple(row.keys())
        plan = _ROW_PLANS.get((record_type, names))
        if plan is None:
            where = {n: i for i, n in enumerate(names)}  # a row may hold some fields only
            plan = [(where[f.name], f.name, f.kind) for f in SCHEMAS[record_type]
                    if f.name in where]
            _ROW_PLANS[(record_type, names)] = plan
        values = tuple(row)
        for i, name, kind in plan:
            value = values[i]
            if value is None:
                continue
            if kind is Kind.JSON:
                data[name] = json.loads(value)
            elif kind is Kind.BOOL:
                data[name] = bool(value)
            else:
                data[name] = value
        return data
    for f in SCHEMAS[record_type]:
        value = row[f.name]
        if value is None:
            continue
        if f.kind is Kind.JSON:
            data[f.name] = json.loads(value)
        elif f.kind is Kind.BOOL:
            data[f.name] = bool(value)
        else:
            data[f.name] = value
    return data


_UPSERT_CACHE: dict[str, str] = {}
_INSERT_CACHE: dict[str, str] = {}


def insert_sql(record_type: str) -> str:
    """Insert a new projection row (parameters as ``upsert_sql``); its rid is lastrowid."""
    sql = _INSERT_CACHE.get(record_type)
    if sql is None:
        names = ["id", "version", "log_index"] + [f.name for f in SCHEMAS[record_type]]
        cols = ", ".join(q(n) for n in names)
        sql = f"INSERT INTO {TABLES[record_type]} ({cols}) VALUES ({', '.join('?' * len(names))})"
        _INSERT_CACHE[record_type] = sql
    return sql


def upsert_sql(record_type: str) -> str:
    """Insert or replace a projection row; parameters: id, version, log_index, then
    ``row_values(record_type, data)``."""
    sql = _UPSERT_CACHE.get(record_type)
    if sql is None:
        names = ["id", "version", "log_index"] + [f.name for f in SCHEMAS[record_type]]
        cols = ", ".join(q(n) for n in names)
        params = ", ".join("?" for _ in names)
        updates = ", ".join(f"{q(n)} = excluded.{q(n)}" for n in names[1:])
        sql = (
            f"INSERT INTO {TABLES[record_type]} ({cols}) VALUES ({params}) "
            f"ON CONFLICT(id) DO UPDATE SET {updates} RETURNING rid"
        )
        _UPSERT_CACHE[record_type] = sql
    return sql


def end_membership(conn: sqlite3.Connection, membership_id: str) -> None:
    """The projection of a ``file.remove_document`` entry (live, and in a rebuild): the
    membership row goes; the log keeps when it began and when it ended."""
    conn.execute("DELETE FROM memberships WHERE id = ?", (membership_id,))
