"""The health hook on a temporary data folder: each check can fail, and the watchdog is fed
only when nothing failed."""

from __future__ import annotations

import datetime as dt
import os
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from appliance.clock import TZ, ManualClock, iso
from appliance.config import DB_NAME
from appliance.store import Store
from firmware_hooks.checks import Limits
from firmware_hooks.health import HealthOptions, health, watch
from firmware_hooks.result import CheckStatus, ExitCode, Status
from firmware_hooks.runner import HookConfig
from tests.conftest import incoming

from .conftest import RunHook, check, write_sync_state


def test_fresh_appliance_is_healthy(run: RunHook) -> None:
    """A just-initialised folder passes every check that applies; the rest say why skipped."""
    res = run("health", health)
    assert res.status is Status.OK and res.exit_code is ExitCode.OK
    states = {c.name: c.status for c in res.checks}
    assert states == {
        "database": CheckStatus.PASS, "ledger": CheckStatus.PASS, "disk": CheckStatus.PASS,
        "tpm": CheckStatus.SKIPPED, "sync": CheckStatus.SKIPPED, "clock": CheckStatus.PASS,
        "tail": CheckStatus.PASS,
    }
    assert check(res, "tpm").reason.startswith("software device key")


def test_tampered_checkpoint_fails(run: RunHook, data_dir: Path) -> None:
    """One flipped bit in the stored root makes the ledger check fail."""
    conn = sqlite3.connect(data_dir / DB_NAME)
    size, root = conn.execute(
        "SELECT tree_size, root_hash FROM checkpoints ORDER BY tree_size DESC LIMIT 1"
    ).fetchone()
    flipped = bytes([root[0] ^ 1]) + bytes(root[1:])
    conn.execute("UPDATE checkpoints SET root_hash = ? WHERE tree_size = ?", (flipped, size))
    conn.commit()
    conn.close()
    res = run("health", health)
    assert res.status is Status.FAILED and res.exit_code is ExitCode.FAILED
    assert check(res, "ledger").status is CheckStatus.FAIL


def test_rewritten_tree_fails(run: RunHook, data_dir: Path) -> None:
    """A stored subtree hash changed under a signed checkpoint: the recomputed root differs.
    (Rewritten entry bytes are re-hashed only by `luutru verify`, not every 30 s.)"""
    conn = sqlite3.connect(data_dir / DB_NAME)
    assert conn.execute("SELECT max(tree_size) FROM checkpoints").fetchone()[0] == 2
    conn.execute("UPDATE merkle_nodes SET hash = zeroblob(32) WHERE level = 0 AND idx = 0")
    conn.commit()
    conn.close()
    res = run("health", health)
    assert check(res, "ledger").status is CheckStatus.FAIL
    assert "the log changed" in check(res, "ledger").reason


def test_entries_left_unsigned_too_long_fail(data_dir: Path, hook_config: HookConfig) -> None:
    """Entries committed two minutes ago and still unsigned: the key is not sealing."""
    with Store.open(data_dir) as store:
        store.register_incoming(incoming())
        store.wait_sealed()
    conn = sqlite3.connect(data_dir / DB_NAME)
    top = conn.execute("SELECT max(tree_size) FROM checkpoints").fetchone()[0]
    conn.execute("DELETE FROM checkpoints WHERE tree_size = ?", (top,))
    conn.commit()
    conn.close()
    now = dt.datetime.now(TZ)
    fresh = health(HookConfig(data_dir, clock=ManualClock(now)))
    assert check(fresh, "ledger").status is CheckStatus.PASS  # a second ago: the sealer's job
    late = health(HookConfig(data_dir, clock=ManualClock(now + dt.timedelta(minutes=5))))
    assert check(late, "ledger").status is CheckStatus.FAIL
    assert "not sealing" in check(late, "ledger").reason


def test_a_log_behind_its_anchor_needs_attention(run: RunHook, data_dir: Path,
                                                  tmp_path: Path) -> None:
    """An older copy of the database put back: the box stops writing (preflight.py), and the
    health hook says so, as a warning (restarting cannot mend it: the technician does)."""
    import shutil

    shutil.copy2(data_dir / DB_NAME, tmp_path / "old.db")
    with Store.open(data_dir) as s:
        s.register_incoming(incoming())
        assert s.wait_sealed()
    shutil.copy2(tmp_path / "old.db", data_dir / DB_NAME)
    res = run("health", health)
    tail = check(res, "tail")
    assert tail.status is CheckStatus.WARN and "--tail-from-centre" in tail.reason
    assert res.status is not Status.FAILED  # the watchdog is still fed


def test_newer_schema_fails(run: RunHook, data_dir: Path) -> None:
    conn = sqlite3.connect(data_dir / DB_NAME)
    conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    res = run("health", health)
    assert check(res, "database").status is CheckStatus.FAIL


