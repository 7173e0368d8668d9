"""The dashboard's sign-in against bursts, its sign-out, and the centre behind a TLS proxy."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

import web_ui.central.auth as dash_auth
from sync.central.centre import Centre
from sync.central.server import create_app
from tests.sync.test_dashboard import _CSRF, PASSWORD, USER, sign_in
from tests.web.conftest import slow_argon2
from web_ui.central.auth import COOKIE, DashboardUsers

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
