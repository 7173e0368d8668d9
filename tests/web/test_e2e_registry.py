"""Issue 18 as a commune office lives it, in Debian's Chromium against a real `luutru serve`:
the clerk registers three real-looking incoming documents (a resolution whose number carries
the year, a petition with no number, a business's CV letter, one with a phone photo that goes
through capture), mistypes a date and is told so in Vietnamese with the field highlighted and
the form kept, corrects an arrival date with a reason; the leader directs one to a handler with
a deadline; the clerk issues the answer; the handler reports it done with that answer; the
follow-up shows it done. Screenshots at 1280 px and 360 px in var/test-artefacts/web/registry/.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from pathlib import Path

import pytest
from PIL import Image

from appliance.clock import TZ

from .server import luutru, serve
from .test_e2e_browser import ARTEFACTS, CHROMIUM, FLAGS

SHOTS = ARTEFACTS / "registry"
PASSWORDS = {"vanthu": "mật khẩu văn thư 2025", "lanhdao": "mật khẩu lãnh đạo 2025",
             "chuyenvien": "mật khẩu chuyên viên 2025"}
RESOLUTION = "Nghị quyết về kế hoạch đầu tư công trung hạn giai đoạn 2026–2030"
PETITION = "Đơn đề nghị hỗ trợ sửa chữa nhà ở sau bão số 3"
BUSINESS = "V/v xin phép tập kết vật liệu xây dựng tại bãi sông thôn Đông"
ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def _photo(path: Path) -> None:
    """A phone photo of a typed page: A4 at about 200 dpi, no dpi tag, lines of text."""
    from tests.capture.images import text_page

    img = text_page(["HỘI ĐỒNG NHÂN DÂN HUYỆN HẢI HÀ", "Số: 12/2025/NQ-HĐND",
                     "NGHỊ QUYẾT", "Về kế hoạch đầu tư công trung hạn"], dpi=200, pt=14)
    out = io.BytesIO()
    img.rotate(0.6, fillcolor="white", resample=Image.BICUBIC).save(out, "JPEG", quality=85)
    path.write_bytes(out.getvalue())


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")
def test_registry_day_clerk_leader_handler(data_dir: Path, tmp_path: Path) -> None:
    from playwright.sync_api import Page, expect, sync_playwright

    for user, role, name in (("vanthu", "clerk", "Nguyễn Thị Lan"),
                             ("lanhdao", "leader", "Trần Văn Hùng"),
                             ("chuyenvien", "handler", "Phạm Minh Đức")):
        added = luutru("user", "add", "--data", str(data_dir), "--username", user, "--role",
                       role, "--full-name", name, "--password-stdin", stdin=PASSWORDS[user] + "\n")
        assert added.returncode == 0, added.stderr
    photo = tmp_path / "IMG_20251203_0930.jpg"
    _photo(photo)
    SHOTS.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {SHOTS}")
    today = dt.datetime.now(TZ).date()
    due = today + dt.timedelta(days=10)

    with serve(data_dir) as srv, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="vi-VN")
        page.on("dialog", lambda d: d.accept())

        def shot(name: str, phone_too: bool = True) -> None:
            page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
            assert not ISO_TIME.search(page.inner_text("main")), "an ISO time on screen"
            if phone_too:
                page.set_viewport_size({"width": 360, "height": 780})
                page.screenshot(path=str(SHOTS / f"{name}-360.png"), full_page=True)
                width = page.evaluate("document.documentElement.scrollWidth")
                assert width <= 360, f"{name}: {width} px wide on a 360 px phone"
                page.set_viewport_size({"width": 1280, "height": 900})

        def sign_in(user: str) -> None:
            page.goto(srv.url + "/signin")
            page.fill("#username", user)
            page.fill("#password", PASSWORDS[user])
            page.click("button[type=submit]")
            expect(page.locator("h1")).to_have_text("Trang chủ")

        def sign_out(pg: Page) -> None:
            pg.locator("form[action='/signout'] button").first.click()
            expect(pg.locator("h1")).to_have_text("Đăng nhập")

        def register(fields: dict[str, str], photo_path: Path | None = None) -> str:
            page.goto(srv.url + "/documents/incoming/new")
            for key, value in fields.items():
                page.fill(f"#f-{key}", value)
            if photo_path is not None:
                page.set_input_files("#f-camera", str(photo_path))
            page.click("#save")
            expect(page.locator("#done")).to_contain_text("Đã đăng ký với số đến")
            return page.url.split("/documents/")[1].split("?")[0]

        # -- the clerk ----------------------------------------------------------------
        sign_in("vanthu")
        # A mistyped date: said in Vietnamese with the form's own label, field marked, kept.
        page.goto(srv.url + "/documents/incoming/new")
        page.fill("#f-TypeName", "Nghị quyết")
        page.fill("#f-CodeNumber", "12")
        page.fill("#f-CodeNotation", "2025/NQ-HĐND")
        page.fill("#f-IssuedDate", "31/02/2025")
        page.fill("#f-OrganName", "Hội đồng nhân dân huyện Hải Hà")
        page.fill("#f-Subject", RESOLUTION)
        page.click("#save")
        expect(page.locator("#error")).to_contain_text("Ngày tháng văn bản")
        expect(page.locator("#error")).to_contain_text("không có ngày 31/02/2025")
        expect(page.locator("#f-IssuedDate")).to_have_attribute("aria-invalid", "true")
        expect(page.locator("#f-Subject")).to_have_value(RESOLUTION)  # the form is kept
        assert "IssuedDate" not in page.inner_text("main")
        shot("01-error-in-vietnamese")
        page.fill("#f-IssuedDate", "10/11/2025")
        page.set_input_files("#f-camera", str(photo))
        page.click("#save")
        expect(page.locator("#done")).to_contain_text("Đã đăng ký với số đến 1.")
        resolution = page.url.split("/documents/")[1].split("?")[0]
        expect(page.locator("#capture")).to_contain_text("nhận dạng chữ")
        shot("02-resolution-registered-capturing")

        petition = register({"TypeName": "Đơn", "OrganName": "Bà Trần Thị Hoa, thôn Đông",
                             "Subject": PETITION})
        expect(page.locator("main")).to_contain_text("Không số")
        shot("03-petition-without-number")
        business = register({"TypeName": "Công văn", "CodeNumber": "1234",
                             "CodeNotation": "CV-CTY", "IssuedDate": "28/11/2025",
                             "OrganName": "Công ty TNHH Minh Phát", "Subject": BUSINESS})
        expect(page.locator("main")).to_contain_text("CV-CTY")

        # The petition's arrival date was yesterday: corrected with a reason, in the history.
        yesterday = today - dt.timedelta(days=1)
        page.goto(f"{srv.url}/documents/{petition}/edit")
        page.fill("#f-ArrivalDate", yesterday.strftime("%d/%m/%Y"))
        page.fill("#f-Reason", "Đơn nhận chiều hôm trước, vào sổ chậm")
        shot("04-correcting-a-date")
        page.click("#save")
        expect(page.locator("#done")).to_contain_text("Đã lưu phần sửa")
        history = page.locator("#history")
        expect(history).to_contain_text(
            f"Ngày đến: {today.strftime('%d/%m/%Y')} → {yesterday.strftime('%d/%m/%Y')}")
        expect(history).to_contain_text("Đơn nhận chiều hôm trước, vào sổ chậm")
        shot("05-history-shows-the-correction")
        sign_out(page)

        # -- the leader ---------------------------------------------------------------
        sign_in("lanhdao")
        page.click("#nav-leader-inbox")
        awaiting = page.locator("#awaiting")
        for subject in (RESOLUTION, PETITION, BUSINESS):
            expect(awaiting).to_contain_text(subject)
        shot("06-leader-inbox")
        awaiting.get_by_text(BUSINESS).click()
        page.fill("#f-Instruction", "Giao đồng chí Đức kiểm tra thực địa, dự thảo văn bản trả lời "
                                  "công ty.")
        page.select_option("#f-Lead", "chuyenvien")
        page.fill("#f-Due", due.strftime("%d/%m/%Y"))
        page.click("#direct")
        expect(page.locator("#done")).to_contain_text("Đã lưu ý kiến chỉ đạo")
        expect(page.locator("#handling")).to_contain_text("Phạm Minh Đức")
        expect(page.locator("#handling")).to_contain_text(due.strftime("%d/%m/%Y"))
        shot("07-directed")
        # The resolution only informs the commune: "để biết", no handler, out of the inbox.
        page.click("#nav-leader-inbox")
        page.locator("#awaiting").get_by_text(RESOLUTION).click()
        page.fill("#f-Instruction", "Để biết; các bộ phận nghiên cứu, thực hiện.")
        page.check("#f-info")
        page.click("#direct")
        expect(page.locator("#for-information")).to_have_text("Để biết, không giao xử lý.")
        expect(page.locator("#handling-status")).to_have_text("Để biết")
        shot("07b-for-information")
        page.click("#nav-leader-inbox")
        expect(page.locator("#awaiting")).not_to_contain_text(RESOLUTION)
        expect(page.locator("#awaiting")).to_contain_text(PETITION)
        sign_out(page)

        # -- the clerk issues the answer ------------------------------------------------
        sign_in("vanthu")
        page.goto(srv.url + "/documents/outgoing/new")
        page.fill("#f-TypeName", "Công văn")
        page.fill("#f-CodeNotation", "UBND-ĐC")
        page.fill("#f-Subject", "V/v trả lời đề nghị tập kết vật liệu xây dựng tại bãi sông")
        page.fill("#f-SignerPosition", "Chủ tịch")
        page.fill("#f-SignerFullName", "Trần Văn Hùng")
        page.fill("#f-To", "Công ty TNHH Minh Phát")
        page.check("#f-paper")  # signed on paper (electronic: tests/web/test_e2e_outgoing)
        page.click("#save")
        page.click("#issue")
        expect(page.locator("#done")).to_contain_text("Đã ban hành số")
        sign_out(page)

        # -- the handler ----------------------------------------------------------------
        sign_in("chuyenvien")
        page.click("#nav-tasks")
        expect(page.locator("#tasks")).to_contain_text(BUSINESS)
        shot("08-my-work")
        page.locator("#tasks").get_by_text(BUSINESS).click()
        page.fill("#f-Note", "Đã kiểm tra thực địa; công văn trả lời đã ban hành.")
        answer = page.locator("#f-Answer option", has_text="trả lời đề nghị tập kết")
        page.select_option("#f-Answer", str(answer.get_attribute("value")))
        page.check("#f-done")
        page.click("#report")
        expect(page.locator("#handling-status")).to_have_text("Đã giải quyết")
        shot("09-handled-with-its-answer")
        page.click("#nav-tasks")
        expect(page.locator("#no-tasks")).to_be_visible()
        sign_out(page)

        # -- the follow-up: the leader sees it done, the rest still awaiting --------------
        sign_in("lanhdao")
        page.click("#nav-leader-inbox")
        expect(page.locator("#awaiting")).not_to_contain_text(BUSINESS)
        expect(page.locator("#open")).not_to_contain_text(BUSINESS)
        page.goto(f"{srv.url}/documents/{business}")
        expect(page.locator("#handling-status")).to_have_text("Đã giải quyết")
        shot("10-follow-up-done")
        # The Sổ theo dõi giải quyết văn bản đến says so too, with the answer's number.
        page.goto(f"{srv.url}/registers/handling/{today.year}")
        row = page.locator("tr", has_text="1234/CV-CTY")
        expect(row).to_contain_text("Đã giải quyết")
        expect(row).to_contain_text("Phạm Minh Đức")
        shot("10b-follow-up-register")
        # The resolution's photo has been through OCR by now (or is on its way).
        page.goto(f"{srv.url}/documents/{resolution}")
        # This box has no agency key: the text is recognised, signing waits for the key.
        page.wait_for_function(
            "() => { const c = document.querySelector('#capture');"
            " return c && !/nhận dạng chữ…/.test(c.textContent); }", timeout=180_000)
        expect(page.locator("#capture")).to_contain_text("chờ ký số")
        shot("11-text-recognised-waiting-for-the-key")
        page.goto(f"{srv.url}/search?q=ke+hoach+dau+tu+cong+trung+han")
        expect(page.locator("main")).to_contain_text(RESOLUTION)
        browser.close()
    verify = luutru("verify", "--data", str(data_dir), "--json")
    assert '"ok": true' in verify.stdout, verify.stdout
