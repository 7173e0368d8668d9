"""Errors of the lifecycle hooks; each maps to a hook status and exit code."""

from __future__ import annotations

from appliance.errors import LuutruError


class HookError(LuutruError):
    """A hook could not do its work (exit 1)."""


class RefusedError(HookError):
    """A precondition is not met; nothing was changed (exit 3)."""

    retryable = True


class WriteInFlightError(RefusedError):
    """Another process holds the database's write lock (a write is in flight)."""


class NotProvisionedError(HookError):
    """The data folder does not exist or holds no configuration yet (exit 5)."""


class PluginVeto(RefusedError):
    """A province plug-in refused the hook in its ``before`` phase."""
