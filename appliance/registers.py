"""Sổ đăng ký văn bản đến / đi (Decree 30, Phụ lục IV): rows, cover, PDF and XLSX.

The columns are exactly the ten of each paper register (regulations.md §2.3). Columns the
appliance has no data for (Ngày chuyển, Ký nhận, Đơn vị/người nhận bản lưu) print empty, to
be filled in by hand on the bound copy, as the decree expects of a printed register.
Classified documents are registered under the state-secrets law (Điều 16.3, 22.4): they are
not in these registers; cleared roles can print the separate register of the "mật" series.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import clock as clockmod
from . import schema
from .cells import safe_row
from .classified import DOCUMENT_IS_CLASSIFIED_SQL, DOCUMENT_NOT_CLASSIFIED_SQL
from .fonts import register_reportlab

INCOMING_COLUMNS = (
    "Ngày đến",
    "Số đến",
    "Tác giả",
    "Số, ký hiệu văn bản",
    "Ngày tháng văn bản",
    "Tên loại và trích yếu nội dung văn bản",
    "Đơn vị hoặc người nhận",
    "Ngày chuyển",
    "Ký nhận",
    "Ghi chú",
)
OUTGOING_COLUMNS = (
    "Số, ký hiệu văn bản",
    "Ngày tháng văn bản",
    "Tên loại và trích yếu nội dung văn bản",
    "Người ký",
    "Nơi nhận văn bản",
    "Đơn vị, người nhận bản lưu",
    "Số lượng bản",
    "Ngày chuyển",
    "Ký nhận",
    "Ghi chú",
)
TITLES = {"incoming": "SỔ ĐĂNG KÝ VĂN BẢN ĐẾN", "outgoing": "SỔ ĐĂNG KÝ VĂN BẢN ĐI"}
DIRECTIONS = ("incoming", "outgoing")


@dataclass(frozen=True)
class Register:
    direction: str
    year: int
    org_name: str
    classified: bool
    total: int
    first_date: str | None
    last_date: str | None
    first_number: str | None
    last_number: str | None
    volume: int = 1

    @property
    def title(self) -> str:
        return TITLES[self.direction] + (" MẬT" if self.classified else "")

    @property
    def columns(self) -> tuple[str, ...]:
        return INCOMING_COLUMNS if self.direction == "incoming" else OUTGOING_COLUMNS

    def cover_lines(self) -> list[tuple[str, str]]:
        return [
            ("Cơ quan", self.org_name.upper()),
            ("Sổ", self.title),
            ("Năm", str(self.year)),
            ("Từ ngày", clockmod.vn_date(self.first_date) if self.first_date else "…"),
            ("đến ngày", clockmod.vn_date(self.last_date) if self.last_date else "…"),
            ("Từ số", self.first_number or "…"),
            ("đến số", self.last_number or "…"),
            ("Quyển số", f"{self.volume:02d}"),
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "direction": self.direction,
            "year": self.year,
            "title": self.title,
            "org_name": self.org_name,
            "total": self.total,
            "from_date": self.first_date,
            "to_date": self.last_date,
            "from_number": self.first_number,
            "to_number": self.last_number,
            "volume": self.volume,
            "columns": list(self.columns),
        }


def _where(direction: str, classified: bool) -> str:
    mode = DOCUMENT_IS_CLASSIFIED_SQL if classified else DOCUMENT_NOT_CLASSIFIED_SQL
    if direction == "incoming":
        return (f'"FondCode" = ? AND "Year" = ? AND "Direction" = \'incoming\' '
                f'AND "ArrivalNumber" IS NOT NULL AND {mode}')
    return (f'"FondCode" = ? AND "Year" = ? AND "Direction" = \'outgoing\' '
            f'AND "Status" = \'issued\' AND "CodeNumber" IS NOT NULL AND {mode}')


# The order of a register's rows, as the columns of a key that is unique in the register.
_KEY = {
    "incoming": ('"ArrivalNumber"',),
    "outgoing": ('coalesce("Series", \'\')', 'CAST("CodeNumber" AS INTEGER)', "rid"),
}


def _order(direction: str) -> str:
    return ", ".join(_KEY[direction])


def register_years(conn: sqlite3.Connection) -> list[int]:
    """The years any document is numbered in, newest first."""
    return [int(r[0]) for r in conn.execute(
        'SELECT DISTINCT "Year" FROM documents WHERE "Year" IS NOT NULL ORDER BY 1 DESC')]


def register_info(conn: sqlite3.Connection, fond: str, org_name: str, direction: str, year: int,
                  classified: bool = False) -> Register:
    where = _where(direction, classified)
    if direction == "incoming":
        row = conn.execute(
            f'SELECT count(*), min("ArrivalDate"), max("ArrivalDate"), min("ArrivalNumber"), '
            f'max("ArrivalNumber") FROM documents WHERE {where}', (fond, year)
        ).fetchone()
        first = str(row[3]) if row[3] is not None else None
        last = str(row[4]) if row[4] is not None else None
    else:
        row = conn.execute(
            f'SELECT count(*), min("IssuedDate"), max("IssuedDate"), '
            f'min(CAST("CodeNumber" AS INTEGER)), max(CAST("CodeNumber" AS INTEGER)) '
            f"FROM documents WHERE {where}", (fond, year)
        ).fetchone()
        first = f"{int(row[3]):02d}" if row[3] is not None else None
        last = f"{int(row[4]):02d}" if row[4] is not None else None
    return Register(direction, year, org_name, classified, int(row[0]), row[1], row[2],
                    first, last)


def register_docs(conn: sqlite3.Connection, fond: str, direction: str, year: int,
                  classified: bool = False, limit: int | None = None,
                  offset: int = 0) -> list[tuple[str, dict[str, Any]]]:
    sql = (f"SELECT * FROM documents WHERE {_where(direction, classified)} "
           f"ORDER BY {_order(direction)}")
    args: list[Any] = [fond, year]
    if limit is not None:
        sql += " LIMIT ? OFFSET ?"
        args += [limit, offset]
    prev = conn.row_factory
    conn.row_factory = sqlite3.Row
    try:
        rows = conn.execute(sql, args).fetchall()
    finally:
        conn.row_factory = prev
    return [(r["id"], schema.from_row("document", r)) for r in rows]


@functools.lru_cache(maxsize=4096)
def _d_text(value: str) -> str:
    try:
        return clockmod.vn_date(value)
    except Exception:  # a register prints even around a bad legacy value
        return value


def _d(value: Any) -> str:
    if not value:
        return ""
    return _d_text(value) if isinstance(value, str) else clockmod.vn_date(value)


# What a register row is made of, in the order ``cells_of`` reads them.
ROW_FIELDS = {
    "incoming": ("ArrivalDate", "ArrivalNumber", "OrganName", "CodeNumber", "CodeNotation",
                 "IssuedDate", "TypeName", "Subject", "ToPlaces", "Description"),
    "outgoing": ("CodeNumber", "CodeNotation", "IssuedDate", "TypeName", "Subject",
                 "SignerPosition", "SignerFullName", "To", "IssuedAmount", "Description"),
}


def _s(value: Any) -> str:
    return "" if value is None else str(value)


def _join(sep: str, *parts: Any) -> str:
    return sep.join(p for p in parts if p)


def cells_of(direction: str, v: Sequence[Any]) -> list[str]:
    """The paper register's ten columns from the ``ROW_FIELDS`` values (None: absent; the
    outgoing "To" as a list or as its stored JSON text)."""
    if direction == "incoming":
        arrival, arr_no, organ, code_no, notation, issued, type_, subject, places, desc = v
        return [
            _d(arrival), _s(arr_no), _s(organ),
            f"{_s(code_no)}/{_s(notation)}".strip("/"),
            _d(issued), _join(" ", type_, subject), _s(places), "", "", _s(desc),
        ]
    code_no, notation, issued, type_, subject, pos, name, to, amount, desc = v
    if isinstance(to, str):
        to = json.loads(to)
    return [
        f"{_s(code_no)}/{_s(notation)}".strip("/"),
        _d(issued), _join(" ", type_, subject), _join(", ", pos, name),
        "; ".join(r.get("OrganName", "") for r in to or ()), "", _s(amount), "", "", _s(desc),
    ]


def row_cells(direction: str, d: dict[str, Any]) -> list[str]:
    """One register row, as the paper register's ten columns."""
    return cells_of(direction, [d.get(f) for f in ROW_FIELDS[direction]])


