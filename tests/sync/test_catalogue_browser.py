"""The province's catalogue in Debian's Chromium, against a real `luutru central serve`: a
citizen finds a record without signing in, signs up, asks for a certified copy; the archivist
approves it in the dashboard; the citizen downloads a PDF whose signature pyHanko validates and
whose page shows BẢN SAO. Every public page passes axe-core's WCAG 2.1 A/AA rules at desktop
width and at 360 px, and works under its Content-Security-Policy.

Screenshots: var/test-artefacts/catalogue/."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from appliance.clock import ManualClock
from appliance.datadir import init_data_dir
from appliance.keys import agency
from appliance.store import Store
from sync.central.centre import init_centre
from sync.central.intake import Intake
from tests.conftest import ORG_ID, ORG_NAME
from tests.pki import SoftHsmToken, make_ca, pem, softhsm_token
from tests.sync.catalogue_scenario import PUBLIC_SUBJECT, Expect, build, sync_all
from tests.sync.conftest import START, Appliance, enrol_appliance
from tests.sync.procs import CentreServer
from tests.sync.test_catalogue_readers import ARCHIVE, _validate, upload_content
from tests.web.axe import axe_source, violations
from tests.web.server import ROOT
from tests.web.test_e2e_browser import CHROMIUM, FLAGS
from web_ui.central.auth import DashboardUsers

__all__ = ["softhsm_token"]
ARTEFACTS = ROOT / "var" / "test-artefacts" / "catalogue"
ARCHIVIST, ARCHIVIST_PW = "luutru-tinh", "mật khẩu lưu trữ tỉnh 2025"
CITIZEN_PW = "Hồ sơ đất nhà tôi 2025"


def _prepare(tmp: Path, token: SoftHsmToken) -> tuple[Path, Expect]:
    """A centre folder holding a synced commune (every rule's case), a PDF, the archive's
    agency key on the token (its PIN in a file the catalogue reads) and an archivist."""
    centre = init_centre(tmp / "centre")
    d = tmp / "appliance"
    init_data_dir(d, ORG_ID, ORG_NAME, "software")
    clock = ManualClock(START)
    store = Store.open(d, clock=clock)
    try:
        app = Appliance(d, store, clock, Intake(centre))
        enrol_appliance(app, app.intake)
        ex = build(store)
        sync_all(app)
        upload_content(centre, app, ex.doc)
    finally:
        store.close()
    agency.configure_agency_pkcs11(centre.data_dir, token.module, token.token_label,
                                   token.key_label)
    with agency.open_agency_key(centre.data_dir, token.pin) as key:
        public = key.public_key()
    ca = make_ca()
    agency.import_agency_cert(centre.data_dir, pem(ca.issue(
        public, agency.agency_subject(ARCHIVE))) + pem(ca.cert), pin=token.pin)
    (tmp / "pin").write_text(token.pin)
    (centre.data_dir / "catalogue.json").write_text(json.dumps({
        "archive_name": ARCHIVE, "admin_email": "luutru@quangninh.gov.vn",
        "oai_namespace": "luutru.quangninh.gov.vn", "pin_file": str(tmp / "pin")},
        ensure_ascii=False))
    centre.close()
    DashboardUsers(tmp / "centre").set_password(ARCHIVIST, ARCHIVIST_PW)
    _CA.append(ca)
    return tmp / "centre", ex


_CA: list[Any] = []


def _check(page: Any, name: str, problems: list[str]) -> None:
    """Screenshots at desktop width and at 360 px, and axe at both."""
    for width, tag in ((1280, "desktop"), (360, "360")):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(ARTEFACTS / f"{name}-{tag}.png"), full_page=True)
        for v in violations(page):
            problems.append(f"{name} @{tag}: {v['id']} ({v['impact']}): {v['nodes'][:2]}")
        overflow = page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
        if overflow:
            problems.append(f"{name} @{tag}: the page is wider than the screen")
    page.set_viewport_size({"width": 1280, "height": 900})


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")
def test_citizen_finds_asks_and_downloads_a_signed_copy(
    tmp_path: Path, softhsm_token: SoftHsmToken
) -> None:
    from playwright.sync_api import expect, sync_playwright

    centre_dir, _ = _prepare(tmp_path, softhsm_token)
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {ARTEFACTS}")
    problems: list[str] = []
    console: list[str] = []
    with CentreServer(centre_dir) as srv, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        ctx = browser.new_context(locale="vi-VN", accept_downloads=True)
        ctx.add_init_script(script=axe_source())
        page = ctx.new_page()
        page.on("console", lambda m: console.append(m.text))

        # Find the record without signing in, typing without diacritics.
        page.goto(srv.url + "/catalogue")
        expect(page.locator("h1")).to_have_text("Mục lục tài liệu lưu trữ")
        _check(page, "01-catalogue", problems)
        page.fill("#q", "cap giay chung nhan quyen su dung dat")
        page.select_option("#kind", "document")
        page.click("form.search button")
        hit = page.locator("ol.hits a", has_text=PUBLIC_SUBJECT)
        expect(hit).to_have_count(1)
        expect(page.locator("ol.hits")).not_to_contain_text("hạn chế")
        _check(page, "02-search", problems)
        hit.click()
        expect(page.locator("h1")).to_have_text(PUBLIC_SUBJECT)
        _check(page, "03-document", problems)
        page.click("text=Hồ sơ 000.21.08.H49.2024.01.DD")
        expect(page.locator("table")).to_contain_text(PUBLIC_SUBJECT)
        _check(page, "04-hoso", problems)
        page.go_back()

        # Sign up (a weak password first: the field is named, the form kept), then ask.
        page.get_by_role("link", name="Tạo tài khoản").click()
        _check(page, "05-signup", problems)
        page.fill("#full_name", "Đặng Văn Đông")
        page.fill("#username", "dangvandong")
        page.fill("#identity_no", "022190001234")
        page.fill("#password", "ngắn quá")
        page.click("form.stack button")
        expect(page.locator("#form-error")).to_be_visible()
        expect(page.locator("#password")).to_have_attribute("aria-invalid", "true")
        expect(page.locator("#username")).to_have_value("dangvandong")
        _check(page, "06-signup-error", problems)
        page.fill("#password", CITIZEN_PW)
        page.click("form.stack button")
        expect(page.locator("h1")).to_have_text(PUBLIC_SUBJECT)
        page.fill("#purpose", "Làm thủ tục cấp đổi giấy chứng nhận quyền sử dụng đất")
        _check(page, "07-ask", problems)
        page.click("section.ask button")
        expect(page.locator("h1")).to_have_text("Yêu cầu của tôi")
        expect(page.locator("td.status")).to_contain_text("Đang chờ")
        _check(page, "08-my-requests-waiting", problems)

        # The archivist approves in the dashboard (another browser).
        staff = browser.new_context(locale="vi-VN").new_page()
        staff.goto(srv.url + "/online-requests")
        staff.fill("input[name=username]", ARCHIVIST)
        staff.fill("input[name=password]", ARCHIVIST_PW)
        staff.click("button[type=submit]")
        expect(staff.locator("h1")).to_have_text("Yêu cầu trực tuyến")
        expect(staff.locator("table")).to_contain_text("Đặng Văn Đông")
        staff.screenshot(path=str(ARTEFACTS / "09-archivist.png"), full_page=True)
        staff.click("button[value=approve]")
        expect(staff.locator("table")).to_contain_text("Đã duyệt")
        staff.screenshot(path=str(ARTEFACTS / "10-archivist-approved.png"), full_page=True)

        # The citizen sees it approved and downloads the signed copy.
        page.reload()
        expect(page.locator("td.status")).to_contain_text("Đã duyệt")
        _check(page, "11-my-requests-approved", problems)
        with page.expect_download() as dl:
            page.get_by_role("link", name="tải bản sao đã ký (PDF)").click()
        pdf = Path(dl.value.path()).read_bytes()
        (ARTEFACTS / "ban-sao.pdf").write_bytes(pdf)
        page.goto(srv.url + "/reader/signin")
        _check(page, "12-signin", problems)
        page.goto(srv.url + "/catalogue?lang=en")
        expect(page.locator("h1")).to_have_text("Archive catalogue")
        _check(page, "13-catalogue-en", problems)
        browser.close()

    _validate(pdf, _CA[-1])
    text = subprocess.run(["pdftotext", "-l", "1", str(ARTEFACTS / "ban-sao.pdf"), "-"],
                          capture_output=True, text=True, check=True).stdout
    assert "BẢN SAO" in text and ARCHIVE in text
    assert f"Ngày sao: {dt.date.today():%d/%m/%Y}" in text
    subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1",
                    str(ARTEFACTS / "ban-sao.pdf"), str(ARTEFACTS / "14-ban-sao")], check=True)
    assert not [m for m in console if "Content Security Policy" in m], console
    assert problems == [], "\n".join(problems)


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")
def test_axe_really_judges() -> None:
    """The vendored axe finds what it should: an image without text, an unlabelled field,
    grey-on-grey text (so a clean report above means something)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        ctx = browser.new_context()
        ctx.add_init_script(script=axe_source())
        page = ctx.new_page()
        page.set_content('<html lang="vi"><head><title>t</title></head><body><main>'
                         '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">'
                         '<input type="text"><p style="color:#aaa;background:#bbb">mờ</p>'
                         '</main></body></html>')
        found = {v["id"] for v in violations(page)}
        browser.close()
    assert {"image-alt", "label", "color-contrast"} <= found, found
