"""Issue 19 in Debian's Chromium, the paths test_e2e_outgoing.py leaves out, against a real
`luutru serve` whose exchange loop polls a folder:

- a draft made from an uploaded DOCX (LibreOffice on the box; skipped only when soffice is
  not installed): a wrong file type refused in Vietnamese, the field marked, the form kept;
- the chairman's key on a PKCS#11 token (SoftHSM2), his PIN typed at each signature (a
  wrong one refused); an addressee given with its mã định danh becomes an electronic
  delivery; from the document's page the clerk makes its edXML package, the exchange hands
  it over (signed by the agency key in swtpm, XAdES checked strictly by signxml) and the
  delivery turns "đã gửi"; the province's e-office answers through the exchange folder:
  its signed status 01 (a root the box trusts) turns it "đã nhận" with the province's time,
  an unsigned 03 is shown beside it and moves nothing; a malformed package from the
  province and a status about no document of ours are listed in the electronic inbox;
- the issued document recalled (thu hồi): a recall notice drafted from its page, approved,
  signed with the PIN again, issued; the old one is marked, never altered.

Screenshots at 1280 px and 360 px in var/test-artefacts/web/outgoing-more/.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from appliance.outgoing import signers
from appliance.store import Store
from tests import outgoing_kit as kit
from tests.pki import CA, SoftHsmToken, make_ca, pem, softhsm_token
from tests.swtpm import Swtpm, swtpm, swtpm_factory

from .server import luutru, serve
from .test_e2e_browser import ARTEFACTS, CHROMIUM, FLAGS

__all__ = ["softhsm_token", "swtpm", "swtpm_factory"]
SHOTS = ARTEFACTS / "outgoing-more"
PASSWORDS = {"vanthu": "mật khẩu văn thư 2025", "lanhdao": "mật khẩu lãnh đạo 2025",
             "chuyenvien": "mật khẩu chuyên viên 2025"}
PROVINCE = ("Ủy ban nhân dân tỉnh Quảng Ninh", "000.00.00.H49")
SUBJECT = "Về việc tổ chức diễn tập phòng cháy, chữa cháy năm 2025"
ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
XADES = "http://uri.etsi.org/01903/v1.3.2#"
NS = "{http://www.mic.gov.vn/TBT/QCVN_102_2016}"


def _users(data_dir: Path) -> None:
    for user, role, name in (("vanthu", "clerk", "Lê Thị Văn Thư"),
                             ("lanhdao", "leader", kit.SIGNER_NAME),
                             ("chuyenvien", "handler", "Phạm Văn Chuyên")):
        added = luutru("user", "add", "--data", str(data_dir), "--username", user, "--role",
                       role, "--full-name", name, "--password-stdin", stdin=PASSWORDS[user] + "\n")
        assert added.returncode == 0, added.stderr


class Browser:
    """One Chromium page with the scenario's habits: sign in and out, screenshots at two
    widths with no ISO time on screen and nothing wider than a 360 px phone."""

    def __init__(self, page: Any, url: str, shots: Path) -> None:
        self.page, self.url, self.shots = page, url, shots

    def sign_in(self, user: str) -> None:
        from playwright.sync_api import expect

        self.page.goto(self.url + "/signin")
        self.page.fill("#username", user)
        self.page.fill("#password", PASSWORDS[user])
        self.page.click("button[type=submit]")
        expect(self.page.locator("h1")).to_have_text("Trang chủ")

    def sign_out(self) -> None:
        from playwright.sync_api import expect

        self.page.locator("form[action='/signout'] button").first.click()
        expect(self.page.locator("h1")).to_have_text("Đăng nhập")

    def done(self, text: str) -> None:
        from playwright.sync_api import expect

        expect(self.page.locator("#done")).to_contain_text(text)

    def shot(self, name: str) -> None:
        page = self.page
        page.wait_for_function(
            "() => [...document.querySelectorAll('img.preview')]"
            ".every(i => i.complete && i.naturalWidth > 0)", timeout=30_000)
        page.screenshot(path=str(self.shots / f"{name}.png"), full_page=True)
        main = page.inner_text("main")
        assert not ISO_TIME.search(main), f"{name}: an ISO time on screen"
        for internal in ("edxml exchange", "template.body", "OrganId", "None"):
            assert internal not in main, f"{name}: '{internal}' on screen"
        page.set_viewport_size({"width": 360, "height": 780})
        page.screenshot(path=str(self.shots / f"{name}-360.png"), full_page=True)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 360, f"{name}: {width} px wide on a 360 px phone"
        page.set_viewport_size({"width": 1280, "height": 900})

    def doc_id(self) -> str:
        return str(self.page.url.split("/documents/")[1].split("?")[0].split("#")[0])


@contextmanager
def _browser(data_dir: Path) -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with serve(data_dir) as srv, sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        page = chromium.new_page(viewport={"width": 1280, "height": 900}, locale="vi-VN",
                                 accept_downloads=True)
        page.on("dialog", lambda d: d.accept())
        try:
            yield Browser(page, srv.url, SHOTS)
        finally:
            chromium.close()


def _fill_draft(b: Browser, subject: str, to: str, body: str) -> None:
    page = b.page
    page.fill("#f-TypeName", "Quyết định")
    page.fill("#f-Subject", subject)
    page.fill("#f-SignerPosition", "Chủ tịch")
    page.fill("#f-SignerFullName", kit.SIGNER_NAME)
    page.fill("#f-To", to)
    page.fill("#f-t_authority", "TM. Ủy ban nhân dân")
    page.fill("#f-t_body", body)


def _approve_and_sign(b: Browser, doc: str, pin_first: str | None = None) -> None:
    """The leader approves and signs with the PIN of his token (a wrong one first)."""
    from playwright.sync_api import expect

    page = b.page
    b.sign_in("lanhdao")
    page.goto(f"{b.url}/documents/{doc}")
    page.click("#approve")
    b.done("Đã duyệt")
    if pin_first is not None:
        page.fill("#f-pin", pin_first)
        page.click("#sign")
        expect(page.locator("#error")).to_contain_text("Mã PIN ký số của anh/chị không đúng")
        expect(page.locator("#f-pin")).to_have_attribute("aria-invalid", "true")
        expect(page.locator("#f-pin")).to_have_value("")  # a PIN is never sent back
    page.fill("#f-pin", softhsm_pin())
    page.click("#sign")
    b.done("Đã ký")
    expect(page.locator("#signature")).to_contain_text(kit.SIGNER_NAME)
    b.sign_out()


_PIN: list[str] = []


def softhsm_pin() -> str:
    return _PIN[0]


def _wait(what: str, ok: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not ok():
        assert time.monotonic() < deadline, what
        time.sleep(0.3)


def _office(data_dir: Path, tcti: str, token: SoftHsmToken, exchange: Path) -> CA:
    from appliance.edxml.intake_trust import add_root

    _users(data_dir)
    ca = make_ca()
    store = Store.open(data_dir)
    try:
        kit.setup_agency(store, ca, tcti)
        kit.setup_pkcs11_signer(store, ca, token)
        add_root(store, pem(ca.cert), "kỹ thuật")  # the province's key is issued by it too
    finally:
        store.close()
    (exchange / "den").mkdir(parents=True)
    (data_dir / "edxml.json").write_text(json.dumps(
        {"connector": "folder", "folder": str(exchange), "interval_s": 1, "settle_s": 0.2,
         "online": False}))
    _PIN[:] = [token.pin]
    return ca


def _province_answers(b: Browser, ca: CA, exchange: Path, doc: str, sent: Any) -> None:
    """The province answers the package we sent (``sent``, its signed root): a signed 01
    moves the delivery to "đã nhận" with the province's time; an unsigned 03 is shown and
    moves nothing; a malformed package and a status about nothing of ours are listed in the
    electronic inbox."""
    import datetime as dt

    from playwright.sync_api import expect

    from appliance.clock import TZ
    from appliance.edxml.status import timestamp
    from tests.archive.conftest import pdf_bytes
    from tests.conftest import ORG_ID
    from tests.edxml_field import (
        AgencyXmlKey,
        FieldAttachment,
        FieldDoc,
        answer_status,
        field_package,
    )

    page = b.page
    ref = (sent.findtext(f".//{NS}DocumentId") or "", "01/QĐ-UBND",
           sent.findtext(f".//{NS}PromulgationInfo/{NS}PromulgationDate") or "")
    when = dt.datetime.now(TZ).replace(second=0, microsecond=0) - dt.timedelta(minutes=7)
    province = (PROVINCE[1], PROVINCE[0])
    key = AgencyXmlKey(ca, *province)
    den = exchange / "den"
    (den / "trang-thai-01.edxml").write_bytes(answer_status(
        ref, "01", key, "Đã đến", province, timestamp(when)))
    status = page.locator("#deliveries tbody tr").nth(1).locator(".delivery-status")

    def received() -> bool:
        page.reload()
        return status.locator(".state").inner_text().strip() == "nơi nhận đã nhận"

    _wait("the province's status 01 never moved the delivery", received)
    expect(status.locator(".status-at")).to_have_text(when.strftime("%d/%m/%Y %H:%M"))
    (den / "trang-thai-03-khong-ky.edxml").write_bytes(answer_status(
        ref, "03", None, "Đã vào sổ", province, timestamp(when + dt.timedelta(minutes=3))))
    _wait("the unsigned 03 is not shown", lambda: (page.reload(), status.locator(
        ".answer-kept").count())[1] == 1)
    expect(status.locator(".answer-kept")).to_contain_text("Không kiểm tra được chữ ký")
    expect(status.locator(".answer-kept")).to_contain_text("chưa cập nhật")
    expect(status.locator(".state")).to_have_text("nơi nhận đã nhận")
    b.shot("03b-edxml-delivery-received")
    api = page.request.get(f"{b.url}/api/v1/documents/{doc}/deliveries").json()
    item = api["items"][1]
    assert (item["status"], item["status_vi"]) == ("received", "đã nhận")
    assert item["status_at"] == when.isoformat()
    assert [a["outcome"] for a in item["answers"]] == ["unverified"]

    (den / "sai-cau-truc.edxml").write_bytes(field_package(None, FieldDoc(
        subject="", code_number="77", document_id=f"{PROVINCE[1]},2026/11/30,77/UBND-VP"),
        [FieldAttachment("77.pdf", pdf_bytes("Công văn 77"))]))
    (den / "trang-thai-la.edxml").write_bytes(answer_status(
        (f"{ORG_ID},2025/01/05,99/UBND-VP", "99/UBND-VP", "2025/01/05"), "01", key,
        "Đã đến", province, timestamp(when)))

    def listed() -> bool:
        page.goto(b.url + "/inbox/electronic")
        return page.locator("#refused li").count() == 1 and \
            page.locator("#unmatched li").count() == 1 and \
            "Đã gửi trạng thái 02" in page.locator("#refused").inner_text()

    _wait("the refused package or the unknown status is not listed", listed)
    expect(page.locator("#refused")).to_contain_text("Subject")
    expect(page.locator("#unmatched")).to_contain_text("99/UBND-VP")
    b.shot("03c-inbox-refused-and-unknown-status")
    page.goto(f"{b.url}/documents/{doc}")


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")
def test_token_signature_edxml_delivery_and_recall(
    data_dir: Path, tmp_path: Path, swtpm: Swtpm, softhsm_token: SoftHsmToken
) -> None:
    from lxml import etree
    from playwright.sync_api import expect
    from signxml.xades import XAdESVerifier

    exchange = tmp_path / "lienthong"
    ca = _office(data_dir, swtpm.tcti, softhsm_token, exchange)
    profile = signers.require(data_dir, kit.SIGNER)
    assert profile.backing == "pkcs11"
    with _browser(data_dir) as b:
        page = b.page
        # -- the handler drafts; a malformed mã định danh is refused on its field ----------
        b.sign_in("chuyenvien")
        page.goto(b.url + "/documents/outgoing/new")
        _fill_draft(b, SUBJECT, f"Như Điều 3\n{PROVINCE[0]} (000.00.H49)", kit.TEMPLATE_BODY)
        page.click("#save")
        expect(page.locator("#error")).to_contain_text("Nơi nhận")
        expect(page.locator("#error")).to_contain_text("không phải mã định danh cơ quan")
        expect(page.locator("#f-To")).to_have_attribute("aria-invalid", "true")
        expect(page.locator("#f-Subject")).to_have_value(SUBJECT)  # the form kept
        expect(page.locator("#f-t_body")).to_have_value(kit.TEMPLATE_BODY)
        b.shot("01-recipient-id-refused")
        page.fill("#f-To", f"Như Điều 3\n{PROVINCE[0]} ({PROVINCE[1]})")
        page.click("#save")
        b.done("Đã lưu dự thảo")
        doc = b.doc_id()
        page.select_option("#f-Approver", "lanhdao")
        page.click("#submit")
        b.done("Đã trình duyệt")
        b.sign_out()

        # -- the chairman signs with his token's PIN (typed at this signature) -------------
        _approve_and_sign(b, doc, pin_first="999999")

        # -- the clerk issues; the province's delivery is electronic ---------------------
        b.sign_in("vanthu")
        page.goto(f"{b.url}/documents/{doc}")
        page.click("#issue")
        b.done("Đã ban hành số 01/QĐ-UBND")
        rows = page.locator("#deliveries tbody tr")
        expect(rows).to_have_count(2)
        expect(rows.nth(0)).to_contain_text("giấy")
        expect(rows.nth(1)).to_contain_text(PROVINCE[0])
        expect(rows.nth(1)).to_contain_text("điện tử (edXML)")
        b.shot("02-issued-electronic-delivery")
        rows.nth(1).get_by_role("button", name="Tạo gói edXML").click()
        b.done("Đã cập nhật tình trạng gửi")

        expect(rows.nth(1).locator(".delivery-status .state")).to_have_text(
            "đã đóng gói edXML")

        def sent() -> bool:
            page.reload()
            return page.locator("#deliveries tbody tr").nth(1).locator(
                ".delivery-status .state").inner_text().strip() == "đã gửi"

        _wait("the exchange never sent the package", sent)
        b.shot("03-edxml-delivery-sent")
        out = [p for p in (exchange / "di").glob("van-ban-*.edxml")]
        assert len(out) == 1, list((exchange / "di").iterdir())
        raw = out[0].read_bytes()
        (b.shots / "goi-tin-di.edxml").write_bytes(raw)
        ca_pem = tmp_path / "ca.pem"
        ca_pem.write_bytes(pem(ca.cert))
        results = XAdESVerifier().verify(raw, ca_pem_file=str(ca_pem))
        signed = results[0].signed_xml
        assert signed is not None and etree.QName(signed).localname == "edXML"
        assert signed.findtext(f".//{NS}To/{NS}OrganId") == PROVINCE[1]
        assert signed.findtext(f".//{NS}Code/{NS}CodeNumber") == "01"
        props = next(r for r in results if hasattr(r, "signed_properties")).signed_properties
        assert (props.findtext(f"{{{XADES}}}SigningTime") or "").endswith("+07:00")
        _province_answers(b, ca, exchange, doc, signed)

        # -- recall (thu hồi) from the issued document's page --------------------------
        page.click("#recall-box summary")
        page.click("#recall")
        expect(page.locator("#relation")).to_contain_text("thu hồi")
        expect(page.locator("#f-Subject")).to_have_value(
            "Về việc thu hồi Quyết định số 01/QĐ-UBND")
        page.fill("#f-TypeName", "Quyết định")
        page.fill("#f-To", "Như Điều 2")
        page.fill("#f-t_authority", "TM. Ủy ban nhân dân")
        page.fill("#f-t_body", "Điều 1. Thu hồi Quyết định số 01/QĐ-UBND do ban hành khi "
                               "chưa đủ căn cứ.\n\nĐiều 2. Quyết định này có hiệu lực kể từ "
                               "ngày ký.")
        b.shot("04-recall-draft")
        page.click("#save")
        b.done("Đã lưu dự thảo")
        recall = b.doc_id()
        expect(page.locator("#relation-of")).to_contain_text("Thu hồi văn bản số 01/QĐ-UBND")
        page.select_option("#f-Approver", "lanhdao")
        page.click("#submit")
        b.done("Đã trình duyệt")
        b.sign_out()
        _approve_and_sign(b, recall)  # the PIN typed again: it is never kept
        b.sign_in("vanthu")
        page.goto(f"{b.url}/documents/{recall}")
        page.click("#issue")
        b.done("Đã ban hành số 02/QĐ-UBND")
        b.shot("05-recall-issued")
        page.goto(f"{b.url}/documents/{doc}")
        expect(page.locator(".related")).to_contain_text("Bị thu hồi bởi văn bản")
        expect(page.locator(".related")).to_contain_text("02/QĐ-UBND")
        expect(page.locator("#draft-state")).to_have_text("đã phát hành, sau đó bị thu hồi")
        expect(page.locator("#recall-box")).to_have_count(0)  # not recalled twice
        b.shot("06-old-document-marked-recalled")

    store = Store.open(data_dir, readonly=True)
    try:
        old = store.get("document", doc).data
        assert old["CodeNumber"] == "01" and old["Subject"] == SUBJECT  # never altered
    finally:
        store.close()
    verify = luutru("verify", "--data", str(data_dir), "--json")
    assert '"ok": true' in verify.stdout, verify.stdout


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")
@pytest.mark.skipif(shutil.which("soffice") is None,
                    reason="LibreOffice (soffice) is not installed: DOCX drafts are optional")
def test_draft_from_an_uploaded_docx(data_dir: Path, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    _users(data_dir)
    docx = tmp_path / "du-thao-quyet-dinh.docx"
    docx.write_bytes(kit.docx_bytes())
    wrong = tmp_path / "ghi-chu.docx"
    wrong.write_bytes("Không phải tệp Word".encode())
    with _browser(data_dir) as b:
        page = b.page
        b.sign_in("chuyenvien")
        page.goto(b.url + "/documents/outgoing/new")
        page.fill("#f-TypeName", "Quyết định")
        page.fill("#f-Subject", SUBJECT)
        page.fill("#f-SignerPosition", "Chủ tịch")
        page.fill("#f-SignerFullName", kit.SIGNER_NAME)
        page.fill("#f-To", "Như Điều 3")
        page.check("#mode-file")
        page.set_input_files("#f-file", str(wrong))
        page.click("#save")  # not a DOCX inside: refused on its field, the form kept
        expect(page.locator("#error")).to_contain_text(
            "Tệp dự thảo (PDF hoặc DOCX): 'ghi-chu.docx' không phải tệp PDF hay DOCX")
        expect(page.locator("#f-file")).to_have_attribute("aria-invalid", "true")
        expect(page.locator("#f-Subject")).to_have_value(SUBJECT)
        expect(page.locator("#mode-file")).to_be_checked()
        b.shot("07-docx-wrong-file")
        page.set_input_files("#f-file", str(docx))
        page.click("#save")
        b.done("Đã lưu dự thảo")
        expect(page.locator("#versions")).to_contain_text("chuyển từ DOCX")
        b.shot("08-draft-from-docx")
        doc = b.doc_id()
    store = Store.open(data_dir, readonly=True)
    try:
        v = store.get("document", doc).data["Drafting"]["versions"][0]
        with store.content.open(v["sha256"]) as fh:
            pdf = fh.read()
    finally:
        store.close()
    assert pdf.startswith(b"%PDF-")
    text = kit.pdftotext(pdf, 1)
    assert "QUYẾT ĐỊNH" in text and kit.SIGNER_NAME in text  # LibreOffice's rendering
