"""The centre's dashboard and the background agent against an in-process centre server."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient

from sync.agent import run_agent
from sync.central.centre import Centre
from sync.central.server import create_app
from sync.state import load_enrolment, load_state, save_enrolment
from sync.status import sync_status
from tests.sync.conftest import Appliance


@pytest.fixture(params=["sqlite", "postgresql"])
def centre_db(request: pytest.FixtureRequest) -> str:
    """Every test here runs against both storage backends."""
    return str(request.param)

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def client(
    centre: Centre, aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]]
) -> TestClient[Any, Any]:
    return await aiohttp_client(create_app(centre))


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
