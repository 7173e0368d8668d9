"""Secrets at rest (session secret, token PINs): sealed to the TPM when there is one.

A TPM-sealed secret is a keyed-hash object under the owner storage key: the file holds only
the TPM-wrapped blob, which no other TPM (nor this one after a clear) can open. Without a TPM
the secret is a 0600 file and every description of it says so.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .. import cbor
from ..fsutil import write_atomic
from .base import Backing
from .errors import SealedSecretError
from .loader import KeyConfig
from .tpm import DEFAULT_TCTI

SECRETS_DIR = "secrets"
MAX_SECRET = 128  # TPM2B_SENSITIVE_DATA holds at most 128 bytes
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class SecretStore:
    """Named small secrets in ``<data>/secrets``; sealed to the TPM at ``tcti`` if one is given."""

    def __init__(self, data_dir: Path, tcti: str | None) -> None:
        self._dir = data_dir / SECRETS_DIR
        self._tcti = tcti

    @property
    def backing(self) -> Backing:
        return Backing.SOFTWARE if self._tcti is None else Backing.TPM

    def describe(self) -> str:
        if self._tcti is None:
            return "secrets are NOT sealed (no TPM): stored as files readable only by the service"
        return f"secrets are sealed to the TPM at {self._tcti}"

    def _path(self, name: str) -> Path:
        if not _NAME.match(name):
            raise SealedSecretError(f"secret name {name!r} is not of the form [a-z0-9_-]")
        suffix = ".secret" if self._tcti is None else ".sealed"
        return self._dir / f"{name}{suffix}"

    def exists(self, name: str) -> bool:
        return self._path(name).exists()

    def seal(self, name: str, secret: bytes) -> None:
        """Store ``secret`` under ``name``, replacing any earlier value."""
        if not 0 < len(secret) <= MAX_SECRET:
            raise SealedSecretError(f"a sealed secret must be 1..{MAX_SECRET} bytes")
        path = self._path(name)
        if self._tcti is None:
            write_atomic(path, secret, mode=0o600)
            return
        from .tpm_ops import seal

        blob = seal(self._tcti, secret)
        write_atomic(path, cbor.dumps(blob), mode=0o600)

    def unseal(self, name: str) -> bytes:
        """Return the secret stored under ``name``; raise if absent, foreign or damaged."""
        path = self._path(name)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            other = path.with_suffix(".sealed" if self._tcti is None else ".secret")
            if other.exists():
                raise SealedSecretError(
                    f"secret {name!r} was stored by a different backing ({other.name}); "
                    "set it again on this appliance"
                ) from None
            raise SealedSecretError(f"secret {name!r} does not exist") from None
        if self._tcti is None:
            return raw
        from .tpm_ops import unseal

        return unseal(self._tcti, raw, path)

    def get_or_create(self, name: str, size: int = 32) -> bytes:
        """The secret ``name``, made from os.urandom(size) and stored the first time."""
        if not self.exists(name):
            self.seal(name, os.urandom(size))
        return self.unseal(name)


def open_secret_store(data_dir: Path, key: KeyConfig) -> SecretStore:
    """Seal to the device key's TPM when the device key is in one; else plain 0600 files."""
    if key.backing is Backing.TPM:
        return SecretStore(data_dir, str(key.options.get("tcti", DEFAULT_TCTI)))
    return SecretStore(data_dir, None)
