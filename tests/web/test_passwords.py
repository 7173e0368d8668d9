"""The password rule (ASVS 2.1.1, 2.1.7): 12 characters at least, and no common password."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from appliance.accounts import Role, validate_password
from appliance.errors import AccountError

from .conftest import ROLE_USERS, as_role, services_of
from .server import luutru


@pytest.mark.parametrize("password", [
    "mật khẩu dài",  # 12 characters
    "Ngày 2/9 trời nắng",
    "correct horse battery staple",
])
def test_twelve_characters_that_are_not_common_pass(password: str) -> None:
    assert validate_password(password) == password


@pytest.mark.parametrize("password", ["", "ngắn", "mật khẩu ok", "12345678901"])
def test_fewer_than_twelve_characters_are_refused(password: str) -> None:
    with pytest.raises(AccountError) as exc:
        validate_password(password)
    assert "ít nhất 12" in str(exc.value) and "at least 12" in str(exc.value)


@pytest.mark.parametrize("password", [
    "123456789012", "password1234", "Password1234", "P@ssw0rd1234", "qwertyuiop123",
    "matkhau12345", "Mật khẩu 2025!", "MAT-KHAU-123456", "anhyeuem1234", "admin@123456",
    "aaaaaaaaaaaa", "abababababab", "1q2w3e4r5t6y",
])
def test_common_passwords_are_refused_whatever_their_case_marks_or_separators(
    password: str,
) -> None:
    with pytest.raises(AccountError) as exc:
        validate_password(password)
    assert "quá phổ biến" in str(exc.value) and "too common" in str(exc.value)


@pytest.mark.asyncio
async def test_the_pages_say_it_in_the_language_of_the_ui(client: TestClient) -> None:
    csrf = await as_role(client, Role.LEADER)
    page = await (await client.get("/users")).text()
    assert 'minlength="12"' in page and 'minlength="10"' not in page
    short = await client.post("/users", data={
        "csrf_token": csrf, "username": "ngan", "role": "clerk", "password": "mười ký tự!"})
    text = await short.text()
    assert short.status == 422 and "Mật khẩu phải có ít nhất 12 ký tự" in text
    assert "at least" not in text
    common = await client.post(f"/users/{ROLE_USERS[Role.CLERK]}", data={
        "csrf_token": csrf, "action": "password", "password": "matkhau123456"})
    assert common.status == 422 and "quá phổ biến" in await common.text()
    await client.post("/lang", data={"lang": "en", "next": "/", "csrf_token": csrf})
    short = await client.post("/users", data={
        "csrf_token": csrf, "username": "ngan", "role": "clerk", "password": "mười ký tự!"})
    text = await short.text()
    assert "at least 12 characters" in text and "Mật khẩu" not in text
    own = await client.post("/account/password", data={
        "csrf_token": csrf, "current": "mật khẩu đủ dài 123", "new": "password1234",
        "confirm": "password1234"})
    assert own.status == 422 and "too common" in await own.text()
    assert services_of(client).accounts.get_user("ngan") is None


@pytest.mark.asyncio
async def test_the_api_refuses_a_short_password(client: TestClient) -> None:
    _, token = services_of(client).accounts.create_token(ROLE_USERS[Role.LEADER], "t", "test")
    r = await client.post("/api/v1/users", headers={"Authorization": f"Bearer {token}"},
                          json={"username": "ketoan", "role": "auditor",
                                "password": "mười một ký"})
    assert r.status == 422 and "12" in (await r.json())["error"]["message"]


def test_user_add_and_passwd_commands_apply_the_rule(data_dir: Path) -> None:
    r = luutru("user", "add", "--data", str(data_dir), "--username", "vanthu", "--role",
               "clerk", "--password-stdin", stdin="mười một ký\n")
    assert r.returncode == 1 and "12" in r.stderr
    r = luutru("user", "add", "--data", str(data_dir), "--username", "vanthu", "--role",
               "clerk", "--password-stdin", stdin="password1234\n")
    assert r.returncode == 1 and "phổ biến" in r.stderr
    r = luutru("user", "add", "--data", str(data_dir), "--username", "vanthu", "--role",
               "clerk", "--password-stdin", stdin="mật khẩu của văn thư\n")
    assert r.returncode == 0, r.stderr
    r = luutru("user", "passwd", "--data", str(data_dir), "--username", "vanthu",
               "--password-stdin", stdin="qwertyuiop123\n")
    assert r.returncode == 1 and "phổ biến" in r.stderr


def test_first_users_get_passwords_that_meet_the_rule() -> None:
    from appliance.accounts import random_password

    for _ in range(200):
        assert validate_password(random_password())


def test_the_core_vietnamese_words_equal_the_catalog() -> None:
    """The password rule's messages the command line prints in Vietnamese are the catalog's."""
    from appliance.passwords import VIETNAMESE
    from web_ui import i18n

    vi = i18n.translations("vi")
    for msgid, text in VIETNAMESE.items():
        assert vi.gettext(msgid) == text
