"""`luutru serve` and `luutru user` as real processes; mDNS on loopback only."""

from __future__ import annotations

import json
import signal
import threading
import urllib.request
from pathlib import Path

from tests.conftest import ORG_NAME

from .server import luutru, serve

PASSWORD = "mật khẩu của văn thư"


def _get(url: str, token: str | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_user_commands_and_serve(data_dir: Path) -> None:
    added = luutru("user", "add", "--data", str(data_dir), "--username", "vanthu",
                   "--role", "clerk", "--password-stdin", stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    again = luutru("user", "add", "--data", str(data_dir), "--username", "vanthu",
                   "--role", "clerk", "--password-stdin", stdin=PASSWORD + "\n")
    assert again.returncode == 1 and "đã tồn tại" in again.stderr
    short = luutru("user", "add", "--data", str(data_dir), "--username", "b",
                   "--role", "clerk", "--password-stdin", stdin="ngan\n")
    assert short.returncode == 1
    bad_role = luutru("user", "add", "--data", str(data_dir), "--username", "c",
                      "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n")
    assert bad_role.returncode == 2
    token = luutru("user", "token", "--data", str(data_dir), "--username", "vanthu")
    assert token.returncode == 0, token.stderr
    tok = token.stdout.strip()
    listed = luutru("user", "list", "--data", str(data_dir), "--json")
    assert json.loads(listed.stdout) == {"username": "vanthu", "role": "clerk",
                                         "full_name": "", "disabled": False}
    with serve(data_dir) as srv:
        status, body = _get(srv.url + "/api/v1/me", tok)
        assert status == 200 and json.loads(body)["username"] == "vanthu"
        # A CLI write beside the running server: both go through SQLite's lock and the log.
        role = luutru("user", "role", "--data", str(data_dir), "--username", "vanthu",
                      "--role", "auditor")
        assert role.returncode == 0, role.stderr
        status, _ = _get(srv.url + "/api/v1/me", tok)
        assert status == 401  # a role change revokes the user's tokens
        srv.proc.send_signal(signal.SIGTERM)
        assert srv.proc.wait(15) == 0
        out = srv.proc.stdout.read() if srv.proc.stdout else ""
        assert "serving" in out and "stopped" in out
    verify = luutru("verify", "--data", str(data_dir), "--json")
    assert json.loads(verify.stdout)["ok"] is True, verify.stdout


def test_mdns_advertises_on_loopback_and_withdraws_on_shutdown(data_dir: Path) -> None:
    from zeroconf import IPVersion, ServiceBrowser, ServiceListener, Zeroconf

    from web_ui.mdns import SERVICE_TYPE, instance_name

    name = f"{instance_name(ORG_NAME)}.{SERVICE_TYPE}"
    assert name == "ubnd-xa-dong-hai._http._tcp.local."
    seen: dict[str, object] = {}
    added, removed = threading.Event(), threading.Event()

    class Listener(ServiceListener):
        def add_service(self, zc: Zeroconf, type_: str, n: str) -> None:
            info = zc.get_service_info(type_, n, timeout=3000)
            if n == name and info is not None:
                seen["port"] = info.port
                seen["addresses"] = info.parsed_addresses()
                added.set()

        def remove_service(self, zc: Zeroconf, type_: str, n: str) -> None:
            if n == name:
                removed.set()

        def update_service(self, zc: Zeroconf, type_: str, n: str) -> None:
            pass

    # Loopback only: nothing of this test reaches the LAN.
    zc = Zeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
    try:
        ServiceBrowser(zc, SERVICE_TYPE, Listener())
        with serve(data_dir, mdns=True) as srv:
            assert added.wait(15), "the service was not advertised"
            assert seen["port"] == srv.port and seen["addresses"] == ["127.0.0.1"]
            srv.proc.send_signal(signal.SIGTERM)
            assert srv.proc.wait(15) == 0
        assert removed.wait(10), "the service was not withdrawn on shutdown"
    finally:
        zc.close()


