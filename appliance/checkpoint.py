"""Signed checkpoints: (origin, tree size, root hash, time, key kind) as COSE_Sign1."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import cbor, cose
from .errors import EncodingError, SignatureError
from .keys.base import Backing, KeyProvider
from .keys.verify import PublicKey, key_id, verifier

CONTENT_TYPE = "application/vnd.luutru.checkpoint+cbor"


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    tree_size: int
    root_hash: bytes
    time: str
    backing: Backing
    alg: int

    def payload(self) -> bytes:
        return cbor.dumps(
            {
                "origin": self.origin,
                "tree_size": self.tree_size,
                "root_hash": self.root_hash,
                "time": self.time,
                "key": {"backing": self.backing.value, "alg": cose.ALG_NAMES[self.alg]},
            }
        )

    @classmethod
    def from_payload(cls, payload: bytes) -> Checkpoint:
        value: Any = cbor.loads_deterministic(payload)
        try:
            key = value["key"]
            alg = {v: k for k, v in cose.ALG_NAMES.items()}[key["alg"]]
            cp = cls(
                origin=value["origin"],
                tree_size=value["tree_size"],
                root_hash=value["root_hash"],
                time=value["time"],
                backing=Backing(key["backing"]),
                alg=alg,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise EncodingError(f"checkpoint payload is malformed: {exc}") from exc
        if not isinstance(cp.tree_size, int) or cp.tree_size < 0 or len(cp.root_hash) != 32:
            raise EncodingError("checkpoint size or root hash is malformed")
        return cp


def sign_checkpoint(cp: Checkpoint, key: KeyProvider) -> bytes:
    """Return the encoded COSE_Sign1 of ``cp`` signed by ``key``."""
    if cp.alg != key.alg or cp.backing != key.backing:
        raise SignatureError("checkpoint names a different kind of key than the one signing it")
    msg = cose.sign1(
        cp.payload(), key.alg, key.kid, key.sign, {cose.HDR_CONTENT_TYPE: CONTENT_TYPE}
    )
    return msg.encode()


def verify_checkpoint(data: bytes, public_key: PublicKey) -> Checkpoint:
    """Return the checkpoint in ``data`` if it verifies with ``public_key``; else raise."""
    msg = cose.decode_sign1(data)
    if msg.kid is not None and msg.kid != key_id(public_key):
        raise SignatureError("checkpoint was signed by a different key (kid mismatch)")
    cose.verify_sign1(msg, verifier(public_key))
    cp = Checkpoint.from_payload(msg.payload)
    if cp.alg != msg.alg:
        raise SignatureError("checkpoint payload names a different algorithm than its header")
    return cp
