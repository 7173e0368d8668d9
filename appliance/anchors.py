"""Anchors of the log's tail, kept outside the database, so that a rollback is noticed.

SQLite can lose the tail of the log without any damage it could see itself: a write-ahead log
deleted or cut in half, a disk image or an older copy of the database put back. What was
signed or countersigned before that survives elsewhere, and each is an anchor:

- ``anchors/checkpoint.cbor``: the newest signed checkpoint, mirrored (temp file, fsync,
  rename, fsync of the folder) after each checkpoint is stored, with the number counters of
  that moment, so that a lost tail's numbers are never given again;
- ``anchors/centre.cbor``: the provincial centre's newest receipt, its countersignature of one
  of this appliance's checkpoints, written by the sync agent;
- with a TPM, its NV monotonic counter (``keys/tpm_ops.py``), advanced after each checkpoint;
  the database keeps the value the chip should have (meta ``tpm_counter``), and a restored
  disk image cannot put the chip back.

A log shorter than an anchor, or whose root at an anchor's size is not the anchored one, is
behind (``tail_problems``). ``luutru restore --tail-from-centre`` brings back what the centre
holds and logs a ``log.tail_restored`` entry naming the anchors whose tail is lost for good;
those are acknowledged from then on (meta ``tail_restored``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import cbor, merkle
from .errors import EncodingError, LuutruError
from .fsutil import write_atomic
from .ledger import node_source

log = logging.getLogger(__name__)

ANCHOR_DIR = "anchors"
CHECKPOINT = "checkpoint"  # mirrored by the sealer
CENTRE = "centre"  # the centre's receipt, kept by the sync agent
SOURCES = (CHECKPOINT, CENTRE)
FORMAT = 1
META_COUNTER = "tpm_counter"  # the value the TPM's NV counter should have
META_RESTORED = "tail_restored"  # anchors acknowledged by a log.tail_restored entry (JSON)

Counters = tuple[tuple[str, str, int, int], ...]  # (fond, series, year, last)


class AnchorError(LuutruError):
    """An anchor file cannot be read (damaged, or not an anchor)."""


@dataclass(frozen=True)
class Anchor:
    """A tree size and root this appliance signed (and, from the centre, countersigned)."""

    source: str
    tree_size: int
    root_hash: bytes
    checkpoint: bytes  # this appliance's COSE_Sign1 over (size, root)
    signed_at: str
    counters: Counters = ()
    tpm_counter: int | None = None
    receipt: bytes | None = None  # the centre's COSE_Sign1 over the checkpoint

    def to_cbor(self) -> bytes:
        m: dict[str, Any] = {
            "v": FORMAT,
            "source": self.source,
            "tree_size": self.tree_size,
            "root_hash": self.root_hash,
            "checkpoint": self.checkpoint,
            "signed_at": self.signed_at,
            "counters": [list(c) for c in self.counters],
        }
        if self.tpm_counter is not None:
            m["tpm_counter"] = self.tpm_counter
        if self.receipt is not None:
            m["receipt"] = self.receipt
        # A checksum, so that a damaged file is told from an anchor (a flipped byte in a root
        # would otherwise read as another root).
        m["sum"] = hashlib.sha256(cbor.dumps(m)).digest()
        return cbor.dumps(m)

    @classmethod
    def from_cbor(cls, raw: bytes) -> Anchor:
        try:
            m = cbor.loads(raw)
            if not isinstance(m, dict) or m.get("v") != FORMAT or m["source"] not in SOURCES:
                raise ValueError("not a version-1 anchor")
            body = {k: v for k, v in m.items() if k != "sum"}
            if m.get("sum") != hashlib.sha256(cbor.dumps(body)).digest():
                raise ValueError("its checksum does not match (the file is damaged)")
            counters = tuple(
                (str(f), str(s), int(y), int(n)) for f, s, y, n in m.get("counters", [])
            )
            anchor = cls(
                source=str(m["source"]),
                tree_size=int(m["tree_size"]),
                root_hash=bytes(m["root_hash"]),
                checkpoint=bytes(m["checkpoint"]),
                signed_at=str(m["signed_at"]),
                counters=counters,
                tpm_counter=int(m["tpm_counter"]) if "tpm_counter" in m else None,
                receipt=bytes(m["receipt"]) if m.get("receipt") is not None else None,
            )
        except (EncodingError, KeyError, TypeError, ValueError) as exc:
            raise AnchorError(f"not a readable anchor ({exc})") from exc
        if anchor.tree_size < 0 or len(anchor.root_hash) != merkle.HASH_SIZE:
            raise AnchorError("the anchor's size or root is malformed")
        return anchor

    @property
    def ident(self) -> dict[str, Any]:
        """What a log.tail_restored entry names the anchor by."""
        return {"source": self.source, "tree_size": self.tree_size,
                "root_hash": self.root_hash.hex()}


def anchor_path(data_dir: Path, source: str) -> Path:
    return data_dir / ANCHOR_DIR / f"{source}.cbor"


def read_anchor(data_dir: Path, source: str) -> Anchor | None:
    """The anchor kept for ``source``, None when there is none; AnchorError when damaged."""
    path = anchor_path(data_dir, source)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise AnchorError(f"{path} cannot be read ({exc.strerror})") from exc
    try:
        anchor = Anchor.from_cbor(raw)
    except AnchorError as exc:
        raise AnchorError(f"{path}: {exc}") from exc
    if anchor.source != source:
        raise AnchorError(f"{path} holds a {anchor.source} anchor")
    return anchor


def read_anchors(data_dir: Path) -> tuple[list[Anchor], list[str]]:
    """Every anchor that can be read, and a sentence for each one that cannot."""
    found: list[Anchor] = []
    damaged: list[str] = []
    for source in SOURCES:
        try:
            a = read_anchor(data_dir, source)
        except AnchorError as exc:
            damaged.append(str(exc))
            continue
        if a is not None:
            found.append(a)
    return found, damaged


def save_anchor(data_dir: Path, anchor: Anchor, *, force: bool = False) -> bool:
    """Keep ``anchor`` unless a larger one of its source is kept already (``force``: keep it
    anyway, after a tail was restored); True when written. Durable when it returns."""
    if not force:
        try:
            kept = read_anchor(data_dir, anchor.source)
        except AnchorError:
            kept = None  # a damaged anchor is replaced by a good one
        if kept is not None and kept.tree_size >= anchor.tree_size:
            return False
    write_atomic(anchor_path(data_dir, anchor.source), anchor.to_cbor(), mode=0o600)
    return True


def read_counters(conn: sqlite3.Connection) -> Counters:
    """The number counters as they stand (fond, series, year, last)."""
    return tuple(
        (str(f), str(s), int(y), int(n))
        for f, s, y, n in conn.execute(
            "SELECT fond, series, year, last FROM number_counters ORDER BY 1, 2, 3"
        )
    )


# -- the database's side: the TPM counter's value and acknowledged anchors --------------------


def db_counter(conn: sqlite3.Connection) -> int | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (META_COUNTER,)).fetchone()
    return None if row is None else int(row[0])


def set_db_counter(conn: sqlite3.Connection, value: int) -> None:
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (META_COUNTER, str(value)),
    )


def bump_db_counter(conn: sqlite3.Connection) -> int | None:
    """Advance the value the TPM counter should have by one (inside the transaction that
    stores a checkpoint); None when no TPM counter is kept."""
    row = conn.execute(
        "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = ? RETURNING value",
        (META_COUNTER,),
    ).fetchone()
    return None if row is None else int(row[0])


def acknowledged(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Anchors a log.tail_restored entry named as lost beyond the restored log."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (META_RESTORED,)).fetchone()
    if row is None:
        return []
    try:
        value = json.loads(row[0])
    except ValueError:
        return []
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def acknowledge(conn: sqlite3.Connection, idents: Iterable[dict[str, Any]]) -> None:
    kept = acknowledged(conn)
    kept.extend(i for i in idents if i not in kept)
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (META_RESTORED, json.dumps(kept, sort_keys=True)),
    )


# -- the check --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TailProblem:
    """One way the log is behind (or beside) what was anchored outside it."""

    code: str  # log.behind_anchor, log.anchor_mismatch, log.behind_centre, log.behind_counter
    message: str
    tree_size: int | None = None
    details: dict[str, Any] = field(default_factory=dict)


def log_size(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT max(idx) FROM log").fetchone()
    return 0 if row[0] is None else int(row[0]) + 1


def tail_problems(
    conn: sqlite3.Connection,
    anchors: Sequence[Anchor],
    counter: tuple[int | None, int | None] = (None, None),
    acked: Sequence[dict[str, Any]] | None = None,
) -> list[TailProblem]:
    """How the log in ``conn`` falls short of ``anchors`` and of the TPM ``counter`` (the
    value the database expects, the chip's value). Call inside one read transaction."""
    size = log_size(conn)
    acked = acknowledged(conn) if acked is None else acked
    out: list[TailProblem] = []
    nodes = node_source(conn)
    for a in anchors:
        if a.ident in acked:
            continue
        where = ("the provincial centre's receipt" if a.source == CENTRE
                 else "the copy of the newest checkpoint kept beside the database")
        if a.tree_size > size:
            code = "log.behind_centre" if a.source == CENTRE else "log.behind_anchor"
            out.append(TailProblem(
                code,
                f"the log has {size} entries, but {where} covers {a.tree_size} (signed "
                f"{a.signed_at}): entries {size}–{a.tree_size - 1} are missing (a lost or cut "
                "write-ahead log, or an older copy of the database put back)",
                a.tree_size,
                {"log_size": size, "tree_size": a.tree_size, "signed_at": a.signed_at,
                 "source": a.source, "anchor": a.ident},
            ))
            continue
        try:
            same = merkle.root_hash(nodes, a.tree_size) == a.root_hash
        except EncodingError:
            same = False
        if not same:
            out.append(TailProblem(
                "log.anchor_mismatch",
                f"the log's root at size {a.tree_size} is not the one in {where}: the log was "
                "rolled back and written again",
                a.tree_size,
                {"log_size": size, "tree_size": a.tree_size, "signed_at": a.signed_at,
                 "source": a.source, "anchor": a.ident},
            ))
    expected, chip = counter
    if expected is not None and chip is not None and chip > expected:
        out.append(TailProblem(
            "log.behind_counter",
            f"the TPM's monotonic counter is at {chip}, but this database has signed only up to "
            f"{expected}: {chip - expected} checkpoints are missing (an older copy of the "
            "database or a disk image was put back, or the write-ahead log was lost)",
            None,
            {"tpm_counter": chip, "db_counter": expected},
        ))
    return out
