"""Errors of the edXML library."""

from __future__ import annotations

from ..errors import LuutruError, ValidationError


class EdxmlError(LuutruError):
    """Base class of the edXML errors."""


class PackageRefused(ValidationError):
    """A package that cannot be taken in at all (malformed, unsafe, too large, inconsistent);
    ``reason`` is the Vietnamese sentence shown to the clerk and sent back to the sender."""

    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__(reason, field)
        self.reason = reason


class TrustStoreError(EdxmlError):
    """The trust store refuses a certificate or cannot be read."""


class DecisionError(EdxmlError):
    """A decision on an inbox item that its state does not allow (registered twice, an invalid
    signature registered, a mis-addressed package registered)."""


class TransportError(EdxmlError):
    """A connector could not reach its exchange (retryable unless it says otherwise)."""

    retryable = True
