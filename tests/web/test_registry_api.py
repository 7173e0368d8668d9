"""Issue 18's API contract: corrections (PATCH, cancel, removing an attachment, taking out of a
hồ sơ), the leader's direction, the handler's progress and task list; refusals answer 409
(closed, frozen, cancelled) or 422 (invalid) with a Vietnamese message and the field's label."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from appliance.accounts import Role
from appliance.archive import holds
from tests.conftest import incoming

from . import samples
from .conftest import ROLE_USERS, services_of
from .test_api import _auth

pytestmark = pytest.mark.asyncio


async def _register(client: TestClient, **fields: object) -> dict[str, object]:
    body = {"TypeName": "Nghị quyết", "CodeNumber": "12", "CodeNotation": "2025/NQ-HĐND",
            "OrganName": "Hội đồng nhân dân huyện Hải Hà", "IssuedDate": "10/09/2025",
            "Subject": "Nghị quyết về kế hoạch đầu tư công năm 2026", **fields}
    r = await client.post("/api/v1/documents/incoming", json=body,
                          headers=_auth(client, Role.CLERK))
    assert r.status == 201, await r.text()
    doc: dict[str, object] = (await r.json())["document"]
    return doc


async def test_real_numbers_and_no_number_through_the_api(client: TestClient) -> None:
    doc = await _register(client)
    assert doc["data"]["CodeNotation"] == "2025/NQ-HĐND"  # type: ignore[index]
    petition = await client.post("/api/v1/documents/incoming", headers=_auth(client, Role.CLERK),
                                 json={"TypeName": "Đơn", "OrganName": "Bà Trần Thị Hoa",
                                       "Subject": "Đơn đề nghị hỗ trợ sửa nhà"})
    assert petition.status == 201, await petition.text()
    data = (await petition.json())["document"]["data"]
    assert "CodeNumber" not in data and data["ArrivalNumber"] == 2
    business = await _register(client, CodeNumber="1234", CodeNotation="CV-CTY",
                               OrganName="Công ty TNHH Minh Phát")
    assert business["data"]["CodeNotation"] == "CV-CTY"  # type: ignore[index]


async def test_patch_cancel_and_remove_content(client: TestClient) -> None:
    s = services_of(client)
    h = _auth(client, Role.CLERK)
    doc = await _register(client)
    did = str(doc["id"])
    r = await client.patch(f"/api/v1/documents/{did}", headers=h,
                           json={"changes": {"ArrivalDate": "2025-09-14"},
                                 "reason": "Nhập nhầm ngày đến"})
    assert r.status == 200, await r.text()
    new = (await r.json())["document"]
    assert new["version"] == 2 and new["data"]["ArrivalDate"] == "2025-09-14"
    hist = await (await client.get(f"/api/v1/documents/{did}/history", headers=h)).json()
    assert hist["items"][-1]["note"] == "Nhập nhầm ngày đến"
    # No reason: 422 naming the field as people know it.
    r = await client.patch(f"/api/v1/documents/{did}", headers=h,
                           json={"changes": {"Subject": "V/v khác"}, "reason": ""})
    err = (await r.json())["error"]
    assert r.status == 422 and err["field"] == "Reason" and err["label"] == "Lý do"
    assert "Lý do" in err["message"]
    # An impossible date: 422 in Vietnamese with the field's label, not its code name.
    r = await client.patch(f"/api/v1/documents/{did}", headers=h,
                           json={"changes": {"IssuedDate": "31/02/2025"}, "reason": "x"})
    err = (await r.json())["error"]
    assert r.status == 422 and err["field"] == "IssuedDate" and "IssuedDate" not in err["message"]
    assert "không có ngày" in err["message"]
    # The number never changes.
    r = await client.patch(f"/api/v1/documents/{did}", headers=h,
                           json={"changes": {"ArrivalNumber": 7}, "reason": "x"})
    assert r.status == 422 and (await r.json())["error"]["field"] == "ArrivalNumber"
    # An attachment removed: a new version without it; the file stays in the store.
    up = await client.post(f"/api/v1/documents/{did}/content?name=nham.png", data=samples.png(),
                           headers={**h, "Content-Type": "image/png"})
    sha = (await up.json())["content"]["sha256"]
    r = await client.delete(f"/api/v1/documents/{did}/content/{sha}",
                            params={"reason": "Nhầm tệp"}, headers=h)
    assert r.status == 200, await r.text()
    assert "Content" not in (await r.json())["document"]["data"]
    assert s.store.content.exists(sha)
    # Cancelled: the number stays, nothing changes any more (409 with the reason).
    r = await client.post(f"/api/v1/documents/{did}/cancel", headers=h,
                          json={"reason": "Đăng ký trùng"})
    assert r.status == 200 and (await r.json())["document"]["data"]["CancelReason"] == \
        "Đăng ký trùng"
    r = await client.patch(f"/api/v1/documents/{did}", headers=h,
                           json={"changes": {"Subject": "V/v khác"}, "reason": "x"})
    assert r.status == 409 and "huỷ" in (await r.json())["error"]["message"]


async def test_refusals_for_closed_and_frozen(client: TestClient) -> None:
    s = services_of(client)
    h = _auth(client, Role.CLERK)
    f = s.store.open_file({"FileCatalog": 2025, "FileNotation": "05.VP", "Title": "Hồ sơ E",
                           "Maintenance": "05"})
    code = f.data["FileCode"]
    in_file = s.store.register_incoming(incoming(CodeNumber="3", FileCode=code)).record
    other = s.store.register_incoming(incoming(CodeNumber="4")).record
    r = await client.post(f"/api/v1/documents/{other.id}/file", headers=h,
                          json={"FileCode": code})
    assert r.status in (200, 201), await r.text()
    r = await client.delete(f"/api/v1/documents/{other.id}/file/{code}?reason=Nh%E1%BA%A7m",
                            headers=h)
    assert r.status == 200, await r.text()
    assert s.store.reader().execute(
        'SELECT count(*) FROM memberships WHERE "DocumentId" = ?', (other.id,)).fetchone()[0] == 0
    s.store.close_file(code)
    r = await client.patch(f"/api/v1/documents/{in_file.id}", headers=h,
                           json={"changes": {"Keyword": "x"}, "reason": "y"})
    assert r.status == 409
    frozen = s.store.register_incoming(incoming(CodeNumber="5")).record
    holds.freeze(s.store, "document", frozen.id, "Thanh tra", "QĐ 1")
    r = await client.post(f"/api/v1/documents/{frozen.id}/cancel", headers=h,
                          json={"reason": "x"})
    assert r.status == 409


async def test_direction_progress_and_tasks(client: TestClient) -> None:
    s = services_of(client)
    doc = await _register(client)
    did = str(doc["id"])
    handler, leader = ROLE_USERS[Role.HANDLER], ROLE_USERS[Role.LEADER]
    # A clerk cannot direct; a leader can.
    r = await client.post(f"/api/v1/documents/{did}/direction", headers=_auth(client, Role.CLERK),
                          json={"direction": "x", "lead": handler})
    assert r.status == 403
    r = await client.post(f"/api/v1/documents/{did}/direction",
                          headers=_auth(client, Role.LEADER),
                          json={"direction": "Giao chuyên viên địa chính tham mưu trả lời",
                                "lead": handler, "support": [leader], "due": "2025-09-20"})
    assert r.status == 200, await r.text()
    handling = (await r.json())["document"]["data"]["Handling"]
    assert handling["lead"] == handler and handling["due"] == "2025-09-20"
    # Unknown handler: 422 with the label.
    r = await client.post(f"/api/v1/documents/{did}/direction",
                          headers=_auth(client, Role.LEADER),
                          json={"direction": "x", "lead": "nobody"})
    err = (await r.json())["error"]
    assert r.status == 422 and err["field"] == "Lead" and err["label"] == "Người chủ trì"
    hh = _auth(client, Role.HANDLER)
    tasks = await (await client.get("/api/v1/tasks?mine=1", headers=hh)).json()
    assert [t["id"] for t in tasks["items"]] == [did]
    # Overdue once the deadline passes (the test clock is 15/09/2025).
    s.store.clock.set(s.store.clock.now().replace(day=25))  # type: ignore[attr-defined]
    late = await (await client.get("/api/v1/tasks?mine=1&overdue=1", headers=hh)).json()
    assert [t["id"] for t in late["items"]] == [did] and late["items"][0]["overdue"] is True
    # Someone the leader did not name cannot report on it.
    r = await client.post(f"/api/v1/documents/{did}/progress",
                          headers=_auth(client, Role.ARCHIVIST), json={"note": "x"})
    assert r.status == 403
    # The answer: an issued văn bản đi closes it.
    ch = _auth(client, Role.CLERK)
    draft = await client.post("/api/v1/documents/outgoing", headers=ch, json={
        "TypeName": "Công văn", "CodeNotation": "UBND-ĐC",
        "Subject": "V/v trả lời về kế hoạch đầu tư công",
        "paper": True})  # signed on paper: numbered without signatures (issue 19)
    out_id = (await draft.json())["document"]["id"]
    assert (await client.post(f"/api/v1/documents/{out_id}/issue", headers=ch)).status == 200
    r = await client.post(f"/api/v1/documents/{did}/progress", headers=hh,
                          json={"note": "Đã có văn bản trả lời", "done": True, "answer": out_id})
    assert r.status == 200, await r.text()
    done = (await r.json())["document"]["data"]["Handling"]
    assert done["status"] == "done" and done["answer"] == out_id
    assert (await (await client.get("/api/v1/tasks?mine=1", headers=hh)).json())["items"] == []
    # Done: no more progress on it.
    r = await client.post(f"/api/v1/documents/{did}/progress", headers=hh, json={"note": "x"})
    assert r.status == 409


async def test_for_information_through_the_api_and_the_page(client: TestClient) -> None:
    """'Để biết': the API's for_information and the leader's form's check box; the page and
    the phiếu giải quyết say so, and no handler is asked for."""
    doc = await _register(client, CodeNumber="13")
    did = str(doc["id"])
    r = await client.post(f"/api/v1/documents/{did}/direction",
                          headers=_auth(client, Role.LEADER),
                          json={"direction": "Để biết", "for_information": True})
    assert r.status == 200, await r.text()
    h = (await r.json())["document"]["data"]["Handling"]
    assert h["info"] is True and h["status"] == "done" and h["lead"] is None
    other = str((await _register(client, CodeNumber="14"))["id"])
    from .conftest import as_role

    csrf = await as_role(client, Role.LEADER)
    page = await (await client.get(f"/documents/{other}")).text()
    assert 'id="f-info"' in page
    r = await client.post(f"/documents/{other}/direction", allow_redirects=False, data={
        "csrf_token": csrf, "Instruction": "Lưu, để biết", "info": "1", "Lead": ""})
    assert r.status == 303, await r.text()
    shown = await (await client.get(f"/documents/{other}")).text()
    assert 'id="for-information"' in shown and "Để biết, không giao xử lý." in shown
    assert ">Để biết</span>" in shown
    slip = await client.get(f"/documents/{other}/phieu-giai-quyet.pdf")
    assert slip.status == 200 and (await slip.read()).startswith(b"%PDF")
    inbox = await (await client.get("/inbox")).text()
    assert other not in inbox.split('id="awaiting"', 1)[1]
