"""Home, search, hồ sơ pages and the printed registers (PDF text, XLSX cells)."""

from __future__ import annotations

import datetime as dt
import io
import json
import subprocess
import tempfile
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from appliance.accounts import Role
from tests.conftest import incoming, outgoing

from .conftest import ROLE_USERS, as_role, services_of

pytestmark = pytest.mark.asyncio


async def test_search_folds_diacritics_and_filters(client: TestClient) -> None:
    s = services_of(client)
    s.store.register_incoming(incoming(Subject="V/v đăng ký đất đai năm 2025"))
    s.store.register_incoming(incoming(CodeNumber="2", Subject="V/v tiêm chủng mở rộng"))
    draft = s.store.draft_outgoing(outgoing(Subject="Về việc giao đất đai cho hộ gia đình"))
    s.store.issue_outgoing(draft.record.id)
    await as_role(client, Role.ARCHIVIST)
    html = await (await client.get("/search?q=dang+ky+dat+dai")).text()
    assert "đăng ký đất đai năm 2025" in html and "tiêm chủng" not in html
    html = await (await client.get("/search?q=dat+dai&direction=outgoing")).text()
    assert "giao đất đai" in html and "đăng ký đất đai" not in html
    html = await (await client.get("/search?q=khong+co+gi+ca")).text()
    assert 'id="nothing"' in html


async def test_home_shows_today_and_due_for_reply(client: TestClient) -> None:
    s = services_of(client)
    s.store.register_incoming(incoming(Subject="V/v báo cáo gấp", DueDate="2025-09-17"))
    s.store.register_incoming(incoming(CodeNumber="9", Subject="V/v xa hạn", DueDate="2025-12-30"))
    await as_role(client, Role.LEADER)
    html = await (await client.get("/")).text()
    today, _, rest = html.partition("Văn bản đến sắp đến hạn trả lời")
    assert "V/v báo cáo gấp" in today  # registered today (the test clock's day)
    due, _, _ = rest.partition("Hồ sơ đến hạn nộp lưu")
    assert "17/09/2025" in due and "V/v xa hạn" not in due
    assert "KHÓA PHẦN MỀM" in html  # the software key is flagged on every page


async def test_open_list_and_close_a_file(client: TestClient) -> None:
    from appliance import fileplan

    s = services_of(client)
    fileplan.set_headings(s.store, 2025, [{"title": "Văn phòng", "abbr": "VP"}])
    csrf = await as_role(client, Role.ARCHIVIST)
    resp = await client.post("/files", allow_redirects=False, data={
        "csrf_token": csrf, "FileCatalog": "2025", "FileNotation": "01.VP",
        "Heading": "I. Văn phòng", "Title": "Hồ sơ phòng chống thiên tai năm 2025",
        "Maintenance": "01", "Creator": "Nguyễn Văn An"})
    assert resp.status == 303, await resp.text()
    code = "000.21.08.H49.2025.01.VP"
    assert resp.headers["Location"].startswith(f"/files/{code}")
    rec = s.store.register_incoming(incoming(FileCode=code, PageAmount=3)).record
    danh_muc = await (await client.get("/files?year=2025")).text()
    assert "I. Văn phòng" in danh_muc and "Hồ sơ phòng chống thiên tai" in danh_muc
    assert "1 hồ sơ bảo quản vĩnh viễn" in danh_muc
    page = await (await client.get(f"/files/{code}")).text()
    assert rec.id in page
    closed = await client.post(f"/files/{code}/close", data={"csrf_token": csrf},
                               allow_redirects=False)
    assert closed.status == 303
    data = s.store.find_one("file", FileCode=code).data
    assert (data["Status"], data["DocTotal"], data["PageTotal"]) == ("closed", 1, 3)
    bad = await client.post("/files", data={"csrf_token": csrf, "FileCatalog": "2025",
                                            "FileNotation": "01.VP", "Title": "Trùng",
                                            "Maintenance": "01"})
    assert bad.status == 422 and "already exists" in await bad.text()


