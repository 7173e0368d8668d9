"""Province plug-ins (pluggy): code a province adds before and after each lifecycle hook.

A plug-in is a Python module in a plug-ins folder (``--plugins-dir``, default
``/etc/luutru/hooks.d``) or a package announcing the ``luutru.hooks`` entry point. It
implements any of the ``luutru_before_<hook>`` / ``luutru_after_<hook>`` specs below
(hook names with ``_`` for ``-``)::

    from firmware_hooks.plugins import Veto, hookimpl

    @hookimpl
    def luutru_before_pre_update(ctx):
        if ctx.now().hour in range(7, 17):
            raise Veto("no updates during office hours")

    @hookimpl
    def luutru_after_health(ctx, result):
        return {"uplink": "4G"}        # shown under "plugins" in the hook's JSON

Why a plug-in cannot corrupt the data: ``before`` plug-ins run before the hook opens any
write connection and ``after`` plug-ins after it has closed them all; a plug-in gets only
the read-only context below (a ``mode=ro`` connection with ``query_only``) and a deep copy
of the result. Each plug-in runs alone, in its own thread with a time limit; what it raises
is caught and reported, and the hook carries on. Only ``Veto`` in a ``before`` phase
changes the outcome: the hook is refused (exit 3) before it has changed anything.
"""

from __future__ import annotations

import copy
import datetime as dt
import importlib.util
import json
import sqlite3
import threading
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pluggy

from appliance import clock as clockmod
from appliance.config import DB_NAME

from .errors import PluginVeto

PROJECT = "luutru"
ENTRY_POINT_GROUP = "luutru.hooks"
DEFAULT_PLUGINS_DIR = Path("/etc/luutru/hooks.d")
DEFAULT_TIMEOUT_S = 30.0
HOOKS = ("first-boot", "pre-update", "post-update", "health", "shutdown", "factory-reset")

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)
Veto = PluginVeto


@dataclass(frozen=True)
class PluginContext:
    """What a plug-in may see: where the data is, whose it is, and a read-only connection."""

    hook: str
    data_dir: Path
    org_id: str | None
    at: str

    def now(self) -> dt.datetime:
        return clockmod.SystemClock().now()

    def read_only(self) -> sqlite3.Connection:
        """A read-only connection to the appliance database (the caller closes it)."""
        path = self.data_dir / DB_NAME
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist")
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
        conn.execute("PRAGMA query_only = ON")
        return conn


class LifecycleSpec:
    """The hook specifications; every ``after`` spec also gets the result as a dict."""

    @hookspec
    def luutru_before_first_boot(self, ctx: PluginContext) -> dict[str, Any] | None: ...

    @hookspec
    def luutru_after_first_boot(
        self, ctx: PluginContext, result: dict[str, Any]
    ) -> dict[str, Any] | None: ...

    @hookspec
    def luutru_before_pre_update(self, ctx: PluginContext) -> dict[str, Any] | None: ...

    @hookspec
    def luutru_after_pre_update(
        self, ctx: PluginContext, result: dict[str, Any]
    ) -> dict[str, Any] | None: ...

    @hookspec
    def luutru_before_post_update(self, ctx: PluginContext) -> dict[str, Any] | None: ...

    @hookspec
    def luutru_after_post_update(
        self, ctx: PluginContext, result: dict[str, Any]
    ) -> dict[str, Any] | None: ...

    @hookspec
    def luutru_before_health(self, ctx: PluginContext) -> dict[str, Any] | None: ...

    @hookspec
    def luutru_after_health(
        self, ctx: PluginContext, result: dict[str, Any]
    ) -> dict[str, Any] | None: ...

    @hookspec
    def luutru_before_shutdown(self, ctx: PluginContext) -> dict[str, Any] | None: ...

    @hookspec
    def luutru_after_shutdown(
        self, ctx: PluginContext, result: dict[str, Any]
    ) -> dict[str, Any] | None: ...

    @hookspec
    def luutru_before_factory_reset(self, ctx: PluginContext) -> dict[str, Any] | None: ...

    @hookspec
    def luutru_after_factory_reset(
        self, ctx: PluginContext, result: dict[str, Any]
    ) -> dict[str, Any] | None: ...


def spec_name(phase: str, hook: str) -> str:
    return f"luutru_{phase}_{hook.replace('-', '_')}"


class PluginHost:
    """Loads plug-ins and runs each one in isolation; collects what happened as JSON rows."""

    def __init__(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.pm = pluggy.PluginManager(PROJECT)
        self.pm.add_hookspecs(LifecycleSpec)
        self.timeout_s = timeout_s
        self.load_errors: list[dict[str, Any]] = []

    @classmethod
    def load(
        cls,
        plugin_dirs: Sequence[Path] = (),
        entry_points: bool = True,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> PluginHost:
        host = cls(timeout_s)
        for folder in plugin_dirs:
            if folder.is_dir():
                for path in sorted(folder.glob("*.py")):
                    host.load_file(path)
        if entry_points:
            try:
                host.pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
            except Exception as exc:  # a broken installed plug-in must not stop the hook
                host.load_errors.append(_row(ENTRY_POINT_GROUP, "load", "error", repr(exc)))
        return host

    def load_file(self, path: Path) -> None:
        name = f"luutru_plugin_{path.stem}"
        try:
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot load {path}")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            self.pm.register(module, name=path.stem)
            self.pm.check_pending()
        except BaseException as exc:  # a syntax error or a misnamed hook: report, skip
            if self.pm.get_plugin(path.stem) is not None:
                self.pm.unregister(name=path.stem)
            self.load_errors.append(_row(path.stem, "load", "error", _describe(exc)))

    def run(
        self,
        phase: str,
        hook: str,
        ctx: PluginContext,
        result: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """Call every implementation of the phase's spec, each alone; one row per plug-in."""
        caller = getattr(self.pm.hook, spec_name(phase, hook))
        rows: list[dict[str, Any]] = []
        for impl in reversed(caller.get_hookimpls()):  # pluggy's own order: last registered first
            given: dict[str, Any] = {"ctx": ctx}
            if result is not None:
                given["result"] = copy.deepcopy(result)
            kwargs = {k: given[k] for k in impl.argnames if k in given}
            row = self._call(impl.plugin_name, phase, impl.function, kwargs)
            rows.append(row)
            if row["status"] == "veto" and phase == "before":
                break  # the hook is refused: later plug-ins need not prepare for it
        return rows

    def _call(self, name: str, phase: str, fn: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                box["value"] = fn(**kwargs)
            except BaseException as exc:  # SystemExit included: a plug-in never ends the hook
                box["error"] = exc
                box["trace"] = traceback.format_exc(limit=3)

        thread = threading.Thread(target=target, name=f"plugin-{name}", daemon=True)
        thread.start()
        thread.join(self.timeout_s)
        if thread.is_alive():
            return _row(name, phase, "timeout", f"did not finish in {self.timeout_s:g} s")
        if "error" in box:
            exc = box["error"]
            if isinstance(exc, PluginVeto):
                return _row(name, phase, "veto", str(exc))
            return _row(name, phase, "error", _describe(exc))
        value = box.get("value")
        row = _row(name, phase, "ok", "")
        if value is not None:
            try:
                json.dumps(value)
                row["notes"] = value
            except (TypeError, ValueError):
                row["notes"] = repr(value)
        return row


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _row(plugin: str, phase: str, status: str, message: str) -> dict[str, Any]:
    return {"plugin": plugin, "phase": phase, "status": status, "message": message}
