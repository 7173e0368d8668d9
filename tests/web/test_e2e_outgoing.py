"""Issue 19 in Debian's Chromium against a real `luutru serve`: a handler drafts a Quyết định
from the Decree 30 template (an empty body refused in Vietnamese, the field marked, the form
kept); the leader finds it in his inbox and returns it with a comment; the handler revises and
resubmits; the leader approves and signs with his PIN (his key in swtpm; a wrong PIN refused);
the clerk issues it and the deliveries are listed. Then the external path: the clerk drafts
from a typed PDF, the vice-chairman approves, downloads the prepared PDF, signs it outside the
box (pyHanko standing in for the CA's tool), uploads it (a stranger's signature is refused
first), and the clerk issues it. Both issued PDFs are judged by pyHanko and pdfsig.
Screenshots at 1280 px and 360 px in var/test-artefacts/web/outgoing/.
"""

from __future__ import annotations

import datetime as dt
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography import x509

from appliance.clock import TZ
from appliance.outgoing import pdfform, signers
from appliance.store import Store
from tests import outgoing_kit as kit
from tests.pki import CA, SoftwareAgencyKey, make_ca, pem
from tests.swtpm import Swtpm, swtpm, swtpm_factory

from .server import luutru, serve
from .test_e2e_browser import ARTEFACTS, CHROMIUM, FLAGS

__all__ = ["swtpm", "swtpm_factory"]
SHOTS = ARTEFACTS / "outgoing"
PASSWORDS = {"vanthu": "mật khẩu văn thư 2025", "lanhdao": "mật khẩu lãnh đạo 2025",
             "phochutich": "mật khẩu phó chủ tịch 2025",
             "chuyenvien": "mật khẩu chuyên viên 2025"}
VICE = "Trần Văn Phó"
SUBJECT = "Về việc thành lập Tổ công tác phòng, chống thiên tai năm 2025"
TYPED = "Về việc kiện toàn Ban chỉ huy quân sự xã"
ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def _office(data_dir: Path, tcti: str) -> tuple[CA, SoftwareAgencyKey]:
    """Users; the agency key and the chairman's key (PIN) in swtpm, both from one CA; the
    vice-chairman signs on his own computer with a certificate from another CA."""
    for user, role, name in (("vanthu", "clerk", "Lê Thị Văn Thư"),
                             ("lanhdao", "leader", kit.SIGNER_NAME),
                             ("phochutich", "leader", VICE),
                             ("chuyenvien", "handler", "Phạm Văn Chuyên")):
        added = luutru("user", "add", "--data", str(data_dir), "--username", user, "--role",
                       role, "--full-name", name, "--password-stdin", stdin=PASSWORDS[user] + "\n")
        assert added.returncode == 0, added.stderr
    ca = make_ca()
    vice = SoftwareAgencyKey.make(VICE)
    store = Store.open(data_dir)
    try:
        kit.setup_agency(store, ca, tcti)
        kit.setup_tpm_signer(store, ca, tcti)
        signers.configure_external(data_dir, "phochutich")
        signers.import_cert(data_dir, "phochutich", pem(vice.cert) + pem(vice.ca.cert))
    finally:
        store.close()
    return ca, vice


def _issued(data_dir: Path, doc: str) -> bytes:
    store = Store.open(data_dir, readonly=True)
    try:
        sha = store.get("document", doc).data["Content"][0]["sha256"]
        with store.content.open(sha) as fh:
            return bytes(fh.read())
    finally:
        store.close()


