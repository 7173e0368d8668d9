"""The electronic inbox in the web UI and the JSON API: list with verdicts, register, return;
who may do what; Vietnamese errors that keep the form."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from appliance.accounts import Role
from appliance.edxml import inbox, intake
from appliance.store import Store
from tests.archive.conftest import pdf_bytes
from tests.edxml_field import FieldAttachment, FieldDoc, field_package

from .conftest import ROLE_USERS, as_role, services_of


def _auth(client: TestClient, role: Role) -> dict[str, str]:
    _, token = services_of(client).accounts.create_token(ROLE_USERS[role], "t", "test")
    return {"Authorization": f"Bearer {token}"}


def _receive(store: Store, subject: str = "V/v tổ chức Hội nghị tổng kết năm",
             to: tuple[tuple[str, str], ...] | None = None) -> str:
    doc = FieldDoc(subject=subject) if to is None else FieldDoc(subject=subject, to=to)
    raw = field_package(None, doc, [FieldAttachment("cv.pdf", pdf_bytes(subject))])
    return intake.import_package(store, raw, source="test", online=False).item.id


@pytest.mark.asyncio
async def test_api_lists_registers_and_returns(client: TestClient, store: Store) -> None:
    a = _receive(store)
    b = _receive(store, "V/v góp ý dự thảo (gửi nhầm)", (("000.21.99.H49", "UBND xã Khác"),))
    headers = _auth(client, Role.CLERK)
    listed = await (await client.get("/api/v1/inbox/electronic", headers=headers)).json()
    by_id = {i["id"]: i for i in listed["items"]}
    assert by_id[a]["verdict"] == "unverified"
    assert by_id[a]["verdict_label"] == "Không kiểm tra được chữ ký"
    assert by_id[b]["misaddressed"] and by_id[a]["status"] == "received"
    refused = await client.post(f"/api/v1/inbox/electronic/{a}/register", headers=headers,
                                json={})
    assert refused.status == 409 and "xác minh" in (await refused.json())["error"]["message"]
    ok = await client.post(f"/api/v1/inbox/electronic/{a}/register", headers=headers,
                           json={"accept_unverified": True, "fields": {"Keyword": "hội nghị"}})
    assert ok.status == 201
    doc = (await ok.json())["document"]
    assert doc["data"]["ArrivalNumber"] >= 1 and doc["data"]["Keyword"] == "hội nghị"
    misaddressed = await client.post(f"/api/v1/inbox/electronic/{b}/register",
                                     headers=headers, json={"accept_unverified": True})
    assert misaddressed.status == 409
    empty = await client.post(f"/api/v1/inbox/electronic/{b}/return", headers=headers,
                              json={"reason": " "})
    assert empty.status == 422
    back = await client.post(f"/api/v1/inbox/electronic/{b}/return", headers=headers,
                             json={"reason": "Gửi nhầm nơi nhận"})
    assert back.status == 200 and (await back.json())["status"] == "returned"
    waiting = await (await client.get("/api/v1/inbox/electronic?status=received",
                                      headers=headers)).json()
    assert waiting["items"] == []
    assert [p.code for p in inbox.unsent(store.reader())] == ["01", "01", "03", "02"]


@pytest.mark.asyncio
async def test_only_the_clerk_decides(client: TestClient, store: Store) -> None:
    a = _receive(store)
    for role in (Role.LEADER, Role.AUDITOR, Role.ARCHIVIST):
        headers = _auth(client, role)
        assert (await client.get("/api/v1/inbox/electronic", headers=headers)).status == 200
        resp = await client.post(f"/api/v1/inbox/electronic/{a}/return", headers=headers,
                                 json={"reason": "x"})
        assert resp.status == 403
    tech = _auth(client, Role.TECHNICIAN)
    assert (await client.get("/api/v1/inbox/electronic", headers=tech)).status == 403


@pytest.mark.asyncio
async def test_pages_show_the_verdict_and_keep_the_form(client: TestClient,
                                                        store: Store) -> None:
    a = _receive(store)
    csrf = await as_role(client, Role.CLERK)
    page = await (await client.get("/inbox/electronic")).text()
    assert "Văn bản điện tử đến" in page and "Không kiểm tra được chữ ký" in page
    assert "V/v tổ chức Hội nghị tổng kết năm" in page
    item = await (await client.get(f"/inbox/electronic/{a}")).text()
    assert 'id="accept-unverified"' in item and "Ủy ban nhân dân tỉnh Quảng Ninh" in item
    resp = await client.post(f"/inbox/electronic/{a}/return",
                             data={"reason": "", "csrf_token": csrf})
    assert resp.status == 422 and "Cần ghi lý do" in await resp.text()
    resp = await client.post(f"/inbox/electronic/{a}/register",
                             data={"csrf_token": csrf}, allow_redirects=False)
    assert resp.status == 409 and "xác minh" in await resp.text()
    resp = await client.post(f"/inbox/electronic/{a}/register",
                             data={"csrf_token": csrf, "accept_unverified": "1"},
                             allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith("/documents/")
    report = store.reader().execute("SELECT report_html FROM edxml_inbox").fetchone()[0]
    shown = await client.get(f"/inbox/electronic/{a}/files/{report}")
    assert shown.status == 200 and "style-src 'unsafe-inline'" in shown.headers[
        "Content-Security-Policy"] and "script-src" not in shown.headers[
        "Content-Security-Policy"]
    assert (await client.get(f"/inbox/electronic/{a}/files/{'0' * 64}")).status == 404
