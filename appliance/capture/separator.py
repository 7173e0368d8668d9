"""Separator sheets: a printed page with a QR code that starts a new document in a batch.

The QR payload is ``LUUTRU-SEP:1:F:<mã hồ sơ>`` (the next pages go to that hồ sơ),
``LUUTRU-SEP:1:D:<document id>`` (they are added to that document) or ``LUUTRU-SEP:1:G`` (a
generic break). Other QR codes on a page (modern documents carry some) are not separators.
The same codes, typed or read by a barcode reader, route a batch (see routing.py).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from ..fonts import register_reportlab
from .errors import CaptureError

PREFIX = "LUUTRU-SEP:1:"


@dataclass(frozen=True)
class Target:
    """Where pages go: a hồ sơ (new documents in it), an existing document, or the default."""

    file_code: str | None = None
    document_id: str | None = None

    @property
    def is_default(self) -> bool:
        return self.file_code is None and self.document_id is None

    def describe(self) -> str:
        if self.document_id:
            return f"document {self.document_id}"
        if self.file_code:
            return f"hồ sơ {self.file_code}"
        return "new document"


def payload(target: Target) -> str:
    if target.document_id:
        return f"{PREFIX}D:{target.document_id}"
    if target.file_code:
        return f"{PREFIX}F:{target.file_code}"
    return f"{PREFIX}G"


def parse_payload(text: str) -> Target | None:
    """The target a separator code names, or None when the text is not one of ours."""
    text = text.strip()
    if not text.startswith(PREFIX):
        return None
    rest = text[len(PREFIX) :]
    if rest == "G":
        return Target()
    kind, _, value = rest.partition(":")
    if kind == "F" and value:
        return Target(file_code=value)
    if kind == "D" and value:
        return Target(document_id=value)
    return None


def decode(image: Any) -> Target | None:
    """The separator on a (grey, ~150 dpi) page image, if it carries one."""
    import zxingcpp

    qr = zxingcpp.BarcodeFormat.QRCode
    for result in zxingcpp.read_barcodes(image, formats=qr):  # type: ignore[arg-type]
        found = parse_payload(result.text)
        if found is not None:
            return found
    return None


def sheet_pdf(target: Target, title: str = "", copies: int = 1) -> bytes:
    """A printable A4 separator sheet (PDF) for ``target``, with its QR code and a caption."""
    from reportlab.graphics import renderPDF
    from reportlab.graphics.barcode.qr import QrCodeWidget
    from reportlab.graphics.shapes import Drawing
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.pdfgen import canvas

    try:
        name, _ = register_reportlab()
    except ConfigError as exc:
        raise CaptureError(str(exc)) from exc
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4)
    width, height = A4
    code = payload(target)
    for _ in range(max(1, copies)):
        c.setFont(name, 28)
        c.drawCentredString(width / 2, height - 40 * mm, "TỜ PHÂN CÁCH")
        c.setFont(name, 12)
        c.drawCentredString(width / 2, height - 50 * mm, "Separator sheet: do not file")
        side = 80 * mm
        widget = QrCodeWidget(code, barLevel="M", barBorder=4)
        x1, y1, x2, y2 = widget.getBounds()
        drawing = Drawing(
            side, side, transform=[side / (x2 - x1), 0, 0, side / (y2 - y1), 0, 0]
        )
        drawing.add(widget)
        renderPDF.draw(drawing, c, (width - side) / 2, height / 2 - side / 2)
        c.setFont(name, 16)
        y = height / 2 - side / 2 - 15 * mm
        if target.file_code:
            c.drawCentredString(width / 2, y, f"Hồ sơ: {target.file_code}")
        elif target.document_id:
            c.drawCentredString(width / 2, y, f"Văn bản: {target.document_id}")
        else:
            c.drawCentredString(width / 2, y, "Văn bản mới")
        if title:
            c.setFont(name, 12)
            c.drawCentredString(width / 2, y - 9 * mm, title[:90])
        c.setFont(name, 9)
        c.drawCentredString(width / 2, 20 * mm, code)
        c.showPage()
    c.save()
    return buf.getvalue()