def _judge(pdf: bytes, roots: list[x509.Certificate], signer: str) -> None:
    """Two signatures, signer then agency, valid and intact for pyHanko and pdfsig."""
    first, second = (kit.pyhanko_report(pdf, root)[i] for i, root in enumerate(roots))
    assert first.signing_cert.subject.native["common_name"] == signer
    for status in (first, second):
        assert status.intact and status.valid and status.trusted
    assert second.coverage.name == "ENTIRE_FILE"
    report = kit.pdfsig(pdf)
    assert report.count("Signature is Valid.") == 2, report
    assert "Total document signed" in report.split("Signature #2")[1]


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")
def test_outgoing_from_draft_to_deliveries(data_dir: Path, swtpm: Swtpm) -> None:
    from playwright.sync_api import expect, sync_playwright

    ca, vice = _office(data_dir, swtpm.tcti)
    SHOTS.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {SHOTS}")
    today = dt.datetime.now(TZ).date()
    year = today.year

    with serve(data_dir) as srv, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="vi-VN",
                                accept_downloads=True)
        page.on("dialog", lambda d: d.accept())

        def shot(name: str) -> None:
            page.wait_for_function(  # the first page's preview drawn (signed PDFs too)
                "() => [...document.querySelectorAll('img.preview')]"
                ".every(i => i.complete && i.naturalWidth > 0)", timeout=20_000)
            page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
            assert not ISO_TIME.search(page.inner_text("main")), "an ISO time on screen"
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

        def sign_out() -> None:
            page.locator("form[action='/signout'] button").first.click()
            expect(page.locator("h1")).to_have_text("Đăng nhập")

        def done(text: str) -> None:
            expect(page.locator("#done")).to_contain_text(text)

        # -- the handler drafts from the template ------------------------------------------
        sign_in("chuyenvien")
        page.goto(srv.url + "/documents/outgoing/new")
        expect(page.locator("#file-field")).to_be_hidden()  # composing: no file to choose
        page.fill("#f-TypeName", "Quyết định")
        page.fill("#f-Subject", SUBJECT)
        page.fill("#f-SignerPosition", "Chủ tịch")
        page.fill("#f-SignerFullName", kit.SIGNER_NAME)
        page.fill("#f-To", "Như Điều 2\nỦy ban nhân dân tỉnh Ninh Bình")
        page.fill("#f-t_authority", "TM. Ủy ban nhân dân")
        page.click("#save")  # the body is empty: refused, said in Vietnamese, form kept
        expect(page.locator("#error")).to_contain_text("Nội dung")
        expect(page.locator("#f-t_body")).to_have_attribute("aria-invalid", "true")
        expect(page.locator("#f-Subject")).to_have_value(SUBJECT)
        assert "template.body" not in page.inner_text("main")
        shot("01-draft-error-in-vietnamese")
        page.fill("#f-t_body", kit.TEMPLATE_BODY.replace("Căn cứ Luật Tổ chức chính quyền địa "
                                                         "phương ngày 16 tháng 6 năm 2025;\n\n",
                                                         ""))
        page.click("#save")
        done("Đã lưu dự thảo")
        doc = page.url.split("/documents/")[1].split("?")[0]
        expect(page.locator("#draft-state")).to_have_text("đang soạn")
        page.select_option("#f-Approver", "lanhdao")
        page.fill("#f-Comment", "Kính trình Chủ tịch xem xét.")
        shot("02-draft-from-the-template")
        page.click("#submit")
        done("Đã trình duyệt")
        sign_out()

        # -- the leader returns it with a comment ------------------------------------------
        sign_in("lanhdao")
        page.click("#nav-leader-inbox")
        expect(page.locator("#drafts")).to_contain_text(SUBJECT)
        expect(page.locator("#drafts")).to_contain_text("anh/chị duyệt")
        shot("03-leader-inbox-draft-awaiting")
        page.locator("#drafts").get_by_text(SUBJECT).click()
        page.fill("#f-Comment", "Bổ sung căn cứ Luật Tổ chức chính quyền địa phương.")
        page.click("#return")
        done("Đã trả lại người soạn")
        expect(page.locator("#steps")).to_contain_text("Bổ sung căn cứ Luật Tổ chức")
        sign_out()

        # -- the handler revises and resubmits -----------------------------------------------
        sign_in("chuyenvien")
        page.click("#nav-tasks")
        expect(page.locator("#drafts")).to_contain_text(SUBJECT)
        page.locator("#drafts").get_by_text(SUBJECT).click()
        expect(page.locator("#draft-state")).to_have_text("đã trả lại người soạn")
        page.click("#version-box summary")
        page.fill("#f-t_body", kit.TEMPLATE_BODY)
        page.fill("#f-Note", "Đã bổ sung căn cứ")
        shot("04-revising")
        page.click("#save-version")
        done("Đã lưu phiên bản mới")
        expect(page.locator("#versions li")).to_have_count(2)
        page.select_option("#f-Approver", "lanhdao")
        page.click("#submit")
        done("Đã trình duyệt")
        # A clerk is not offered the approval (and the server refuses it: tests of the API).
        sign_out()
        sign_in("vanthu")
        page.goto(f"{srv.url}/documents/{doc}")
        expect(page.locator("#approve")).to_have_count(0)
        expect(page.locator("#issue")).to_have_count(0)
        sign_out()

        # -- the leader approves and signs with his PIN ----------------------------------------
        sign_in("lanhdao")
        page.goto(f"{srv.url}/documents/{doc}")
        page.fill("#f-Comment", "Đồng ý ban hành.")
        page.click("#approve")
        done("Đã duyệt")
        page.fill("#f-pin", "000000")
        page.click("#sign")
        expect(page.locator("#error")).to_contain_text("Mã PIN ký số của anh/chị không đúng")
        expect(page.locator("#f-pin")).to_have_attribute("aria-invalid", "true")
        shot("05-wrong-pin")
        page.fill("#f-pin", kit.SIGNER_PIN)
        page.click("#sign")
        done("Đã ký")
        expect(page.locator("#signature")).to_contain_text(kit.SIGNER_NAME)
        expect(page.locator("#issue")).to_have_count(0)  # a leader does not issue
        shot("06-signed-with-the-pin")
        sign_out()

        # -- the clerk issues; the deliveries are listed ------------------------------------------
        sign_in("vanthu")
        page.goto(f"{srv.url}/documents/{doc}")
        expect(page.locator("#preview")).to_have_text("01/QĐ-UBND")
        page.click("#issue")
        done(f"Đã ban hành số 01/QĐ-UBND ngày {today.strftime('%d/%m/%Y')}")
        rows = page.locator("#deliveries tbody tr")
        expect(rows).to_have_count(2)
        expect(rows.nth(0)).to_contain_text("Như Điều 2")
        expect(rows.nth(1)).to_contain_text("Ủy ban nhân dân tỉnh Ninh Bình")
        expect(page.locator("#deliveries")).to_contain_text("chờ gửi")
        rows.nth(0).get_by_role("button", name="Đánh dấu đã gửi").click()
        done("Đã cập nhật tình trạng gửi")
        expect(page.locator("#deliveries tbody tr").nth(0)).to_contain_text("đã gửi")
        shot("07-issued-deliveries")

        # -- the external path: drafted from a typed PDF, signed outside the box ----------------
        typed = SHOTS / "typed-draft.pdf"
        typed.write_bytes(kit.typed_pdf(name=VICE))
        page.goto(srv.url + "/documents/outgoing/new")
        page.fill("#f-TypeName", "Quyết định")
        page.fill("#f-Subject", TYPED)
        page.fill("#f-SignerPosition", "Phó Chủ tịch")
        page.fill("#f-SignerFullName", VICE)
        page.fill("#f-To", "Ban chỉ huy quân sự xã")
        page.check("#mode-file")
        expect(page.locator("#template-fields")).to_be_hidden()
        page.set_input_files("#f-file", str(typed))
        page.click("#save")
        done("Đã lưu dự thảo")
        typed_doc = page.url.split("/documents/")[1].split("?")[0]
        page.select_option("#f-Approver", "phochutich")
        page.click("#submit")
        done("Đã trình duyệt")
        sign_out()

        sign_in("phochutich")
        page.goto(f"{srv.url}/documents/{typed_doc}")
        page.click("#approve")
        done("Đã duyệt")
        expect(page.locator("#sign-form")).to_have_count(0)  # his key is not on the box
        with page.expect_download() as dl:
            page.click("#download-prepared")
        prepared = Path(dl.value.path()).read_bytes()
        assert prepared.startswith(b"%PDF-")
        with ThreadPoolExecutor(1) as pool:  # pyHanko runs its own event loop: not Playwright's
            stranger = pool.submit(pdfform.sign_field, prepared, SoftwareAgencyKey.make(
                "Ai Đó").pdf_signer(), pdfform.SIGNER_FIELD, None, "x").result()
            signed = pool.submit(pdfform.sign_field, prepared, vice.pdf_signer(),
                                 pdfform.SIGNER_FIELD, kit.signature_png(), VICE).result()
        (SHOTS / "stranger.pdf").write_bytes(stranger)
        (SHOTS / "signed-outside.pdf").write_bytes(signed)
        page.set_input_files("#f-signed", str(SHOTS / "stranger.pdf"))
        page.click("#upload-signed")
        expect(page.locator("#error")).to_contain_text("không được nhận")
        shot("08-a-strangers-signature-refused")
        page.set_input_files("#f-signed", str(SHOTS / "signed-outside.pdf"))
        page.click("#upload-signed")
        done("Đã ký")
        expect(page.locator("#signature")).to_contain_text(VICE)
        shot("09-signed-outside-the-box")
        sign_out()

        sign_in("vanthu")
        page.goto(f"{srv.url}/documents/{typed_doc}")
        page.click("#issue")
        done("Đã ban hành số 02/QĐ-UBND")
        expect(page.locator("#deliveries")).to_contain_text("Ban chỉ huy quân sự xã")
        shot("10-external-issued")
        # The signers' page: where each key is, the certificate's expiry in dd/mm/yyyy.
        page.click("#nav-signers")
        expect(page.locator("#signers")).to_contain_text("trong TPM của máy (mã PIN)")
        expect(page.locator("#signers")).to_contain_text("ký trên máy tính riêng")
        chain = signers.chain_of(data_dir, signers.require(data_dir, "lanhdao"))
        expiry = chain[0].not_valid_after_utc.astimezone(TZ).date()
        expect(page.locator("#signers")).to_contain_text(expiry.strftime("%d/%m/%Y"))
        shot("11-signers")
        browser.close()

    issued, external = _issued(data_dir, doc), _issued(data_dir, typed_doc)
    (SHOTS / "issued-from-template.pdf").write_bytes(issued)
    (SHOTS / "issued-signed-outside.pdf").write_bytes(external)
    (SHOTS / "ca.pem").write_bytes(pem(ca.cert))
    _judge(issued, [ca.cert, ca.cert], kit.SIGNER_NAME)
    _judge(external, [vice.ca.cert, ca.cert], VICE)
    text = kit.pdftotext(issued, 1)
    assert "Số: 01/QĐ-UBND" in text
    assert f"ngày {today.day:02d} tháng {today.month:02d} năm {year}" in text or \
        f"ngày {today.day} tháng {today.month} năm {year}" in text
    verify = luutru("verify", "--data", str(data_dir), "--json")
    assert '"ok": true' in verify.stdout, verify.stdout
