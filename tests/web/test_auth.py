"""Sign-in, sessions, CSRF, throttling, API tokens, and what the log keeps about users."""

from __future__ import annotations

import asyncio

import cbor2
import pytest
from aiohttp.test_utils import TestClient

import appliance.accounts as accounts_mod
from appliance.accounts import SESSION_COOKIE, Role

from .conftest import (
    PASSWORD,
    ROLE_USERS,
    as_role,
    csrf_of,
    services_of,
    sign_in,
    slow_argon2,
)

pytestmark = pytest.mark.asyncio


async def test_sign_in_sets_a_strict_httponly_session_cookie(client: TestClient) -> None:
    resp = await sign_in(client, ROLE_USERS[Role.CLERK])
    assert resp.status == 303 and resp.headers["Location"] == "/"
    cookie = resp.cookies[SESSION_COOKIE]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"
    home = await client.get("/")
    assert home.status == 200
    assert "Đăng ký văn bản đến" in await home.text()


async def test_wrong_password_is_refused_and_sets_no_session(client: TestClient) -> None:
    resp = await sign_in(client, ROLE_USERS[Role.CLERK], "sai mật khẩu rồi")
    assert resp.status == 401
    assert SESSION_COOKIE not in resp.cookies
    assert "Sai tên đăng nhập hoặc mật khẩu" in await resp.text()
    assert (await client.get("/", allow_redirects=False)).status == 303


async def test_unknown_user_looks_like_a_wrong_password(client: TestClient) -> None:
    resp = await sign_in(client, "khong-co-ai")
    assert resp.status == 401
    assert "Sai tên đăng nhập hoặc mật khẩu" in await resp.text()


async def test_sign_in_without_csrf_token_is_refused(client: TestClient) -> None:
    await client.get("/signin")
    resp = await client.post(
        "/signin", data={"username": ROLE_USERS[Role.CLERK], "password": PASSWORD},
        allow_redirects=False,
    )
    assert resp.status == 403
    assert SESSION_COOKIE not in resp.cookies


async def test_form_post_without_or_with_foreign_csrf_token_is_refused(client: TestClient) -> None:
    csrf = await as_role(client, Role.CLERK)
    s = services_of(client)
    before = s.store.count("document")
    form = {"TypeName": "Công văn", "CodeNumber": "12", "CodeNotation": "UBND-VP",
            "OrganName": "Sở Nội vụ", "Subject": "V/v thử CSRF"}
    for token in (None, "0" * 64, s.accounts.csrf_token("p:someone-else")):
        data = dict(form) if token is None else {**form, "csrf_token": token}
        resp = await client.post("/documents/incoming", data=data, allow_redirects=False)
        assert resp.status == 403, token
        assert "CSRF" in await resp.text()
    assert s.store.count("document") == before
    ok = await client.post("/documents/incoming", data={**form, "csrf_token": csrf},
                           allow_redirects=False)
    assert ok.status == 303
    assert s.store.count("document") == before + 1


async def test_cross_origin_post_is_refused_even_with_a_token(client: TestClient) -> None:
    csrf = await as_role(client, Role.CLERK)
    resp = await client.post("/signout", data={"csrf_token": csrf},
                             headers={"Origin": "http://evil.example"}, allow_redirects=False)
    assert resp.status == 403
    assert (await client.get("/account")).status == 200  # still signed in


async def test_sign_out_ends_the_session(client: TestClient) -> None:
    csrf = await as_role(client, Role.LEADER)
    token = client.session.cookie_jar.filter_cookies(client.make_url("/"))[SESSION_COOKIE].value
    resp = await client.post("/signout", data={"csrf_token": csrf}, allow_redirects=False)
    assert resp.status == 303
    assert services_of(client).accounts.session_user(token) is None
    assert (await client.get("/", allow_redirects=False)).status == 303


async def test_failed_sign_ins_are_throttled_exponentially(client: TestClient, fake_time) -> None:
    user = ROLE_USERS[Role.CLERK]
    for _ in range(3):
        assert (await sign_in(client, user, "sai-sai-sai-sai")).status == 401
    assert (await sign_in(client, user, "sai-sai-sai-sai")).status == 401  # 4th: now 1 s wait
    blocked = await sign_in(client, user, PASSWORD)  # even the right password waits
    assert blocked.status == 429
    assert blocked.headers["Retry-After"] == "1"
    assert "thử lại sau" in await blocked.text()
    fake_time.t += 1.1
    assert (await sign_in(client, user, "sai-sai-sai-sai")).status == 401  # 5th: 2 s
    fake_time.t += 1.0
    assert (await sign_in(client, user, PASSWORD)).status == 429
    fake_time.t += 1.1
    assert (await sign_in(client, user, PASSWORD)).status == 303


