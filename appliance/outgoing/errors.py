"""Errors of the outgoing workflow: a step out of order is a conflict (409) said in Vietnamese,
with its English beside it for the English pages."""

from __future__ import annotations

from ..errors import ConflictError, ForbiddenActionError, LuutruError


class WorkflowError(ConflictError):
    """A step the draft's state does not allow now (issue before signing, sign before approval)."""

    def __init__(self, vi: str, en: str) -> None:
        super().__init__(vi)
        self.english = en


class NotYoursError(ForbiddenActionError):
    """This person is not the draft's approver, reviewer or signer."""

    def __init__(self, vi: str, en: str) -> None:
        super().__init__(vi)
        self.english = en


class SigningError(LuutruError):
    """A signature could not be made or an uploaded one is not the expected one."""

    status = 422

    def __init__(self, vi: str, en: str) -> None:
        super().__init__(vi)
        self.english = en


class ConversionError(LuutruError):
    """A DOCX could not be turned into PDF (LibreOffice missing, failed or too slow)."""

    status = 422

    def __init__(self, vi: str, en: str) -> None:
        super().__init__(vi)
        self.english = en
