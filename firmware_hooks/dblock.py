"""How a hook knows that a write is in flight: it asks SQLite for the write lock.

Every write of the appliance (the one writer of each process, CLI imports, the sync agent's
receipts) runs inside ``BEGIN IMMEDIATE``, which takes the database's RESERVED lock for the
whole transaction. A hook that gets the same lock within a short wait knows no transaction
is open, and while it holds the lock no other writer can start: its snapshot or migration
sees a still database. A writer that finds the lock held waits (busy_timeout, 15 s) and
carries on afterwards, so holding it briefly loses nothing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from appliance import schema

from .errors import WriteInFlightError

DEFAULT_WAIT_S = 2.0


@contextmanager
def write_lock(db_path: Path, wait_s: float = DEFAULT_WAIT_S) -> Iterator[sqlite3.Connection]:
    """Hold the database's write lock (a ``BEGIN IMMEDIATE`` transaction) or refuse."""
    conn = schema.connect(str(db_path))
    conn.execute(f"PRAGMA busy_timeout = {max(0, int(wait_s * 1000))}")
    try:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise WriteInFlightError(
                    f"a write is in flight on {db_path} (the write lock stayed taken for "
                    f"{wait_s:g} s); nothing was changed, try again when it has finished"
                ) from exc
            raise
        yield conn
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.close()


def wal_checkpoint(db_path: Path) -> dict[str, int]:
    """Copy the WAL into the database file and truncate it (best effort: busy is reported)."""
    conn = schema.connect(str(db_path))
    try:
        conn.execute("PRAGMA busy_timeout = 2000")
        busy, log_frames, done = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        conn.close()
    return {"busy": int(busy), "wal_frames": int(log_frames), "checkpointed": int(done)}
