"""Errors of archival management: what an operator needs, and whether a retry helps."""

from __future__ import annotations

from ..errors import ConflictError, LuutruError, ValidationError


class ArchiveError(LuutruError):
    """Base class for archival-management errors raised on purpose."""


class NotPermanentError(ValidationError):
    """Only files kept permanently (maintenance 01) may go to the historical archive."""


class ClassifiedError(ConflictError):
    """A classified (mật, mode 03) record cannot leave the appliance this way."""


class WorkflowError(ConflictError):
    """A workflow step is out of order (e.g. destroying before the council decided)."""


class PackageError(ArchiveError):
    """A transfer package could not be built, or a built one does not check out."""


class BackupError(ArchiveError):
    """A backup could not be made or read; the message names the medium and the path."""

    retryable = True


class RestoreError(ArchiveError):
    """A restore was refused or failed; nothing in the target folder is left half-written."""
