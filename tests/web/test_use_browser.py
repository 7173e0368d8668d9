"""Use of the archive at the commune in Debian's Chromium, against a real `luutru serve`: the
clerk records an outside reader's request for a copy, the leader approves it, the clerk hands
over the copy (marked BẢN SAO), and the request is in the register of use with the year's
figures. Screenshots at desktop width and 360 px in var/test-artefacts/use/."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path
from typing import Any

import pytest

from appliance.clock import TZ
from appliance.store import Store
from tests.archive.conftest import attach_pdf
from tests.conftest import incoming

from .server import ROOT, luutru, serve
from .test_e2e_browser import CHROMIUM, FLAGS

ARTEFACTS = ROOT / "var" / "test-artefacts" / "use"
PASSWORD = "mật khẩu văn thư 2025"
SUBJECT = "V/v giao đất ở cho hộ bà Phạm Thị Hoa tại thôn 3"
TO_READ = "V/v đo đạc thửa đất của hộ bà Phạm Thị Hoa"


def _shots(page: Any, name: str) -> None:
    for width, tag in ((1280, "desktop"), (360, "360")):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(ARTEFACTS / f"{name}-{tag}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


def _sign_in(page: Any, url: str, user: str) -> None:
    page.goto(url + "/signin")
    page.fill("#username", user)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")
def test_a_request_is_approved_delivered_and_registered(data_dir: Path, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    with Store.open(data_dir) as store:
        f = store.open_file({"FileCatalog": 2025, "FileNotation": "07.DD", "Maintenance": "01",
                             "Title": "Hồ sơ giao đất năm 2025"})
        attach_pdf(store, store.register_incoming(incoming(
            FileCode=f.data["FileCode"], CodeNumber="61", Subject=SUBJECT)).record,
            "Quyết định giao đất")
        attach_pdf(store, store.register_incoming(incoming(
            FileCode=f.data["FileCode"], CodeNumber="62", Subject=TO_READ)).record,
            "Biên bản đo đạc thửa đất")
        store.wait_sealed()
    for user, role in (("vanthu", "clerk"), ("lanhdao", "leader")):
        added = luutru("user", "add", "--data", str(data_dir), "--username", user, "--role",
                       role, "--password-stdin", stdin=PASSWORD + "\n")
        assert added.returncode == 0, added.stderr
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {ARTEFACTS}")
    year = dt.datetime.now(TZ).year
    with serve(data_dir) as srv, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        clerk = browser.new_context(locale="vi-VN", accept_downloads=True).new_page()
        _sign_in(clerk, srv.url, "vanthu")
        clerk.click("nav >> text=Khai thác tài liệu")
        expect(clerk.locator("h1")).to_contain_text("Phiếu yêu cầu khai thác tài liệu")
        clerk.get_by_role("link", name="Phiếu yêu cầu mới").click()
        clerk.select_option("#f-reader_kind", "outside")
        clerk.fill("#f-reader_name", "Phạm Thị Hoa")
        clerk.fill("#f-reader_identity", "022190001234")
        clerk.fill("#f-reader_address", "Thôn 3, xã Đông Hải")
        clerk.select_option("#f-purpose_code", "03")
        clerk.fill("#f-purpose", "Làm thủ tục cấp giấy chứng nhận quyền sử dụng đất")
        clerk.fill("#f-q", "pham thi hoa")  # without diacritics
        clerk.click("button[name=search]")
        row = clerk.locator("table.list tr", has_text=SUBJECT)
        expect(row).to_have_count(1)
        row.locator("input[type=checkbox]").check()
        row.locator("select").select_option("copy")
        to_read = clerk.locator("table.list tr", has_text=TO_READ)
        to_read.locator("input[type=checkbox]").check()
        to_read.locator("select").select_option("read")
        expect(clerk.locator("#f-reader_name")).to_have_value("Phạm Thị Hoa")  # kept
        _shots(clerk, "01-new-request")
        clerk.click("button.primary")
        expect(clerk.locator("h1")).to_contain_text("Chờ duyệt")
        request_url = clerk.url
        _shots(clerk, "02-request-pending")

        leader = browser.new_context(locale="vi-VN").new_page()
        _sign_in(leader, srv.url, "lanhdao")
        leader.goto(request_url)
        leader.fill("#f-note", "Sao một bản, không sao trang khác")
        _shots(leader, "03-leader-decides")
        leader.get_by_role("button", name="Duyệt", exact=True).click()
        expect(leader.locator("h1")).to_contain_text("Đã duyệt")

        clerk.reload()
        with clerk.expect_download() as dl:
            clerk.get_by_role("button", name="Tải bản sao (PDF)").click()
        pdf = ARTEFACTS / "ban-sao.pdf"
        pdf.write_bytes(Path(dl.value.path()).read_bytes())  # gone when the browser closes
        clerk.reload()
        expect(clerk.locator("table.list")).to_contain_text("vanthu")
        _shots(clerk, "04-delivered")
        # The reader reads the other record on the clerk's screen: pictures with their mark.
        clerk.get_by_role("button", name="Đọc trên màn hình").click()
        expect(clerk.locator("h1")).to_contain_text("Đọc tài liệu")
        expect(clerk.locator("main")).to_contain_text(
            "Người đọc: Phạm Thị Hoa · Phiếu yêu cầu số 01/")
        img = clerk.locator("figure.reading-page img").first
        expect(img).to_be_visible()
        clerk.wait_for_function(
            "() => [...document.images].every(i => i.complete && i.naturalWidth > 0)")
        _shots(clerk, "05-reading")
        shown = clerk.request.get(srv.url + str(img.get_attribute("src")))
        assert shown.status == 200 and shown.headers["content-type"] == "image/png"
        (ARTEFACTS / "reading-page-1.png").write_bytes(shown.body())
        clerk.get_by_role("link", name="Về phiếu yêu cầu").click()

        leader.goto(f"{srv.url}/registers/use/{year}")
        expect(leader.locator("table.register")).to_contain_text("Phạm Thị Hoa")
        expect(leader.locator("table.register")).to_contain_text("Bản sao")
        _shots(leader, "06-register-of-use")
        reg = leader.request.get(f"{srv.url}/registers/use/{year}/print.pdf")
        assert reg.status == 200
        (ARTEFACTS / "so-khai-thac.pdf").write_bytes(reg.body())
        browser.close()
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "BẢN SAO" in text and "Mã lưu trữ: 000.21.08.H49.2025.07.DD.0000001" in text
    reg_text = subprocess.run(["pdftotext", str(ARTEFACTS / "so-khai-thac.pdf"), "-"],
                              capture_output=True, text=True, check=True).stdout
    assert "SỔ ĐĂNG KÝ KHAI THÁC" in reg_text and "Phạm Thị Hoa" in reg_text
