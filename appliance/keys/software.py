"""The software Ed25519 device key (pynacl), for boxes without a TPM. Shown as such everywhere."""

from __future__ import annotations

import os
from pathlib import Path

import nacl.signing
from cryptography.hazmat.primitives.asymmetric import ed25519

from ..cose import ALG_EDDSA
from ..errors import KeyUnavailableError
from ..fsutil import write_atomic
from .base import Backing
from .verify import key_id, public_pem

SEED_SIZE = 32


class SoftwareKey:
    """Ed25519 key whose 32-byte seed sits in a 0600 file of the data folder."""

    def __init__(self, seed: bytes) -> None:
        if len(seed) != SEED_SIZE:
            raise KeyUnavailableError("software key seed must be 32 bytes")
        self._signing = nacl.signing.SigningKey(seed)
        self._public = ed25519.Ed25519PublicKey.from_public_bytes(bytes(self._signing.verify_key))
        self._kid = key_id(self._public)

    @classmethod
    def create(cls, path: Path) -> SoftwareKey:
        if path.exists():
            raise KeyUnavailableError(f"a key already exists at {path}; refusing to overwrite it")
        seed = os.urandom(SEED_SIZE)
        write_atomic(path, seed, mode=0o600)
        return cls(seed)

    @classmethod
    def load(cls, path: Path) -> SoftwareKey:
        try:
            seed = path.read_bytes()
        except OSError as exc:
            raise KeyUnavailableError(
                f"software device key {path} cannot be read ({exc.strerror}); restore it from "
                "the backup or re-provision the appliance"
            ) from exc
        return cls(seed)

    @property
    def backing(self) -> Backing:
        return Backing.SOFTWARE

    @property
    def alg(self) -> int:
        return ALG_EDDSA

    @property
    def kid(self) -> bytes:
        return self._kid

    def public_key_pem(self) -> str:
        return public_pem(self._public)

    def sign(self, tbs: bytes) -> bytes:
        return bytes(self._signing.sign(tbs).signature)

    def close(self) -> None:
        pass
