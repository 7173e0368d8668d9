"""The dashboard's sign-in against bursts, its sign-out, and the centre behind a TLS proxy."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

import web_ui.central.auth as dash_auth
from luutru.centre.app import create_app
from sync.central.centre import Centre
from tests.sync.test_dashboard import _CSRF, PASSWORD, USER, sign_in
from tests.web.conftest import slow_argon2
from web_ui.central.auth import COOKIE, PRE_COOKIE, DashboardUsers

pytestmark = pytest.mark.asyncio
ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]


async def test_a_burst_of_wrong_passwords_is_checked_only_as_often_as_allowed(
    centre: Centre, aiohttp_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """50 wrong passwords at once on the dashboard: 4 are verified (3 free, 1 after which the
    back-off starts), the rest refused before argon2; the right password sent meanwhile, or
    after, gets no session."""
    DashboardUsers(centre.data_dir).set_password(USER, PASSWORD)
    c = await aiohttp_client(create_app(centre))
    calls = slow_argon2(monkeypatch, dash_auth)
    page = await (await c.get("/signin")).text()
    m = _CSRF.search(page)
    assert m

    async def attempt(password: str) -> tuple[int, bool]:
        r = await c.post("/signin", allow_redirects=False, data={
            "csrf_token": m.group(1), "username": USER, "password": password, "next": "/"})
        return r.status, COOKIE in r.cookies

    wrong = [asyncio.create_task(attempt(f"sai mật khẩu số {i}")) for i in range(50)]
    await calls.settle()
    right = asyncio.create_task(attempt(PASSWORD))
    await asyncio.sleep(0.3)
    calls.gate.set()
    results = await asyncio.gather(*wrong)
    assert await right == (429, False)
    assert sorted(s for s, _ in results) == [401] * 4 + [429] * 46
    assert len(calls) == 4
    assert await attempt(PASSWORD) == (429, False)
    assert (await sign_in(c, USER, PASSWORD)).status == 429


async def test_dashboard_accounts_follow_the_password_rule(centre: Centre) -> None:
    import subprocess

    from tests.sync.procs import LUUTRU, REPO

    def luutru(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([*LUUTRU, "central", *args, "--data", str(centre.data_dir)],
                              cwd=REPO, input=stdin, capture_output=True, text=True, timeout=60)

    for bad, why in (("mười một ký", "12"), ("matkhau2025!", "phổ biến")):
        r = luutru("dashboard-user", "--username", "giamsat", "--password-stdin", stdin=bad)
        assert r.returncode != 0 and why in r.stderr, r.stderr
    assert DashboardUsers(centre.data_dir).users() == []


async def test_sign_out_ends_the_session_at_the_centre(
    centre: Centre, aiohttp_client: ClientFactory
) -> None:
    """A copy of the session cookie taken before sign-out opens nothing after it; another
    session of the same account (another browser) goes on."""
    users = DashboardUsers(centre.data_dir)
    users.set_password(USER, PASSWORD)
    user = users.get(USER)
    assert user is not None
    other = users.session_cookie(user)
    c = await aiohttp_client(create_app(centre))
    assert (await sign_in(c, USER, PASSWORD)).status == 303
    copied = next(m.value for m in c.session.cookie_jar if m.key == COOKIE)
    page = await (await c.get("/")).text()
    m = _CSRF.search(page)
    assert m
    r = await c.post("/signout", data={"csrf_token": m.group(1)}, allow_redirects=False)
    assert r.status == 303
    c.session.cookie_jar.clear()
    r = await c.get("/", cookies={COOKIE: copied}, allow_redirects=False)
    assert r.status == 303 and r.headers["Location"].startswith("/signin")
    assert (await c.get("/report.json", cookies={COOKIE: copied})).status == 401
    assert users.session_user(copied) is None
    assert (await c.get("/", cookies={COOKIE: other}, allow_redirects=False)).status == 200
    sessions = centre.data_dir / "dashboard-sessions"
    assert sessions.stat().st_mode & 0o077 == 0 and len(list(sessions.iterdir())) == 1


async def _form(c: TestClient[Any, Any], **headers: str) -> tuple[str, dict[str, str]]:
    """The sign-in form's CSRF token and its cookie, passed by hand: the test client would
    keep a Secure cookie from an http URL to itself, a browser at the proxy would not."""
    r = await c.get("/signin", headers=headers)
    m = _CSRF.search(await r.text())
    assert m
    return m.group(1), {PRE_COOKIE: r.cookies[PRE_COOKIE].value}


async def _fail_from(c: TestClient[Any, Any], username: str, **headers: str) -> int:
    token, cookies = await _form(c, **headers)
    r = await c.post("/signin", headers=headers, cookies=cookies, allow_redirects=False, data={
        "csrf_token": token, "username": username, "password": "sai mật khẩu rồi"})
    return r.status


async def test_without_a_trusted_proxy_x_forwarded_for_is_ignored(
    centre: Centre, aiohttp_client: ClientFactory
) -> None:
    """A client cannot pick its own throttle key (nor claim https) by sending the headers."""
    DashboardUsers(centre.data_dir).set_password(USER, PASSWORD)
    c = await aiohttp_client(create_app(centre))
    for i in range(4):
        assert await _fail_from(c, f"doan-{i}", **{"X-Forwarded-For": f"203.0.113.{i}"}) == 401
    spoofed = {"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https"}
    assert await _fail_from(c, "doan-moi", **spoofed) == 429  # still the peer's address
    r = await c.get("/signin", headers=spoofed)
    assert "Strict-Transport-Security" not in r.headers
    assert all("Secure" not in h for h in r.headers.getall("Set-Cookie"))


async def test_behind_the_trusted_proxy_its_headers_name_the_client_and_the_scheme(
    centre: Centre, aiohttp_client: ClientFactory
) -> None:
    """--trusted-proxy 127.0.0.1: the right-most X-Forwarded-For address the proxy did not add
    itself is the throttle's key; https from the proxy makes cookies Secure and sends HSTS."""
    DashboardUsers(centre.data_dir).set_password(USER, PASSWORD)
    app = create_app(centre, trusted_proxies=(ip_network("127.0.0.0/8"),))
    c = await aiohttp_client(app)
    https = {"X-Forwarded-Proto": "https"}
    for i in range(4):
        assert await _fail_from(c, f"doan-{i}", **https,
                                **{"X-Forwarded-For": "203.0.113.5"}) == 401
    # the client may prepend what it likes; the proxy appends the address it saw
    forged = {"X-Forwarded-For": "198.51.100.7, 203.0.113.5", **https}
    assert await _fail_from(c, "doan-moi", **forged) == 429
    assert await _fail_from(c, "doan-moi", **{"X-Forwarded-For": "198.51.100.7"}) == 401
    r = await c.get("/signin", headers=https)
    assert r.headers["Strict-Transport-Security"].startswith("max-age=")
    assert all("Secure" in h for h in r.headers.getall("Set-Cookie"))
    token, cookies = await _form(c, **https)
    r = await c.post("/signin", headers={**https, "X-Forwarded-For": "192.0.2.1"},
                     cookies=cookies, allow_redirects=False, data={
                         "csrf_token": token, "username": USER, "password": PASSWORD})
    assert r.status == 303
    session = next(h for h in r.headers.getall("Set-Cookie") if h.startswith(COOKIE + "="))
    assert "Secure" in session and "HttpOnly" in session
    plain = await c.get("/signin", headers={"X-Forwarded-Proto": "http"})
    assert "Strict-Transport-Security" not in plain.headers
    assert all("Secure" not in h for h in plain.headers.getall("Set-Cookie"))


