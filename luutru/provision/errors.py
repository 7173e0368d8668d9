"""Errors of provisioning; each says what the technician should do."""

from __future__ import annotations

from appliance.errors import LuutruError


class ProvisionError(LuutruError):
    """A provisioning step cannot be done as asked."""


class IdentityMismatchError(ProvisionError):
    """The data folder already belongs to another identity; nothing was changed."""


class AnswerError(ProvisionError):
    """An answer (a flag or a prompt) is malformed; the message names the field."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field
