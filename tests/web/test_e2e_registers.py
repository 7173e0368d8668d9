"""The registers, the postal and bản lưu forms and the Danh mục hồ sơ in Debian's Chromium
(Playwright, never `playwright install`), against a real `luutru serve`: a quarter's follow-up
register printed, a sending and a use of the kept copy recorded (a refused date first), the
headings chosen from a select, the Danh mục approved by the leader; at 1280 and 360 px.

Screenshots (and the printed PDFs, with their pages as PNG) are kept in
var/test-artefacts/registers/."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from appliance import handling
from appliance import registers as regs
from appliance.clock import TZ
from appliance.store import Store
from tests.conftest import incoming, outgoing
from tests.registers_helpers import set_handling

from .server import ROOT, luutru, serve
from .test_e2e_browser import CHROMIUM, FLAGS

ARTEFACTS = ROOT / "var" / "test-artefacts" / "registers"
USERS = {"vanthu": ("clerk", "Nguyễn Thị Lan"), "lanhdao": ("leader", "Trần Văn Hùng"),
         "chuyenvien": ("clerk", "Lê Thị Hoa")}
PASSWORD = "mật khẩu sổ sách 2025"


def _text(body: bytes, path: Path) -> str:
    path.write_bytes(body)
    subprocess.run(["pdftoppm", "-r", "60", "-png", "-f", "1", "-l", "2", str(path),
                    str(path.with_suffix(""))], check=True)
    out = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, check=True)
    return " ".join(out.stdout.decode().split())


def _prepare(data_dir: Path, today: dt.date) -> dict[str, Any]:
    """Three documents of this quarter (answered, late, awaiting direction), one of the last,
    and the văn bản đi that answered the first."""
    q = (today.month - 1) // 3 + 1
    quarter = regs.quarter(today.year, q)
    start = quarter.start
    days = [start + dt.timedelta(days=n) for n in (0, 1, 2)]
    days = [min(d, today) for d in days]
    with Store.open(data_dir) as store:
        earlier = None
        if q > 1:
            earlier = store.register_incoming(incoming(
                CodeNumber="3", IssuedDate=(start - dt.timedelta(days=5)).isoformat(),
                ArrivalDate=(start - dt.timedelta(days=3)).isoformat(),
                Subject="V/v báo cáo quý trước")).record.id
        docs = []
        for n, (type_, number, notation, organ, subject) in enumerate((
                ("Nghị quyết", "12", "NQ-HĐND", "Hội đồng nhân dân tỉnh",
                 "Quy định bảng giá đất"),
                ("Công văn", "88", "STC-NS", "Sở Tài chính", "V/v quyết toán ngân sách xã"),
                ("Công văn", "45", "UBND-VP", "Ủy ban nhân dân tỉnh Quảng Ninh",
                 "V/v lịch tiếp công dân"))):
            docs.append(store.register_incoming(incoming(
                TypeName=type_, CodeNumber=number, CodeNotation=notation, OrganName=organ,
                Subject=subject, IssuedDate=days[n].isoformat(),
                ArrivalDate=days[n].isoformat())).record.id)
        answer = store.issue_outgoing(store.draft_outgoing(outgoing(
            TypeName="Báo cáo", Subject="Quyết toán ngân sách xã",
            To=[{"OrganName": "Sở Tài chính"}, {"OrganName": "Kho bạc Nhà nước khu vực"}]))
            .record.id).record
        # A văn bản đi issued by mistake and cancelled: its number stays, marked.
        wrong = store.issue_outgoing(store.draft_outgoing(outgoing(
            Subject="Về việc thành lập tổ công tác")).record.id).record
        store.cancel_document(wrong.id, "Ban hành nhầm", "vanthu")
        # The first: directed and answered through the live library; the second is late, a
        # state only time gives (a direction's deadline cannot be in the past), so it is
        # written as the library would have left it.
        handling.direct(store, docs[0], "Giao công chức tài chính", "chuyenvien", (),
                        today, "lanhdao")
        handling.report_progress(store, docs[0], "Đã trả lời", "chuyenvien", done=True,
                                 answer=answer.id)
        now = dt.datetime.now(TZ).isoformat(timespec="seconds")
        set_handling(store, docs[1], {
            "status": "in_progress", "direction": "Tổng hợp báo cáo", "directed_by": "lanhdao",
            "directed_at": now, "lead": "chuyenvien", "support": ["vanthu"],
            "due": (start - dt.timedelta(days=1)).isoformat(),
            "progress": [{"at": now, "by": "chuyenvien", "note": "Đang lấy số liệu",
                          "done": False}], "answer": None, "done_at": None})
        store.wait_sealed()
    return {"quarter": quarter, "q": q, "docs": docs, "answer": answer.id, "earlier": earlier,
            "answer_number": f"{answer.data['CodeNumber']}/{answer.data['CodeNotation']}"}


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")
def test_registers_forms_and_danh_muc_in_the_browser(data_dir: Path, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    for name, (role, full) in USERS.items():
        added = luutru("user", "add", "--data", str(data_dir), "--username", name, "--role",
                       role, "--full-name", full, "--password-stdin", stdin=PASSWORD + "\n")
        assert added.returncode == 0, added.stderr
    today = dt.datetime.now(TZ).date()
    year = today.year
    ctx = _prepare(data_dir, today)
    quarter = ctx["quarter"]
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {ARTEFACTS}")
    with serve(data_dir) as srv, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="vi-VN")

        def shot(name: str) -> None:
            page.screenshot(path=str(ARTEFACTS / f"{name}.png"), full_page=True)

        def fits(scope: str = "body") -> None:
            """Nothing in ``scope`` is wider than the screen but what scrolls on its own."""
            wide = page.evaluate("""scope => [...document.querySelectorAll(scope + ' *')]
                .filter(e => e.getBoundingClientRect().right > innerWidth + 1
                             && !e.closest('.table-scroll'))
                .map(e => e.tagName + (e.id ? '#' + e.id : '') + '.' + e.className)""", scope)
            assert wide == [], (page.url, wide)

        def sign_in(user: str) -> None:
            if page.locator("header.top >> text=Đăng xuất").count():
                page.click("header.top >> text=Đăng xuất")
            page.goto(srv.url + "/signin")
            page.fill("#username", user)
            page.fill("#password", PASSWORD)
            page.click("button[type=submit]")
            expect(page.locator("h1")).to_have_text("Trang chủ")

        sign_in("vanthu")
        # -- the registers: the follow-up register of this quarter, on screen and printed --
        page.goto(srv.url + "/registers")
        expect(page.locator("#reg-handling h2")).to_have_text(
            "SỔ THEO DÕI GIẢI QUYẾT VĂN BẢN ĐẾN")
        shot("01-registers")
        page.click("#reg-handling >> text=Xem")
        page.click(f"#period-Q{ctx['q']}")
        expect(page.locator("#register-span")).to_contain_text(
            f"Từ ngày {quarter.start:%d/%m/%Y} đến ngày {quarter.end:%d/%m/%Y}")
        expect(page.locator("#register-span")).to_contain_text("Từ số 2 đến số 4")
        table = page.locator("table.register")
        expect(table.locator("tbody tr")).to_have_count(3)
        expect(table).to_contain_text("Lê Thị Hoa; phối hợp: Nguyễn Thị Lan")
        expect(table).to_contain_text(f"{ctx['answer_number']} ngày {today:%d/%m/%Y}")
        expect(table).to_contain_text("Chờ ý kiến chỉ đạo")
        expect(table).to_contain_text("quá hạn")
        shot("02-handling-quarter")
        href = page.locator("#print-pdf").get_attribute("href")
        assert href and f"from={quarter.start.isoformat()}" in href
        pdf = page.request.get(srv.url + href)
        assert pdf.status == 200
        text = _text(pdf.body(), ARTEFACTS / "so-theo-doi-giai-quyet-quy.pdf")
        assert "SỔ THEO DÕI GIẢI QUYẾT VĂN BẢN ĐẾN" in text
        assert f"Từ ngày {quarter.start:%d/%m/%Y} đến ngày {quarter.end:%d/%m/%Y}" in text
        assert "Tiến độ giải quyết" in text and "Sở Tài chính" in text
        assert "báo cáo quý trước" not in text  # the earlier quarter's document is not in it
        xlsx = page.request.get(srv.url + str(page.locator("#export-xlsx")
                                              .get_attribute("href")))
        assert xlsx.status == 200 and xlsx.body()[:2] == b"PK"

        # -- an issued văn bản đi: sent by post (a wrong date first), its kept copy lent --
        page.goto(f"{srv.url}/documents/{ctx['answer']}")
        expect(page.locator("#postal-addressees")).to_have_value(
            "Sở Tài chính\nKho bạc Nhà nước khu vực")
        page.fill("#postal-sent_on", "31/02/" + str(year))
        page.fill("#postal-note", "Gửi bảo đảm")
        page.click("#postal-save")
        expect(page.locator("#error")).to_contain_text("Ngày chuyển không hợp lệ")
        expect(page.locator("#postal-sent_on")).to_have_attribute("aria-invalid", "true")
        expect(page.locator("#postal-note")).to_have_value("Gửi bảo đảm")  # the form is kept
        page.locator("#postal-form").scroll_into_view_if_needed()
        shot("03-postal-refused")
        page.fill("#postal-sent_on", f"{today:%d/%m/%Y}")
        page.click("#postal-save")
        expect(page.locator("#done-posted")).to_be_visible()
        expect(page.locator("#sendings")).to_contain_text("Kho bạc Nhà nước khu vực")
        page.fill("#use-user_name", "Phạm Văn Bình")
        page.fill("#use-approved_by", "Trần Văn Hùng, Chủ tịch UBND xã")
        page.fill("#use-note", "Thanh tra tài chính")
        page.click("#use-save")
        expect(page.locator("#done-lent")).to_be_visible()
        page.locator(".return-form button").click()
        expect(page.locator("#done-returned")).to_be_visible()
        expect(page.locator("#uses")).to_contain_text(f"{today:%d/%m/%Y}")
        shot("04-document-post-and-copies")
        page.goto(f"{srv.url}/registers/post/{year}")
        expect(page.locator("table.register")).to_contain_text("Gửi bảo đảm")
        shot("05-post-register")
        page.goto(f"{srv.url}/registers/copies/{year}")
        expect(page.locator("table.register")).to_contain_text("Phạm Văn Bình")
        shot("06-copies-register")
        page.goto(f"{srv.url}/registers/outgoing/{year}")
        cancelled = page.locator("table.register tbody tr", has_text="tổ công tác")
        expect(cancelled).to_contain_text(f"Huỷ ngày {today:%d/%m/%Y}: Ban hành nhầm")
        expect(page.locator("#register-span")).to_contain_text("Từ số 01 đến số 02")
        shot("06b-outgoing-cancelled")

        # -- the Danh mục: headings set up once, chosen from a select, approved --
        page.goto(f"{srv.url}/files?year={year}")
        page.click("#edit-headings")
        page.fill("#f-headings", "I. Công tác tổng hợp, văn phòng | VP\n1. Văn thư, lưu trữ\n"
                                 "II. Tài chính - ngân sách | TC\n")
        page.click("#save-headings")
        expect(page.locator("#done")).to_contain_text("phiên bản 1")
        page.goto(f"{srv.url}/files/new?year={year}")
        options = page.locator("#f-Heading option")
        expect(options).to_have_count(4)
        page.fill("input[name=FileNotation]", "01.VP")
        page.select_option("#f-Heading", "I.1. Văn thư, lưu trữ")
        page.fill("textarea[name=Title]", f"Tập lưu văn bản đi năm {year}")
        page.fill("input[name=Creator]", "Nguyễn Thị Lan")
        page.select_option("#f-Maintenance", "01")  # Vĩnh viễn
        shot("07-file-form-heading-select")
        page.click("form.grid button.primary")
        page.wait_for_url(re.compile(r"/files/.+\.01\.VP\?done=opened"))
        page.goto(f"{srv.url}/files?year={year}")
        expect(page.locator("#danh-muc")).to_contain_text("1. Văn thư, lưu trữ")
        expect(page.locator("#not-approved")).to_be_visible()
        sign_in("lanhdao")
        page.goto(f"{srv.url}/files?year={year}")
        page.fill("#f-decision", f"Quyết định số 01/QĐ-UBND ngày {today:%d/%m/%Y}")
        page.fill("#f-position", "Chủ tịch UBND xã")
        page.click("#approve")
        expect(page.locator("#done")).to_contain_text("đã được phê duyệt")
        expect(page.locator("#approval")).to_contain_text("Trần Văn Hùng")
        shot("08-danh-muc-approved")
        plan = page.request.get(f"{srv.url}/files/plan/{year}/print.pdf")
        plan_text = _text(plan.body(), ARTEFACTS / "danh-muc-ho-so.pdf")
        assert f"DANH MỤC HỒ SƠ CỦA ỦY BAN NHÂN DÂN XÃ ĐÔNG HẢI NĂM {year}" in plan_text
        assert "Đã được phê duyệt" in plan_text and "1. Văn thư, lưu trữ" in plan_text

        # -- the same pages on a 360 px phone, as the clerk --
        page.set_viewport_size({"width": 360, "height": 780})
        sign_in("vanthu")
        for name, url in (
                ("11-phone-registers", "/registers"),
                ("12-phone-handling-quarter",
                 f"/registers/handling/{year}?{quarter.query()}"),
                ("13-phone-document", f"/documents/{ctx['answer']}#logbooks"),
                ("14-phone-file-form", f"/files/new?year={year}"),
                ("15-phone-danh-muc", f"/files?year={year}")):
            page.goto(srv.url + url)
            expect(page.locator("h1")).not_to_contain_text("403")
            fits()
            shot(name)
        # A refused sending on the phone: the field marked, the values kept.
        page.goto(f"{srv.url}/documents/{ctx['answer']}")
        page.fill("#postal-sent_on", "32/12/" + str(year))
        page.click("#postal-save")
        expect(page.locator("#postal-sent_on")).to_have_attribute("aria-invalid", "true")
        fits()
        page.locator("#postal-form").screenshot(path=str(ARTEFACTS / "16-phone-postal-refused.png"))
        browser.close()
    verify = luutru("verify", "--data", str(data_dir), "--json")
    assert '"ok": true' in verify.stdout, verify.stdout
