"""sd_notify without libsystemd: a datagram on a real unix socket."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from appliance.sdnotify import notify


def test_datagram_reaches_a_path_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "n.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind(path)
        assert notify("WATCHDOG=1", path) is True
        assert s.recv(100) == b"WATCHDOG=1"


def test_abstract_socket() -> None:
    name = f"luutru-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind("\0" + name)
        assert notify("READY=1", "@" + name) is True
        assert s.recv(100) == b"READY=1"


def test_without_systemd_nothing_is_sent(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert notify("WATCHDOG=1") is False
    assert notify("WATCHDOG=1", str(tmp_path / "nobody-listens.sock")) is False
