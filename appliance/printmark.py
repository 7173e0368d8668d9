"""Marks on printed copies of digital records (Circular 05/2025 Chương III and Chương VI).

A paper print of a digital archival record carries, after the content on its last page,
"TÀI LIỆU LƯU TRỮ CHUYỂN ĐỔI", the record's mã lưu trữ and the converting agency (the
signature and seal of that agency are added on paper); a copy that is not authenticated is
marked "BẢN SAO" at the top right. ``print_copy`` makes that copy from the stored file and
never changes the stored file: its signature stays valid for whoever downloads it.

The last page's content is scaled down into the upper part of the sheet so the mark sits
after it without covering anything (scans often end with the signature block at the foot of
the page); annotations are flattened first, so a signature's visible stamp stays on paper.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import ValidationError
from .fonts import register_reportlab

CONVERTED = "TÀI LIỆU LƯU TRỮ CHUYỂN ĐỔI"
COPY = "BẢN SAO"
STRIP = 92.0  # points kept at the foot of the last page for the conversion mark
MIN_WIDTH = 420.0  # the mark's lines need this much width
BLACK = (0, 0, 0)


@dataclass(frozen=True)
class Mark:
    """What the conversion mark says about one record."""

    archive_code: str  # mã lưu trữ của tài liệu
    agency: str  # cơ quan chuyển đổi
    at: dt.datetime  # when the copy was printed
    copy: bool = True  # also "BẢN SAO" at the top right of every page


def _strip_pdf(width: float, mark: Mark) -> bytes:
    """The conversion block, one page ``width`` × STRIP, DejaVu embedded."""
    from reportlab.pdfgen import canvas

    regular, bold = register_reportlab()
    out = io.BytesIO()
    c = canvas.Canvas(out, pagesize=(width, STRIP), initialFontName=regular,
                      pageCompression=1)
    c.setStrokeColorRGB(*BLACK)
    c.setLineWidth(0.6)
    c.line(36, STRIP - 10, width - 36, STRIP - 10)
    c.setFont(bold, 11)
    c.drawString(40, STRIP - 28, CONVERTED)
    c.setFont(regular, 9.5)
    c.drawString(40, STRIP - 44, f"Mã lưu trữ: {mark.archive_code}")
    c.drawString(40, STRIP - 58, f"Cơ quan, tổ chức chuyển đổi: {mark.agency}")
    c.drawString(40, STRIP - 72, f"Thời gian in: {mark.at.strftime('%d/%m/%Y %H:%M')}")
    c.showPage()
    c.save()
    return out.getvalue()


def _copy_pdf(width: float, height: float) -> bytes:
    """"BẢN SAO" in a box at the top right of a page of this size."""
    from reportlab.pdfgen import canvas

    regular, bold = register_reportlab()
    out = io.BytesIO()
    c = canvas.Canvas(out, pagesize=(width, height), initialFontName=regular)
    c.setLineWidth(1)
    c.rect(width - 118, height - 38, 92, 22)
    c.setFont(bold, 12)
    c.drawCentredString(width - 72, height - 31, COPY)
    c.showPage()
    c.save()
    return out.getvalue()


def print_copy(pdf: bytes, mark: Mark) -> bytes:
    """A print copy of ``pdf`` with the conversion mark after the content of its last page
    and, for a copy, "BẢN SAO" at the top right of every page."""
    with open_flat(pdf, "print", "the file") as src:
        _mark_last_page(src, mark)
        if mark.copy:
            stamp_every_page(src, _copy_pdf)
        out = io.BytesIO()
        src.save(out, deterministic_id=True)
        return out.getvalue()


def open_flat(pdf: bytes, mode: str, what: str) -> Any:
    """``pdf`` opened with its annotations flattened as shown in ``mode`` ("print",
    "screen") and its form removed, so that a mark drawn over a page covers what is shown;
    a ValidationError on ``Content`` naming ``what`` when it is not a PDF with a page."""
    import pikepdf

    try:
        src = pikepdf.open(io.BytesIO(pdf))
    except pikepdf.PdfError as exc:
        raise ValidationError(f"{what} is not a readable PDF ({exc})", "Content") from exc
    if not len(src.pages):
        src.close()
        raise ValidationError("the PDF has no page", "Content")
    src.flatten_annotations(mode)
    if "/AcroForm" in src.Root:
        del src.Root["/AcroForm"]
    return src


def stamp_every_page(src: Any, make: Callable[[float, float], bytes]) -> None:
    """Overlay on every page of ``src`` the one-page PDF ``make(width, height)`` draws (made
    once per page size)."""
    import pikepdf

    stamps: dict[tuple[float, float], pikepdf.Pdf] = {}
    for page in src.pages:
        x0, y0, x1, y1 = (float(v) for v in page.mediabox)
        key = (round(x1 - x0, 1), round(y1 - y0, 1))
        if key not in stamps:
            stamps[key] = pikepdf.open(io.BytesIO(make(*key)))
        page.add_overlay(stamps[key].pages[0], pikepdf.Rectangle(x0, y0, x1, y1))


def _mark_last_page(src: object, mark: Mark) -> None:
    import pikepdf

    assert isinstance(src, pikepdf.Pdf)
    last = src.pages[-1]
    x0, y0, x1, y1 = (float(v) for v in last.mediabox)
    width, height = x1 - x0, y1 - y0
    if height < 3 * STRIP or width < MIN_WIDTH:
        # A page too small to share (a photo, a strip): the mark follows on a page of its own.
        block = pikepdf.open(io.BytesIO(_strip_pdf(max(width, MIN_WIDTH), mark)))
        src.pages.append(block.pages[0])
        return
    if "/Rotate" in last.obj:
        del last.obj["/Rotate"]  # a rotated scan prints as it is shown once scaled
    fresh = pikepdf.Page(src.make_indirect(pikepdf.Dictionary(
        Type=pikepdf.Name.Page, MediaBox=[x0, y0, x1, y1],
        Resources=pikepdf.Dictionary(), Contents=src.make_stream(b""))))
    src.pages.append(fresh)
    placed = src.pages[-1]
    placed.add_overlay(last, pikepdf.Rectangle(x0, y0 + STRIP, x1, y1))
    block = pikepdf.open(io.BytesIO(_strip_pdf(width, mark)))
    placed.add_overlay(block.pages[0], pikepdf.Rectangle(x0, y0, x0 + width, y0 + STRIP))
    del src.pages[-2]
