"""The centre's dashboard and the background agent against an in-process centre server."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import pytest_asyncio
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from luutru.centre.app import create_app
from sync.agent import run_agent
from sync.agent.state import load_enrolment, load_state, save_enrolment
from sync.agent.status import sync_status
from sync.central.centre import Centre
from tests.sync.conftest import Appliance
from web_ui.central.auth import COOKIE, DASH_THROTTLE, DashboardUsers


@pytest.fixture(params=["sqlite", "postgresql"])
def centre_db(request: pytest.FixtureRequest) -> str:
    """Every test here runs against both storage backends."""
    return str(request.param)

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def client(
    centre: Centre, aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]]
) -> TestClient[Any, Any]:
    """A client signed in to the dashboard (as the browser of a province officer)."""
    c = await aiohttp_client(create_app(centre))
    DashboardUsers(centre.data_dir).set_password(USER, PASSWORD)
    r = await sign_in(c, USER, PASSWORD)
    assert r.status == 303 and r.headers["Location"] == "/"
    return c


USER, PASSWORD = "giamsat", "mật khẩu của tỉnh"
_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


async def sign_in(
    c: TestClient[Any, Any], username: str, password: str, nxt: str = "/"
) -> ClientResponse:
    page = await (await c.get("/signin")).text()
    m = _CSRF.search(page)
    assert m, page
    return await c.post("/signin", allow_redirects=False, data={
        "csrf_token": m.group(1), "username": username, "password": password, "next": nxt})


async def _agent_until_confirmed(app: Appliance, client: TestClient[Any, Any]) -> None:
    e = load_enrolment(app.data_dir)
    save_enrolment(app.data_dir, dataclasses.replace(e, centre_url=str(client.make_url(""))))
    stop = asyncio.Event()
    task = asyncio.create_task(run_agent(app.data_dir, stop, app.store))
    for _ in range(200):
        await asyncio.sleep(0.05)
        if load_state(app.data_dir).confirmed_size:
            break
    stop.set()
    await asyncio.wait_for(task, 10)


async def test_background_agent_syncs_and_stops(
    make_appliance: Callable[..., Appliance], client: TestClient[Any, Any]
) -> None:
    """run_agent (what `luutru serve` starts) syncs, then returns promptly when stopped."""
    app = make_appliance()
    app.add(3)
    size = app.store.tree_head()[0]
    await _agent_until_confirmed(app, client)
    st = sync_status(app.data_dir, app.store.tree_head()[0])
    assert st.confirmed_size == size and st.confirmed(size - 1) and st.pending_entries == 0


async def test_overview_search_and_exports(
    make_appliance: Callable[..., Appliance], client: TestClient[Any, Any]
) -> None:
    app = make_appliance()
    app.add(2, Subject="Quyết định giao đất đai cho hộ gia đình")
    app.add(1, Subject="Văn bản mật", Mode="03")
    await _agent_until_confirmed(app, client)
    html = await (await client.get("/")).text()
    assert "Thiết bị" in html and "Ủy ban nhân dân xã Đông Hải" in html
    assert 'id="t-documents">2<' in html
    en = await (await client.get("/?lang=en")).text()
    assert "Appliances" in en
    hits = await (await client.get("/search", params={"q": "quyet dinh dat dai"})).text()
    assert hits.count("giao đất đai") == 2 and "mật" not in hits.split("<main>")[1]
    detail = await (await client.get(f"/appliances/{app.id}")).text()
    assert "hoạt động" in detail
    r = await client.get("/report.csv")
    body = await r.text()
    assert r.headers["Content-Type"].startswith("text/csv") and "Tên cơ quan" in body
    data = json.loads(await (await client.get("/report.json")).text())
    assert data["totals"]["documents"] == 2 and data["totals"]["withheld"] == 1
    assert (await client.get("/static/central/central.css")).status == 200
    assert (await client.get("/appliances/nope")).status == 404


async def test_every_dashboard_page_needs_an_account(
    centre: Centre, aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]]
) -> None:
    """Without a session the pages send to the sign-in form and the exports answer 401; the
    sync API and /healthz are not the dashboard's. With no account yet, the sign-in page says
    how to make one."""
    c = await aiohttp_client(create_app(centre))
    for path in ("/", "/search?q=dat", "/appliances/x", "/?lang=en"):
        r = await c.get(path, allow_redirects=False)
        assert r.status == 303, path
        where = r.headers["Location"]
        assert where.startswith("/signin?next=") and unquote(where[13:]) == path, where
    for path in ("/report.csv", "/report.json"):
        assert (await c.get(path, allow_redirects=False)).status == 401
    assert (await c.get("/healthz")).status == 200
    r = await c.post("/v1/status", data=b"junk", allow_redirects=False)
    assert r.status == 415  # the sync API's own answer (it wants CBOR), not a redirect
    page = await (await c.get("/signin")).text()
    assert 'id="no-accounts"' in page and "luutru central dashboard-user" in page
    assert (await sign_in(c, USER, PASSWORD)).status == 401  # no such account


async def test_sign_in_csrf_throttle_and_sign_out(
    centre: Centre, aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]]
) -> None:
    c = await aiohttp_client(create_app(centre))
    DashboardUsers(centre.data_dir).set_password(USER, PASSWORD)
    # no CSRF token, or one from another browser: refused before the password is looked at
    r = await c.post("/signin", data={"username": USER, "password": PASSWORD})
    assert r.status == 403 and COOKIE not in r.cookies
    for _ in range(3):
        r = await sign_in(c, USER, "sai mật khẩu")
        assert r.status == 401 and "Sai tên đăng nhập" in await r.text()
    r = await sign_in(c, USER, "sai mật khẩu")  # the fourth failure starts the back-off
    assert r.status == 401
    r = await sign_in(c, USER, PASSWORD)  # even the right password waits now
    assert r.status == 429 and "thử lại sau" in await r.text()
    c.app[DASH_THROTTLE].success(f"user:{USER}", "addr:127.0.0.1")
    # the right password: a session cookie (HttpOnly, SameSite=Strict) and back to `next`,
    # which must be a path of this site
    r = await sign_in(c, USER, PASSWORD, nxt="//evil.example/x")
    assert r.status == 303 and r.headers["Location"] == "/"
    set_cookie = r.headers.getall("Set-Cookie")
    session = next(h for h in set_cookie if h.startswith(COOKIE + "="))
    assert "HttpOnly" in session and "SameSite=Strict" in session
    r = await sign_in(c, USER.upper(), PASSWORD, nxt="/search?q=dat")
    assert r.headers["Location"] == "/search?q=dat"
    page = await (await c.get("/")).text()
    assert f"({USER})" in page and r.status == 303
    # sign-out needs the session's CSRF token
    assert (await c.post("/signout", data={})).status == 403
    token = _CSRF.search(page)
    assert token is not None
    r = await c.post("/signout", data={"csrf_token": token.group(1)}, allow_redirects=False)
    assert r.status == 303
    assert (await c.get("/", allow_redirects=False)).status == 303


async def test_sessions_end_with_a_new_password_or_a_removed_account(
    centre: Centre, aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]]
) -> None:
    users = DashboardUsers(centre.data_dir)
    users.set_password(USER, PASSWORD)
    c = await aiohttp_client(create_app(centre))
    await sign_in(c, USER, PASSWORD)
    assert (await c.get("/", allow_redirects=False)).status == 200
    cookie = next(m.value for m in c.session.cookie_jar if m.key == COOKIE)
    # a forged or altered cookie is refused
    name, expires, mac = cookie.split(".")
    for bad in (f"{name}.{int(expires) + 3600}.{mac}", f"{name}.{expires}.{'0' * len(mac)}",
                "garbage", f"{name}.{expires}"):
        r = await c.get("/", cookies={COOKIE: bad}, allow_redirects=False)
        assert r.status == 303, bad
    # an expired one too
    assert users.session_user(cookie, now=int(expires) + 1) is None
    assert users.session_user(cookie) is not None
    users.set_password(USER, "một mật khẩu mới hẳn")
    assert (await c.get("/", allow_redirects=False)).status == 303
    await sign_in(c, USER, "một mật khẩu mới hẳn")
    assert (await c.get("/", allow_redirects=False)).status == 200
    assert users.remove(USER) and not users.remove(USER)
    assert (await c.get("/", allow_redirects=False)).status == 303
    assert (centre.data_dir / "dashboard-users.json").stat().st_mode & 0o077 == 0
    assert (centre.data_dir / "dashboard-secret").stat().st_mode & 0o077 == 0


async def test_dashboard_user_command(tmp_path: Path) -> None:
    """`luutru central dashboard-user`: add (password on stdin), list, a new password, remove;
    a bad name or a short password is a clear error and writes nothing."""
    import subprocess

    from tests.sync.procs import LUUTRU, REPO

    d = tmp_path / "c"

    def luutru(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([*LUUTRU, "central", *args, "--data", str(d)], cwd=REPO,
                              input=stdin, capture_output=True, text=True, timeout=60)

    assert luutru("init").returncode == 0
    r = luutru("dashboard-user", "--username", "giamsat", "--password-stdin",
               stdin=PASSWORD + "\n")
    assert r.returncode == 0 and "added" in r.stdout
    users = DashboardUsers(d)
    assert users.authenticate("giamsat", PASSWORD) is not None
    r = luutru("dashboard-user", "--username", "giamsat", "--password-stdin", stdin="ngắn\n")
    assert r.returncode != 0 and "Mật khẩu" in r.stderr
    assert users.authenticate("giamsat", PASSWORD) is not None  # unchanged
    r = luutru("dashboard-user", "--username", "có dấu cách", "--password-stdin",
               stdin=PASSWORD + "\n")
    assert r.returncode != 0 and users.users() == ["giamsat"]
    r = luutru("dashboard-user", "--username", "giamsat", "--password-stdin",
               stdin="mật khẩu mới của tỉnh\n")
    assert r.returncode == 0 and "new password" in r.stdout
    assert users.authenticate("giamsat", PASSWORD) is None
    assert luutru("dashboard-user", "--list").stdout.split() == ["giamsat"]
    assert luutru("dashboard-user", "--username", "giamsat").returncode == 2  # neither
    assert luutru("dashboard-user", "--username", "giamsat", "--remove").returncode == 0
    r = luutru("dashboard-user", "--username", "giamsat", "--remove")
    assert r.returncode != 0 and "no dashboard account" in r.stderr
