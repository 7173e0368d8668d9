"""The append-only log: entries in deterministic CBOR, RFC 9162 Merkle nodes, checkpoints.

Every change to a record is one entry carrying the record's full new version. Leaf hashes and
the hashes of every complete subtree from level 4 up are kept in ``merkle_nodes`` so that roots
and proofs for any past size cost O(log n) lookups; a subtree of levels 1–3 (at most 8 leaves)
is recomputed from the leaves when asked for (folders written before may hold them too).
The right edge of the tree (the compact range) is kept in memory by the one writer and
snapshotted around each savepoint so a rolled-back job leaves no trace.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from . import cbor, merkle
from .errors import EncodingError
from .kinds import KNOWN

ENTRY_VERSION = 1


@dataclass(frozen=True)
class Entry:
    """One log entry. ``data`` is the record's full new version; ``refs`` the content SHA-256s;
    ``note`` why a person made the change (a correction's reason), when one was given."""

    index: int
    kind: str
    at: str
    actor: str
    type: str | None = None
    id: str | None = None
    version: int | None = None
    data: dict[str, Any] | None = None
    refs: tuple[bytes, ...] = field(default=())
    note: str | None = None

    def to_cbor_map(self) -> dict[str, Any]:
        m: dict[str, Any] = {
            "v": ENTRY_VERSION,
            "i": self.index,
            "kind": self.kind,
            "at": self.at,
            "actor": self.actor,
        }
        if self.type is not None:
            m["type"] = self.type
        if self.id is not None:
            m["id"] = self.id
        if self.version is not None:
            m["ver"] = self.version
        if self.data is not None:
            m["data"] = self.data
        if self.refs:
            m["refs"] = list(self.refs)
        if self.note is not None:
            m["note"] = self.note
        return m

    def encode(self) -> bytes:
        # Entries are maps with text keys all the way down (field names), and for such values
        # cbor2's canonical form is byte-for-byte RFC 8949 deterministic (tests/test_cbor.py
        # proves it on random values); it is several times faster than our reference encoder.
        return cbor.dumps_text_keyed(self.to_cbor_map())

    @classmethod
    def decode(cls, raw: bytes, strict: bool = True) -> Entry:
        """Parse an entry; ``strict`` also insists on the deterministic encoding."""
        return cls.from_map(cbor.loads_deterministic(raw) if strict else cbor.loads(raw))

    @classmethod
    def from_map(cls, m: Any) -> Entry:
        """Build an entry from its decoded CBOR map (callers check the encoding)."""
        if not isinstance(m, dict) or m.get("v") != ENTRY_VERSION:
            raise EncodingError("log entry is not a version-1 entry map")
        try:
            refs = tuple(bytes(r) for r in m.get("refs", []))
            return cls(
                index=int(m["i"]),
                kind=str(m["kind"]),
                at=str(m["at"]),
                actor=str(m["actor"]),
                type=m.get("type"),
                id=m.get("id"),
                version=m.get("ver"),
                data=m.get("data"),
                refs=refs,
                note=m.get("note"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise EncodingError(f"log entry is missing a field: {exc}") from exc


@dataclass(frozen=True)
class TreeState:
    size: int
    frontier: tuple[bytes, ...]  # hashes of the perfect subtrees of the right edge, largest first

    def root(self) -> bytes:
        return merkle.frontier_root(self.frontier)


# Levels whose subtree hashes appends do not store: each append writes its leaf, and one entry
# in 16 a node of level 4 or more, instead of two nodes on average in different pages of the
# table (every page is one more WAL frame of a durable registration).
UNSTORED_LEVELS = range(1, 4)


def node_source(conn: sqlite3.Connection) -> merkle.NodeSource:
    def get(level: int, index: int) -> bytes:
        row = conn.execute(
            "SELECT hash FROM merkle_nodes WHERE level = ? AND idx = ?", (level, index)
        ).fetchone()
        if row is not None:
            return bytes(row[0])
        if level in UNSTORED_LEVELS:
            return merkle.node_hash(get(level - 1, 2 * index), get(level - 1, 2 * index + 1))
        raise EncodingError(f"Merkle node ({level}, {index}) is missing")

    return get


def load_state(conn: sqlite3.Connection) -> TreeState:
    row = conn.execute("SELECT max(idx) FROM log").fetchone()
    size = 0 if row[0] is None else int(row[0]) + 1
    nodes = node_source(conn)
    frontier = []
    offset = 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size & (1 << level):
            frontier.append(nodes(level, offset >> level))
            offset += 1 << level
    return TreeState(size, tuple(frontier))


class Ledger:
    """Appends entries inside the writer's transaction and keeps the tree's right edge."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.state = load_state(conn)

    def reload(self) -> None:
        self.state = load_state(self._conn)

    def append(self, entry_without_index: Entry) -> Entry:
        if entry_without_index.kind not in KNOWN:
            # Every kind is declared in appliance.kinds, where the tests that walk every kind
            # (classified records never leave the box; every kind is replayed) find it.
            raise EncodingError(
                f"log entry kind {entry_without_index.kind!r} is not declared in appliance.kinds"
            )
        index = self.state.size
        entry = Entry(
            index,
            entry_without_index.kind,
            entry_without_index.at,
            entry_without_index.actor,
            entry_without_index.type,
            entry_without_index.id,
            entry_without_index.version,
            entry_without_index.data,
            entry_without_index.refs,
            entry_without_index.note,
        )
        raw = entry.encode()
        frontier = list(self.state.frontier)
        nodes = merkle.append_leaf(frontier, index, merkle.leaf_hash(raw))
        rows = [n for n in nodes if n[0] not in UNSTORED_LEVELS]
        self._conn.execute("INSERT INTO log (idx, entry) VALUES (?, ?)", (index, raw))
        sql = "INSERT INTO merkle_nodes (level, idx, hash) VALUES (?, ?, ?)"
        if len(rows) == 1:
            self._conn.execute(sql, rows[0])
        else:
            self._conn.executemany(sql, rows)
        self.state = TreeState(index + 1, tuple(frontier))
        return entry


def iter_entries(
    conn: sqlite3.Connection, start: int = 0, end: int | None = None, withheld: bool = False
) -> Iterator[tuple[int, bytes]]:
    """Entries in log order. A box rebuilt from the centre's copy holds a classified record's
    entries as empty rows (their leaf hashes only, see handover.py): they are left out unless
    ``withheld``, for the few readers that need every index (sending, listing)."""
    sql = "SELECT idx, entry FROM log WHERE idx >= ?"
    if not withheld:
        sql += " AND length(entry) > 0"
    args: list[Any] = [start]
    if end is not None:
        sql += " AND idx < ?"
        args.append(end)
    yield from ((int(i), bytes(b)) for i, b in conn.execute(sql + " ORDER BY idx", args))


def latest_checkpoint(conn: sqlite3.Connection) -> tuple[int, bytes, str, bytes] | None:
    row = conn.execute(
        "SELECT tree_size, root_hash, signed_at, cose FROM checkpoints "
        "ORDER BY tree_size DESC LIMIT 1"
    ).fetchone()
    return None if row is None else (int(row[0]), bytes(row[1]), str(row[2]), bytes(row[3]))
