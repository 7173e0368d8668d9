"""Running one hook: province plug-ins around it, its errors turned into a status."""

from __future__ import annotations

import sqlite3
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from appliance import clock as clockmod
from appliance.config import CONFIG_NAME, DB_NAME, ApplianceConfig, load_config
from appliance.errors import LuutruError

from .errors import NotProvisionedError, PluginVeto, RefusedError
from .plugins import DEFAULT_TIMEOUT_S, PluginContext, PluginHost
from .result import HookResult, Status


@dataclass(frozen=True)
class HookConfig:
    """Parsed once at the entry point (STYLE.md rule 4) and passed to every hook."""

    data_dir: Path
    plugin_dirs: tuple[Path, ...] = ()
    entry_points: bool = True
    plugin_timeout_s: float = DEFAULT_TIMEOUT_S
    clock: clockmod.Clock = field(default_factory=clockmod.SystemClock)

    def now(self) -> str:
        return clockmod.iso(self.clock.now())

    def plugins(self) -> PluginHost:
        return PluginHost.load(self.plugin_dirs, self.entry_points, self.plugin_timeout_s)


Body = Callable[[HookConfig], HookResult]


def provisioned_config(data_dir: Path) -> ApplianceConfig:
    """The data folder's configuration, or NotProvisionedError when there is none yet."""
    if not (data_dir / CONFIG_NAME).exists() or not (data_dir / DB_NAME).exists():
        raise NotProvisionedError(
            f"{data_dir} holds no provisioned appliance; run `luutru provision --data {data_dir}`"
        )
    return load_config(data_dir)


def read_only(data_dir: Path) -> sqlite3.Connection:
    """A read-only connection that never takes the write lock (health, factory-reset checks)."""
    conn = sqlite3.connect(
        f"file:{data_dir / DB_NAME}?mode=ro", uri=True, isolation_level=None,
        check_same_thread=False,
    )
    conn.execute("PRAGMA busy_timeout = 5000")
    conn.execute("PRAGMA query_only = ON")
    return conn


def _org_id(data_dir: Path) -> str | None:
    try:
        return load_config(data_dir).org_id
    except LuutruError:
        return None


def run_hook(
    name: str, config: HookConfig, body: Body, host: PluginHost | None = None
) -> HookResult:
    """Run ``body`` between the ``before`` and ``after`` plug-ins; never raises."""
    host = host or config.plugins()
    ctx = PluginContext(name, config.data_dir, _org_id(config.data_dir), config.now())
    rows = list(host.load_errors)
    try:
        rows += host.run("before", name, ctx)
        vetoes = [r for r in rows if r["status"] == "veto"]
        if vetoes:
            raise PluginVeto(
                f"province plug-in {vetoes[0]['plugin']} refused: {vetoes[0]['message']}"
            )
        result = body(config)
    except NotProvisionedError as exc:
        result = HookResult(name, Status.UNPROVISIONED, str(exc))
    except RefusedError as exc:
        result = HookResult(name, Status.REFUSED, str(exc))
    except LuutruError as exc:
        result = HookResult(name, Status.FAILED, str(exc))
    except Exception as exc:  # a bug or an OS error: say what, and fail closed
        traceback.print_exc(file=sys.stderr)
        result = HookResult(name, Status.FAILED, f"{type(exc).__name__}: {exc}")
    result.at = result.at or ctx.at
    result.data_dir = str(config.data_dir)
    rows += host.run("after", name, ctx, result.to_json())
    result.plugins = rows
    return result
