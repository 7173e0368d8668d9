"""Taking a log over from a copy: write downloaded entries into an empty database, checked.

Used by ``luutru restore --from-centre``. Every entry is checked against the leaf hash the
copy gives for it and against its own index; entries held as leaf hashes only (a classified
record's, which never left the old box) are written as empty rows. The RFC 9162 tree is
rebuilt as the ledger builds it, and the caller compares its root with the signed checkpoint
before anything is committed.
"""

from __future__ import annotations

import sqlite3

from . import merkle
from .checkpoint import Checkpoint, verify_checkpoint
from .errors import EncodingError, LuutruError
from .keys.verify import PublicKey
from .ledger import UNSTORED_LEVELS, Entry, TreeState, load_state


class CopyError(LuutruError):
    """The copy is not a consistent log (an entry does not match its leaf, index or root)."""


class LogImporter:
    """Appends downloaded entries, in order, to an empty ``log`` and ``merkle_nodes`` (or,
    ``extending``, after the entries a log already holds: a lost tail brought back)."""

    def __init__(self, conn: sqlite3.Connection, extending: bool = False) -> None:
        if not extending and conn.execute("SELECT 1 FROM log LIMIT 1").fetchone() is not None:
            raise CopyError("the database already holds a log")
        state = load_state(conn) if extending else TreeState(0, ())
        self.conn = conn
        self.size = state.size
        self.frontier: list[bytes] = list(state.frontier)
        self.withheld: list[int] = []
        self.refs: dict[str, None] = {}  # content the full entries reference, in log order
        self._log: list[tuple[int, bytes]] = []
        self._nodes: list[tuple[int, int, bytes]] = []

    def add(self, leaf: bytes, entry: bytes | None) -> None:
        index = self.size
        if len(leaf) != merkle.HASH_SIZE:
            raise CopyError(f"entry {index}: the leaf hash is not {merkle.HASH_SIZE} bytes")
        if entry is None:
            self.withheld.append(index)
            raw = b""
        else:
            raw = bytes(entry)
            if merkle.leaf_hash(raw) != leaf:
                raise CopyError(f"entry {index} does not hash to its leaf")
            try:
                decoded = Entry.decode(raw)
            except EncodingError as exc:
                raise CopyError(f"entry {index} is not a valid entry: {exc}") from exc
            if decoded.index != index:
                raise CopyError(f"entry {index} says it is entry {decoded.index}")
            for r in decoded.refs:
                self.refs[r.hex()] = None
        self._log.append((index, raw))
        h = leaf
        self._nodes.append((0, index, h))
        level, idx = 0, index
        while idx & 1:
            h = merkle.node_hash(self.frontier.pop(), h)
            level += 1
            idx >>= 1
            if level not in UNSTORED_LEVELS:  # as the ledger stores them
                self._nodes.append((level, idx, h))
        self.frontier.append(h)
        self.size = index + 1
        if len(self._log) >= 2000:
            self.flush()

    def flush(self) -> None:
        self.conn.executemany("INSERT INTO log (idx, entry) VALUES (?, ?)", self._log)
        self.conn.executemany(
            "INSERT INTO merkle_nodes (level, idx, hash) VALUES (?, ?, ?)", self._nodes
        )
        self._log.clear()
        self._nodes.clear()

    def root(self) -> bytes:
        return TreeState(self.size, tuple(self.frontier)).root()


def adopt_checkpoint(
    conn: sqlite3.Connection, cose: bytes, key: PublicKey, origin: str, size: int, root: bytes
) -> Checkpoint:
    """Check a downloaded checkpoint against the rebuilt tree and keep it."""
    try:
        cp = verify_checkpoint(cose, key)
    except LuutruError as exc:
        raise CopyError(f"the checkpoint does not verify with its key: {exc}") from exc
    if cp.origin != origin:
        raise CopyError(f"the checkpoint is for {cp.origin!r}, not {origin!r}")
    if cp.tree_size != size or cp.root_hash != root:
        raise CopyError(
            f"the downloaded log ({size} entries) does not hash to the signed checkpoint "
            f"({cp.tree_size} entries): the copy is damaged or was tampered with"
        )
    conn.execute(
        "INSERT INTO checkpoints (tree_size, root_hash, signed_at, cose) VALUES (?, ?, ?, ?)",
        (cp.tree_size, cp.root_hash, cp.time, cose),
    )
    return cp
