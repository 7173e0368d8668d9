"""The key-provider seam: what signs checkpoints and sync requests, whatever holds the key."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Protocol, runtime_checkable


class Backing(StrEnum):
    """Where a device key lives; shown to users, written into every checkpoint."""

    SOFTWARE = "software"
    TPM = "tpm"


@runtime_checkable
class KeyProvider(Protocol):
    """A device key: signs COSE Sig_structures and tells what it is."""

    @property
    def backing(self) -> Backing: ...

    @property
    def alg(self) -> int:
        """The COSE algorithm number (-8 EdDSA, -7 ES256)."""
        ...

    @property
    def kid(self) -> bytes:
        """Key id: the first 16 bytes of SHA-256 over the SubjectPublicKeyInfo DER."""
        ...

    def public_key_pem(self) -> str: ...

    def sign(self, tbs: bytes) -> bytes:
        """Sign ``tbs``; returns the COSE signature (Ed25519 64 bytes, ES256 raw r||s)."""
        ...

    def close(self) -> None: ...


class MonotonicCounter(Protocol):
    """A counter that only goes up and that a copied disk cannot put back (a TPM NV counter):
    the anchor of the log's tail that lives in hardware (appliance/anchors.py)."""

    def read(self) -> int: ...

    def advance_to(self, value: int) -> int:
        """Increment until the counter is at least ``value``; returns where it is."""
        ...


def counter_of(key: Any) -> MonotonicCounter | None:
    """The key's hardware monotonic counter, if its backing has one (a TPM does)."""
    make = getattr(key, "monotonic_counter", None)
    return make() if callable(make) else None