async def test_per_address_throttle_stops_guessing_many_usernames(
    client: TestClient, fake_time
) -> None:
    for i in range(4):
        assert (await sign_in(client, f"doan-{i}", "sai-sai-sai-sai")).status == 401
    # A fresh username from the same address must wait too.
    resp = await sign_in(client, ROLE_USERS[Role.LEADER], PASSWORD)
    assert resp.status == 429


async def test_disabled_user_cannot_sign_in_and_loses_sessions(client: TestClient) -> None:
    s = services_of(client)
    await as_role(client, Role.AUDITOR)
    assert (await client.get("/device")).status == 200
    s.accounts.set_disabled(ROLE_USERS[Role.AUDITOR], True, "test")
    assert (await client.get("/device", allow_redirects=False)).status == 303
    assert (await sign_in(client, ROLE_USERS[Role.AUDITOR])).status == 401


async def test_role_change_takes_effect_and_ends_sessions(client: TestClient) -> None:
    s = services_of(client)
    await as_role(client, Role.ARCHIVIST)
    assert (await client.get("/documents/incoming/new")).status == 403
    s.accounts.set_role(ROLE_USERS[Role.ARCHIVIST], "clerk", "test")
    assert (await client.get("/documents/incoming/new", allow_redirects=False)).status == 303
    await sign_in(client, ROLE_USERS[Role.ARCHIVIST])
    assert (await client.get("/documents/incoming/new")).status == 200


async def test_api_token_authenticates_without_cookies_or_csrf(client: TestClient) -> None:
    s = services_of(client)
    token_id, token = s.accounts.create_token(ROLE_USERS[Role.CLERK], "script", "test")
    headers = {"Authorization": f"Bearer {token}"}
    me = await client.get("/api/v1/me", headers=headers)
    assert me.status == 200 and (await me.json())["role"] == "clerk"
    created = await client.post("/api/v1/documents/incoming", headers=headers, json={
        "TypeName": "Công văn", "CodeNumber": "7", "CodeNotation": "SNV-VP",
        "OrganName": "Sở Nội vụ", "Subject": "V/v gửi qua khóa API"})
    assert created.status == 201, await created.text()
    s.accounts.revoke_token(token_id, None, "test")
    assert (await client.get("/api/v1/me", headers=headers)).status == 401
    bogus = await client.get("/api/v1/me", headers={"Authorization": "Bearer lt_x_y"})
    assert bogus.status == 401


async def test_api_with_a_session_cookie_still_needs_the_csrf_header(client: TestClient) -> None:
    csrf = await as_role(client, Role.CLERK)
    body = {"TypeName": "Công văn", "CodeNumber": "8", "CodeNotation": "SNV-VP",
            "OrganName": "Sở Nội vụ", "Subject": "V/v phiên trình duyệt"}
    assert (await client.post("/api/v1/documents/incoming", json=body)).status == 403
    ok = await client.post("/api/v1/documents/incoming", json=body,
                           headers={"X-CSRF-Token": csrf})
    assert ok.status == 201


async def test_user_events_are_logged_without_any_secret(client: TestClient) -> None:
    s = services_of(client)
    s.accounts.set_password(ROLE_USERS[Role.CLERK], "một mật khẩu mới dài", "test")
    _, token = s.accounts.create_token(ROLE_USERS[Role.CLERK], "script", "test")
    kinds = []
    secrets = [b"$argon2id$", token.encode(), "một mật khẩu mới dài".encode(), PASSWORD.encode()]
    for _, raw in s.store.entries():
        for secret in secrets:
            assert secret not in raw
        entry = cbor2.loads(raw)
        if entry["kind"].startswith("user."):
            kinds.append((entry["kind"], entry["data"]["username"]))
    assert ("user.add", ROLE_USERS[Role.CLERK]) in kinds
    assert ("user.password", ROLE_USERS[Role.CLERK]) in kinds
    assert ("user.token_create", ROLE_USERS[Role.CLERK]) in kinds
    row = s.store.reader().execute(
        "SELECT pw_hash FROM web_users WHERE username = ?", (ROLE_USERS[Role.CLERK],)
    ).fetchone()
    assert bytes(row[0]).startswith(b"$argon2id$")


async def test_users_page_lets_the_leader_add_a_user(client: TestClient) -> None:
    csrf = await as_role(client, Role.LEADER)
    resp = await client.post("/users", data={
        "csrf_token": csrf, "username": "vanthu2", "role": "clerk",
        "password": "mật khẩu ban đầu", "full_name": "Nguyễn Thị Hoa"})
    assert resp.status == 200 and "vanthu2" in await resp.text()
    short = await client.post("/users", data={
        "csrf_token": csrf, "username": "ngan", "role": "clerk", "password": "ngan"})
    assert short.status == 422 and "Mật khẩu phải có" in await short.text()
    assert services_of(client).accounts.get_user("ngan") is None


