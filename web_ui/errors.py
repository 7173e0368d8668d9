"""Errors of the web UI; each carries the HTTP status a handler answers with."""

from __future__ import annotations

from appliance.errors import LuutruError


class WebError(LuutruError):
    """Base class of the web UI's own errors."""

    status = 400


class BadRequestError(WebError):
    """The request body cannot be taken as the call's input at all (e.g. JSON nested too deep)."""

    status = 400


class ForbiddenError(WebError):
    """The signed-in role may not use this page or call."""

    status = 403


class CsrfError(WebError):
    """A form was posted without the token of the session that rendered it."""

    status = 403


class ThrottledError(WebError):
    """Too many failed sign-ins: the caller must wait ``retry_after`` seconds."""

    status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.retryable = True


class UploadError(WebError):
    """An uploaded file is refused (type, size, damage, active content); nothing is stored."""

    status = 422

    def __init__(self, message: str, english: str | None = None) -> None:
        super().__init__(message)
        self.english = english


def text_of(exc: LuutruError, lang: str) -> str:
    """The error's message in the user's language when it has one per language (``vi``,
    ``english``: for the people at the box; the message itself may be the technician's)."""
    english = getattr(exc, "english", None)
    if lang == "en" and isinstance(english, str) and english:
        return english
    from appliance.errors import DiskFullError, HaltedError

    if isinstance(exc, HaltedError | DiskFullError) and lang != "en":
        return exc.vi
    return str(exc)


def form_status(exc: LuutruError, default: int = 422) -> int:
    """The status a form re-rendered after ``exc`` answers with: a full disk (507) or a halted
    store (503) is not the user's mistake; anything else is ``default``."""
    from appliance.errors import DiskFullError, HaltedError

    if isinstance(exc, DiskFullError):
        return 507
    if isinstance(exc, HaltedError):
        return 503
    return default
