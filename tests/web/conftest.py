"""Fixtures for the web UI: the app in-process on a fresh data folder, a user per role."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

import nacl.pwhash
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient

from appliance.accounts import HashParams, Role
from appliance.store import Store
from web_ui.app import create_app
from web_ui.config import WebConfig
from web_ui.services import SERVICES, Services
from web_ui.throttle import Throttle

# Real argon2id, at libsodium's minimum cost so that a test creating five users stays fast.
FAST_HASH = HashParams(nacl.pwhash.argon2id.OPSLIMIT_MIN, nacl.pwhash.argon2id.MEMLIMIT_MIN)
PASSWORD = "mật khẩu đủ dài 123"
ROLE_USERS = {role: f"u-{role.value}" for role in Role}
_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


class FakeTime:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def web_config(data_dir: Path) -> WebConfig:
    return WebConfig(data_dir=data_dir, mdns=False, max_upload=2 * 1024 * 1024,
                     max_pixels=4_000_000)


@pytest_asyncio.fixture
async def client(
    aiohttp_client: Callable[..., Awaitable[TestClient]],
    store: Store,
    web_config: WebConfig,
    fake_time: FakeTime,
) -> TestClient:
    app = create_app(web_config, store, hash_params=FAST_HASH, throttle=Throttle(now=fake_time))
    c = await aiohttp_client(app)
    services = c.app[SERVICES]
    for role, name in ROLE_USERS.items():
        services.accounts.add_user(name, role.value, PASSWORD, "test", f"Người {role.value}")
    return c


def services_of(client: TestClient) -> Services:
    return client.app[SERVICES]


def csrf_of(html: str) -> str:
    m = _CSRF.search(html)
    assert m, "page has no CSRF token"
    return m.group(1)


async def sign_in(client: TestClient, username: str, password: str = PASSWORD) -> Any:
    """Sign in through the real form (GET for the token, POST); returns the POST response."""
    page = await client.get("/signin")
    token = csrf_of(await page.text())
    return await client.post(
        "/signin",
        data={"username": username, "password": password, "csrf_token": token, "next": "/"},
        allow_redirects=False,
    )


async def as_role(client: TestClient, role: Role) -> str:
    """Sign in as the role's user; returns a CSRF token valid for the new session."""
    resp = await sign_in(client, ROLE_USERS[role])
    assert resp.status == 303, await resp.text()
    page = await client.get("/account")
    assert page.status == 200
    return csrf_of(await page.text())


class SlowArgon2(list[str]):
    """The passwords verified so far; each verification waits on ``gate`` (at most 10 s), so
    that a burst of requests piles up exactly as it would behind a slow argon2id."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    async def settle(self, quiet: float = 0.5, timeout: float = 10.0) -> None:
        """Wait until verifications have started and no more have for ``quiet`` seconds."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        seen, since = -1, loop.time()
        while loop.time() < end:
            await asyncio.sleep(0.05)
            if len(self) != seen:
                seen, since = len(self), loop.time()
            elif seen > 0 and loop.time() - since >= quiet:
                return


def slow_argon2(monkeypatch: pytest.MonkeyPatch, module: ModuleType) -> SlowArgon2:
    """Count (and hold at a gate) every ``check_password`` call made through ``module``; give
    the loop enough threads that nothing but the throttle limits how many run at once."""
    real = module.check_password
    calls = SlowArgon2()

    def check(pw_hash: bytes, password: str) -> bool:
        calls.append(password)
        calls.gate.wait(10)
        return bool(real(pw_hash, password))

    monkeypatch.setattr(module, "check_password", check)
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=80))
    return calls
