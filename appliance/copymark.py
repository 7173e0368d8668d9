"""The mark a copy of an archival record carries: "BẢN SAO", the record's mã lưu trữ and the
date the copy was made, at the top right of every page (TT 05/2025 Chương VI: unauthenticated
copies are marked "BẢN SAO" top right; authenticated ones are also signed by the agency).

One function, ``stamp_copy``, so that the print marks of printouts ("TÀI LIỆU LƯU TRỮ CHUYỂN
ĐỔI", …) and this one can share a home later. The mark is an overlay: the page's own content
is left as it is, the mark's text is real text (DejaVu Sans, every Vietnamese letter) that
``pdftotext`` reads back.
"""

from __future__ import annotations

import datetime as dt
import io

from .clock import vn_date
from .errors import ValidationError
from .fonts import register_reportlab

COPY_MARK = "BẢN SAO"
MARGIN = 28.0  # points from the top and right edges (about 1 cm), as the signature block


def stamp_copy(pdf: bytes, code: str, on: dt.date, below: float = 0.0) -> bytes:
    """``pdf`` with "BẢN SAO", "Mã lưu trữ: ``code``" and "Ngày sao: dd/mm/yyyy" at the top right
    of every page; on page 1 the mark starts ``below`` points lower (room for a signature)."""
    import pikepdf
    from reportlab.pdfgen import canvas

    regular, bold = register_reportlab()
    try:
        doc = pikepdf.open(io.BytesIO(pdf))
    except pikepdf.PdfError as exc:
        raise ValidationError(f"the record's file is not a readable PDF ({exc})") from exc
    lines = ((bold, 12.0, COPY_MARK), (regular, 8.0, f"Mã lưu trữ: {code}"),
             (regular, 8.0, f"Ngày sao: {vn_date(on)}"))
    with doc:
        for n, page in enumerate(doc.pages):
            x0, y0, x1, y1 = (float(v) for v in page.mediabox)
            buf = io.BytesIO()
            c = canvas.Canvas(buf, pagesize=(x1 - x0, y1 - y0))
            y = (y1 - y0) - MARGIN - (below if n == 0 else 0.0)
            for font, size, text in lines:
                y -= size * 1.25
                c.setFont(font, size)
                c.drawRightString((x1 - x0) - MARGIN, y, text)
            c.showPage()
            c.save()
            with pikepdf.open(io.BytesIO(buf.getvalue())) as mark:
                overlay = doc.copy_foreign(mark.pages[0].obj)
                page.add_overlay(pikepdf.Page(overlay), pikepdf.Rectangle(x0, y0, x1, y1))
        out = io.BytesIO()
        doc.save(out)
    return out.getvalue()
