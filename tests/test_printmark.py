"""Print copies: the conversion mark after the last page's content, BẢN SAO on every page,
signatures flattened to what they show; a tiny page gets the mark on a page of its own."""

from __future__ import annotations

import datetime as dt
import io
import subprocess
from pathlib import Path

import pikepdf
import pytest

from appliance.errors import ValidationError
from appliance.printmark import CONVERTED, COPY, Mark, print_copy
from tests.archive.conftest import pdf_bytes

MARK = Mark("000.21.08.H49.2025.01.VP.0000003", "Ủy ban nhân dân xã Đông Hải",
            dt.datetime(2025, 9, 15, 9, 30))


def _pages(pdf: bytes, tmp: Path) -> list[str]:
    path = tmp / "x.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True,
                         text=True, check=True).stdout
    return out.split("\f")[:-1]


def test_the_mark_follows_the_content_of_the_last_page(tmp_path: Path) -> None:
    body = pdf_bytes("Nội dung văn bản", pages=3)
    pages = _pages(print_copy(body, MARK), tmp_path)
    assert len(pages) == 3 and all(COPY in p for p in pages)
    assert CONVERTED not in pages[0] + pages[1]
    last = pages[-1]
    assert last.index("Nội dung văn bản — trang 3") < last.index(CONVERTED)
    assert MARK.archive_code in last and MARK.agency in last and "15/09/2025 09:30" in last


def test_a_tiny_page_gets_the_mark_on_its_own_page(tmp_path: Path) -> None:
    import img2pdf
    from PIL import Image

    img = io.BytesIO()
    Image.new("RGB", (60, 40), (200, 180, 90)).save(img, "PNG", dpi=(300, 300))
    pages = _pages(print_copy(bytes(img2pdf.convert(img.getvalue())), MARK), tmp_path)
    assert len(pages) == 2 and CONVERTED in pages[1]


def test_signatures_are_flattened_and_the_source_is_untouched() -> None:
    from appliance.pdfsign import sign_pdf
    from tests.pki import SoftwareAgencyKey

    signed = sign_pdf(pdf_bytes("Quyết định"), SoftwareAgencyKey.make(),
                      agency_name=MARK.agency)
    before = bytes(signed)
    copy = print_copy(signed, MARK)
    assert signed == before
    with pikepdf.open(io.BytesIO(copy)) as pdf:
        assert "/AcroForm" not in pdf.Root
        for page in pdf.pages:
            assert all(a.get("/FT") != "/Sig" for a in page.get("/Annots") or [])


def test_not_a_pdf_is_refused() -> None:
    with pytest.raises(ValidationError):
        print_copy(b"not a pdf", MARK)
