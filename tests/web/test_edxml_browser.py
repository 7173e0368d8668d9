"""The electronic inbox in Debian's Chromium, against a real `luutru serve` whose exchange loop
polls a folder: two packages dropped into the exchange folder appear with their verdicts;
the clerk registers the valid one and returns the broken one; the status messages (01 on
receipt, 03, 02) appear in the outgoing exchange folder. Screenshots at desktop width and at
360 px in var/test-artefacts/web/edxml-*.png."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest
from lxml import etree

from tests.edxml_field import (
    NS_2016,
    FieldAttachment,
    FieldDoc,
    field_package,
    flip_signed_byte,
    signed_pdf,
)
from tests.pki_services import PkiServices, pki_services

from .server import luutru, serve
from .test_e2e_browser import ARTEFACTS, CHROMIUM, FLAGS

__all__ = ["pki_services"]
PASSWORD = "mật khẩu văn thư 2025"
GOOD = "V/v triển khai Kế hoạch chuyển đổi số năm 2027 trên địa bàn tỉnh"
BAD = "V/v báo cáo kết quả thu ngân sách quý IV (bản bị sửa)"


def _drop(folder: Path, name: str, data: bytes) -> None:
    tmp = folder / f".{name}.tmp"
    tmp.write_bytes(data)
    os.replace(tmp, folder / name)


def _statuses(out: Path) -> list[str]:
    codes = []
    for p in sorted(out.glob("*.edxml")):
        root = etree.fromstring(p.read_bytes())
        codes.append(root.findtext(f"{{{NS_2016}}}edXMLEnvelope/{{{NS_2016}}}edXMLHeader/"
                                   f"{{{NS_2016}}}Status/{{{NS_2016}}}StatusCode") or "")
    return sorted(codes)


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")
def test_exchange_folder_to_register_and_return(data_dir: Path, tmp_path: Path,
                                                pki_services: PkiServices) -> None:
    from playwright.sync_api import expect, sync_playwright

    assert luutru("user", "add", "--data", str(data_dir), "--username", "vanthu", "--role",
                  "clerk", "--full-name", "Nguyễn Thị Lan", "--password-stdin",
                  stdin=PASSWORD + "\n").returncode == 0
    root = tmp_path / "root.pem"
    root.write_bytes(pki_services.trust_roots_pem())
    assert luutru("trust", "add", "--data", str(data_dir), str(root)).returncode == 0
    ex = tmp_path / "lienthong"
    (ex / "den").mkdir(parents=True)
    (data_dir / "edxml.json").write_text(json.dumps(
        {"connector": "folder", "folder": str(ex), "interval_s": 1, "settle_s": 0.2}))
    signer = pki_services.identity("signer")
    good = field_package(signer, FieldDoc(subject=GOOD, code_number="2468",
                                          code_notation="UBND-KGVX"),
                         [FieldAttachment("2468-UBND-KGVX.pdf", signed_pdf(signer, GOOD))])
    bad = field_package(signer, FieldDoc(subject=BAD, code_number="97", code_notation="STC-NS",
                                         sender_name="Sở Tài chính tỉnh Quảng Ninh"),
                        [FieldAttachment("97-STC-NS.pdf",
                                         flip_signed_byte(signed_pdf(signer, BAD)))])
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    with serve(data_dir) as srv, sync_playwright() as p:
        _drop(ex / "den", "2468.edxml", good)
        _drop(ex / "den", "97.edxml", bad)
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="vi-VN")

        def shot(name: str) -> None:
            page.screenshot(path=str(ARTEFACTS / f"edxml-{name}.png"), full_page=True)

        page.goto(srv.url + "/")
        page.fill("#username", "vanthu")
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.click("#nav-inbox")
        deadline = time.monotonic() + 60
        while page.locator("li.inbox-item").count() < 2:
            assert time.monotonic() < deadline, "the packages never reached the inbox"
            time.sleep(0.5)
            page.reload()
        expect(page.locator("h1")).to_have_text("Văn bản điện tử đến")
        good_item = page.locator("li.inbox-item", has_text=GOOD)
        bad_item = page.locator("li.inbox-item", has_text=BAD)
        expect(good_item.locator(".verdict.valid")).to_contain_text("Chữ ký hợp lệ")
        expect(bad_item.locator(".verdict.invalid")).to_contain_text(
            "Chữ ký không hợp lệ — không tiếp nhận")
        shot("01-inbox")
        page.set_viewport_size({"width": 360, "height": 780})
        shot("02-inbox-360")
        page.set_viewport_size({"width": 1280, "height": 900})

        good_item.locator("a.subject-link").click()
        expect(page.locator("#verdict")).to_contain_text("Chữ ký hợp lệ")
        expect(page.locator("#envelope")).to_contain_text("Ủy ban nhân dân tỉnh Quảng Ninh")
        # The signing time beside each verdict, as people read it: the PDF's signature
        # states one; this envelope's plain XML-DSig does not, and the page says so.
        times = page.locator(".card.sig .signing-time")
        expect(times).to_have_count(2)
        assert any(re.search(r"Thời điểm ký: \d{2}/\d{2}/\d{4} \d{2}:\d{2}$", t)
                   for t in times.all_inner_texts()), times.all_inner_texts()
        expect(times.filter(has_text="không ghi thời điểm ký")).to_have_count(1)
        shot("03-item-valid")
        page.set_viewport_size({"width": 360, "height": 780})
        shot("04-item-valid-360")
        page.set_viewport_size({"width": 1280, "height": 900})
        page.click("#register")
        expect(page.locator("#done")).to_contain_text("Đã đăng ký với số đến 1.")
        expect(page.locator("#subject")).to_have_text(GOOD)
        shot("05-registered")

        page.click("#nav-inbox")
        page.locator("li.inbox-item", has_text=BAD).locator("a.subject-link").click()
        expect(page.locator("#verdict")).to_contain_text("không hợp lệ")
        expect(page.locator("#cannot-register")).to_be_visible()
        expect(page.locator(".card.sig.invalid")).to_contain_text("thay đổi sau khi ký")
        page.click("#return")  # no reason: refused, the field marked, the form kept
        expect(page.locator("#error")).to_contain_text("Cần ghi lý do")
        page.fill("#reason", "Tệp văn bản đã bị sửa đổi sau khi ký; đề nghị gửi lại bản gốc.")
        shot("06-item-invalid")
        page.set_viewport_size({"width": 360, "height": 780})
        shot("07-item-invalid-360")
        page.set_viewport_size({"width": 1280, "height": 900})
        page.click("#return")
        expect(page.locator("#done")).to_contain_text("Đã trả lại nơi gửi")
        expect(page.locator("#empty")).to_be_visible()  # nothing left waiting
        shot("08-after-return")
        browser.close()

        deadline = time.monotonic() + 30
        while _statuses(ex / "di") != ["01", "01", "02", "03"]:
            assert time.monotonic() < deadline, _statuses(ex / "di")
            time.sleep(0.5)
    assert sorted(q.name for q in (ex / "da-nhan").iterdir()) == ["2468.edxml", "97.edxml"]
    assert not list((ex / "den").iterdir())
