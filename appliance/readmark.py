"""The mark a record read on screen carries: who reads it, under which request, and when.

A record shown to a reader (đọc tại chỗ, the "read" form of a use request) is never handed
over as a file: the box draws its pages as images, and every page carries the reader's name,
the request's number and the time, so that a photograph or a screenshot of the screen names
its source, as a copy's "BẢN SAO" mark does (``copymark.py``). The mark is an overlay of real
text (DejaVu Sans, every Vietnamese letter): a line at the top and one at the foot of every
page on a light band, and the same words across the page, pale and diagonal, so that
cutting the edges off an image does not remove it. The page's own content is left as it is.
"""

from __future__ import annotations

import datetime as dt
import io
import math
from dataclasses import dataclass

from .fonts import register_reportlab
from .printmark import open_flat, stamp_every_page

READ_MARK = "ĐỌC TẠI CHỖ — KHÔNG PHẢI BẢN SAO"
EDGE = 10.0  # points between the page's edge and the band's text
INK = (0.55, 0.05, 0.05)  # dark red: legible on white and on a grey scan


@dataclass(frozen=True)
class ReadingMark:
    """What the mark says: the reader, the request (``01/2025``) and the time of reading."""

    reader: str
    request: str
    at: dt.datetime

    def line(self) -> str:
        return (f"{READ_MARK} · Người đọc: {self.reader} · Phiếu yêu cầu số {self.request}"
                f" · {self.at.strftime('%d/%m/%Y %H:%M')}")


def _fit(text: str, font: str, size: float, width: float) -> float:
    from reportlab.pdfbase.pdfmetrics import stringWidth

    return min(size, size * width / max(1.0, float(stringWidth(text, font, size))))


def _overlay(width: float, height: float, mark: ReadingMark) -> bytes:
    """One page of this size with the bands and the diagonal words."""
    from reportlab.pdfgen import canvas

    regular, bold = register_reportlab()
    text = mark.line()
    out = io.BytesIO()
    c = canvas.Canvas(out, pagesize=(width, height), initialFontName=regular)
    size = _fit(text, bold, 8.0, width - 2 * EDGE)
    for y in (height - EDGE - size, EDGE):  # the top band, then the foot
        c.setFillColorRGB(1, 1, 1)
        c.setFillAlpha(0.8)
        c.rect(0, y - size * 0.4, width, size * 1.6, stroke=0, fill=1)
        c.setFillAlpha(1)
        c.setFillColorRGB(*INK)
        c.setFont(bold, size)
        c.drawCentredString(width / 2, y, text)
    # Across the page: the diagonal's length, the words repeated every few lines.
    diag = math.hypot(width, height)
    big = _fit(text, regular, 14.0, diag * 0.8)
    c.saveState()
    c.setFillColorRGB(*INK)
    c.setFillAlpha(0.16)
    c.translate(width / 2, height / 2)
    c.rotate(math.degrees(math.atan2(height, width)))
    c.setFont(regular, big)
    step = max(big * 5, 60.0)
    n = int(diag / 2 / step)
    for k in range(-n, n + 1):
        c.drawCentredString(0, k * step - big / 3, text)
    c.restoreState()
    c.showPage()
    c.save()
    return out.getvalue()


def mark_reading(pdf: bytes, mark: ReadingMark) -> bytes:
    """``pdf`` with the reading mark on every page (annotations flattened under it)."""
    with open_flat(pdf, "screen", "the record's file") as src:
        stamp_every_page(src, lambda width, height: _overlay(width, height, mark))
        out = io.BytesIO()
        src.save(out)
        return out.getvalue()
