"""Bulk reads are logged (one entry naming the records returned), and a document's history
shows its changes first, reads behind a toggle."""

from __future__ import annotations

import cbor2
import pytest
from aiohttp.test_utils import TestClient

from appliance.accounts import Role
from tests.conftest import incoming

from .conftest import ROLE_USERS, as_role, services_of

pytestmark = pytest.mark.asyncio


def _lists(client: TestClient) -> list[dict[str, object]]:
    store = services_of(client).store
    out = []
    for _, raw in store.entries():
        m = cbor2.loads(raw)
        if m["kind"] == "audit.list":
            out.append(dict(m["data"], actor=m["actor"]))
    return out


async def test_each_bulk_read_is_one_entry_naming_what_it_returned(client: TestClient) -> None:
    """API list and search, the register JSON and page, the hồ sơ lists, the search page and
    the home page each add one audit.list entry with the ids returned."""
    s = services_of(client)
    ids = [s.store.register_incoming(incoming(CodeNumber=str(n))).record.id for n in (1, 2, 3)]
    f = s.store.open_file({"FileCatalog": 2025, "FileNotation": "01.VP", "Title": "Hồ sơ",
                           "Maintenance": "05"})
    _, token = s.accounts.create_token(ROLE_USERS[Role.ARCHIVIST], "t", "test")
    h = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/v1/documents?limit=200", headers=h)).status == 200
    assert (await client.get("/api/v1/registers/incoming/2025", headers=h)).status == 200
    assert (await client.get("/api/v1/files?year=2025", headers=h)).status == 200
    got = _lists(client)
    assert [g["what"] for g in got] == ["search", "register", "files"]
    assert sorted(got[0]["ids"]) == sorted(ids) and sorted(got[1]["ids"]) == sorted(ids)  # type: ignore[arg-type]
    assert got[2]["ids"] == [f.data["FileCode"]] and got[0]["actor"] == ROLE_USERS[Role.ARCHIVIST]

    await as_role(client, Role.CLERK)
    for url in ("/search?q=thien+tai", "/registers/incoming/2025", "/files?year=2025", "/"):
        assert (await client.get(url)).status == 200, url
    got = _lists(client)[3:]
    assert [g["what"] for g in got] == ["search", "register", "files", "home"]
    assert all(g["via"] == "web" for g in got)
    assert sorted(got[1]["ids"]) == sorted(ids)  # type: ignore[arg-type]
    # A read that returned nothing is no read of a record.
    assert (await client.get("/search?q=khong+co+gi+ca")).status == 200
    assert len(_lists(client)) == 7


async def test_history_shows_changes_and_reads_behind_a_toggle(client: TestClient) -> None:
    s = services_of(client)
    doc = s.store.register_incoming(incoming()).record
    s.store.update_document(doc.id, {"Keyword": "bão"})
    await as_role(client, Role.CLERK)
    for _ in range(3):
        await client.get(f"/documents/{doc.id}")
    html = await (await client.get(f"/documents/{doc.id}")).text()
    section = html[html.index('id="history"'):]
    assert section.count("<tr><td>") == 2  # the registration and the edit
    assert "Hiện cả lượt xem, in và tải về (4)" in section
    html = await (await client.get(f"/documents/{doc.id}?reads=1")).text()
    section = html[html.index('id="history"'):]
    assert section.count("<tr><td>") == 7 and "Chỉ hiện các thay đổi" in section
