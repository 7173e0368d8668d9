"""The "sealed" badge: a real check that a record's log entry is in the latest signed tree.

For an entry at index i below the latest checkpoint's size n, it verifies the checkpoint's
COSE signature with the device's public key, recomputes the RFC 9162 inclusion proof of the
entry's exact bytes up to the signed root, and checks that the entry holds what the page
shows (same record, same version, same fields). Entries at or past n are "not yet sealed".
Any failure is reported as broken, never as sealed.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from appliance import merkle
from appliance.checkpoint import Checkpoint, verify_checkpoint
from appliance.errors import LuutruError
from appliance.keys.verify import PublicKey
from appliance.ledger import Entry
from appliance.store import Record, Store


class SealStatus(StrEnum):
    SEALED = "sealed"  # inclusion proof to a verified checkpoint holds
    PENDING = "pending"  # committed after the latest checkpoint
    BROKEN = "broken"  # a check failed: tampering or damage


@dataclass(frozen=True)
class SealState:
    status: SealStatus
    index: int
    checkpoint_size: int = 0
    checkpoint_time: str | None = None
    backing: str | None = None
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "log_index": self.index,
            "checkpoint_size": self.checkpoint_size,
            "checkpoint_time": self.checkpoint_time,
            "key_backing": self.backing,
            "reason": self.reason,
        }


def _digest(value: Any) -> bytes:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).digest()


class SealChecker:
    """Checks records against the newest checkpoint; the signature is verified once per size."""

    def __init__(self, store: Store, public_key: PublicKey) -> None:
        self._store = store
        self._key = public_key
        self._lock = threading.Lock()
        self._verified: tuple[int, bytes, Checkpoint] | None = None

    def checkpoint(self) -> tuple[int, Checkpoint] | None:
        """The latest checkpoint after its signature and stored root are checked; else raise."""
        latest = self._store.latest_checkpoint()
        if latest is None:
            return None
        size, root, _signed_at, cose = latest
        with self._lock:
            cached = self._verified
        if cached is not None and cached[0] == size and cached[1] == cose:
            return size, cached[2]
        cp = verify_checkpoint(cose, self._key)
        if cp.tree_size != size or cp.root_hash != root:
            raise LuutruError("the stored checkpoint row differs from what its signature covers")
        with self._lock:
            self._verified = (size, cose, cp)
        return size, cp

    def check(self, record: Record) -> SealState:
        return self.check_entry(record.log_index, record)

    def check_entry(self, index: int, record: Record | None = None) -> SealState:
        try:
            verified = self.checkpoint()
        except LuutruError as exc:
            return SealState(SealStatus.BROKEN, index, reason=f"checkpoint: {exc}")
        if verified is None:
            return SealState(SealStatus.PENDING, index)
        size, cp = verified
        base = {"checkpoint_size": size, "checkpoint_time": cp.time, "backing": cp.backing.value}
        if index >= size:
            return SealState(SealStatus.PENDING, index, **base)  # type: ignore[arg-type]
        try:
            raw = next(iter(self._store.entries(index, index + 1)), (None, None))[1]
            if raw is None:
                raise LuutruError(f"log entry {index} is missing")
            proof = self._store.inclusion_proof(index, size)
            merkle.verify_inclusion(merkle.leaf_hash(raw), index, size, proof, cp.root_hash)
            if record is not None:
                entry = Entry.decode(raw, strict=False)
                if (entry.type, entry.id, entry.version) != (
                    record.type,
                    record.id,
                    record.version,
                ):
                    raise LuutruError("the sealed entry is about another record or version")
                if _digest(entry.data) != _digest(record.data):
                    raise LuutruError("the record shown differs from its sealed entry")
        except (LuutruError, ValueError) as exc:
            return SealState(SealStatus.BROKEN, index, reason=str(exc), **base)  # type: ignore[arg-type]
        return SealState(SealStatus.SEALED, index, **base)  # type: ignore[arg-type]
