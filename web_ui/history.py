"""A record's history from the log: every entry naming it (versions, views, prints).

The log table is keyed by index only, so the web UI keeps its own index (``web_log_index``:
entry index -> "type:id") that it brings up to date from the log itself, in batches, in the
background and before each lookup. It is derived data: deleting it only costs a rebuild.
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import closing
from dataclasses import dataclass
from typing import Any

import cbor2

from appliance import schema
from appliance.ledger import iter_entries
from appliance.store import Store, Txn

DDL = (
    "CREATE TABLE IF NOT EXISTS web_log_index (idx INTEGER PRIMARY KEY, target TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS web_log_index_target ON web_log_index (target, idx)",
)
BATCH = 5000
MAX_TAIL = 20_000  # entries scanned directly when the index lags further than this


@dataclass(frozen=True)
class HistoryItem:
    index: int
    kind: str
    at: str
    actor: str
    version: int | None
    detail: dict[str, Any] | None
    data: dict[str, Any] | None = None  # a record's version: what it became
    note: str | None = None  # why (a correction's reason)

    def to_json(self) -> dict[str, Any]:
        return {
            "log_index": self.index,
            "kind": self.kind,
            "at": self.at,
            "actor": self.actor,
            "version": self.version,
            "detail": self.detail,
            "note": self.note,
        }


def _target(m: dict[str, Any]) -> str | None:
    """The record whose history shows the entry: a membership's (a document put into or
    taken out of a further hồ sơ) is the document's."""
    if m.get("type") is None or m.get("id") is None:
        return None
    if m["type"] == "membership" and isinstance(m.get("data"), dict):
        return f"document:{m['data'].get('DocumentId')}"
    return f"{m['type']}:{m['id']}"


class LogIndex:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._stopped = False

    def stop(self) -> None:
        """No further catch-up; returns once one in flight has finished its batch."""
        self._stopped = True
        with self._lock:
            pass

    def ensure_schema(self) -> None:
        def job(txn: Txn) -> None:
            for stmt in DDL:
                txn.conn.execute(stmt)

        self._store.writer_or_fail().submit(job, guarded=False).result()

    def indexed_size(self, conn: sqlite3.Connection | None = None) -> int:
        conn = conn or self._store.reader()
        row = conn.execute("SELECT max(idx) FROM web_log_index").fetchone()
        return 0 if row[0] is None else int(row[0]) + 1

    def catch_up(self, max_batches: int | None = None) -> int:
        """Index entries past the indexed size; returns how many were read."""
        done = 0
        # Its own connection, not the store's per-thread one: a catch-up runs in a worker
        # thread that the store cannot see, and closing a connection another thread is reading
        # on crashes the process (Store.close closes every connection it handed out).
        with self._lock, closing(schema.connect(self._store.db_path, readonly=True)) as conn:
            while (max_batches is None or max_batches > 0) and not self._stopped:
                start = self.indexed_size(conn)
                rows: list[tuple[int, str]] = []
                last = start - 1
                for idx, raw in iter_entries(conn, start, start + BATCH, withheld=True):
                    last = idx
                    target = _target(cbor2.loads(raw)) if raw else None
                    if target is not None:
                        rows.append((idx, target))
                if last < start:
                    break
                # The highest index is stored even when it names no record, so it marks progress.
                if not rows or rows[-1][0] != last:
                    rows.append((last, ""))

                def job(txn: Txn, rows: list[tuple[int, str]] = rows) -> None:
                    txn.conn.executemany(
                        "INSERT OR IGNORE INTO web_log_index (idx, target) VALUES (?, ?)", rows
                    )

                self._store.writer_or_fail().submit(job, guarded=False).result()
                done += last - start + 1
                if max_batches is not None:
                    max_batches -= 1
        return done

    def history(
        self, record_type: str, record_id: str, limit: int = 500
    ) -> tuple[list[HistoryItem], bool]:
        """Entries naming the record, oldest first (the last ``limit``), and whether complete."""
        target = f"{record_type}:{record_id}"
        conn = self._store.reader()
        conn.execute("BEGIN")
        try:
            indexed = self.indexed_size(conn)
            size_row = conn.execute("SELECT max(idx) FROM log").fetchone()
            size = 0 if size_row[0] is None else int(size_row[0]) + 1
            idxs = [
                int(r[0])
                for r in conn.execute(
                    "SELECT idx FROM web_log_index WHERE target = ? ORDER BY idx DESC LIMIT ?",
                    (target, limit),
                )
            ]
            items = []
            for i in sorted(idxs):
                raw = conn.execute("SELECT entry FROM log WHERE idx = ?", (i,)).fetchone()
                if raw is not None and raw[0]:
                    items.append(_item(i, cbor2.loads(bytes(raw[0]))))
            tail_start = max(indexed, size - MAX_TAIL)
            for i, raw in conn.execute(
                "SELECT idx, entry FROM log WHERE idx >= ? ORDER BY idx", (tail_start,)
            ):
                if not raw:
                    continue
                m = cbor2.loads(bytes(raw))
                if _target(m) == target:
                    items.append(_item(int(i), m))
        finally:
            conn.execute("COMMIT")
        return items[-limit:], tail_start <= indexed


def _item(index: int, m: dict[str, Any]) -> HistoryItem:
    data = m.get("data")
    membership = m.get("type") == "membership"
    detail = data if membership or str(m.get("kind", "")).startswith(("audit.", "user.")) else None
    version = data if m.get("ver") is not None and isinstance(data, dict) and not membership \
        else None
    return HistoryItem(
        index, str(m["kind"]), str(m["at"]), str(m["actor"]), m.get("ver"), detail, version,
        m.get("note"),
    )
