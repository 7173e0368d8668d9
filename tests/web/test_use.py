"""Use of the archive in the web UI and /api/v1: requests, approval by the leader (or the
roles the office names), delivery, the register of use (screen, PDF, XLSX), clearance."""

from __future__ import annotations

import datetime as dt
import io
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from appliance.accounts import Role
from appliance.store import Store
from tests.archive.conftest import attach_pdf
from tests.conftest import incoming

from .conftest import as_role, csrf_of, services_of


def _docs(store: Store) -> dict[str, str]:
    f = store.open_file({"FileCatalog": 2025, "FileNotation": "07.DD", "Maintenance": "01",
                         "Title": "Hồ sơ giao đất năm 2025"})
    code = f.data["FileCode"]
    pub = attach_pdf(store, store.register_incoming(incoming(
        FileCode=code, CodeNumber="61", Subject="V/v giao đất ở cho hộ bà Hoa")).record,
        "Quyết định giao đất")
    restricted = store.register_incoming(incoming(
        FileCode=code, CodeNumber="62", Mode="02", Subject="V/v hồ sơ hạn chế")).record
    secret = store.register_incoming(incoming(CodeNumber="63", Mode="03",
                                              Subject="V/v tài liệu mật")).record
    return {"code": code, "pub": pub.id, "restricted": restricted.id, "secret": secret.id}


@pytest.mark.asyncio
async def _json(client: TestClient, method: str, url: str, csrf: str, **body: object
                ) -> tuple[int, dict]:  # type: ignore[type-arg]
    r = await client.request(method, url, json=body, headers={"X-CSRF-Token": csrf})
    return r.status, await r.json()


@pytest.mark.asyncio
async def test_request_approve_deliver_and_register_through_the_api(
    client: TestClient, store: Store
) -> None:
    d = _docs(store)
    csrf = await as_role(client, Role.CLERK)
    status, req = await _json(client, "POST", "/api/v1/use-requests", csrf,
                              purpose="Làm thủ tục cấp giấy chứng nhận", purpose_code="03",
                              reader={"kind": "outside", "name": "Phạm Thị Hoa",
                                      "identity": "022190001234"},
                              items=[{"document": d["pub"], "form": "copy"},
                                     {"document": d["pub"] + "x", "form": "read"}])
    assert status == 404  # an unknown document
    status, req = await _json(client, "POST", "/api/v1/use-requests", csrf,
                              purpose="Làm thủ tục cấp giấy chứng nhận", purpose_code="03",
                              reader={"kind": "outside", "name": "Phạm Thị Hoa"},
                              items=[{"document": d["pub"], "form": "copy"}])
    assert status == 201 and req["status"] == "pending" and req["items"][0]["level"] == "01"
    rid = req["id"]
    status, err = await _json(client, "POST", f"/api/v1/use-requests/{rid}/deliver", csrf,
                              item=0, medium="digital")
    assert status == 409 and "duyệt" in err["error"]["message"]  # nothing before approval
    status, _ = await _json(client, "POST", f"/api/v1/use-requests/{rid}/approve", csrf)
    assert status == 403  # the clerk is not an approver
    csrf = await as_role(client, Role.LEADER)
    status, req = await _json(client, "POST", f"/api/v1/use-requests/{rid}/approve", csrf,
                              note="Sao một bản")
    assert status == 200 and req["status"] == "approved"
    csrf = await as_role(client, Role.CLERK)
    r = await client.post(f"/api/v1/use-requests/{rid}/deliver",
                          json={"item": 0, "medium": "digital"}, headers={"X-CSRF-Token": csrf})
    assert r.status == 200 and r.headers["Content-Type"] == "application/pdf"
    assert (await r.read()).startswith(b"%PDF")
    csrf = await as_role(client, Role.LEADER)
    r = await client.get("/api/v1/registers/use/2025")
    body = await r.json()
    assert body["statistics"]["copies"] == 1 and body["rows"][0][2] == "Phạm Thị Hoa"
    for fmt, magic in (("pdf", b"%PDF"), ("xlsx", b"PK")):
        r = await client.get(f"/registers/use/2025/print.{fmt}")
        raw = await r.read()
        assert r.status == 200 and raw.startswith(magic)
        if fmt == "pdf" and shutil.which("pdftotext"):
            text = subprocess.run(["pdftotext", "-layout", "-", "-"], input=raw,
                                  capture_output=True, check=True).stdout.decode()
            # The printed time as people write it, never an ISO timestamp.
            assert re.search(r"In lúc \d\d:\d\d ngày \d\d/\d\d/\d{4} bởi", text), text[-400:]
            assert not re.search(r"\d{4}-\d\d-\d\dT", text)
    r = await client.get("/registers/use/2025/print.xlsx")
    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(await r.read()))
    assert wb.sheetnames == ["Bìa", "Sổ", "Thống kê"]
    assert wb["Sổ"]["C3"].value == "Phạm Thị Hoa"
    assert isinstance(wb["Sổ"]["B3"].value, dt.datetime)  # a real date, shown dd/mm/yyyy
    assert wb["Sổ"]["B3"].number_format == "DD/MM/YYYY"
    assert [c.value for c in wb["Sổ"][1]][:3] == ["Số phiếu", "Ngày", "Họ và tên người khai thác"]


