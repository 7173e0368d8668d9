"""The JSON API: the same operations as the pages, with token auth and JSON errors."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from appliance.accounts import Role
from web_ui import permissions
from web_ui.openapi import openapi_document

from . import samples
from .conftest import ROLE_USERS, services_of

pytestmark = pytest.mark.asyncio
INCOMING = {"TypeName": "Công văn", "CodeNumber": "88", "CodeNotation": "STC-NS",
            "OrganName": "Sở Tài chính", "Subject": "V/v quyết toán ngân sách xã năm 2024",
            "IssuedDate": "05/09/2025", "SignerInfo": {"Position": "Giám đốc",
                                                       "FullName": "Lê Thị Mai"}}


def _auth(client: TestClient, role: Role) -> dict[str, str]:
    _, token = services_of(client).accounts.create_token(ROLE_USERS[role], "t", "test")
    return {"Authorization": f"Bearer {token}"}


async def test_register_upload_view_issue_and_search(client: TestClient) -> None:
    h = _auth(client, Role.CLERK)
    r = await client.post("/api/v1/documents/incoming", json=INCOMING, headers=h)
    assert r.status == 201, await r.text()
    doc = (await r.json())["document"]
    assert doc["data"]["ArrivalNumber"] == 1 and doc["data"]["SignerFullName"] == "Lê Thị Mai"
    up = await client.post(f"/api/v1/documents/{doc['id']}/content?name=scan.png",
                           data=samples.png(), headers={**h, "Content-Type": "image/png"})
    assert up.status == 201, await up.text()
    uploaded = await up.json()
    sha = uploaded["content"]["sha256"]
    # A photo goes through capture: the document holds its page as a PDF, OCR under way.
    assert uploaded["content"]["mime"] == "application/pdf"
    assert uploaded["capture"] == {"step": "ocr", "error": None, "retrying": False}
    bad = await client.post(f"/api/v1/documents/{doc['id']}/content?name=x.pdf",
                            data=samples.pdf_with_javascript(), headers=h)
    assert bad.status == 422 and "JavaScript" in (await bad.json())["error"]["message"]
    got = await client.get(f"/api/v1/documents/{doc['id']}", headers=h)
    body = await got.json()
    assert body["version"] == 2 and body["seal"]["status"] in ("sealed", "pending")
    assert body["confirmed_at_province"] is False and body["capture"]["step"] == "ocr"
    content = await client.get(f"/api/v1/documents/{doc['id']}/content/{sha}", headers=h)
    assert content.status == 200 and content.headers["Content-Type"] == "application/pdf"
    found = await client.get("/api/v1/documents?q=quyet+toan+ngan+sach", headers=h)
    assert [i["id"] for i in (await found.json())["items"]] == [doc["id"]]
    draft = await client.post("/api/v1/documents/outgoing", headers=h, json={
        "TypeName": "Thông báo", "Subject": "Thông báo lịch tiếp công dân tháng 10",
        "paper": True})  # signed on paper: numbered without signatures (issue 19)
    body = await draft.json()
    assert draft.status == 201 and body["number_if_issued_now"] == "01/TB-UBND"
    issued = await client.post(f"/api/v1/documents/{body['document']['id']}/issue", headers=h)
    assert (await issued.json())["document"]["data"]["CodeNumber"] == "01"
    history = await client.get(f"/api/v1/documents/{doc['id']}/history", headers=h)
    kinds = [i["kind"] for i in (await history.json())["items"]]
    assert kinds[:3] == ["document.register", "document.content", "audit.view"]


async def test_errors_are_json_with_the_right_status(client: TestClient) -> None:
    h = _auth(client, Role.CLERK)
    cases = [
        ("POST", "/api/v1/documents/incoming", {"json": {**INCOMING, "PageAmount": "nhiều"}}, 422),
        ("POST", "/api/v1/documents/incoming", {"json": {**INCOMING, "Bogus": 1}}, 422),
        ("POST", "/api/v1/documents/incoming", {"json": {**INCOMING, "Content": []}}, 422),
        ("POST", "/api/v1/documents/incoming", {"data": b"{not json"}, 422),
        ("POST", "/api/v1/documents/incoming", {"json": ["a list"]}, 422),
        ("GET", "/api/v1/documents/khong-co", {}, 404),
        ("POST", "/api/v1/documents/khong-co/issue", {}, 404),
        ("GET", "/api/v1/files/000.21.08.H49.2025.99.XX", {}, 404),
        ("GET", "/api/v1/registers/sideways/2025", {}, 404),
        ("GET", "/api/v1/nowhere", {}, 404),
        ("GET", "/api/v1/users", {}, 403),
    ]
    for method, path, kw, status in cases:
        r = await client.request(method, path, headers=h, **kw)
        assert r.status == status, (path, await r.text())
        assert "message" in (await r.json())["error"]


async def test_files_and_register_over_the_api(client: TestClient) -> None:
    h = _auth(client, Role.ARCHIVIST)
    r = await client.post("/api/v1/files", headers=h, json={
        "FileCatalog": 2025, "FileNotation": "03.VP", "Title": "Hồ sơ ngân sách",
        "Maintenance": "Vĩnh viễn"})
    assert r.status == 201, await r.text()
    listed = await (await client.get("/api/v1/files?year=2025", headers=h)).json()
    assert [f["FileCode"] for f in listed["items"]] == ["000.21.08.H49.2025.03.VP"]
    clerk = _auth(client, Role.CLERK)
    await client.post("/api/v1/documents/incoming", json=INCOMING, headers=clerk)
    reg = await (await client.get("/api/v1/registers/incoming/2025", headers=h)).json()
    assert reg["title"] == "SỔ ĐĂNG KÝ VĂN BẢN ĐẾN" and reg["total"] == 1
    assert reg["rows"][0]["cells"][3] == "88/STC-NS"
    pdf = await client.get("/api/v1/registers/incoming/2025?format=pdf", headers=h)
    assert pdf.status == 200 and (await pdf.read()).startswith(b"%PDF")


async def test_the_retention_table_is_offered_and_used_over_the_api(client: TestClient) -> None:
    """GET /api/v1/retention lists the kinds with their TT 05 codes; a hồ sơ opened with a
    kind takes its period; one shorter than the table's is refused with the field named."""
    h = _auth(client, Role.ARCHIVIST)
    table = await (await client.get("/api/v1/retention", headers=h)).json()
    kinds = {i["id"]: i for i in table["items"]}
    assert kinds["TT10.quy-hoach.cong-van"]["maintenance"] == "07"
    assert kinds["TT10.quy-hoach.cong-van"]["years"] == 5
    r = await client.post("/api/v1/files", headers=h, json={
        "FileCatalog": 2025, "FileNotation": "04.VP", "Title": "Công văn quy hoạch",
        "RetentionRef": "TT10.quy-hoach.cong-van"})
    assert r.status == 201, await r.text()
    data = (await r.json())["data"]
    assert (data["Maintenance"], data["RetentionYears"]) == ("07", 5)
    r = await client.post("/api/v1/files", headers=h, json={
        "FileCatalog": 2025, "FileNotation": "05.VP", "Title": "Hồ sơ cán bộ",
        "RetentionRef": "TT10.can-bo.ho-so-ca-nhan", "Maintenance": "20 năm"})
    assert r.status == 422 and (await r.json())["error"]["field"] == "Maintenance"


