"""The five registers over HTTP (pages, PDF, XLSX, /api/v1) for any period; the postal and
kept-copy forms on an issued văn bản đi; the Danh mục's headings, approval and print."""

from __future__ import annotations

import datetime as dt
import re

import cbor2
import pytest
from aiohttp.test_utils import TestClient

from appliance import copyuse, fileplan, postal
from appliance import registers as regs
from appliance.accounts import Role
from tests.registers_helpers import pdf_table, pdf_text, xlsx_cells, xlsx_sheets
from tests.test_registers import PHU_LUC_IV, TITLES, build_year

from .conftest import ROLE_USERS, as_role, services_of

pytestmark = pytest.mark.asyncio
Q2 = "from=2025-04-01&to=2025-06-30"


def _auth(client: TestClient, role: Role) -> dict[str, str]:
    _, token = services_of(client).accounts.create_token(ROLE_USERS[role], "t", "test")
    return {"Authorization": f"Bearer {token}"}


def _body_rows(page: str) -> list[list[str]]:
    body = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    out = []
    for row in re.findall(r"<tr>(.*?)</tr>", body, re.S):
        cells = [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td>(.*?)</td>", row, re.S)]
        out.append([c.replace("&amp;", "&").replace("&#34;", '"') for c in cells])
    return out


@pytest.mark.parametrize("kind", list(PHU_LUC_IV))
async def test_each_register_for_a_quarter_on_screen_printed_and_exported(
    client: TestClient, kind: str,
) -> None:
    """The page, the PDF and the XLSX of quý II hold the same rows, with the register's own
    columns and cover; each print is a logged read naming the period."""
    s = services_of(client)
    build_year(s.store, s.store.clock)  # type: ignore[arg-type]
    await as_role(client, Role.ARCHIVIST)
    page = await client.get(f"/registers/{kind}/2025?{Q2}")
    assert page.status == 200
    html = await page.text()
    assert TITLES[kind] in html and "01/04/2025" in html and "30/06/2025" in html
    for column in PHU_LUC_IV[kind]:
        assert f"<th>{column}</th>" in html
    period = regs.Period.of(2025, "2025-04-01", "2025-06-30")
    want = [regs.display(kind, c) for _, c in regs.rows(
        s.store.reader(), s.store.config.fond_code, kind, period, False, dt.date(2025, 9, 15))]
    assert want and _body_rows(html) == want
    size = s.store.tree_head()[0]
    pdf = await client.get(f"/registers/{kind}/2025/print.pdf?{Q2}")
    assert pdf.status == 200 and pdf.headers["Content-Type"] == "application/pdf"
    body = await pdf.read()
    header, _ = pdf_table(body, regs.LAYOUTS[kind].pdf_mm)
    assert header == PHU_LUC_IV[kind]
    assert "Từ ngày 01/04/2025 đến ngày 30/06/2025" in pdf_text(body)
    assert "2025-04-01-2025-06-30" in pdf.headers["Content-Disposition"]
    xlsx = await client.get(f"/registers/{kind}/2025/print.xlsx?{Q2}")
    sheets = xlsx_sheets(await xlsx.read())
    assert sheets["Sổ"][0] == PHU_LUC_IV[kind] and len(sheets["Sổ"]) == 2 + len(want)
    entries = [cbor2.loads(raw) for _, raw in s.store.entries(size)]
    prints = [e for e in entries if e["kind"] in ("audit.print", "audit.download")]
    assert [e["id"] for e in prints] == [f"{kind}:2025", f"{kind}:2025"]
    assert prints[0]["data"]["period"] == {"from": "2025-04-01", "to": "2025-06-30",
                                           "whole_year": False}


async def test_registers_index_and_old_urls(client: TestClient) -> None:
    s = services_of(client)
    build_year(s.store, s.store.clock)  # type: ignore[arg-type]
    await as_role(client, Role.CLERK)
    index = await (await client.get("/registers?year=2025")).text()
    for kind in PHU_LUC_IV:
        assert f'href="/registers/{kind}/2025"' in index
        q2 = regs.quarter(2025, 2).query().replace("&", "&amp;")
        assert f'href="/registers/{kind}/2025/print.pdf?{q2}"' in index
    for kind in ("incoming", "outgoing"):  # the URLs of before still answer, whole year
        assert (await client.get(f"/registers/{kind}/2025")).status == 200
        assert (await client.get(f"/registers/{kind}/2025/print.pdf")).status == 200


async def test_api_register_period_values_and_refusals(client: TestClient) -> None:
    s = services_of(client)
    y = build_year(s.store, s.store.clock)  # type: ignore[arg-type]
    h = _auth(client, Role.AUDITOR)
    r = await client.get("/api/v1/registers/handling/2025?from=2025-01-01&to=2025-03-31",
                         headers=h)
    assert r.status == 200
    body = await r.json()
    assert body["kind"] == "handling" and body["columns"] == PHU_LUC_IV["handling"]
    assert body["period"] == {"from": "2025-01-01", "to": "2025-03-31", "whole_year": False}
    assert [row["id"] for row in body["rows"]] == [y.a, y.b]
    assert body["rows"][0]["values"][0] == 1 and body["rows"][0]["values"][3] == "2025-04-30"
    assert body["rows"][0]["cells"][3] == "30/04/2025"
    post = await (await client.get("/api/v1/registers/post/2025", headers=h)).json()
    assert post["total"] == 1 and post["rows"][0]["values"][0] == "2025-04-09"
    for query, field in (("from=2024-12-01", "from"), ("to=2026-01-01", "to"),
                         ("from=2025-05-01&to=2025-04-01", "from"), ("from=31/02/2025", "from"),
                         ("to=", "to")):
        bad = await client.get(f"/api/v1/registers/incoming/2025?{query}", headers=h)
        assert bad.status == 422, query
        assert (await bad.json())["error"]["field"] == field
    assert (await client.get("/api/v1/registers/lending/2025", headers=h)).status == 404
    secret = await client.get("/api/v1/registers/incoming/2025?classified=1", headers=h)
    assert secret.status == 403  # the auditor is not cleared for the mật register
    xlsx = await client.get("/api/v1/registers/copies/2025?format=xlsx", headers=h)
    cells = xlsx_cells(await xlsx.read(), "Sổ")
    assert cells[2][0].value == dt.datetime(2025, 5, 3) and cells[2][6].value == \
        dt.datetime(2025, 5, 5)


async def test_postal_and_copy_forms_on_an_issued_document(client: TestClient) -> None:
    """The clerk records a sending and a use from the document page; a refused form comes
    back with the values kept and the field marked; the rows reach their registers."""
    s = services_of(client)
    y = build_year(s.store, s.store.clock)  # type: ignore[arg-type]
    csrf = await as_role(client, Role.CLERK)
    page = await (await client.get(f"/documents/{y.e}")).text()
    assert 'id="postal-form"' in page and 'id="use-form"' in page
    assert "15/09/2025" in page  # today, dd/mm/yyyy, as the default date
    assert "Sở Tài chính\nKho bạc Nhà nước khu vực</textarea>" in page  # nơi nhận prefilled
    incoming_page = await (await client.get(f"/documents/{y.a}")).text()
    assert 'id="postal-form"' not in incoming_page
    bad = await client.post(f"/documents/{y.e}/postal", data={
        "csrf_token": csrf, "sent_on": "31/02/2025", "addressees": "Sở Nội vụ",
        "envelopes": "2", "note": "Gửi lại"})
    assert bad.status == 422
    html = await bad.text()
    assert 'id="postal-sent_on" type="text" value="31/02/2025"' in html
    assert re.search(r'id="postal-sent_on"[^>]*aria-invalid="true"', html)
    assert "Ngày chuyển không hợp lệ" in html and "Gửi lại" in html
    ok = await client.post(f"/documents/{y.e}/postal", allow_redirects=False, data={
        "csrf_token": csrf, "sent_on": "15/09/2025", "addressees": "Sở Nội vụ\nPhòng Tư pháp",
        "envelopes": "", "note": ""})
    assert ok.status == 303 and ok.headers["Location"].endswith("?done=posted#logbooks")
    sendings = postal.sendings_of(s.store.reader(), y.e)
    assert [x.envelopes for x in sendings] == [2, 2] and sendings[-1].actor == ROLE_USERS[
        Role.CLERK]
    lent = await client.post(f"/documents/{y.e}/copy-uses", allow_redirects=False, data={
        "csrf_token": csrf, "used_on": "15/09/2025", "user_name": "Phạm Thị Lan",
        "approved_by": "Chủ tịch UBND xã", "note": "Đối chiếu"})
    assert lent.status == 303
    use = copyuse.uses_of(s.store.reader(), y.e)[-1]
    missing = await client.post(f"/documents/{y.e}/copy-uses", data={
        "csrf_token": csrf, "used_on": "15/09/2025", "user_name": "B", "approved_by": ""})
    assert missing.status == 422
    assert re.search(r'id="use-approved_by"[^>]*aria-invalid="true"', await missing.text())
    back = await client.post(f"/documents/{y.e}/copy-uses/{use.id}/return",
                             allow_redirects=False,
                             data={"csrf_token": csrf, "returned_on": "15/09/2025"})
    assert back.status == 303
    assert copyuse.uses_of(s.store.reader(), y.e)[-1].returned_on == "2025-09-15"
    page = await (await client.get(f"/documents/{y.e}?done=returned")).text()
    assert "Phạm Thị Lan" in page and "Phòng Tư pháp" in page
    copies = await (await client.get("/registers/copies/2025?from=2025-09-01&to=2025-09-30"))\
        .text()
    assert "Phạm Thị Lan" in copies and "15/09/2025" in copies
    leader = await as_role(client, Role.LEADER)
    refused = await client.post(f"/documents/{y.e}/postal", data={
        "csrf_token": leader, "sent_on": "15/09/2025", "addressees": "X"})
    assert refused.status == 403


async def test_postal_and_copy_api(client: TestClient) -> None:
    s = services_of(client)
    y = build_year(s.store, s.store.clock)  # type: ignore[arg-type]
    h = _auth(client, Role.CLERK)
    r = await client.post(f"/api/v1/documents/{y.e}/postal", headers=h, json={
        "sent_on": "2025-09-15", "addressees": [{"OrganName": "Sở Nội vụ",
                                                 "OrganId": "000.00.09.H22"}, "UBND tỉnh"]})
    assert r.status == 201, await r.text()
    sending = (await r.json())["sending"]
    assert sending["envelopes"] == 2 and sending["addressees"][0]["OrganId"] == "000.00.09.H22"
    listed = await (await client.get(f"/api/v1/documents/{y.e}/postal", headers=h)).json()
    assert [i["id"] for i in listed["items"]][-1] == sending["id"]
    draft = s.store.draft_outgoing({"TypeName": "Tờ trình", "Subject": "Dự thảo"}).record
    r = await client.post(f"/api/v1/documents/{draft.id}/postal", headers=h, json={
        "sent_on": "2025-09-15", "addressees": ["X"]})
    assert r.status == 409 and "đã ban hành" in (await r.json())["error"]["message"]
    r = await client.post(f"/api/v1/documents/{y.e}/postal", headers=h, json={
        "sent_on": "2025-09-15", "addressees": ["X"], "cc": "Y"})
    assert r.status == 422 and (await r.json())["error"]["field"] == "cc"
    r = await client.post(f"/api/v1/documents/{y.e}/copy-uses", headers=h, json={
        "used_on": "15/09/2025", "user_name": "Phạm Thị Lan", "approved_by": "Chủ tịch"})
    assert r.status == 201
    use = (await r.json())["use"]
    r = await client.post(f"/api/v1/documents/{y.e}/copy-uses/{use['id']}/return", headers=h,
                          json={"returned_on": "2025-09-15", "note": "Đủ"})
    assert r.status == 200 and (await r.json())["use"]["return_note"] == "Đủ"
    again = await client.post(f"/api/v1/documents/{y.e}/copy-uses/{use['id']}/return",
                              headers=h, json={"returned_on": "2025-09-15"})
    assert again.status == 409
    wrong = await client.post(f"/api/v1/documents/{y.a}/copy-uses/{use['id']}/return",
                              headers=h, json={"returned_on": "2025-09-15"})
    assert wrong.status == 404
    reader = _auth(client, Role.AUDITOR)
    assert (await client.post(f"/api/v1/documents/{y.e}/postal", headers=reader, json={
        "sent_on": "2025-09-15", "addressees": ["X"]})).status == 403


async def test_danh_muc_headings_select_approval_and_print(client: TestClient) -> None:
    """The archivist sets up the year's headings; the hồ sơ form offers them as a select (a
    typed heading is refused, the field marked); the leader approves; the print carries it."""
    s = services_of(client)
    csrf = await as_role(client, Role.ARCHIVIST)
    form = await (await client.get("/files/new?year=2025")).text()
    assert 'id="no-headings"' in form and 'name="Heading"' not in form
    setup = await (await client.get("/files/plan/2025/headings")).text()
    assert "I. Công tác tổng hợp, văn phòng | VP" in setup  # an example to start from
    bad = await client.post("/files/plan/2025/headings", data={
        "csrf_token": csrf, "headings": "II. Văn phòng | VP\n"})
    assert bad.status == 422 and "II. Văn phòng | VP" in await bad.text()
    saved = await client.post("/files/plan/2025/headings", allow_redirects=False, data={
        "csrf_token": csrf, "headings": "I. Văn phòng | VP\n1. Văn thư\nII. Tư pháp | TP\n"})
    assert saved.status == 303
    form = await (await client.get("/files/new?year=2025")).text()
    select = form.split('<select name="Heading"', 1)[1].split("</select>", 1)[0]
    assert re.findall(r'<option value="([^"]*)"', select) == [
        "", "I. Văn phòng", "I.1. Văn thư", "II. Tư pháp"]
    typed = await client.post("/files", data={
        "csrf_token": csrf, "FileCatalog": "2025", "FileNotation": "01.VP",
        "Heading": "I. Văn Phòng", "Title": "Hồ sơ", "Maintenance": "05"})
    assert typed.status == 422
    html = await typed.text()
    assert "không có trong khung đề mục" in html
    assert re.search(r'<select name="Heading" id="f-Heading" aria-invalid="true"', html)
    mismatch = await client.post("/files", data={
        "csrf_token": csrf, "FileCatalog": "2025", "FileNotation": "01.TP",
        "Heading": "I.1. Văn thư", "Title": "Hồ sơ văn thư", "Maintenance": "05"})
    assert mismatch.status == 422 and 'class="form grid error-FileNotation"' in \
        await mismatch.text()
    for notation, heading in (("01.VP", "I.1. Văn thư"), ("01.TP", "II. Tư pháp")):
        r = await client.post("/files", allow_redirects=False, data={
            "csrf_token": csrf, "FileCatalog": "2025", "FileNotation": notation,
            "Heading": heading, "Title": f"Hồ sơ {notation}", "Maintenance": "01"})
        assert r.status == 303, await r.text()
    listing = await (await client.get("/files?year=2025")).text()
    assert 'id="not-approved"' in listing and 'id="approve-form"' not in listing
    assert listing.index("I. Văn phòng") < listing.index("1. Văn thư") < listing.index(
        "01.VP") < listing.index("II. Tư pháp")
    leader = await as_role(client, Role.LEADER)
    listing = await (await client.get("/files?year=2025")).text()
    assert 'id="approve-form"' in listing
    no_ref = await client.post("/files/plan/2025/approve", data={
        "csrf_token": leader, "decision": "", "approved_on": "15/09/2025"})
    assert no_ref.status == 422 and 'class="invalid"' in await no_ref.text()
    size = s.store.tree_head()[0]
    ok = await client.post("/files/plan/2025/approve", allow_redirects=False, data={
        "csrf_token": leader, "decision": "Quyết định số 02/QĐ-UBND ngày 15/09/2025",
        "approved_on": "15/09/2025", "position": "Chủ tịch UBND xã"})
    assert ok.status == 303
    entry = next(cbor2.loads(raw) for _, raw in s.store.entries(size)
                 if cbor2.loads(raw)["kind"] == "fileplan.approve")
    assert entry["actor"] == ROLE_USERS[Role.LEADER] and entry["data"]["files"] == 2
    assert entry["data"]["approver"]["full_name"] == "Người leader"
    listing = await (await client.get("/files?year=2025")).text()
    assert "Đã phê duyệt" in listing and 'id="approve-form"' not in listing
    pdf = await client.get("/files/plan/2025/print.pdf")
    text = re.sub(r"\s+", " ", pdf_text(await pdf.read()))
    assert "Ban hành kèm theo Quyết định số 02/QĐ-UBND ngày 15/09/2025" in text
    assert "Người phê duyệt: Chủ tịch UBND xã, Người leader" in text
    plan = await (await client.get("/api/v1/fileplan/2025", headers=_auth(client, Role.CLERK)))\
        .json()
    assert plan["approval"]["decision"].startswith("Quyết định số 02")
    assert plan["headings"]["headings"][0]["children"] == [{"code": "1", "title": "Văn thư"}]
    assert plan["changed_since_approval"] is False
    clerk = _auth(client, Role.CLERK)
    r = await client.post("/api/v1/fileplan/2025/approve", headers=clerk,
                          json={"decision": "QĐ 3"})
    assert r.status == 403
    r = await client.post("/api/v1/fileplan/2026/headings", headers=clerk, json={
        "headings": [{"title": "Văn phòng", "abbr": "VP", "children": [{"title": "Văn thư"}]}]})
    assert r.status == 201 and (await r.json())["version"] == 1
    assert fileplan.structure(s.store.reader(), 2026) is not None


async def test_an_old_code_resolves_in_urls_and_search_after_rekeying(
    client: TestClient,
) -> None:
    from appliance import agency_ids
    from tests.conftest import ORG_ID, incoming

    s = services_of(client)
    s.store.open_file({"FileCatalog": 2025, "FileNotation": "07.VP", "Title": "Hồ sơ cũ",
                       "Maintenance": "05"})
    old = f"{ORG_ID}.2025.07.VP"
    doc = s.store.register_incoming(incoming(FileCode=old)).record
    agency_ids.rekey(s.store, "000.00.37.H22", "2025-09-15", "CV 15/STTTT")
    alias = "000.00.37.H22.2025.07.VP"
    await as_role(client, Role.CLERK)
    for code in (old, alias):
        page = await client.get(f"/files/{code}")
        assert page.status == 200 and doc.id in await page.text()
        found = await (await client.get(f"/search?file={code}")).text()
        assert doc.id in found
    api = await (await client.get(f"/api/v1/files/{alias}", headers=_auth(client, Role.CLERK)))\
        .json()
    assert api["data"]["FileCode"] == old and [d["id"] for d in api["documents"]] == [doc.id]
    assert (await client.get("/files/000.00.37.H22.2025.08.VP")).status == 404
