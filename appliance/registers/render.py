"""A register printed (PDF, A4 landscape, to be bound) or exported (XLSX).

Both carry the cover of Phụ lục IV and the register's columns numbered (1)…(n). In the XLSX
dates are real dates shown dd/mm/yyyy and numbers are numbers; no cell is a formula
(appliance/cells.py).
"""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

from .. import clock as clockmod
from ..cells import safe_row
from ..fonts import register_reportlab
from .layout import Register, display, typed
from .rows import Row

DATE_FORMAT = "DD/MM/YYYY"


def printed_line(reg: Register, printed_at: dt.datetime, printed_by: str) -> str:
    """The footer of every printed page: when, by whom, which register and period."""
    t = printed_at.astimezone(clockmod.TZ)
    span = (f"năm {reg.year}" if reg.period.whole_year else
            f"từ {clockmod.vn_date(reg.period.start)} đến {clockmod.vn_date(reg.period.end)}")
    return (f"In lúc {t:%H:%M} ngày {clockmod.vn_date(t.date())} bởi {printed_by} — luutru — "
            f"{reg.title} {span}")


def esc(text: str) -> str:
    """Text for a reportlab Paragraph (its markup is XML)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def register_pdf(title: str, author: str, footer: str, cover: list[Any],
                 header: list[str], rows: list[list[str]], widths_mm: list[float],
                 size: float = 8, empty: str = "", after: list[Any] | None = None) -> bytes:
    """A register as bound paper: A4 landscape, ``cover`` (flowables) on the first page, then
    the table with its header and column numbers (1)…(n) on every page, ``footer`` and the
    page number at the foot of each page; ``after``: flowables that follow the table."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Table, TableStyle

    regular, bold = register_reportlab()
    body = ParagraphStyle("b", fontName=regular, fontSize=size, leading=size + 2)
    head = ParagraphStyle("h", fontName=bold, fontSize=size, leading=size + 2, alignment=1)
    buf = io.BytesIO()

    def on_page(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(regular, 7)
        canvas.drawString(12 * mm, 7 * mm, footer)
        canvas.drawRightString(landscape(A4)[0] - 12 * mm, 7 * mm, f"Trang {doc.page}")
        canvas.restoreState()

    doc = SimpleDocTemplate(
        buf, pagesize=landscape(A4), leftMargin=12 * mm, rightMargin=12 * mm,
        topMargin=12 * mm, bottomMargin=14 * mm, title=title, author=author, creator="luutru",
    )
    data: list[list[Any]] = [[Paragraph(c, head) for c in header],
                             [Paragraph(f"({i})", head) for i in range(1, len(header) + 1)]]
    data += [[Paragraph(esc(c), body) for c in r] for r in rows]
    table = Table(data, colWidths=[w * mm for w in widths_mm], repeatRows=2)
    table.setStyle(TableStyle([
        ("FONTNAME", (0, 0), (-1, -1), regular),
        ("GRID", (0, 0), (-1, -1), 0.4, colors.black),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("BACKGROUND", (0, 0), (-1, 1), colors.Color(0.92, 0.92, 0.92)),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
    ]))
    story: list[Any] = [*cover, PageBreak(), table]
    if not rows and empty:
        story.append(Paragraph(empty, body))
    story += after or []
    doc.build(story, onFirstPage=on_page, onLaterPages=on_page)
    return buf.getvalue()


def cover_styles() -> tuple[Any, Any, Any]:
    """The cover's paragraph styles: the agency (bold), the register's title, the lines."""
    from reportlab.lib.styles import ParagraphStyle

    regular, bold = register_reportlab()
    return (ParagraphStyle("o", fontName=bold, fontSize=14, leading=20, alignment=1),
            ParagraphStyle("t", fontName=bold, fontSize=22, leading=28, alignment=1),
            ParagraphStyle("c", fontName=regular, fontSize=14, leading=22, alignment=1))


def render_pdf(reg: Register, rows: list[Row], printed_at: dt.datetime,
               printed_by: str) -> bytes:
    """A4 landscape: the cover page, then the register with its header rows on every page."""
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, Spacer

    org, title, cover = cover_styles()
    lines = dict(reg.cover_lines())
    story: list[Any] = [
        Paragraph(esc(lines["Cơ quan"]), org),
        Spacer(1, 40 * mm),
        Paragraph(reg.title, title),
        Spacer(1, 10 * mm),
        Paragraph(f"Năm: {reg.year}", cover),
        Paragraph(f"Từ ngày {lines['Từ ngày']} đến ngày {lines['đến ngày']}", cover),
    ]
    if reg.layout.numbered:
        story.append(Paragraph(f"Từ số {lines['Từ số']} đến số {lines['đến số']}", cover))
    story.append(Paragraph(f"Quyển số: {lines['Quyển số']}", cover))
    return register_pdf(
        f"{reg.title} {reg.year}", reg.org_name, printed_line(reg, printed_at, printed_by),
        story, list(reg.columns), [list(display(reg.kind, cells)) for _, cells in rows],
        list(reg.layout.pdf_mm), empty="(Sổ chưa có dòng nào trong thời gian này)")


def render_xlsx(reg: Register, rows: list[Row]) -> bytes:
    """Sheet "Bìa" (the cover data) and sheet "Sổ" with the register's columns."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    ws_cover = wb.active
    ws_cover.title = "Bìa"
    for label, value in reg.cover_lines():
        cover_value: Any = value
        if label in ("Từ ngày", "đến ngày") and value != "…":
            cover_value = clockmod.parse_date(value)
        ws_cover.append(safe_row([label, cover_value]))
        if isinstance(cover_value, dt.date):
            ws_cover.cell(ws_cover.max_row, 2).number_format = DATE_FORMAT
    ws_cover.column_dimensions["A"].width = 14
    ws_cover.column_dimensions["B"].width = 60
    ws = wb.create_sheet("Sổ")
    ws.append(safe_row(reg.columns))
    ws.append([f"({i})" for i in range(1, len(reg.columns) + 1)])
    for cell in ws[1]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    dates = sorted(reg.layout.dates)
    for _, cells in rows:
        ws.append(safe_row(typed(reg.kind, cells)))
        r = ws.max_row
        for i in dates:
            cell = ws.cell(r, i + 1)
            if isinstance(cell.value, dt.date):
                cell.number_format = DATE_FORMAT
    for i, w in enumerate(reg.layout.xlsx_chars):
        ws.column_dimensions[get_column_letter(i + 1)].width = w
    ws.freeze_panes = "A3"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