async def test_openapi_describes_exactly_the_api_routes(client: TestClient) -> None:
    doc = await (await client.get("/api/v1/openapi.json")).json()
    assert doc == openapi_document()
    described = {(m.upper(), "/api/v1" + p) for p, ops in doc["paths"].items() for m in ops}
    routes = {(r.method, r.path) for r in permissions.ROUTES if r.api}
    assert described == routes
    for path, ops in doc["paths"].items():
        for op in ops.values():
            assert "401" in op["responses"] or op.get("security") == [], path


async def test_leader_creates_users_over_the_api(client: TestClient) -> None:
    h = _auth(client, Role.LEADER)
    r = await client.post("/api/v1/users", headers=h, json={
        "username": "ketoan", "role": "auditor", "password": "mật khẩu kế toán"})
    assert r.status == 201
    listed = await (await client.get("/api/v1/users", headers=h)).json()
    assert {"username": "ketoan", "role": "auditor", "full_name": "", "disabled": False} in \
        listed["items"]


@pytest.mark.parametrize("depth", [100_000, 900, 40])
async def test_deeply_nested_json_is_a_clear_400(client: TestClient, depth: int) -> None:
    """Nesting past 32 levels is refused before anything recurses (no RecursionError 500)."""
    h = {**_auth(client, Role.CLERK), "Content-Type": "application/json"}
    for body in ("[" * depth + "]" * depth,
                 '{"Subject": ' + "[" * depth + "]" * depth + "}",
                 '{"a":' * min(depth, 30_000) + "1" + "}" * min(depth, 30_000)):  # < 256 KiB
        r = await client.post("/api/v1/documents/incoming", data=body.encode(), headers=h)
        assert r.status == 400, (depth, r.status, (await r.text())[:200])
        err = (await r.json())["error"]
        assert "nested" in err["message"] and "32" in err["message"]
