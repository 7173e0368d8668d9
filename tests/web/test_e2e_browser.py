"""End to end in Debian's Chromium (driven by Playwright, never `playwright install`): sign in,
register an incoming document with a scan, find it by typing without diacritics, issue an
outgoing document, print the registers and find the rows in the PDF text.

Screenshots are kept in var/test-artefacts/web/ (git-ignored); the path is printed."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import pytest

from appliance.clock import TZ

from . import samples
from .server import ROOT, luutru, serve

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
         "--disable-default-apps"]
ARTEFACTS = ROOT / "var" / "test-artefacts" / "web"
PASSWORD = "mật khẩu văn thư 2025"
SUBJECT = "V/v triển khai công tác phòng, chống thiên tai và tìm kiếm cứu nạn năm 2025"


def _pdf_text(data: bytes, tmp: Path) -> str:
    path = tmp / "register.pdf"
    path.write_bytes(data)
    out = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, check=True)
    return " ".join(out.stdout.decode("utf-8").split())


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")
def test_clerk_day_in_the_browser(data_dir: Path, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    added = luutru("user", "add", "--data", str(data_dir), "--username", "vanthu", "--role",
                   "clerk", "--full-name", "Nguyễn Thị Lan", "--password-stdin",
                   stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    scan = tmp_path / "cong-van-1245.pdf"
    scan.write_bytes(samples.pdf(pages=2))
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {ARTEFACTS}")
    year = dt.datetime.now(TZ).year
    with serve(data_dir) as srv, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="vi-VN")
        page.on("dialog", lambda d: d.accept())  # "issue now?" confirmations
        shot = lambda name: page.screenshot(path=str(ARTEFACTS / f"{name}.png"), full_page=True)  # noqa: E731

        page.goto(srv.url + "/")
        expect(page.locator("h1")).to_have_text("Đăng nhập")
        shot("01-signin")
        page.fill("#username", "vanthu")
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        expect(page.locator("h1")).to_have_text("Trang chủ")
        shot("02-home")

        page.click("text=Đăng ký văn bản đến")
        page.fill("#f-TypeName", "Công văn")
        page.fill("#f-CodeNumber", "1245")
        page.fill("#f-CodeNotation", "UBND-NC")
        page.fill("#f-IssuedDate", "03092025")  # typed fast; the page makes it 03/09/2025
        page.fill("#f-OrganName", "Ủy ban nhân dân tỉnh Quảng Ninh")
        page.fill("#f-Subject", SUBJECT)
        page.fill("#f-PageAmount", "2")
        page.fill("#f-ToPlaces", "Chủ tịch UBND xã")
        page.set_input_files("#f-scan", str(scan))
        shot("03-incoming-form")
        page.click("#save")
        expect(page.locator("#done")).to_contain_text("Đã đăng ký với số đến 1.")
        expect(page.locator("#subject")).to_have_text(SUBJECT)
        expect(page.locator("img.preview")).to_have_count(1)
        page.wait_for_function(  # the first page, rendered by the appliance, has loaded
            "() => { const i = document.querySelector('img.preview');"
            " return i && i.complete && i.naturalWidth > 0; }")
        page.wait_for_timeout(700)  # let the sealer sign, then reload for the badge
        page.reload()
        expect(page.locator("#seal")).to_contain_text("Đã niêm phong")
        shot("04-incoming-registered")

        page.click("nav >> text=Tìm kiếm")
        page.fill("#q", "trien khai cong tac phong chong thien tai")
        page.click("#search-go")
        hit = page.locator("table.list a", has_text="triển khai công tác phòng, chống thiên tai")
        expect(hit).to_have_count(1)
        shot("05-search-without-diacritics")
        hit.click()
        expect(page.locator("#subject")).to_have_text(SUBJECT)

        page.click('nav >> text="Văn bản đi"')  # exact: "Văn bản điện tử đến" also starts so
        page.fill("#f-TypeName", "Quyết định")
        page.fill("#f-Subject", "Về việc thành lập Tổ công tác chuyển đổi số của xã")
        page.fill("#f-SignerPosition", "Chủ tịch")
        page.fill("#f-SignerFullName", "Trần Văn Hùng")
        page.fill("#f-To", "Các thôn trên địa bàn xã\nVăn phòng HĐND và UBND xã")
        page.check("#f-paper")  # signed on paper (electronic: tests/web/test_e2e_outgoing)
        page.click("#save")
        expect(page.locator("#preview")).to_have_text("01/QĐ-UBND")
        shot("06-outgoing-draft-preview")
        page.click("#issue")
        expect(page.locator("#done")).to_contain_text("Đã ban hành số 01/QĐ-UBND")
        shot("07-outgoing-issued")

        page.goto(f"{srv.url}/registers/incoming/{year}")
        expect(page.locator("table.register")).to_contain_text("1245/UBND-NC")
        shot("08-register-incoming")
        href = page.locator("#print-pdf").get_attribute("href")
        pdf = page.request.get(srv.url + str(href))  # the browser's own session cookie
        assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf"
        text = _pdf_text(pdf.body(), tmp_path)
        assert "SỔ ĐĂNG KÝ VĂN BẢN ĐẾN" in text
        assert "1245/UBND-NC" in text and "03/09/2025" in text
        assert "phòng, chống thiên tai và tìm kiếm cứu nạn" in text
        (ARTEFACTS / "so-den.pdf").write_bytes(pdf.body())

        page.goto(f"{srv.url}/registers/outgoing/{year}")
        out_pdf = page.request.get(f"{srv.url}/registers/outgoing/{year}/print.pdf")
        out_text = _pdf_text(out_pdf.body(), tmp_path)
        assert "SỔ ĐĂNG KÝ VĂN BẢN ĐI" in out_text and "01/QĐ-UBND" in out_text
        assert "Chủ tịch, Trần Văn Hùng" in out_text

        page.set_viewport_size({"width": 390, "height": 844})  # a phone, for the camera
        page.goto(srv.url + "/documents/incoming/new")
        camera = page.locator("#f-camera")
        assert camera.get_attribute("capture") == "environment"
        assert camera.get_attribute("accept") == "image/*"
        shot("09-phone-incoming-form")
        browser.close()
    verify = luutru("verify", "--data", str(data_dir), "--json")
    assert '"ok": true' in verify.stdout, verify.stdout
