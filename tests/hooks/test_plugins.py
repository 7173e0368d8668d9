"""Province plug-ins: they run around each hook, can veto a hook before it changes anything,
and a failing, hanging or meddling plug-in is reported without harming the data."""

from __future__ import annotations

import sqlite3
import textwrap
from pathlib import Path

import pytest

from appliance.config import DB_NAME
from appliance.verify import verify_data_dir
from firmware_hooks.health import health
from firmware_hooks.plugins import HOOKS, LifecycleSpec, spec_name
from firmware_hooks.result import ExitCode, Status
from firmware_hooks.runner import HookConfig, run_hook
from firmware_hooks.update import list_snapshots, pre_update

from .conftest import RunHook, log_size


def _plugin(cfg: HookConfig, name: str, body: str) -> None:
    header = "from firmware_hooks.plugins import Veto, hookimpl\n"
    (cfg.plugin_dirs[0] / f"{name}.py").write_text(header + textwrap.dedent(body))


def test_every_hook_has_a_before_and_an_after_spec() -> None:
    for hook in HOOKS:
        for phase in ("before", "after"):
            assert hasattr(LifecycleSpec, spec_name(phase, hook)), (phase, hook)


def test_after_plugin_sees_the_result_and_adds_notes(run: RunHook, hook_config: HookConfig) -> None:
    _plugin(hook_config, "uplink", """
        @hookimpl
        def luutru_after_health(ctx, result):
            return {"seen_status": result["status"], "org": ctx.org_id}
    """)
    res = run("health", health)
    rows = [r for r in res.plugins if r["plugin"] == "uplink"]
    assert rows == [{"plugin": "uplink", "phase": "after", "status": "ok", "message": "",
                     "notes": {"seen_status": "ok", "org": "000.21.08.H49"}}]


def test_veto_refuses_before_anything_changes(
    run: RunHook, hook_config: HookConfig, data_dir: Path
) -> None:
    _plugin(hook_config, "office_hours", """
        @hookimpl
        def luutru_before_pre_update(ctx):
            raise Veto("không cập nhật trong giờ làm việc")
    """)
    size = log_size(data_dir)
    res = run("pre-update", pre_update)
    assert res.status is Status.REFUSED and res.exit_code is ExitCode.REFUSED
    assert "office_hours" in res.message and "giờ làm việc" in res.message
    assert log_size(data_dir) == size and list_snapshots(data_dir) == []


def test_a_crashing_plugin_is_reported_and_the_hook_goes_on(
    run: RunHook, hook_config: HookConfig
) -> None:
    _plugin(hook_config, "buggy", """
        import sys

        @hookimpl
        def luutru_before_health(ctx):
            raise RuntimeError("boom")

        @hookimpl
        def luutru_after_health(ctx, result):
            sys.exit(3)
    """)
    res = run("health", health)
    assert res.status is Status.OK
    statuses = {(r["phase"], r["status"]) for r in res.plugins}
    assert statuses == {("before", "error"), ("after", "error")}
    assert "RuntimeError: boom" in res.plugins[0]["message"]


def test_a_plugin_cannot_write_through_its_connection(
    run: RunHook, hook_config: HookConfig, data_dir: Path
) -> None:
    _plugin(hook_config, "meddler", """
        @hookimpl
        def luutru_before_health(ctx):
            conn = ctx.read_only()
            conn.execute("DELETE FROM log")
    """)
    size = log_size(data_dir)
    res = run("health", health)
    assert res.status is Status.OK
    assert res.plugins[0]["status"] == "error" and "readonly" in res.plugins[0]["message"]
    assert log_size(data_dir) == size
    assert verify_data_dir(data_dir).ok


def test_a_plugin_that_mutates_the_result_changes_nothing(
    run: RunHook, hook_config: HookConfig
) -> None:
    _plugin(hook_config, "mutator", """
        @hookimpl
        def luutru_after_health(result):
            result["status"] = "failed"
            result["checks"].clear()
    """)
    res = run("health", health)
    assert res.status is Status.OK and len(res.checks) == 7


def test_a_hanging_plugin_times_out(data_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "slow.d"
    folder.mkdir()
    (folder / "slow.py").write_text(textwrap.dedent("""
        import time
        from firmware_hooks.plugins import hookimpl

        @hookimpl
        def luutru_before_health(ctx):
            time.sleep(30)
    """))
    cfg = HookConfig(data_dir, (folder,), entry_points=False, plugin_timeout_s=0.3)
    res = run_hook("health", cfg, health)
    assert res.status is Status.OK
    assert res.plugins[0]["status"] == "timeout"


@pytest.mark.parametrize("source", [
    "def broken(:\n",
    "from firmware_hooks.plugins import hookimpl\n@hookimpl\ndef luutru_before_helth(ctx):\n"
    "    pass\n",
])
def test_plugins_that_do_not_load_are_reported(
    run: RunHook, hook_config: HookConfig, source: str
) -> None:
    """A syntax error, or a misspelt hook name (pluggy validates it): reported, not run."""
    (hook_config.plugin_dirs[0] / "bad.py").write_text(source)
    res = run("health", health)
    assert res.status is Status.OK
    assert [(r["plugin"], r["phase"], r["status"]) for r in res.plugins] == [
        ("bad", "load", "error")]


def test_plugins_never_get_a_writable_database(
    run: RunHook, hook_config: HookConfig, data_dir: Path
) -> None:
    """Even a plug-in that asks SQLite for the write lock through its context fails."""
    _plugin(hook_config, "locker", """
        @hookimpl
        def luutru_before_shutdown(ctx):
            ctx.read_only().execute("BEGIN IMMEDIATE")
    """)
    from firmware_hooks.shutdown import shutdown

    res = run("shutdown", shutdown)
    assert res.status is Status.OK
    assert res.plugins[0]["status"] == "error"
    conn = sqlite3.connect(data_dir / DB_NAME)
    conn.execute("BEGIN IMMEDIATE")  # nobody kept the lock
    conn.rollback()
    conn.close()