async def test_the_file_form_offers_the_retention_table(client: TestClient) -> None:
    """The form lists the kinds of hồ sơ (grouped, with their periods); a 5-year kind opens a
    hồ sơ the Danh mục shows as "05 năm" (not "Khác"); a shorter period than the kind's is
    refused, the form kept and the retention field marked."""
    s = services_of(client)
    csrf = await as_role(client, Role.ARCHIVIST)
    form = await (await client.get("/files/new")).text()
    assert '<optgroup label="Tài liệu quy hoạch">' in form
    assert "Công văn trao đổi về công tác quy hoạch — 05 năm" in form
    assert '<option value="05 năm"' in form
    resp = await client.post("/files", allow_redirects=False, data={
        "csrf_token": csrf, "FileCatalog": "2025", "FileNotation": "11.VP",
        "Title": "Công văn trao đổi về quy hoạch 2025", "RetentionRef": "TT10.quy-hoach.cong-van",
        "Maintenance": ""})
    assert resp.status == 303, await resp.text()
    f = s.store.find_one("file", FileCode="000.21.08.H49.2025.11.VP")
    assert f is not None and (f.data["Maintenance"], f.data["RetentionYears"]) == ("07", 5)
    listed = await (await client.get("/files?year=2025")).text()
    row = listed[listed.index("Công văn trao đổi về quy hoạch 2025"):]
    assert row[: row.index("</tr>")].count("05 năm") == 1 and "Khác" not in row[:200]
    resp = await client.post("/files", data={
        "csrf_token": csrf, "FileCatalog": "2025", "FileNotation": "12.TCCB",
        "Title": "Hồ sơ cán bộ", "RetentionRef": "TT10.can-bo.ho-so-ca-nhan",
        "Maintenance": "10 năm"})
    html = await resp.text()
    assert resp.status == 422
    assert 'class="invalid"' in html and 'aria-invalid="true"' in html
    assert 'value="Hồ sơ cán bộ"' in html or "Hồ sơ cán bộ</textarea>" in html


async def test_home_warns_while_fewer_than_two_independent_copies_exist(
    client: TestClient, tmp_path: Path
) -> None:
    """No medium and no centre: the warning; one medium: still; two media with sets, within
    their rated life: no warning (the centre, never enrolled here, does not count)."""
    from appliance.archive.backup import backup

    s = services_of(client)
    await as_role(client, Role.TECHNICIAN)
    html = await (await client.get("/")).text()
    assert 'id="copies-warning"' in html and "Chưa đủ hai bản sao độc lập" in html
    assert "hiện có 0 trên 2" in html
    a, b = tmp_path / "usb1", tmp_path / "usb2"
    (s.store.data_dir / "archive.json").write_text(json.dumps(
        {"backup_media": [str(a), str(b)]}))
    backup(s.store, a, label="USB-01", rated_years=10)
    html = await (await client.get("/")).text()
    assert "hiện có 1 trên 2" in html and "USB-01: ✔" in html
    backup(s.store, b, label="HDD-02", rated_years=10)
    html = await (await client.get("/")).text()
    assert 'id="copies-warning"' not in html


async def test_document_can_be_put_into_a_file(client: TestClient) -> None:
    s = services_of(client)
    s.store.open_file({"FileCatalog": 2025, "FileNotation": "02.VP", "Title": "Công văn đến",
                       "Maintenance": "05"})
    rec = s.store.register_incoming(incoming()).record
    csrf = await as_role(client, Role.CLERK)
    resp = await client.post(f"/documents/{rec.id}/file", allow_redirects=False,
                             data={"csrf_token": csrf, "FileCode": "000.21.08.H49.2025.02.VP"})
    assert resp.status == 303
    assert s.store.get("document", rec.id).data["FileCode"] == "000.21.08.H49.2025.02.VP"


def _pdf_text(data: bytes) -> str:
    with tempfile.NamedTemporaryFile(suffix=".pdf") as fh:
        fh.write(data)
        fh.flush()
        out = subprocess.run(["pdftotext", fh.name, "-"], capture_output=True,
                             check=True)
    return out.stdout.decode("utf-8")


async def test_incoming_register_pdf_has_the_columns_cover_and_row(client: TestClient) -> None:
    s = services_of(client)
    rec = s.store.register_incoming(incoming(ToPlaces="Chủ tịch UBND xã")).record
    s.store.register_incoming(incoming(Mode="03", CodeNumber="5", Subject="Mật: không in ở đây"))
    await as_role(client, Role.CLERK)
    size0, _ = s.store.tree_head()
    resp = await client.get("/registers/incoming/2025/print.pdf")
    assert resp.status == 200 and resp.headers["Content-Type"] == "application/pdf"
    text = _pdf_text(await resp.read())
    assert "SỔ ĐĂNG KÝ VĂN BẢN ĐẾN" in text and "ỦY BAN NHÂN DÂN XÃ ĐÔNG HẢI" in text
    assert "Năm: 2025" in text and "Từ số 1 đến số 1" in text
    flat = " ".join(text.split())
    for column in ("Ngày đến", "Số đến", "Tác giả", "Số, ký hiệu văn bản", "Ngày chuyển",
                   "Ký nhận", "Ghi chú", "Đơn vị hoặc người nhận"):
        assert column in flat, column
    assert "15/09/2025" in text and "1245/UBND-NC" in text
    assert "phòng, chống thiên tai" in flat
    assert "không in ở đây" not in flat  # mật documents have their own register
    # The print is a log entry.
    import cbor2

    kinds = [cbor2.loads(raw) for _, raw in s.store.entries(size0)]
    assert any(e["kind"] == "audit.print" and e["id"] == "incoming:2025" for e in kinds)
    assert rec.id


