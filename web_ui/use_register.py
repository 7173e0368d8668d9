"""Sổ đăng ký khai thác, sử dụng tài liệu lưu trữ: printed (PDF, A4 landscape, the columns of
``appliance.archive.use.REGISTER_COLUMNS`` on every page) and exported (XLSX), with the year's
statistics on a page and a sheet of their own."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
from collections.abc import Sequence
from typing import Any

from appliance import clock as clockmod
from appliance.archive.use import REGISTER_COLUMNS
from appliance.cells import safe_row
from appliance.errors import LuutruError
from appliance.fonts import register_reportlab
from appliance.registers.render import DATE_FORMAT, esc, register_pdf

TITLE = "SỔ ĐĂNG KÝ KHAI THÁC, SỬ DỤNG TÀI LIỆU LƯU TRỮ"
STAT_ROWS = (
    ("requests", "Số phiếu yêu cầu"), ("approved", "Số phiếu được duyệt"),
    ("refused", "Số phiếu từ chối"), ("pending", "Số phiếu chờ duyệt"),
    ("readers", "Số lượt người khai thác"), ("records_used", "Số tài liệu được khai thác"),
    ("reads", "Lượt đọc"), ("copies", "Bản sao"), ("certified_copies", "Bản sao chứng thực"),
    ("pages_copied", "Số trang sao"),
)


def stat_lines(stats: dict[str, Any]) -> list[tuple[str, str]]:
    out = [(label, str(stats[k])) for k, label in STAT_ROWS]
    out += [(f"Mục đích: {v['label']}", str(v["requests"])) for v in stats["by_purpose"].values()]
    return out


def render_pdf(org_name: str, year: int, rows: Sequence[Sequence[str]], stats: dict[str, Any],
               printed_at: dt.datetime, printed_by: str) -> bytes:
    """The register bound as the others are (appliance/registers/render.py), then the year's
    statistics on a page of their own."""
    from reportlab.lib import colors
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import PageBreak, Paragraph, Spacer, Table, TableStyle

    regular, bold = register_reportlab()
    body = ParagraphStyle("b", fontName=regular, fontSize=7.5, leading=9.5)
    big = ParagraphStyle("t", fontName=bold, fontSize=18, leading=24, alignment=1)
    mid = ParagraphStyle("c", fontName=regular, fontSize=13, leading=20, alignment=1)
    t = printed_at.astimezone(clockmod.TZ)
    footer = (f"In lúc {t:%H:%M} ngày {clockmod.vn_date(t.date())} bởi {printed_by} — luutru — "
              f"{TITLE} năm {year}")
    cover: list[Any] = [Paragraph(esc(org_name.upper()), mid), Spacer(1, 30 * mm),
                        Paragraph(TITLE, big), Spacer(1, 8 * mm),
                        Paragraph(f"Năm: {year}", mid)]
    stat = Table([[Paragraph(esc(a), body), Paragraph(b, body)] for a, b in stat_lines(stats)],
                 colWidths=[110 * mm, 30 * mm])
    stat.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.4, colors.black)]))
    after: list[Any] = [PageBreak(),
                        Paragraph(f"THỐNG KÊ KHAI THÁC, SỬ DỤNG TÀI LIỆU NĂM {year}", mid),
                        Spacer(1, 6 * mm), stat]
    return register_pdf(
        f"{TITLE} {year}", org_name, footer, cover, list(REGISTER_COLUMNS),
        [list(r) for r in rows], [16, 17, 30, 32, 40, 60, 20, 13, 20, 18, 7], size=7.5,
        empty="(Chưa có phiếu yêu cầu nào được quyết định trong năm)", after=after)


_DATE_COLUMNS = (1, 9)  # Ngày, Ngày giao (when one date)
_NUMBER_COLUMNS = (7,)  # Số trang sao


def _typed(row: Sequence[str]) -> list[Any]:
    """The row's dates as dates and counts as numbers, as a spreadsheet should hold them."""
    out: list[Any] = list(row)
    for i in _DATE_COLUMNS:
        with contextlib.suppress(LuutruError, ValueError):  # several dates, or none: as written
            out[i] = clockmod.parse_date(out[i]) if out[i] else out[i]
    for i in _NUMBER_COLUMNS:
        if isinstance(out[i], str) and out[i].isdigit():
            out[i] = int(out[i])
    return out


def render_xlsx(org_name: str, year: int, rows: Sequence[Sequence[str]],
                stats: dict[str, Any]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    wb = Workbook()
    cover = wb.active
    cover.title = "Bìa"
    for pair in (("Cơ quan", org_name.upper()), ("Sổ", TITLE), ("Năm", year)):
        cover.append(safe_row(pair))
    cover.column_dimensions["A"].width = 12
    cover.column_dimensions["B"].width = 60
    ws = wb.create_sheet("Sổ")
    ws.append(list(REGISTER_COLUMNS))
    ws.append([f"({i})" for i in range(1, 12)])
    for cell in ws[1]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    for r in rows:
        ws.append(safe_row(_typed(r)))  # people's names and purposes never run as formulas
        for i in _DATE_COLUMNS:
            if isinstance(ws.cell(ws.max_row, i + 1).value, dt.date):
                ws.cell(ws.max_row, i + 1).number_format = DATE_FORMAT
    for i, w in enumerate((10, 12, 24, 28, 36, 60, 18, 10, 14, 14, 24)):
        ws.column_dimensions[chr(ord("A") + i)].width = w
    ws.freeze_panes = "A3"
    st = wb.create_sheet("Thống kê")
    st.append(["Chỉ tiêu", f"Năm {year}"])
    for label, value in stat_lines(stats):
        st.append([label, int(value)])
    st.column_dimensions["A"].width = 50
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
