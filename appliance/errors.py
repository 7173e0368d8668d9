"""Errors of the appliance library: what an operator needs, and whether a retry helps."""

from __future__ import annotations


class LuutruError(Exception):
    """Base class for every error the appliance raises on purpose."""

    retryable: bool = False


class EncodingError(LuutruError):
    """Bytes are not the deterministic CBOR (or COSE) they claim to be."""


class ProofError(LuutruError):
    """A Merkle inclusion or consistency proof does not verify."""


class SignatureError(LuutruError):
    """A checkpoint or message signature does not verify."""


class KeyError_(LuutruError):
    """The device key cannot be created, loaded or used."""


class KeyUnavailableError(KeyError_):
    """The device key is configured but cannot be used now (missing TPM, unreadable blob)."""

    retryable = True


class ConfigError(LuutruError):
    """The data folder or its configuration is missing or inconsistent."""


class ValidationError(LuutruError):
    """A record's field fails the rules of Decree 30 / Circular 05 (length, code list, format)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class RefusedRowError(ValidationError):
    """The database refused a record's row (a CHECK or UNIQUE rule); nothing of it was written."""


class NotFoundError(LuutruError):
    """A record that the call names does not exist."""


class ConflictError(LuutruError):
    """The change conflicts with what is stored (duplicate number, closed fonds, wrong version)."""


class ReadOnlyError(ConflictError):
    """The record belongs to a closed fonds or a frozen collection and cannot change."""


class FrozenError(ReadOnlyError):
    """The record is frozen, recalled or destroyed and refuses edits."""


class StoreClosedError(LuutruError):
    """The store was closed or its writer stopped; nothing more is accepted."""
