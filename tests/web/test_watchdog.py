"""A hung web server is restarted: `serve` says READY=1 and then WATCHDOG=1 from its event loop,
the web unit has Type=notify and WatchdogSec, and a loop that stops turning stops the pings.

systemd cannot run as the service manager on this test machine (no PID 1 of its own, no
cgroup delegation), so the last test plays systemd's part for one unit exactly as
systemd.service(5) describes it: the process is started with NOTIFY_SOCKET and WATCHDOG_USEC,
it is ready at READY=1, and when no WATCHDOG=1 comes within WatchdogSec it gets SIGABRT, then
SIGKILL, and Restart=on-failure starts it again. The hang is real: the data folder sits on a
FUSE file system (LazyFS) whose daemon is stopped, as a dying SD card stalls every read.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.datadir import init_data_dir
from tests.conftest import ORG_ID, ORG_NAME
from tests.faults import no_traceback
from web_ui.server import watchdog

from .server import ROOT, free_port

UNIT = ROOT / "images" / "systemd" / "luutru-web.service"


class NotifySocket:
    """The service manager's end of sd_notify: every datagram, with when it came."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.05)
        self.got: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            now = time.monotonic()
            self.got.extend((now, line) for line in data.decode().splitlines())

    def since(self, t: float, what: str) -> list[float]:
        return [at for at, line in list(self.got) if at >= t and line == what]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    s = NotifySocket(tmp_path / "notify.sock")
    yield s
    s.close()


def test_the_web_unit_is_watched() -> None:
    unit = UNIT.read_text()
    assert "Type=notify" in unit and "NotifyAccess=main" in unit
    assert "WatchdogSec=" in unit and "Restart=on-failure" in unit


def test_pings_come_from_the_event_loop_and_stop_while_it_is_blocked(
    notify_socket: NotifySocket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(notify_socket.path))

    async def main() -> tuple[float, float]:
        task = asyncio.create_task(watchdog(0.05))
        await asyncio.sleep(0.4)
        blocked_at = time.monotonic()
        time.sleep(0.6)  # a handler that hangs the loop (a stalled read, a lock)
        blocked_until = time.monotonic()
        await asyncio.sleep(0.4)
        task.cancel()
        return blocked_at, blocked_until

    start = time.monotonic()
    blocked_at, blocked_until = asyncio.run(main())
    time.sleep(0.1)
    pings = notify_socket.since(start, "WATCHDOG=1")
    before = [t for t in pings if t < blocked_at]
    during = [t for t in pings if blocked_at + 0.02 < t < blocked_until]
    after = [t for t in pings if t > blocked_until + 0.02]
    assert len(before) >= 5 and len(after) >= 5
    assert during == []


def _serve(data: Path, port: int, notify: Path, watchdog_s: float) -> subprocess.Popen[str]:
    env = {**os.environ, "NOTIFY_SOCKET": str(notify),
           "WATCHDOG_USEC": str(int(watchdog_s * 1e6)), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "luutru", "serve", "--data", str(data), "--host", "127.0.0.1",
         "--port", str(port), "--no-mdns"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def _wait(cond: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


@pytest.mark.slow
def test_serve_is_ready_then_pings(tmp_path: Path, notify_socket: NotifySocket) -> None:
    data = tmp_path / "appliance"
    init_data_dir(data, ORG_ID, ORG_NAME, "software")
    t0 = time.monotonic()
    proc = _serve(data, free_port(), notify_socket.path, 1.0)
    try:
        assert _wait(lambda: notify_socket.since(t0, "READY=1"), 30)
        ready = notify_socket.since(t0, "READY=1")[0]
        time.sleep(2.2)
        pings = notify_socket.since(ready, "WATCHDOG=1")
        assert 4 <= len(pings) <= 6  # every WatchdogSec/2
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0 and "STOPPING=1" in {line for _, line in notify_socket.got}
    no_traceback(out)


class Unit:
    """One Type=notify unit with WatchdogSec and Restart=on-failure, run as systemd would."""

    def __init__(self, start: object, notify: NotifySocket, watchdog_s: float) -> None:
        self.start, self.notify, self.watchdog_s = start, notify, watchdog_s
        self.proc: subprocess.Popen[str] = start()  # type: ignore[operator]
        self.started = time.monotonic()
        self.restarts = 0
        self.killed_by_watchdog = 0
        self.outputs: list[str] = []
        self.killed: list[int] = []  # exit status of each killed process

    def ready(self, timeout: float = 30) -> bool:
        return _wait(lambda: self.notify.since(self.started, "READY=1"), timeout)

    def supervise(self, duration: float) -> bool:
        """Watch for ``duration`` seconds: a missed deadline is SIGABRT, then SIGKILL after
        TimeoutAbortSec (3 s here); True when it had to kill. The restart follows once the
        process is gone (``restart``): one stuck in I/O goes only when the I/O ends, as with
        systemd (the unit stays "deactivating" until then)."""
        end = time.monotonic() + duration
        while time.monotonic() < end:
            time.sleep(0.05)
            last = max([self.started, *self.notify.since(self.started, "WATCHDOG=1")])
            if time.monotonic() - last <= self.watchdog_s:
                continue
            self.killed_by_watchdog += 1
            self.proc.send_signal(signal.SIGABRT)
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            return True
        return False

    def restart(self, timeout: float = 60) -> None:
        """Restart=on-failure (RestartSec=0 here), once the killed process has gone."""
        self.killed.append(self.proc.wait(timeout))
        self.outputs.append(self.proc.stdout.read() if self.proc.stdout else "")
        self.proc = self.start()  # type: ignore[operator]
        self.started = time.monotonic()
        self.restarts += 1

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.mark.slow
def test_a_hung_server_is_killed_and_started_again(
    tmp_path: Path, notify_socket: NotifySocket
) -> None:
    from tests.lazyfs import PowerCut

    disk = PowerCut(tmp_path / "disk", tmp_path / "mnt", tmp_path / "lazyfs").start()
    data = tmp_path / "mnt" / "appliance"
    init_data_dir(data, ORG_ID, ORG_NAME, "software")
    port = free_port()
    unit = Unit(lambda: _serve(data, port, notify_socket.path, 2.0), notify_socket, 2.0)
    assert disk.proc is not None
    try:
        assert unit.ready()
        assert not unit.supervise(1.5)  # a turning loop keeps it alive
        os.kill(disk.proc.pid, signal.SIGSTOP)  # the disk stalls
        stalled = threading.Thread(target=_get, args=(f"http://127.0.0.1:{port}/healthz",),
                                   daemon=True)
        stalled.start()  # its handler reads the disk on the loop: the loop hangs
        assert unit.supervise(15), "the hung server was never killed"
        os.kill(disk.proc.pid, signal.SIGCONT)  # the disk answers again (the I/O ends)
        unit.restart()
        assert unit.killed_by_watchdog == 1 and unit.restarts == 1
        assert unit.ready(), "the restarted server never said READY=1"
        assert _get(f"http://127.0.0.1:{port}/healthz") == 200
        assert not unit.supervise(2)
        assert unit.killed[0] in (-signal.SIGABRT, -signal.SIGKILL)
    finally:
        if disk.proc is not None and disk.proc.poll() is None:
            os.kill(disk.proc.pid, signal.SIGCONT)
        unit.stop()
        disk.unmount()


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return int(r.status)
    except OSError:
        return 0