@pytest.mark.asyncio
async def test_register_of_use_needs_the_leader_or_a_configured_role(
    client: TestClient, store: Store
) -> None:
    for role in (Role.CLERK, Role.ARCHIVIST, Role.AUDITOR, Role.TECHNICIAN):
        await as_role(client, role)
        r = await client.get("/registers/use/2025", allow_redirects=False)
        assert r.status == 403, role
    await as_role(client, Role.LEADER)
    r = await client.get("/registers/use/2025")
    assert r.status == 200 and "Sổ đăng ký khai thác" in await r.text()
    # The office names the archivist as an approver too (appliance.json use.approver_roles).
    services_of(client).use_approvers = frozenset({Role.LEADER, Role.ARCHIVIST})
    await as_role(client, Role.ARCHIVIST)
    r = await client.get("/registers/use/2025")
    assert r.status == 200


@pytest.mark.asyncio
async def test_restricted_and_classified_never_offered_without_clearance(
    client: TestClient, store: Store
) -> None:
    """The archivist (not cleared) searching in the request form sees only public documents;
    the clerk (cleared) sees all; a hand-made request for them is as if they did not exist."""
    d = _docs(store)
    await as_role(client, Role.ARCHIVIST)
    page = await (await client.get("/use/new?q=V%2Fv")).text()
    assert "giao đất ở" in page and "hạn chế" not in page.replace("hạn chế)", "") \
        and "tài liệu mật" not in page
    csrf = csrf_of(page)
    r = await client.post("/use", data={"csrf_token": csrf, "purpose": "xem",
                                        "reader_kind": "staff", f"pick_{d['restricted']}": "on"})
    page = await r.text()
    assert r.status == 422 and "không có tài liệu" in page and "hồ sơ hạn chế" not in page
    await as_role(client, Role.CLERK)
    page = await (await client.get("/use/new?q=V%2Fv")).text()
    assert "hồ sơ hạn chế" in page and "tài liệu mật" in page


