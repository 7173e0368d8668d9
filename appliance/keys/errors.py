"""Errors of the TPM, sealing and agency-key layers; each names the cause and what to do."""

from __future__ import annotations

from ..errors import KeyError_, KeyUnavailableError


class TpmError(KeyError_):
    """A TPM operation failed; ``action`` tells the technician what to do."""

    def __init__(self, message: str, action: str, tcti: str | None = None) -> None:
        super().__init__(f"{message}. What to do: {action}")
        self.action = action
        self.tcti = tcti


class TpmUnavailableError(TpmError, KeyUnavailableError):
    """No TPM answers at the configured TCTI (missing chip, driver, library or simulator)."""

    retryable = True


class TpmForeignKeyError(TpmError):
    """The key blob was made by another TPM, or this TPM was cleared since."""


class TpmBlobCorruptedError(TpmError):
    """The key blob or sealed file is damaged or does not match the configured key."""


class TpmLockoutError(TpmError):
    """The TPM is in dictionary-attack lockout and refuses protected keys for now."""

    retryable = True


class SealedSecretError(KeyError_):
    """A sealed secret is missing, or was sealed by a different backing than the one in use."""


class AgencyKeyError(KeyError_):
    """The agency signing key is not configured or cannot be used."""


class AgencyCertificateError(AgencyKeyError):
    """An agency certificate does not match the agency key or is not valid at this time."""