async def test_changing_ones_own_password_ends_the_session(client: TestClient) -> None:
    csrf = await as_role(client, Role.ARCHIVIST)
    resp = await client.post("/account/password", data={
        "csrf_token": csrf, "current": PASSWORD, "new": "mật khẩu thứ hai",
        "confirm": "mật khẩu thứ hai"}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/signin"
    assert (await client.get("/account", allow_redirects=False)).status == 303
    assert (await sign_in(client, ROLE_USERS[Role.ARCHIVIST], "mật khẩu thứ hai")).status == 303


async def test_token_is_shown_once_on_the_account_page(client: TestClient) -> None:
    csrf = await as_role(client, Role.AUDITOR)
    resp = await client.post("/account/tokens", data={"csrf_token": csrf, "name": "báo cáo"})
    page = await resp.text()
    assert 'id="new-token"' in page
    token = page.split('id="new-token">')[1].split("<")[0]
    assert token.startswith("lt_")
    again = await (await client.get("/account")).text()
    assert token not in again and "báo cáo" in again
    csrf_of(again)


async def test_a_burst_of_wrong_passwords_is_checked_only_as_often_as_allowed(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """50 wrong passwords at once: the throttle reserves each attempt before argon2 runs, so
    only the 3 free guesses and the first back-off one are verified; the right password sent
    while they run, or after them, gets no session."""
    calls = slow_argon2(monkeypatch, accounts_mod)
    gate = calls.gate
    user = ROLE_USERS[Role.CLERK]
    page = await client.get("/signin")
    token = csrf_of(await page.text())

    async def attempt(password: str) -> tuple[int, bool]:
        r = await client.post("/signin", allow_redirects=False, data={
            "username": user, "password": password, "csrf_token": token, "next": "/"})
        return r.status, SESSION_COOKIE in r.cookies

    wrong = [asyncio.create_task(attempt(f"sai mật khẩu số {i}")) for i in range(50)]
    await calls.settle()
    right = asyncio.create_task(attempt(PASSWORD))
    await asyncio.sleep(0.3)
    gate.set()
    results = await asyncio.gather(*wrong)
    assert await right == (429, False)
    assert sorted(s for s, _ in results) == [401] * 4 + [429] * 46
    assert len(calls) == 4  # argon2 ran for 4 guesses, not 50
    assert await attempt(PASSWORD) == (429, False)


async def test_wrong_current_passwords_are_throttled_like_sign_ins(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stolen session cannot guess the password through the change form: a burst of 50
    wrong current passwords gets 4 checked, the right one then waits (429) and changes
    nothing, and sign-in for that account waits too (one budget per account)."""
    csrf = await as_role(client, Role.ARCHIVIST)
    calls = slow_argon2(monkeypatch, accounts_mod)

    async def change(current: str) -> int:
        r = await client.post("/account/password", allow_redirects=False, data={
            "csrf_token": csrf, "current": current, "new": "mật khẩu mới tinh tươm",
            "confirm": "mật khẩu mới tinh tươm"})
        return r.status

    wrong = [asyncio.create_task(change(f"đoán mò lần thứ {i}")) for i in range(50)]
    await calls.settle()
    calls.gate.set()
    statuses = await asyncio.gather(*wrong)
    assert sorted(statuses) == [422] * 4 + [429] * 46
    assert len(calls) == 4
    assert await change(PASSWORD) == 429
    assert (await client.get("/account")).status == 200  # still signed in: nothing changed
    assert (await sign_in(client, ROLE_USERS[Role.ARCHIVIST])).status == 429


async def test_a_leader_changing_their_own_password_must_give_the_current_one(
    client: TestClient,
) -> None:
    """The users page resets other people's passwords; one's own is changed on the account
    page, with the current password, whatever the role."""
    csrf = await as_role(client, Role.LEADER)
    me = ROLE_USERS[Role.LEADER]
    page = await (await client.get("/users")).text()
    assert f'action="/users/{ROLE_USERS[Role.CLERK]}"' in page
    assert f'action="/users/{me}"' not in page
    r = await client.post(f"/users/{me}", data={
        "csrf_token": csrf, "action": "password", "password": "mật khẩu chiếm quyền"})
    assert r.status == 422 and "mật khẩu hiện tại" in await r.text()
    assert (await sign_in(client, me, "mật khẩu chiếm quyền")).status == 401
    assert (await sign_in(client, me, PASSWORD)).status == 303