def page_starts(conn: sqlite3.Connection, fond: str, direction: str, year: int,
                classified: bool, size: int) -> list[tuple[Any, ...]]:
    """The sort key of the first row of each page of ``size`` rows (for ``page_rows``)."""
    key = ", ".join(f"{k} AS k{i}" for i, k in enumerate(_KEY[direction]))
    names = ", ".join(f"k{i}" for i in range(len(_KEY[direction])))
    return [tuple(r) for r in conn.execute(
        f"SELECT {names} FROM (SELECT {key}, row_number() OVER (ORDER BY {_order(direction)}) "
        f"AS n FROM documents WHERE {_where(direction, classified)}) WHERE (n - 1) % ? = 0 "
        "ORDER BY n",
        (fond, year, size),
    ).fetchall()]


def page_rows(conn: sqlite3.Connection, fond: str, direction: str, year: int,
              classified: bool, limit: int, start: tuple[Any, ...] | int = 0,
              ) -> list[tuple[str, list[str]]]:
    """Up to ``limit`` rows of the register as (document id, the ten cells): the rows and
    cells of ``register_docs`` + ``row_cells``, reading only the columns a row shows, from
    the row whose sort key is ``start`` (a tuple from ``page_starts``) or from the ``start``-th
    row (an int offset)."""
    cols = ", ".join(f'"{f}"' for f in ROW_FIELDS[direction])
    where = _where(direction, classified)
    args: tuple[Any, ...] = (fond, year)
    more: tuple[int, ...]
    if isinstance(start, tuple):
        keys = _KEY[direction]
        where += f" AND ({', '.join(keys)}) >= ({', '.join('?' * len(keys))})"
        args += start
        tail, more = "LIMIT ?", (limit,)
    else:
        tail, more = "LIMIT ? OFFSET ?", (limit, start)
    rows = conn.execute(
        f"SELECT id, {cols} FROM documents WHERE {where} ORDER BY {_order(direction)} {tail}",
        args + more,
    ).fetchall()
    return [(r[0], cells_of(direction, tuple(r)[1:])) for r in rows]


