"""`luutru central serve --trusted-proxy` as a real process: one, or two workers on PostgreSQL,
each believing the proxy's X-Forwarded-Proto (Secure cookies, HSTS) and nobody else's."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest

from tests.sync.procs import CentreServer, run


def _signin_headers(url: str, proto: str) -> tuple[str | None, list[str]]:
    req = urllib.request.Request(f"{url}/signin", headers={"X-Forwarded-Proto": proto,
                                                           "Connection": "close"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.headers.get("Strict-Transport-Security"), r.headers.get_all("Set-Cookie") or []


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_believes_only_the_trusted_proxy(
    tmp_path: Path, workers: int, request: pytest.FixtureRequest
) -> None:
    d = tmp_path / "centre"
    db = ["--db", request.getfixturevalue("pg_url")] if workers > 1 else []
    run("central", "init", "--data", str(d), *db)
    with CentreServer(d, extra=("--workers", str(workers), "--trusted-proxy", "127.0.0.1")) as c:
        for _ in range(4 * workers):  # new connections, spread over the workers
            hsts, cookies = _signin_headers(c.url, "https")
            assert hsts and cookies and all("Secure" in h for h in cookies)
    with CentreServer(d, extra=("--workers", str(workers), "--trusted-proxy", "10.9.8.0/24")) as c:
        for _ in range(4 * workers):
            hsts, cookies = _signin_headers(c.url, "https")
            assert hsts is None and cookies and not any("Secure" in h for h in cookies)
