"""sd_notify(3) without libsystemd: one datagram to the socket named by $NOTIFY_SOCKET."""

from __future__ import annotations

import os
import socket


def notify(state: str, socket_path: str | None = None) -> bool:
    """Send ``state`` (e.g. "WATCHDOG=1", "READY=1\\nSTATUS=…"); False when not under systemd.

    ``socket_path`` defaults to $NOTIFY_SOCKET; a leading "@" names an abstract socket.
    """
    path = socket_path if socket_path is not None else os.environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    address = "\0" + path[1:] if path.startswith("@") else path
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        try:
            sock.connect(address)
            sock.sendall(state.encode("utf-8"))
        except OSError:
            return False
    return True


def watchdog_interval() -> float | None:
    """How often to send WATCHDOG=1 (half of systemd's WatchdogSec), or None when the service
    manager watches no deadline for this process (sd_watchdog_enabled(3))."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 2e6 if value > 0 else None
