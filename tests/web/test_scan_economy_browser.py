"""The cost of scans, in Debian's Chromium: the document page says where each version of a
scan is kept and each page's size; the device page shows storage used and the days left.

Screenshots at 1280 px and 360 px are kept in var/test-artefacts/web/scan-economy-*.png."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from appliance import versions
from appliance.capture.archival import encode_page, pdf
from appliance.capture.filing import content_ref
from appliance.capture.page import load_pages
from appliance.capture.pipeline import images_to_pdf
from appliance.pdfsign import sign_pdf
from appliance.store import Store
from tests.capture.images import TEXT, encode, text_page
from tests.conftest import ORG_NAME, incoming
from tests.pki import SoftwareAgencyKey

from .server import luutru, serve
from .test_e2e_browser import ARTEFACTS, CHROMIUM, FLAGS

PASSWORD = "mật khẩu văn thư 2025"


def _scanned_document(data_dir: Path) -> tuple[str, list[dict[str, object]]]:
    """A two-page scan in its three versions, as the capture worker leaves it."""
    pngs = [encode(text_page([f"Trang {n}", *TEXT]), "PNG") for n in (1, 2)]
    raw = images_to_pdf([p for d in pngs for p in load_pages(d, "p")])
    pages = []
    for d in pngs:
        with Image.open(io.BytesIO(d)) as im:
            im.load()
            pages.append(encode_page(im, 300.0))
    archival = pdf(pages)
    signed = sign_pdf(archival, SoftwareAgencyKey.make(), agency_name=ORG_NAME)
    with Store.open(data_dir) as store:
        r = store.content.put_bytes(raw)
        doc = store.register_incoming(
            incoming(Content=[content_ref(r.sha256, r.size, "scan-1.pdf")])
        ).record
        a = store.content.put_bytes(archival)
        versions.add_version(store, doc.id, content_ref(a.sha256, a.size, "cv.ocr.pdf"),
                             r.sha256, keep_source=versions.KEEP_NONE)
        store.content.release(r.sha256)
        s = store.content.put_bytes(signed)
        versions.add_version(store, doc.id, content_ref(s.sha256, s.size, "cv.pdf"), a.sha256,
                             extends=True)
        assert store.content.derive(a.sha256, s.sha256)
        store.wait_sealed()
        return doc.id, list(store.get("document", doc.id).data["Content"])


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")
def test_scan_sizes_and_storage_in_the_browser(data_dir: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    doc_id, content = _scanned_document(data_dir)
    raw, archival, signed = (str(c["sha256"])[:12] for c in content)
    added = luutru("user", "add", "--data", str(data_dir), "--username", "vanthu", "--role",
                   "clerk", "--full-name", "Nguyễn Thị Lan", "--password-stdin",
                   stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    with serve(data_dir) as srv, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="vi-VN")

        def shots(name: str) -> None:
            page.set_viewport_size({"width": 1280, "height": 900})
            page.screenshot(path=str(ARTEFACTS / f"scan-economy-{name}.png"), full_page=True)
            page.set_viewport_size({"width": 360, "height": 780})
            page.screenshot(path=str(ARTEFACTS / f"scan-economy-{name}-360.png"), full_page=True)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 360, f"{name} is {width} px wide at 360 px"
            page.set_viewport_size({"width": 1280, "height": 900})

        page.goto(srv.url + "/")
        page.fill("#username", "vanthu")
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        expect(page.locator("h1")).to_have_text("Trang chủ")

        page.goto(f"{srv.url}/documents/{doc_id}")
        expect(page.locator(f"#file-{raw} .stored")).to_contain_text("không giữ lại")
        expect(page.locator(f"#file-{raw} a", has_text="Tải xuống")).to_have_count(0)
        expect(page.locator(f"#file-{archival} .stored")).to_contain_text("Lưu một lần")
        expect(page.locator(f"#file-{signed} .page-size")).to_have_count(2)
        expect(page.locator(f"#file-{signed} .pages")).to_contain_text("2 trang")
        expect(page.locator(f"#file-{signed} .page-size").first).to_contain_text("KB")
        # The PDF/A kept inside the signed file opens like any other.
        with page.expect_download() as dl:
            page.locator(f"#file-{archival} a", has_text="Tải xuống").click()
        path = dl.value.path()
        assert path is not None and Path(path).read_bytes().startswith(b"%PDF-")
        shots("document")

        page.goto(srv.url + "/device")
        expect(page.locator("#storage-used")).to_contain_text("KB")
        expect(page.locator("#days-left")).to_contain_text("ngày")
        expect(page.locator("#masters")).to_contain_text("tắt")
        expect(page.locator("#masters")).to_contain_text("mỗi ngày")
        shots("device")
        browser.close()
