"""The archive's own projections: holds, custody of files, destruction lists and audits.

Each table is written in the same transaction as the log entry it projects (``log_index``),
like the core projections. They are created on first use, so a data folder that never used
the archive has none of them, and every reader treats a missing table as empty.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from typing import Any

from ..ledger import Entry
from ..writer import Txn

DDL = """
CREATE TABLE IF NOT EXISTS archive_holds (
  target_type TEXT NOT NULL, target_id TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('freeze', 'recall', 'destroyed')),
  reason TEXT, ref TEXT, log_index INTEGER NOT NULL,
  PRIMARY KEY (target_type, target_id, kind)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS archive_custody (
  file_code TEXT PRIMARY KEY, accessioned_on TEXT, hold_until TEXT, hold_ref TEXT,
  transferred_on TEXT, package TEXT, log_index INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS archive_destruction (
  list_id TEXT PRIMARY KEY,
  status TEXT NOT NULL CHECK (status IN ('review', 'approved', 'rejected', 'destroyed')),
  created_at TEXT NOT NULL, items TEXT NOT NULL CHECK (json_valid(items)),
  decision TEXT CHECK (decision IS NULL OR json_valid(decision)), log_index INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS archive_destroyed_content (
  sha256 TEXT PRIMARY KEY, log_index INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS archive_audits (
  log_index INTEGER PRIMARY KEY, kind TEXT NOT NULL, at TEXT NOT NULL,
  ok INTEGER NOT NULL CHECK (ok IN (0, 1)), summary TEXT NOT NULL CHECK (json_valid(summary)));
"""

def ensure_schema(conn: sqlite3.Connection) -> None:
    """Create the archive tables inside the caller's transaction (idempotent)."""
    for stmt in DDL.split(";"):
        if stmt.strip():
            conn.execute(stmt)


def _missing_table(exc: sqlite3.OperationalError) -> bool:
    return "no such table" in str(exc)


def rows(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run a read on an archive table; a table not created yet reads as empty."""
    try:
        return [tuple(r) for r in conn.execute(sql, params).fetchall()]
    except sqlite3.OperationalError as exc:
        if _missing_table(exc):
            return []
        raise


def set_hold(
    txn: Txn, entry: Entry, target_type: str, target_id: str, kind: str, reason: str | None,
    ref: str | None,
) -> None:
    txn.conn.execute(
        "INSERT OR REPLACE INTO archive_holds "
        "(target_type, target_id, kind, reason, ref, log_index) VALUES (?, ?, ?, ?, ?, ?)",
        (target_type, target_id, kind, reason, ref, entry.index),
    )


def release_hold(txn: Txn, target_type: str, target_id: str, kind: str) -> bool:
    cur = txn.conn.execute(
        "DELETE FROM archive_holds WHERE target_type = ? AND target_id = ? AND kind = ?",
        (target_type, target_id, kind),
    )
    return cur.rowcount > 0


def record_audit(txn: Txn, entry: Entry, kind: str, ok: bool, summary: Mapping[str, Any]) -> None:
    txn.conn.execute(
        "INSERT INTO archive_audits (log_index, kind, at, ok, summary) VALUES (?, ?, ?, ?, ?)",
        (entry.index, kind, entry.at, 1 if ok else 0, dumps(summary)),
    )


def last_audit(conn: sqlite3.Connection, kind: str) -> tuple[str, bool] | None:
    """(time, ok) of the latest audit of ``kind``, or None."""
    found = rows(
        conn,
        "SELECT at, ok FROM archive_audits WHERE kind = ? ORDER BY log_index DESC LIMIT 1",
        (kind,),
    )
    return (str(found[0][0]), bool(found[0][1])) if found else None


def custody(conn: sqlite3.Connection, file_code: str) -> dict[str, Any]:
    found = rows(
        conn,
        "SELECT accessioned_on, hold_until, hold_ref, transferred_on, package "
        "FROM archive_custody WHERE file_code = ?",
        (file_code,),
    )
    if not found:
        return {}
    keys = ("accessioned_on", "hold_until", "hold_ref", "transferred_on", "package")
    return {k: v for k, v in zip(keys, found[0], strict=True) if v is not None}


def all_custody(conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    keys = ("accessioned_on", "hold_until", "hold_ref", "transferred_on", "package")
    for row in rows(
        conn,
        "SELECT file_code, accessioned_on, hold_until, hold_ref, transferred_on, package "
        "FROM archive_custody",
    ):
        out[str(row[0])] = {k: v for k, v in zip(keys, row[1:], strict=True) if v is not None}
    return out


def update_custody(txn: Txn, entry: Entry, file_code: str, **values: Any) -> None:
    cols = ("accessioned_on", "hold_until", "hold_ref", "transferred_on", "package")
    bad = set(values) - set(cols)
    if bad:
        raise ValueError(f"unknown custody fields {bad}")
    current = custody(txn.conn, file_code)
    current.update({k: v for k, v in values.items()})
    txn.conn.execute(
        "INSERT OR REPLACE INTO archive_custody (file_code, accessioned_on, hold_until, "
        "hold_ref, transferred_on, package, log_index) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (file_code, *(current.get(c) for c in cols), entry.index),
    )


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def note_destroyed_content(txn: Txn, entry: Entry, shas: list[str]) -> None:
    """Content files removed on purpose; ``entry`` names them under ``destroyed_content``."""
    txn.conn.executemany(
        "INSERT OR REPLACE INTO archive_destroyed_content (sha256, log_index) VALUES (?, ?)",
        [(s, entry.index) for s in shas],
    )


def destroyed_content(conn: sqlite3.Connection) -> set[str]:
    """Content removed by a logged destruction or recall (verify does not call it missing).

    Each row must be backed by its sealed log entry naming the file, so a row inserted by
    hand cannot hide a deleted file.
    """
    out: set[str] = set()
    for sha, idx in rows(conn, "SELECT sha256, log_index FROM archive_destroyed_content"):
        raw = conn.execute("SELECT entry FROM log WHERE idx = ?", (idx,)).fetchone()
        if raw is None:
            continue
        data = Entry.decode(bytes(raw[0]), strict=False).data or {}
        if sha in (data.get("destroyed_content") or ()):
            out.add(str(sha))
    return out
