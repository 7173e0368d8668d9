"""Every route of the one table, requested as every role: allowed ones pass the gate, others get
403 (signed in) or the sign-in page / 401 (signed out)."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from appliance.accounts import Role
from web_ui import permissions

from .conftest import as_role

SAMPLE = {
    "id": "00000000-0000-0000-0000-000000000000",
    "sha256": "0" * 64,
    "code": "000.21.08.H49.2025.01.VP",
    "kind": "incoming",
    "use_id": "00000000-0000-0000-0000-000000000001",
    "year": "2025",
    "fmt": "pdf",
    "username": "nobody",
    "token_id": "abc",
    "name": "app.css",
    "n": "1",
    "item": "1",
    "page": "1",
}


def _url(route: permissions.Route) -> str:
    path = route.path
    for k, v in SAMPLE.items():
        path = path.replace("{" + k + "}", v)
    return path


def test_every_route_in_the_table_is_served() -> None:
    """The app refuses to start with a route missing from the table (and vice versa)."""
    from pathlib import Path

    from web_ui.app import create_app
    from web_ui.config import WebConfig

    app = create_app(WebConfig(Path("/nonexistent"), mdns=False))
    served = {(r.method, r.resource.canonical) for r in app.router.routes()  # type: ignore[union-attr]
              if r.method != "HEAD"}
    table = {(r.method, r.path) for r in permissions.ROUTES}
    assert served == table


@pytest.mark.asyncio
@pytest.mark.parametrize("role", list(Role))
async def test_each_role_gets_exactly_its_routes(client: TestClient, role: Role) -> None:
    csrf = await as_role(client, role)
    for route in permissions.ROUTES:
        if route.name in ("signout", "account_password"):
            continue  # would end the session under test; covered in test_auth
        headers = {"X-CSRF-Token": csrf}
        resp = await client.request(route.method, _url(route), headers=headers,
                                    allow_redirects=False)
        allowed = permissions.allowed(route.name, role)
        if allowed:
            refused = (403, 500) if route.name == "signin" else (401, 403, 500)
            assert resp.status not in refused, (role, route.name, await resp.text())
        else:
            assert resp.status == 403, (role, route.name, resp.status)


@pytest.mark.asyncio
async def test_signed_out_requests_are_sent_to_sign_in(client: TestClient) -> None:
    for route in permissions.ROUTES:
        resp = await client.request(route.method, _url(route), allow_redirects=False)
        if route.public:
            assert resp.status != 401, route.name
            if resp.status == 403:  # a public form posted without its CSRF token
                assert route.method == "POST" and "CSRF" in await resp.text(), route.name
        elif route.api:
            assert resp.status == 401, route.name
            assert (await resp.json())["error"]["code"] == "AuthError"
        elif route.method == "GET":
            assert resp.status == 303, route.name
            assert resp.headers["Location"].startswith("/signin?next=")
        else:
            # A signed-out POST has neither session nor a CSRF token; either refusal is right.
            assert resp.status in (303, 403), route.name


@pytest.mark.asyncio
async def test_technician_never_sees_record_contents(client: TestClient) -> None:
    from tests.conftest import incoming

    from .conftest import services_of

    s = services_of(client)
    rec = s.store.register_incoming(incoming(Subject="Bí mật kỹ thuật không được thấy"))
    await as_role(client, Role.TECHNICIAN)
    home = await (await client.get("/")).text()
    assert "Bí mật kỹ thuật" not in home
    assert (await client.get(f"/documents/{rec.record.id}")).status == 403
    assert (await client.get("/search?q=bi+mat")).status == 403
    device = await client.get("/device")
    assert device.status == 200