async def test_a_peer_outside_the_trusted_networks_is_not_believed(
    centre: Centre, aiohttp_client: ClientFactory
) -> None:
    DashboardUsers(centre.data_dir).set_password(USER, PASSWORD)
    c = await aiohttp_client(create_app(centre, trusted_proxies=(ip_network("10.0.0.0/8"),)))
    for i in range(4):
        assert await _fail_from(c, f"doan-{i}", **{"X-Forwarded-For": f"203.0.113.{i}"}) == 401
    spoofed = {"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https"}
    assert await _fail_from(c, "doan-moi", **spoofed) == 429
    r = await c.get("/signin", headers=spoofed)
    assert "Strict-Transport-Security" not in r.headers
    assert all("Secure" not in h for h in r.headers.getall("Set-Cookie"))


async def test_every_dashboard_page_has_a_content_security_policy_and_no_inline_code(
    centre: Centre, aiohttp_client: ClientFactory
) -> None:
    DashboardUsers(centre.data_dir).set_password(USER, PASSWORD)
    c = await aiohttp_client(create_app(centre))
    r = await c.get("/", allow_redirects=False)
    assert "default-src 'none'" in r.headers["Content-Security-Policy"]  # the redirect too
    assert (await sign_in(c, USER, PASSWORD)).status == 303
    for path in ("/signin", "/", "/?lang=en", "/search?q=dat", "/appliances/nope",
                 "/report.csv", "/report.json"):
        r = await c.get(path)
        csp = r.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "script-src" not in csp, path
        assert "frame-ancestors 'none'" in csp and "'unsafe-inline'" not in csp
        body = await r.text()
        if r.content_type == "text/html":
            assert not re.search(r"<script|\sstyle=|\son[a-z]+=|javascript:", body), path
    assert (await c.get("/static/central/central.css")).status == 200


