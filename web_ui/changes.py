"""Since when the documents have been as they are: a key for caches of what they imply.

Every change to a document appends a log entry, but most entries change no document: each
view, print and download of a record is an ``audit.*`` entry. Keying a cache by the log size
would throw it away at every view; ``DocumentsVersion.at`` gives instead the log size just
after the last entry that may have changed a projection, and reads only the entries appended
since it last looked (any writer, this process or another, appends to the same log).
"""

from __future__ import annotations

import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar, cast

import cbor2

from appliance.rebuild_rules import INERT_KINDS, INERT_PREFIXES

T = TypeVar("T")
MAX_SCAN = 256  # more new entries than this: take them as a change rather than read them


def is_inert(raw: bytes | None) -> bool:
    """Whether a log entry projects nothing (a view, a print, an account change...)."""
    if not raw:
        return False  # an erased entry: unknown, so a change
    try:
        kind = cbor2.loads(raw).get("kind")
    except Exception:  # a malformed entry is the verifier's business; here it is a change
        return False
    return isinstance(kind, str) and (kind in INERT_KINDS or kind.startswith(INERT_PREFIXES))


class DocumentsVersion:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen = -1  # the log size read last
        self._version = -1  # the log size after the last entry that was not inert

    def at(self, conn: sqlite3.Connection) -> int:
        """The version for ``conn``'s view of the database (call it inside the transaction
        that reads what is cached, so that both come from one snapshot)."""
        row = conn.execute("SELECT max(idx) FROM log").fetchone()
        size = 0 if row[0] is None else int(row[0]) + 1
        with self._lock:
            seen, version = self._seen, self._version
        if size == seen:
            return version
        if seen < 0 or size < seen or size - seen > MAX_SCAN:
            new = size  # first look, an older snapshot, or too much to read: a new version
        else:
            new = version
            for (raw,) in conn.execute(
                "SELECT entry FROM log WHERE idx >= ? AND idx < ? ORDER BY idx", (seen, size)
            ):
                if not is_inert(bytes(raw) if raw is not None else None):
                    new = size
                    break
        with self._lock:
            if size > self._seen:
                self._seen, self._version = size, new
        return new


class DocumentsCache:
    """Values computed from the documents (a register's cover data...), kept per documents
    version: a value computed in one snapshot serves every later snapshot until a document
    changes. Least recently used values go first. One per served store (``Services``)."""

    def __init__(self, size: int = 64) -> None:
        self.version = DocumentsVersion()
        self._size = size
        self._lock = threading.Lock()
        self._values: OrderedDict[tuple[Any, ...], Any] = OrderedDict()

    def get(self, conn: sqlite3.Connection, key: tuple[Any, ...],
            compute: Callable[[], T] | None) -> T | None:
        """The value for ``key`` at ``conn``'s snapshot; ``compute`` reads it from ``conn``
        (call this inside the transaction that reads the rest of the page). Without
        ``compute``, None when it is not at hand."""
        full = (*key, self.version.at(conn))
        with self._lock:
            if full in self._values:
                self._values.move_to_end(full)
                return cast(T, self._values[full])
        if compute is None:
            return None
        value = compute()
        with self._lock:
            self._values[full] = value
            while len(self._values) > self._size:
                self._values.popitem(last=False)
        return value