@pytest.mark.asyncio
async def test_pages_walk_a_request_through(client: TestClient, store: Store,
                                            tmp_path: Path) -> None:
    d = _docs(store)
    csrf = await as_role(client, Role.CLERK)
    r = await client.post("/use", data={"csrf_token": csrf, "reader_kind": "outside",
                                        "reader_name": "", "purpose": "Xác minh",
                                        f"pick_{d['pub']}": "on", f"form_{d['pub']}": "read"},
                          allow_redirects=False)
    assert r.status == 422
    page = await r.text()
    assert 'aria-invalid="true"' in page and "Xác minh" in page  # the field named, form kept
    r = await client.post("/use", data={"csrf_token": csrf, "reader_kind": "outside",
                                        "reader_name": "Phạm Thị Hoa", "purpose": "Xác minh",
                                        "purpose_code": "03", f"pick_{d['pub']}": "on",
                                        f"form_{d['pub']}": "read"}, allow_redirects=False)
    assert r.status == 303
    url = r.headers["Location"]
    csrf = await as_role(client, Role.LEADER)
    page = await (await client.get(url)).text()
    assert "Duyệt" in page
    r = await client.post(f"{url}/approve", data={"csrf_token": csrf, "item_0": "on",
                                                  "note": "Đọc tại chỗ"}, allow_redirects=False)
    assert r.status == 303
    csrf = await as_role(client, Role.CLERK)
    r = await client.post(f"{url}/deliver", data={"csrf_token": csrf, "item": "0",
                                                  "medium": "screen"}, allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == f"{url}/read/1"
    page = await (await client.get(url)).text()
    assert "vanthu" in page or "u-clerk" in page
    assert (await client.get("/use")).status == 200
    await _reading_is_marked(client, url, tmp_path)


async def _reading_is_marked(client: TestClient, url: str, tmp_path: Path) -> None:
    """What the reader is shown: images only (never the file), each page with the reader's
    name, the request's number and the time drawn into it (read back by OCR)."""
    from PIL import Image

    r = await client.get(f"{url}/read/1")
    assert r.status == 200 and r.headers["Cache-Control"] == "no-store"
    page = await r.text()
    assert "Người đọc: Phạm Thị Hoa · Phiếu yêu cầu số 01/2025 · 15/09/2025" in page
    assert f'src="{url}/read/1/page-1.png"' in page and "/content/" not in page
    png = await client.get(f"{url}/read/1/page-1.png")
    assert png.status == 200 and png.content_type == "image/png"
    body = await png.read()
    assert (await client.get(f"{url}/read/1/page-2.png")).status == 404  # one page only
    if shutil.which("tesseract") is None:
        pytest.skip("tesseract is not installed")
    img = Image.open(io.BytesIO(body))
    band = img.crop((0, 0, img.width, img.height // 25)).resize(
        (img.width * 2, img.height // 25 * 2))
    band.save(tmp_path / "band.png")
    text = subprocess.run(["tesseract", str(tmp_path / "band.png"), "-", "-l", "vie",
                           "--psm", "7"], capture_output=True, text=True, check=True).stdout
    assert "Phạm Thị Hoa" in text and "01/2025" in text and "15/09/2025" in text, text
    await as_role(client, Role.HANDLER)
    assert (await client.get(f"{url}/read/1")).status == 404  # not the desk, did not ask


@pytest.mark.asyncio
async def test_the_leader_opens_and_withdraws_a_file_for_the_catalogue(
    client: TestClient, store: Store
) -> None:
    from appliance.archive.publication import released

    d = _docs(store)
    csrf = await as_role(client, Role.CLERK)
    r = await client.post(f"/files/{d['code']}/publish", data={"csrf_token": csrf, "ref": "x"},
                          allow_redirects=False)
    assert r.status == 403
    csrf = await as_role(client, Role.LEADER)
    r = await client.post(f"/files/{d['code']}/publish", data={"csrf_token": csrf, "ref": ""})
    assert r.status == 422 and "quyết định công bố" in await r.text()
    r = await client.post(f"/files/{d['code']}/publish",
                          data={"csrf_token": csrf, "ref": "QĐ 40/QĐ-UBND"},
                          allow_redirects=False)
    assert r.status == 303 and released(store.reader()) == [d["code"]]
    page = await (await client.get(r.headers["Location"])).text()
    assert "Rút khỏi mục lục công bố" in page
    r = await client.post(f"/files/{d['code']}/unpublish",
                          data={"csrf_token": csrf, "reason": "Rà soát thông tin cá nhân"},
                          allow_redirects=False)
    assert r.status == 303 and released(store.reader()) == []


def test_approver_roles_from_appliance_json() -> None:
    """The office names roles that read records; the technician never approves."""
    from appliance.config import UseConfig
    from appliance.errors import ConfigError
    from web_ui import permissions

    assert UseConfig.from_json({}).approver_roles == ("leader",)
    roles = permissions.approver_roles(UseConfig.from_json(
        {"approver_roles": ["leader", "archivist"]}).approver_roles)
    assert roles == {Role.LEADER, Role.ARCHIVIST}
    assert permissions.allowed("use_approve", Role.ARCHIVIST, roles)
    assert not permissions.allowed("use_approve", Role.ARCHIVIST)
    assert not permissions.allowed("use_approve", Role.CLERK, roles)
    for bad in (["technician"], ["nobody"]):
        with pytest.raises(ConfigError):
            permissions.approver_roles(tuple(bad))
    with pytest.raises(ConfigError):
        UseConfig.from_json({"approver_roles": "leader"})


def test_register_of_use_spreadsheet_never_runs_what_readers_typed() -> None:
    """Names and purposes come from outside readers: a formula stays text (appliance/cells.py)."""
    from openpyxl import load_workbook

    from web_ui.use_register import render_xlsx

    hostile = '=HYPERLINK("http://evil.example/","Bấm vào đây")'
    row = ["01/2025", "05/09/2025", hostile, "+cmd|' /C calc'!A0", "@SUM(1)", "X", "Bản sao",
           "3", "Lãnh đạo", "06/09/2025, 07/09/2025", "-2+3"]
    stats = {"requests": 1, "approved": 1, "refused": 0, "pending": 0, "readers": 1,
             "records_used": 1, "reads": 0, "copies": 1, "certified_copies": 0,
             "pages_copied": 3, "by_purpose": {}}
    wb = load_workbook(io.BytesIO(render_xlsx("=UBND", 2025, [row], stats)))
    cells = [c.value for c in wb["Sổ"][3]]
    assert cells[2] == "'" + hostile and cells[3].startswith("'+") and cells[4] == "'@SUM(1)"
    assert cells[10] == "'-2+3" and cells[7] == 3 and cells[9] == "06/09/2025, 07/09/2025"
    assert all(c.data_type != "f" for r in wb["Sổ"].iter_rows() for c in r)
    assert wb["Bìa"]["B1"].value == "'=UBND"