def test_disk_below_the_limit_fails(data_dir: Path) -> None:
    """The free-space limits come from Limits; a limit above the disk's size must fail."""
    limits = Limits(disk_fail_bytes=1 << 60)
    res = health(HookConfig(data_dir), HealthOptions(limits=limits))
    assert check(res, "disk").status is CheckStatus.FAIL
    warn = health(HookConfig(data_dir), HealthOptions(limits=Limits(disk_warn_bytes=1 << 60)))
    assert check(warn, "disk").status is CheckStatus.WARN and warn.status is Status.DEGRADED


def test_data_folder_refusing_writes_fails(data_dir: Path) -> None:
    """An immutable folder refuses writes even to root, as a read-only remount would."""
    run_dir = data_dir / "run"
    run_dir.mkdir(exist_ok=True)
    if subprocess.run(["chattr", "+i", str(run_dir)], capture_output=True).returncode != 0:
        pytest.skip("this file system has no immutable flag (chattr +i)")
    try:
        res = health(HookConfig(data_dir))
    finally:
        subprocess.run(["chattr", "-i", str(run_dir)], check=True)
    assert check(res, "disk").status is CheckStatus.FAIL
    assert "refuses writes" in check(res, "disk").reason


def test_stale_sync_degrades_but_feeds_the_watchdog(run: RunHook, data_dir: Path) -> None:
    """Ten days without the centre: status degraded (exit 4), never failed."""
    old = iso(dt.datetime.now(TZ) - dt.timedelta(days=10))
    write_sync_state(data_dir, centre_url="http://centre.invalid", last_contact=old,
                     acknowledged_size=1)
    res = run("health", health)
    assert check(res, "sync").status is CheckStatus.WARN
    assert res.status is Status.DEGRADED and res.exit_code is ExitCode.DEGRADED
    recent = iso(dt.datetime.now(TZ) - dt.timedelta(hours=2))
    write_sync_state(data_dir, centre_url="http://centre.invalid", last_contact=recent)
    assert check(run("health", health), "sync").status is CheckStatus.PASS


def test_quarantine_degrades(run: RunHook, data_dir: Path) -> None:
    write_sync_state(data_dir, centre_url="http://c.invalid", quarantined=True,
                     last_contact=iso(dt.datetime.now(TZ)))
    assert check(run("health", health), "sync").reason.startswith("the centre has quarantined")


def test_clock_before_2025_degrades(data_dir: Path) -> None:
    res = health(HookConfig(data_dir, clock=ManualClock(dt.datetime(2000, 1, 1, tzinfo=TZ))))
    assert check(res, "clock").status is CheckStatus.WARN


def _datagram_socket(tmp_path: Path) -> tuple[socket.socket, str]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(20)
    return sock, path


def _hook_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "firmware_hooks", *args], capture_output=True,
                          text=True, env={**os.environ, **env}, timeout=120)


def test_cli_feeds_the_watchdog_when_healthy(data_dir: Path, tmp_path: Path) -> None:
    """`python -m firmware_hooks health` sends READY and WATCHDOG=1 to $NOTIFY_SOCKET."""
    sock, path = _datagram_socket(tmp_path)
    with sock:
        done = _hook_cli("health", "--data", str(data_dir), "--plugins-dir", str(tmp_path),
                         env={"NOTIFY_SOCKET": path})
        assert done.returncode == 0, done.stderr
        msg = sock.recv(4096).decode()
    assert "READY=1" in msg and "WATCHDOG=1" in msg and "STATUS=ok" in msg


def test_cli_starves_the_watchdog_when_failed(data_dir: Path, tmp_path: Path) -> None:
    sqlite3.connect(data_dir / DB_NAME).executescript(
        "UPDATE checkpoints SET cose = x'00'; "
    )
    sock, path = _datagram_socket(tmp_path)
    with sock:
        done = _hook_cli("health", "--data", str(data_dir), "--plugins-dir", str(tmp_path),
                         env={"NOTIFY_SOCKET": path})
        assert done.returncode == int(ExitCode.FAILED)
        msg = sock.recv(4096).decode()
    assert "STATUS=failed" in msg and "WATCHDOG=1" not in msg


def test_watch_loop_notifies_each_run(data_dir: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The --watch loop sends READY once, then a WATCHDOG=1 per healthy run."""
    sock, path = _datagram_socket(tmp_path)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    seen: list[str] = []
    emit: Callable[..., None] = lambda r: seen.append(r.status.value)  # noqa: E731
    with sock:
        watch(lambda: health(HookConfig(data_dir)), 0.01, emit, iterations=3)
        msgs = [sock.recv(4096).decode() for _ in range(3)]
    assert seen == ["ok", "ok", "ok"]
    assert "READY=1" in msgs[0] and all("READY=1" not in m for m in msgs[1:])
    assert all("WATCHDOG=1" in m for m in msgs)
