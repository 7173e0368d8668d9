"""``luutru hook …`` and ``python -m firmware_hooks …``: one command per lifecycle hook.

Each prints one JSON object on stdout and exits with the hook's code (see __init__.py).
Import only click at module level: the hook bodies import the appliance library lazily.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click


def _common(fn: Any) -> Any:
    fn = click.option(
        "--data", "data", type=click.Path(file_okay=False, path_type=Path), default=None,
        help="Data folder (default: $LUUTRU_DATA, then ./var/appliance).",
    )(fn)
    fn = click.option(
        "--plugins-dir", "plugins_dirs", multiple=True,
        type=click.Path(file_okay=False, path_type=Path),
        help="Folder of province plug-ins (*.py); default $LUUTRU_HOOKS_DIR, then "
        "/etc/luutru/hooks.d.",
    )(fn)
    fn = click.option(
        "--plugin-timeout", type=float, default=30.0, show_default=True,
        help="Seconds a province plug-in may take.",
    )(fn)
    return fn


def _config(data: Path | None, plugins_dirs: tuple[Path, ...], plugin_timeout: float) -> Any:
    from appliance.config import resolve_data_dir

    from .plugins import DEFAULT_PLUGINS_DIR
    from .runner import HookConfig

    dirs = tuple(plugins_dirs)
    if not dirs:
        env = os.environ.get("LUUTRU_HOOKS_DIR")
        dirs = tuple(Path(p) for p in env.split(os.pathsep) if p) if env else (DEFAULT_PLUGINS_DIR,)
    return HookConfig(resolve_data_dir(data), dirs, plugin_timeout_s=plugin_timeout)


def _finish(result: Any) -> None:
    click.echo(result.dumps())
    sys.stdout.flush()
    sys.exit(int(result.exit_code))


@click.group("hook")
def hook() -> None:
    """Lifecycle hooks the OS calls (each prints JSON; exit 0 ok, 1 failed, 3 refused,
    4 degraded, 5 not provisioned)."""


@hook.command("first-boot")
@_common
def first_boot_cmd(
    data: Path | None, plugins_dirs: tuple[Path, ...], plugin_timeout: float
) -> None:
    """At every boot, before serving: recover the database, seal the tail, check the head."""
    from .boot import first_boot
    from .runner import run_hook

    cfg = _config(data, plugins_dirs, plugin_timeout)
    _finish(run_hook("first-boot", cfg, first_boot))


@hook.command("pre-update")
@_common
@click.option("--wait", "wait_s", type=float, default=2.0, show_default=True,
              help="Seconds to wait for a write in flight before refusing.")
@click.option("--keep", type=int, default=2, show_default=True, help="Snapshots to keep.")
def pre_update_cmd(data: Path | None, plugins_dirs: tuple[Path, ...], plugin_timeout: float,
                   wait_s: float, keep: int) -> None:
    """Before an update: refuse while a write is in flight; seal a checkpoint; snapshot."""
    from .runner import run_hook
    from .update import pre_update

    cfg = _config(data, plugins_dirs, plugin_timeout)
    _finish(run_hook("pre-update", cfg, lambda c: pre_update(c, wait_s, keep)))


@hook.command("post-update")
@_common
@click.option("--wait", "wait_s", type=float, default=2.0, show_default=True)
@click.option("--full", is_flag=True, help="Also re-hash every content file.")
def post_update_cmd(data: Path | None, plugins_dirs: tuple[Path, ...], plugin_timeout: float,
                    wait_s: float, full: bool) -> None:
    """After an update: migrate and verify. Exit 0: keep it; any other code: roll back."""
    from .runner import run_hook
    from .update import post_update

    cfg = _config(data, plugins_dirs, plugin_timeout)
    _finish(run_hook("post-update", cfg, lambda c: post_update(c, wait_s, full)))


@hook.command("health")
@_common
@click.option("--deep", is_flag=True, help="Also run PRAGMA quick_check (reads the database).")
@click.option("--watch", "interval", type=float, default=None,
              help="Run every N seconds and feed the systemd watchdog (a service's main loop).")
@click.option("--sync-warn-days", type=float, default=7.0, show_default=True)
def health_cmd(data: Path | None, plugins_dirs: tuple[Path, ...], plugin_timeout: float,
               deep: bool, interval: float | None, sync_warn_days: float) -> None:
    """Database, ledger head, disk, TPM, sync age, clock. Feeds the watchdog unless failed."""
    from .checks import Limits
    from .health import HealthOptions, health, notify_result, watch
    from .runner import run_hook

    cfg = _config(data, plugins_dirs, plugin_timeout)
    opts = HealthOptions(deep=deep, limits=Limits(sync_warn_s=sync_warn_days * 86400))
    host = cfg.plugins()

    def once() -> Any:
        return run_hook("health", cfg, lambda c: health(c, opts), host)

    if interval is None:
        result = once()
        notify_result(result, first=True)
        _finish(result)
    else:
        def emit(result: Any) -> None:
            click.echo(result.dumps())
            sys.stdout.flush()

        watch(once, max(1.0, interval), emit)


@hook.command("shutdown")
@_common
def shutdown_cmd(data: Path | None, plugins_dirs: tuple[Path, ...], plugin_timeout: float) -> None:
    """After the services stop: sign a checkpoint over everything; fold the WAL."""
    from .runner import run_hook
    from .shutdown import shutdown

    cfg = _config(data, plugins_dirs, plugin_timeout)
    _finish(run_hook("shutdown", cfg, shutdown))


@hook.command("factory-reset")
@_common
@click.option("--force", is_flag=True, help="Erase even what the centre has not confirmed.")
@click.option("--confirm", default="",
              help='With --force: the phrase "XOA DU LIEU <mã định danh>".')
@click.option("--clear-tpm", is_flag=True,
              help="Also TPM2_Clear (changes the owner seed; breaks TPM-unlocked disks).")
def factory_reset_cmd(data: Path | None, plugins_dirs: tuple[Path, ...], plugin_timeout: float,
                      force: bool, confirm: str, clear_tpm: bool) -> None:
    """Destroy the keys and the data; refused while anything is unconfirmed at the centre."""
    from .reset import ResetOptions, factory_reset
    from .runner import run_hook

    cfg = _config(data, plugins_dirs, plugin_timeout)
    opts = ResetOptions(force=force, confirm=confirm, clear_tpm=clear_tpm)
    _finish(run_hook("factory-reset", cfg, lambda c: factory_reset(c, opts)))


def main() -> None:
    hook(prog_name="python -m firmware_hooks")
