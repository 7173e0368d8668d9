"""API tokens: an expiry (90 days by default), a scope (read or read-write), never minted by
a token, and what an old database's tokens become."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from appliance.accounts import Accounts, Role, TokenScope, ensure_schema
from appliance.clock import ManualClock, vn_date
from appliance.store import Store

from .conftest import FAST_HASH, ROLE_USERS, as_role, services_of
from .server import luutru

INCOMING = {"TypeName": "Công văn", "CodeNumber": "9", "CodeNotation": "SNV-VP",
            "OrganName": "Sở Nội vụ", "Subject": "V/v thử khóa API"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.asyncio
async def test_a_token_expires_after_90_days_by_default(
    client: TestClient, clock: ManualClock
) -> None:
    s = services_of(client)
    token_id, token = s.accounts.create_token(ROLE_USERS[Role.CLERK], "script", "test")
    [row] = s.accounts.list_tokens(ROLE_USERS[Role.CLERK])
    assert row["id"] == token_id and row["scope"] == "read-write"
    expires = dt.datetime.fromisoformat(row["expires_at"])
    assert expires - clock.now() == dt.timedelta(days=90)
    assert (await client.get("/api/v1/me", headers=bearer(token))).status == 200
    clock.advance(90 * 86400 - 1)
    assert (await client.get("/api/v1/me", headers=bearer(token))).status == 200
    clock.advance(2)
    assert (await client.get("/api/v1/me", headers=bearer(token))).status == 401


@pytest.mark.asyncio
async def test_a_read_only_token_gets_403_on_anything_but_get_and_head(
    client: TestClient,
) -> None:
    s = services_of(client)
    _, token = s.accounts.create_token(ROLE_USERS[Role.CLERK], "report", "test",
                                       scope=TokenScope.READ)
    assert (await client.get("/api/v1/me", headers=bearer(token))).status == 200
    before = s.store.count("document")
    r = await client.post("/api/v1/documents/incoming", json=INCOMING, headers=bearer(token))
    assert r.status == 403 and "chỉ đọc" in (await r.json())["error"]["message"]
    r = await client.post("/signout", headers=bearer(token), allow_redirects=False)
    assert r.status == 403
    assert s.store.count("document") == before


@pytest.mark.asyncio
async def test_a_token_cannot_mint_tokens(client: TestClient) -> None:
    """A leaked token must not be able to renew itself past its expiry."""
    s = services_of(client)
    _, token = s.accounts.create_token(ROLE_USERS[Role.LEADER], "script", "test")
    r = await client.post("/account/tokens", data={"name": "mới"}, headers=bearer(token))
    assert r.status == 403
    assert len(s.accounts.list_tokens(ROLE_USERS[Role.LEADER])) == 1


@pytest.mark.asyncio
async def test_the_account_page_creates_and_lists_tokens_with_scope_and_expiry(
    client: TestClient, clock: ManualClock
) -> None:
    csrf = await as_role(client, Role.CLERK)
    page = await (await client.get("/account")).text()
    assert 'name="scope"' in page and 'name="days"' in page
    r = await client.post("/account/tokens", data={
        "csrf_token": csrf, "name": "máy quét", "scope": "read", "days": "30"})
    page = await r.text()
    token = page.split('id="new-token">')[1].split("<")[0]
    until = vn_date((clock.now() + dt.timedelta(days=30)).date())
    assert re.search(r"\d\d/\d\d/\d{4}", until)
    assert f"Hết hạn ngày {until}" in page and "chỉ đọc" in page
    r2 = await client.post("/api/v1/documents/incoming", json=INCOMING, headers=bearer(token))
    assert r2.status == 403
    listed = await (await client.get("/account")).text()
    assert until in listed and "máy quét" in listed and "chỉ đọc" in listed
    for bad in ("0", "400", "ba mươi"):
        r = await client.post("/account/tokens", data={
            "csrf_token": csrf, "name": "x", "scope": "read", "days": bad})
        assert r.status == 422, bad
    r = await client.post("/account/tokens", data={
        "csrf_token": csrf, "name": "x", "scope": "admin", "days": "30"})
    assert r.status == 422
    en = await client.post("/lang", data={"lang": "en", "next": "/account", "csrf_token": csrf})
    text = await en.text()
    assert "Expires" in text and "read-only" in text and until in text


def test_tokens_of_an_old_database_are_read_write_and_expire_90_days_after_the_upgrade(
    store: Store, clock: ManualClock
) -> None:
    """A database from before token expiry had neither column: its tokens keep working, as
    read-write, until 90 days after the schema is upgraded."""
    accounts = Accounts(store, b"k" * 32, FAST_HASH)

    def old_schema(txn: object) -> None:
        conn = txn.conn  # type: ignore[attr-defined]
        conn.execute("CREATE TABLE web_users (username TEXT PRIMARY KEY, full_name TEXT NOT "
                     "NULL DEFAULT '', role TEXT NOT NULL, pw_hash BLOB NOT NULL, disabled "
                     "INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL, changed_log_index "
                     "INTEGER NOT NULL)")
        conn.execute("CREATE TABLE web_tokens (id TEXT PRIMARY KEY, username TEXT NOT NULL, "
                     "name TEXT NOT NULL, token_hash BLOB NOT NULL UNIQUE, created_at TEXT NOT "
                     "NULL, revoked INTEGER NOT NULL DEFAULT 0)")
        conn.execute("INSERT INTO web_users VALUES ('vanthu', '', 'clerk', x'00', 0, "
                     "'2024-01-01T08:00:00+07:00', 1)")
        conn.execute("INSERT INTO web_tokens (id, username, name, token_hash, created_at) "
                     "VALUES ('a1b2c3', 'vanthu', 'cũ', ?, '2024-01-01T08:00:00+07:00')",
                     (accounts.keyed("token", "lt_a1b2c3_old"),))

    store.writer_or_fail().submit(old_schema, guarded=False).result()
    clock.advance(86400)
    ensure_schema(store)
    ensure_schema(store)  # idempotent
    found = accounts.token_user("lt_a1b2c3_old")
    assert found is not None and found.user.username == "vanthu"
    assert found.scope is TokenScope.READ_WRITE
    [row] = accounts.list_tokens("vanthu")
    assert dt.datetime.fromisoformat(row["expires_at"]) - clock.now() == dt.timedelta(days=90)
    clock.advance(90 * 86400 + 1)
    assert accounts.token_user("lt_a1b2c3_old") is None


def test_the_token_command_takes_a_scope_and_an_expiry(data_dir: Path) -> None:
    added = luutru("user", "add", "--data", str(data_dir), "--username", "vanthu",
                   "--role", "clerk", "--password-stdin", stdin="mật khẩu của văn thư\n")
    assert added.returncode == 0, added.stderr
    r = luutru("user", "token", "--data", str(data_dir), "--username", "vanthu",
               "--scope", "read", "--expires-days", "30")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().startswith("lt_")
    assert "read" in r.stderr and re.search(r"\d\d/\d\d/\d{4}", r.stderr), r.stderr
    r = luutru("user", "token", "--data", str(data_dir), "--username", "vanthu")
    assert r.returncode == 0 and "read-write" in r.stderr
    bad = luutru("user", "token", "--data", str(data_dir), "--username", "vanthu",
                 "--expires-days", "0")
    assert bad.returncode != 0
