"""Running a hook (firmware_hooks/runner.py): whatever the body does, the hook returns one
result (never raises), with the status its error calls for, stamped with time and folder."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from appliance.clock import TZ, ManualClock
from appliance.errors import ConfigError
from firmware_hooks.errors import HookError, NotProvisionedError, RefusedError
from firmware_hooks.result import ExitCode, HookResult, Status
from firmware_hooks.runner import HookConfig, provisioned_config, read_only, run_hook

from .conftest import RunHook


def _raises(exc: BaseException) -> Callable[[HookConfig], HookResult]:
    def body(cfg: HookConfig) -> HookResult:
        raise exc
    return body


@pytest.mark.parametrize(
    ("exc", "status", "message"),
    [
        (NotProvisionedError("no appliance here"), Status.UNPROVISIONED, "no appliance here"),
        (RefusedError("a write is in flight"), Status.REFUSED, "a write is in flight"),
        (HookError("snapshot failed"), Status.FAILED, "snapshot failed"),
        (ConfigError("appliance.json lacks 'origin'"), Status.FAILED,
         "appliance.json lacks 'origin'"),
        (ZeroDivisionError("division by zero"), Status.FAILED,
         "ZeroDivisionError: division by zero"),
        (OSError(28, "No space left on device"), Status.FAILED,
         "OSError: [Errno 28] No space left on device"),
    ],
    ids=["unprovisioned", "refused", "hook-error", "library-error", "bug", "os-error"],
)
def test_an_error_becomes_a_status_never_an_exception(
    run: RunHook, exc: BaseException, status: Status, message: str
) -> None:
    """Each kind of failure maps to its status and exit code; a bug fails closed."""
    res = run("health", _raises(exc))
    assert (res.hook, res.status, res.message) == ("health", status, message)
    assert res.exit_code is {Status.UNPROVISIONED: ExitCode.UNPROVISIONED,
                             Status.REFUSED: ExitCode.REFUSED,
                             Status.FAILED: ExitCode.FAILED}[status]


def test_a_result_is_stamped_with_the_time_and_the_folder(data_dir: Path, tmp_path: Path) -> None:
    """``at`` comes from the configured clock unless the body set it; ``data_dir`` always."""
    clock = ManualClock(dt.datetime(2025, 9, 15, 9, 30, tzinfo=TZ))
    cfg = HookConfig(data_dir, (), entry_points=False, clock=clock)
    res = run_hook("health", cfg, lambda c: HookResult("health", Status.OK, "fine"))
    assert (res.at, res.data_dir) == ("2025-09-15T09:30:00.000+07:00", str(data_dir))
    own = run_hook("health", cfg, lambda c: HookResult("health", Status.OK, at="earlier"))
    assert own.at == "earlier" and own.plugins == []


def test_provisioned_config_needs_the_configuration_and_the_database(
    data_dir: Path, tmp_path: Path
) -> None:
    """A folder without appliance.json or luutru.db is not provisioned."""
    assert provisioned_config(data_dir).org_id == "000.21.08.H49"
    with pytest.raises(NotProvisionedError, match="run `luutru provision --data"):
        provisioned_config(tmp_path / "empty")
    (data_dir / "luutru.db").rename(tmp_path / "moved.db")
    with pytest.raises(NotProvisionedError, match="holds no provisioned appliance"):
        provisioned_config(data_dir)


def test_read_only_connections_cannot_write(data_dir: Path) -> None:
    """Health and factory-reset checks read through a connection that refuses writes."""
    conn = read_only(data_dir)
    try:
        assert conn.execute("SELECT count(*) FROM log").fetchone()[0] > 0
        with pytest.raises(sqlite3.OperationalError, match="attempt to write a readonly database"):
            conn.execute("DELETE FROM log")
    finally:
        conn.close()