async def test_serve_refuses_a_trusted_proxy_that_is_not_an_address(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from luutru.cli import main

    res = CliRunner().invoke(main, ["central", "serve", "--data", str(tmp_path),
                                    "--trusted-proxy", "proxy.example"])
    assert res.exit_code == 2 and "Invalid value for '--trusted-proxy'" in res.output


async def test_only_the_sync_api_takes_large_bodies(
    centre: Centre, aiohttp_client: ClientFactory
) -> None:
    """The sign-in form, the readers' pages and OAI-PMH are open to anyone: a body over 64 KiB
    is refused (announced, or chunked) and never buffered whole; a form of normal size works."""
    DashboardUsers(centre.data_dir).set_password(USER, PASSWORD)
    c = await aiohttp_client(create_app(centre))
    big = b"username=" + b"a" * (1 << 20)
    for path in ("/signin", "/reader/signin", "/oai"):
        r = await c.post(path, data=big, allow_redirects=False,
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert r.status == 413, (path, r.status)

        async def chunks() -> Any:
            for _ in range(32):
                yield b"a" * 8192

        r = await c.post(path, data=chunks(), allow_redirects=False,
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert r.status == 413, (path, "chunked", r.status)
    assert (await sign_in(c, USER, PASSWORD)).status == 303
    r = await c.post("/oai", data={"verb": "Identify"})
    assert r.status == 200 and "<Identify>" in await r.text()


async def test_the_dashboard_counts_guesses_where_every_worker_sees_them(
    centre: Centre, aiohttp_client: ClientFactory
) -> None:
    """A wrong password is counted in the centre folder's throttle file, which each worker
    process of `central serve --workers N` opens, not in one process's memory."""
    import sqlite3

    DashboardUsers(centre.data_dir).set_password(USER, PASSWORD)
    c = await aiohttp_client(create_app(centre))
    assert (await sign_in(c, USER, "không phải mật khẩu này")).status == 401
    conn = sqlite3.connect(centre.data_dir / "dashboard-throttle.db")
    rows = dict(conn.execute("SELECT key, failures FROM throttle").fetchall())
    conn.close()
    assert rows[f"user:{USER}"] == 1


async def test_a_deflate_bomb_to_the_sync_api_is_refused_before_it_inflates(
    centre: Centre, aiohttp_client: ClientFactory
) -> None:
    """The sync agent deflates its signed batches, so the centre inflates /v1 bodies; one that
    would inflate more than a hundredfold (and past 8 MiB) is refused with 413 while it is
    read, not held whole in memory; a batch-like compressed body is read and judged as
    ever (refused here for its missing signature, not its size)."""
    import os
    import zlib

    c = await aiohttp_client(create_app(centre, dashboard=False))
    bomb = zlib.compress(b"\0" * (24 * 2**20), 9)
    assert len(bomb) < 64 * 1024
    r = await c.post("/v1/batch", data=bomb, headers={
        "Content-Encoding": "deflate", "Content-Type": "application/cbor"})
    assert r.status == 413
    plain = os.urandom(300_000).hex().encode()  # like hashes and ids: deflates about 2x
    r = await c.post("/v1/batch", data=zlib.compress(plain), headers={
        "Content-Encoding": "deflate", "Content-Type": "application/cbor"})
    assert r.status not in (413, 500)
