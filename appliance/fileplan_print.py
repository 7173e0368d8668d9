"""The Danh mục hồ sơ of a year printed (Decree 30 Phụ lục V): A4 portrait, its headings in the
structure's order, the five columns, the totals, and the head's approval (or that there is none
yet, or that the list changed after it)."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

from . import clock as clockmod
from .fileplan import Approval, arrange
from .fileplan import Structure as HeadingStructure
from .fonts import register_reportlab

COLUMNS = ("Số và ký hiệu hồ sơ", "Tên đề mục và tiêu đề hồ sơ", "Thời hạn bảo quản",
           "Người lập hồ sơ", "Ghi chú")
WIDTHS_MM = (26, 86, 24, 28, 22)


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def approval_lines(ap: Approval | None, changed: bool) -> list[str]:
    """What the printed Danh mục says of its approval."""
    if ap is None:
        return ["Danh mục hồ sơ này chưa được phê duyệt."]
    who = ", ".join(p for p in (ap.approver.get("position"), ap.approver.get("full_name")) if p)
    lines = [f"Đã được phê duyệt ngày {clockmod.vn_date(ap.approved_on)} theo {ap.decision}",
             f"Người phê duyệt: {who}"]
    if changed:
        lines.append("Lưu ý: Danh mục đã thay đổi sau khi được phê duyệt; cần phê duyệt lại.")
    return lines


def render_pdf(org_name: str, year: int, files: list[dict[str, Any]],
               structure: HeadingStructure | None, ap: Approval | None, changed: bool,
               labels: dict[str, str], printed_at: dt.datetime, printed_by: str) -> bytes:
    """``files``: the hồ sơ to list (as the reader may see them), each with its retention in
    words as ``period`` when known ("05 năm"); ``labels``: retention code → its words."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    regular, bold = register_reportlab()
    body = ParagraphStyle("b", fontName=regular, fontSize=9, leading=11)
    strong = ParagraphStyle("s", parent=body, fontName=bold)
    centre = ParagraphStyle("c", parent=body, alignment=1)
    head = ParagraphStyle("h", fontName=bold, fontSize=9, leading=11, alignment=1)
    title = ParagraphStyle("t", fontName=bold, fontSize=14, leading=18, alignment=1)
    t = printed_at.astimezone(clockmod.TZ)
    footer = (f"In lúc {t:%H:%M} ngày {clockmod.vn_date(t.date())} bởi {printed_by} — luutru "
              f"— Danh mục hồ sơ năm {year}")

    def on_page(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(regular, 7)
        canvas.drawString(15 * mm, 8 * mm, footer)
        canvas.drawRightString(A4[0] - 15 * mm, 8 * mm, f"Trang {doc.page}")
        canvas.restoreState()

    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm,
                            topMargin=15 * mm, bottomMargin=15 * mm, author=org_name,
                            title=f"Danh mục hồ sơ năm {year}", creator="luutru")
    story: list[Any] = [Paragraph(_esc(org_name.upper()), strong), Spacer(1, 6 * mm),
                        Paragraph(f"DANH MỤC HỒ SƠ CỦA {_esc(org_name.upper())} NĂM {year}",
                                  title)]
    if ap is not None:
        story.append(Paragraph(f"(Ban hành kèm theo {_esc(ap.decision)})", centre))
    story.append(Spacer(1, 5 * mm))
    data: list[list[Any]] = [[Paragraph(c, head) for c in COLUMNS],
                             [Paragraph(f"({i})", head) for i in range(1, 6)]]
    styles: list[tuple[Any, ...]] = []
    for level, heading, mine in arrange(files, structure):
        if heading:
            styles.append(("SPAN", (0, len(data)), (-1, len(data))))
            text = heading.upper() if level == 1 else heading
            data.append([Paragraph(_esc(text), strong if level <= 1 else body), "", "", "", ""])
        for f in mine:
            data.append([Paragraph(_esc(str(f.get("FileNotation") or "")), body),
                         Paragraph(_esc(str(f.get("Title") or "")), body),
                         Paragraph(_esc(str(f.get("period") or labels.get(
                             str(f.get("Maintenance")), str(f.get("Maintenance") or "")))),
                             body),
                         Paragraph(_esc(str(f.get("Creator") or "")), body),
                         Paragraph(_esc(str(f.get("Description") or "")), body)])
    table = Table(data, colWidths=[w * mm for w in WIDTHS_MM], repeatRows=2)
    table.setStyle(TableStyle([
        ("FONTNAME", (0, 0), (-1, -1), regular),
        ("GRID", (0, 0), (-1, -1), 0.4, colors.black),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("BACKGROUND", (0, 0), (-1, 1), colors.Color(0.92, 0.92, 0.92)),
        *styles,
    ]))
    permanent = sum(1 for f in files if f.get("Maintenance") == "01")
    story += [table, Spacer(1, 5 * mm), Paragraph(
        f"Bản Danh mục hồ sơ này có {len(files)} hồ sơ, bao gồm: {permanent} hồ sơ bảo quản "
        f"vĩnh viễn; {len(files) - permanent} hồ sơ bảo quản có thời hạn.", body),
        Spacer(1, 4 * mm)]
    story += [Paragraph(_esc(line), strong) for line in approval_lines(ap, changed)]
    doc.build(story, onFirstPage=on_page, onLaterPages=on_page)
    return buf.getvalue()