# -- PDF ---------------------------------------------------------------------------------------

_FONTS_READY = False


def _fonts() -> None:
    global _FONTS_READY
    if _FONTS_READY:
        return
    register_reportlab()
    _FONTS_READY = True


def render_pdf(reg: Register, docs: list[tuple[str, dict[str, Any]]], printed_at: dt.datetime,
               printed_by: str) -> bytes:
    """A4 landscape: the cover page, then the register with its header row on every page."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import (
        PageBreak,
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        Table,
        TableStyle,
    )

    _fonts()
    body = ParagraphStyle("b", fontName="DejaVuSans", fontSize=8, leading=10)
    head = ParagraphStyle("h", fontName="DejaVuSans-Bold", fontSize=8, leading=10,
                          alignment=1)
    title = ParagraphStyle("t", fontName="DejaVuSans-Bold", fontSize=22, leading=28,
                           alignment=1)
    cover = ParagraphStyle("c", fontName="DejaVuSans", fontSize=14, leading=22, alignment=1)
    org = ParagraphStyle("o", fontName="DejaVuSans-Bold", fontSize=14, leading=20, alignment=1)
    buf = io.BytesIO()
    footer = (f"In lúc {clockmod.iso(printed_at)} bởi {printed_by} — luutru — "
              f"{reg.title} năm {reg.year}")

    def on_page(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont("DejaVuSans", 7)
        canvas.drawString(12 * mm, 7 * mm, footer)
        canvas.drawRightString(landscape(A4)[0] - 12 * mm, 7 * mm, f"Trang {doc.page}")
        canvas.restoreState()

    doc = SimpleDocTemplate(
        buf, pagesize=landscape(A4), leftMargin=12 * mm, rightMargin=12 * mm,
        topMargin=12 * mm, bottomMargin=14 * mm, title=f"{reg.title} {reg.year}",
        author=reg.org_name, creator="luutru",
    )
    lines = dict(reg.cover_lines())
    story: list[Any] = [
        Paragraph(lines["Cơ quan"], org),
        Spacer(1, 40 * mm),
        Paragraph(reg.title, title),
        Spacer(1, 10 * mm),
        Paragraph(f"Năm: {reg.year}", cover),
        Paragraph(f"Từ ngày {lines['Từ ngày']} đến ngày {lines['đến ngày']}", cover),
        Paragraph(f"Từ số {lines['Từ số']} đến số {lines['đến số']}", cover),
        Paragraph(f"Quyển số: {lines['Quyển số']}", cover),
        PageBreak(),
    ]
    widths_in = [21, 14, 32, 28, 21, 66, 32, 20, 19, 20]
    widths_out = [26, 21, 66, 32, 34, 26, 14, 20, 17, 17]
    widths = [w * mm for w in (widths_in if reg.direction == "incoming" else widths_out)]
    numbers = [Paragraph(f"({i})", head) for i in range(1, 11)]
    data: list[list[Any]] = [[Paragraph(c, head) for c in reg.columns], numbers]
    for _, d in docs:
        data.append([Paragraph(_esc(c), body) for c in row_cells(reg.direction, d)])
    table = Table(data, colWidths=widths, repeatRows=2)
    table.setStyle(TableStyle([
        ("GRID", (0, 0), (-1, -1), 0.4, colors.black),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("BACKGROUND", (0, 0), (-1, 1), colors.Color(0.92, 0.92, 0.92)),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
    ]))
    story.append(table)
    if not docs:
        story.append(Paragraph("(Chưa có văn bản nào trong sổ)", body))
    doc.build(story, onFirstPage=on_page, onLaterPages=on_page)
    return buf.getvalue()


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# -- XLSX --------------------------------------------------------------------------------------

def render_xlsx(reg: Register, docs: list[tuple[str, dict[str, Any]]]) -> bytes:
    """Sheet "Bìa" (the cover data) and sheet "Sổ" with the ten columns."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    wb = Workbook()
    ws_cover = wb.active
    ws_cover.title = "Bìa"
    for label, value in reg.cover_lines():
        ws_cover.append(safe_row([label, value]))
    ws_cover.column_dimensions["A"].width = 14
    ws_cover.column_dimensions["B"].width = 60
    ws = wb.create_sheet("Sổ")
    ws.append(safe_row(reg.columns))
    ws.append([f"({i})" for i in range(1, 11)])
    for cell in ws[1]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    for _, d in docs:
        ws.append(safe_row(row_cells(reg.direction, d)))
    widths = [12, 9, 28, 18, 12, 60, 28, 12, 12, 20] if reg.direction == "incoming" else [
        18, 12, 60, 26, 30, 20, 10, 12, 12, 20]
    for i, w in enumerate(widths):
        ws.column_dimensions[chr(ord("A") + i)].width = w
    ws.freeze_panes = "A3"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
