"""`luutru serve` speaks HTTPS with the certificate provisioning made, and only then."""

from __future__ import annotations

import datetime as dt
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from appliance.store import Store
from luutru.provision.tls import ensure_certificate

from .server import ROOT, free_port


def test_serve_uses_the_provisioned_certificate(
    data_dir: Path, open_store: Callable[..., Store]
) -> None:
    open_store().close()
    info = ensure_certificate(
        data_dir, "ubnd-xa-dong-hai", ("127.0.0.1",), "Ủy ban nhân dân xã Đông Hải",
        dt.datetime.now(dt.UTC),
    )
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "luutru", "serve", "--data", str(data_dir), "--host",
         "127.0.0.1", "--port", str(port), "--no-mdns"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    ctx = ssl.create_default_context(cafile=str(data_dir / "tls" / "appliance.crt"))
    ctx.check_hostname = False  # the certificate names the .local name and the IP
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(
                    f"https://127.0.0.1:{port}/healthz", timeout=2, context=ctx
                ) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "serve did not start"
                time.sleep(0.1)
        try:  # plain HTTP is not answered
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
            raise AssertionError("plain HTTP was answered")
        except OSError:
            pass
        der = ssl.get_server_certificate(("127.0.0.1", port))
        assert "BEGIN CERTIFICATE" in der and info is not None
    finally:
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=20)[0]
    assert "https://127.0.0.1" in out