async def test_outgoing_register_xlsx_has_the_ten_columns(client: TestClient) -> None:
    from openpyxl import load_workbook

    s = services_of(client)
    d = s.store.draft_outgoing(outgoing(IssuedAmount=4)).record
    s.store.issue_outgoing(d.id)
    await as_role(client, Role.AUDITOR)
    resp = await client.get("/registers/outgoing/2025/print.xlsx")
    assert resp.status == 200
    wb = load_workbook(io.BytesIO(await resp.read()))
    rows = list(wb["Sổ"].iter_rows(values_only=True))
    assert list(rows[0]) == [
        "Số, ký hiệu văn bản", "Ngày tháng văn bản", "Tên loại và trích yếu nội dung văn bản",
        "Người ký", "Nơi nhận văn bản", "Đơn vị, người nhận bản lưu", "Số lượng bản",
        "Ngày chuyển", "Ký nhận", "Ghi chú"]
    assert rows[2][0] == "01/QĐ-UBND" and rows[2][1] == dt.datetime(2025, 9, 15)
    assert wb["Sổ"]["B3"].number_format == "DD/MM/YYYY"  # a real date shown dd/mm/yyyy
    assert rows[2][3] == "Chủ tịch, Trần Văn Hùng" and rows[2][6] == 4
    cover = dict(wb["Bìa"].iter_rows(values_only=True))
    assert cover["Sổ"] == "SỔ ĐĂNG KÝ VĂN BẢN ĐI" and cover["Năm"] == "2025"


async def test_register_page_paginates_and_refuses_classified_to_uncleared(
    client: TestClient,
) -> None:
    s = services_of(client)
    for i in range(3):
        s.store.register_incoming(incoming(CodeNumber=str(100 + i)))
    await as_role(client, Role.ARCHIVIST)
    html = await (await client.get("/registers/incoming/2025")).text()
    assert html.count("/documents/") == 3 and "100/UBND-NC" in html
    assert (await client.get("/registers/incoming/2025?classified=1")).status == 403
    assert (await client.get("/registers/sideways/2025")).status == 404




@pytest.mark.parametrize("role", [Role.ARCHIVIST, Role.AUDITOR, Role.TECHNICIAN])
async def test_a_classified_hoso_is_not_found_for_roles_without_clearance(
    client: TestClient, role: Role
) -> None:
    """A hồ sơ with Rights 03 is absent for roles without clearance, in HTML and the API,
    in its page, the Danh mục lists and the hồ sơ picker, exactly as a mật document is."""
    s = services_of(client)
    mat = s.store.open_file({"FileCatalog": 2025, "FileNotation": "09.MAT", "Rights": "03",
                             "Title": "Hồ sơ phương án phòng thủ bí mật", "Maintenance": "01"})
    s.store.open_file({"FileCatalog": 2025, "FileNotation": "10.VP", "Maintenance": "05",
                       "Title": "Hồ sơ tiếp công dân"})
    code = mat.data["FileCode"]
    doc = s.store.register_incoming(incoming(CodeNumber="77")).record
    await as_role(client, role)
    for url in (f"/files/{code}", f"/api/v1/files/{code}"):
        resp = await client.get(url)
        assert resp.status in ((403,) if role is Role.TECHNICIAN else (404,)), url
    for url in ("/files?year=2025", "/api/v1/files?year=2025", f"/documents/{doc.id}"):
        resp = await client.get(url)
        body = await resp.text()
        if resp.content_type == "application/json":
            body = json.dumps(json.loads(body), ensure_ascii=False)
        assert "phòng thủ bí mật" not in body and code not in body, url
        if role is not Role.TECHNICIAN and url.startswith(("/files", "/api")):
            assert "tiếp công dân" in body, url  # the ordinary hồ sơ is listed
    if role is Role.ARCHIVIST:  # may file documents and close hồ sơ, but not this one
        _, token = s.accounts.create_token(ROLE_USERS[role], "t", "test")
        h = {"Authorization": f"Bearer {token}"}
        resp = await client.post(f"/api/v1/documents/{doc.id}/file", json={"FileCode": code},
                                 headers=h)
        assert resp.status == 404
        resp = await client.post(f"/api/v1/files/{code}/close", headers=h)
        assert resp.status == 404
        assert s.store.get("file", mat.id).data["Status"] == "open"


async def test_a_classified_hoso_is_shown_to_cleared_roles(client: TestClient) -> None:
    """Clerks and leaders keep seeing the mật hồ sơ (page, lists)."""
    s = services_of(client)
    mat = s.store.open_file({"FileCatalog": 2025, "FileNotation": "09.MAT", "Rights": "03",
                             "Title": "Hồ sơ phương án phòng thủ bí mật", "Maintenance": "01"})
    await as_role(client, Role.CLERK)
    assert (await client.get(f"/files/{mat.data['FileCode']}")).status == 200
    assert "phòng thủ bí mật" in await (await client.get("/files?year=2025")).text()
    api = await (await client.get("/api/v1/files?year=2025")).json()
    assert "phòng thủ bí mật" in json.dumps(api, ensure_ascii=False)
