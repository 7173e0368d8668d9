"""Separator sheets (appliance/capture/separator.py): the printed sheet's QR code names its
target and is read back from a scan; anything that is not exactly our payload is no separator."""

from __future__ import annotations

import io

import pikepdf
import pytest
from PIL import Image

from appliance.capture.separator import PREFIX, Target, decode, parse_payload, payload, sheet_pdf
from tests.capture.images import separator_page, text_page

FILE = "000.21.08.H49.2025.01.VP"
DOC = "0c6f1f0e-4a1e-4c55-9a57-3d2f5b8a9e10"


@pytest.mark.parametrize(
    "target",
    [Target(), Target(file_code=FILE), Target(document_id=DOC)],
    ids=["generic", "file", "document"],
)
def test_a_printed_sheet_scans_back_to_its_target(target: Target) -> None:
    """sheet_pdf → printed → scanned at 150 dpi → decode gives the same target."""
    page = separator_page(target, dpi=150).convert("L")
    assert decode(page) == target


def test_payloads_are_exact() -> None:
    """G, F:<mã hồ sơ>, D:<id> after the versioned prefix; surrounding blanks are ignored."""
    assert payload(Target()) == f"{PREFIX}G"
    assert payload(Target(file_code=FILE)) == f"{PREFIX}F:{FILE}"
    assert parse_payload(f"  {PREFIX}D:{DOC}\n") == Target(document_id=DOC)


@pytest.mark.parametrize(
    "text",
    [f"{PREFIX}F:", f"{PREFIX}D:", f"{PREFIX}X:{FILE}", f"{PREFIX}G:extra", "LUUTRU-SEP:2:G",
     "luutru-sep:1:G", f"{PREFIX}", f"https://dichvucong.gov.vn/?q={PREFIX}G", ""],
    ids=["empty-file", "empty-doc", "unknown-kind", "generic-with-value", "version-2",
         "lower-case", "prefix-only", "embedded", "empty"],
)
def test_anything_else_is_not_a_separator(text: str) -> None:
    """A malformed or foreign code never splits a batch."""
    assert parse_payload(text) is None


def test_a_page_with_another_qr_code_is_not_a_separator() -> None:
    """Modern documents carry QR codes of their own: a page with one (or none) is an
    ordinary page."""
    assert decode(text_page(dpi=150).convert("L")) is None
    page = text_page(["Mã tra cứu hồ sơ trực tuyến"], dpi=150).convert("L")
    page.paste(_qr_image("https://dichvucong.gov.vn/tra-cuu/123", 300), (200, 400))
    assert decode(page) is None
    page.paste(_qr_image(payload(Target(file_code=FILE)), 300), (700, 400))
    assert decode(page) == Target(file_code=FILE)  # ours is found beside the foreign one


def test_a_sheet_holds_as_many_copies_as_asked() -> None:
    """copies=3 makes a three-page PDF; fewer than one is one."""
    with pikepdf.open(io.BytesIO(sheet_pdf(Target(file_code=FILE), copies=3))) as pdf:
        assert len(pdf.pages) == 3
    with pikepdf.open(io.BytesIO(sheet_pdf(Target(), copies=0))) as pdf:
        assert len(pdf.pages) == 1


def _qr_image(text: str, side: int) -> Image.Image:
    """A QR code image about ``side`` pixels wide made with zxing-cpp's writer (not our
    sheet)."""
    import zxingcpp

    code = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.QRCode)
    view = memoryview(zxingcpp.write_barcode_to_image(code, scale=6))
    h, w = view.shape  # type: ignore[misc]
    img = Image.frombytes("L", (w, h), view.tobytes())
    return img.resize((side, side), Image.Resampling.NEAREST)
