"""Archival conformance in Debian's Chromium: the home page's two-copies warning, the retention
table offered when a hồ sơ is opened (its period filled in by the page), the Danh mục showing
"05 năm", and a record's print copy with its marks. Desktop and 360 px screenshots (and the
print copy's last page as PNG) in var/test-artefacts/web/archive/."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from appliance.store import Store
from tests.archive.conftest import pdf_bytes
from tests.conftest import incoming

from .server import ROOT, luutru, serve
from .test_e2e_browser import CHROMIUM, FLAGS

ARTEFACTS = ROOT / "var" / "test-artefacts" / "web" / "archive"
PASSWORD = "mật khẩu lưu trữ 2025"


def _seed(data_dir: Path) -> tuple[str, str, str]:
    """A permanent hồ sơ with a two-page document, before the server starts."""
    with Store.open(data_dir) as store:
        f = store.open_file({"FileCatalog": 2025, "FileNotation": "01.VP", "Maintenance": "01",
                             "Title": "Hồ sơ phòng, chống thiên tai năm 2025"})
        doc = store.register_incoming(incoming(FileCode=f.data["FileCode"])).record
        stored = store.content.put_bytes(pdf_bytes("Công văn về phòng, chống bão số 3", 2))
        store.attach_content(doc.id, [{"sha256": stored.sha256, "size": stored.size,
                                       "name": "cong-van.pdf", "mime": "application/pdf"}])
        store.wait_sealed()
        return str(f.data["FileCode"]), doc.id, stored.sha256


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")
def test_archivist_sees_copies_retention_and_print_marks(data_dir: Path, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    added = luutru("user", "add", "--data", str(data_dir), "--username", "luutru", "--role",
                   "archivist", "--full-name", "Lê Văn Lưu", "--password-stdin",
                   stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    code, doc_id, sha = _seed(data_dir)
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {ARTEFACTS}")
    with serve(data_dir) as srv, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        for width, tag in ((1280, "desktop"), (360, "360")):
            page = browser.new_page(viewport={"width": width, "height": 860}, locale="vi-VN")

            def shot(name: str, page=page, tag=tag) -> None:  # type: ignore[no-untyped-def]
                page.screenshot(path=str(ARTEFACTS / f"{name}-{tag}.png"), full_page=True)

            page.goto(srv.url + "/")
            page.fill("#username", "luutru")
            page.fill("#password", PASSWORD)
            page.click("button[type=submit]")
            expect(page.locator("h1")).to_have_text("Trang chủ")
            warning = page.locator("#copies-warning")
            expect(warning).to_be_visible()
            expect(warning).to_contain_text("Chưa đủ hai bản sao độc lập")
            expect(warning).to_contain_text("hiện có 0 trên 2")
            shot("01-home-copies-warning")
            box = warning.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width

            page.goto(srv.url + "/files/new")
            kinds = page.locator("#f-RetentionRef optgroup")
            assert kinds.count() >= 5
            page.select_option("#f-RetentionRef", "TT10.quy-hoach.cong-van")
            expect(page.locator("#f-Maintenance")).to_have_value("05 năm")  # filled by app.js
            notation = "02.VP" if tag == "desktop" else "03.VP"
            page.fill("input[name=FileCatalog]", "2025")
            page.fill("input[name=FileNotation]", notation)
            page.fill("textarea[name=Title]", f"Công văn trao đổi về quy hoạch ({tag})")
            shot("02-file-form-retention")
            assert page.evaluate("document.documentElement.scrollWidth") <= width + 1
            expect(page.locator("#copies-warning")).to_have_count(0)  # the home page's only
            page.click("form.form button.primary")
            expect(page.locator("h1")).to_contain_text("Công văn trao đổi về quy hoạch")
            page.goto(srv.url + "/files?year=2025")
            row = page.locator("tr", has_text=f"Công văn trao đổi về quy hoạch ({tag})")
            expect(row).to_contain_text("05 năm")
            shot("03-danh-muc-period")

            page.goto(f"{srv.url}/documents/{doc_id}")
            link = page.locator("a.print-copy")
            expect(link).to_have_count(1)
            shot("04-document-print-link")
            href = link.get_attribute("href")
            resp = page.request.get(srv.url + str(href))
            assert resp.status == 200 and resp.headers["content-type"] == "application/pdf"
            copy = tmp_path / f"ban-in-{tag}.pdf"
            copy.write_bytes(resp.body())
            text = subprocess.run(["pdftotext", "-layout", str(copy), "-"], capture_output=True,
                                  text=True, check=True).stdout
            last = text.split("\f")[-2]
            assert "TÀI LIỆU LƯU TRỮ CHUYỂN ĐỔI" in last and f"{code}.0000001" in last
            assert "BẢN SAO" in text.split("\f")[0]
            page.close()
        subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", "2", "-l", "2", "-singlefile",
                        str(tmp_path / "ban-in-desktop.pdf"), str(ARTEFACTS / "05-print-copy")],
                       check=True)
        browser.close()
    assert sha
