"""Compose a văn bản đi laid out as Decree 30 Phụ lục I prescribes (A4, Times New Roman's
metrics in Liberation Serif, every font embedded), so that layout mistakes cannot happen.

Page: A4 portrait; margins top 20 mm, bottom 20 mm, left 30 mm, right 15 mm (Phụ lục I,
II.1). Header in two columns: on the left the agency above (tên cơ quan chủ quản, upright
capitals 13) and the issuing agency (bold capitals 13) with a short rule under it, then
"Số: …/ký hiệu" (13); on the right the quốc hiệu (bold capitals 13), the tiêu ngữ (bold 14)
with a rule as long as it, then địa danh and date (italic 14). Then the type's name (bold
capitals 14) and trích yếu (bold 14) with a short rule, centred; a công văn instead has its
trích yếu under its number (12) and "Kính gửi:" (14). The body is 14, justified, first lines
indented 1 cm. At the foot, on the left "Nơi nhận:" (bold italic 12) and its list (11); on
the right the signer's authority and position (bold capitals 14), box 7c for the signature
image, and the name (bold 14). Page numbers from page 2, centred at the top (13).

The number and date are not printed here: they are form fields (``pdfform``) filled when the
document is issued. ``compose`` returns the PDF and where those fields and box 7c are.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

from ..errors import ValidationError
from ..text import nfc, nfc_multiline
from .placement import Field, Placement, Rect, seal_rect, signer_rect

PT_PER_MM = 72 / 25.4
PAGE_W, PAGE_H = 595.2756, 841.8898  # A4
LEFT, RIGHT, TOP, BOTTOM = 30 * PT_PER_MM, 15 * PT_PER_MM, 20 * PT_PER_MM, 20 * PT_PER_MM
TEXT_W = PAGE_W - LEFT - RIGHT
LEFT_COL = (LEFT - 10, LEFT + 6.0 * 72 / 2.54)  # the agency's column: 6 cm
RIGHT_COL = (LEFT_COL[1], PAGE_W - RIGHT + 6)  # the quốc hiệu's column
FONT_DIR = "/usr/share/fonts/truetype/liberation2"
FONTS = {"TNR": "Regular", "TNR-B": "Bold", "TNR-I": "Italic", "TNR-BI": "BoldItalic"}
SIGN_GAP = 84.0  # room between the position and the name for box 7c

# The types the templates compose; the rest are uploaded as PDF or DOCX.
TEMPLATE_TYPES = ("Công văn", "Quyết định", "Thông báo", "Báo cáo", "Tờ trình", "Kế hoạch",
                  "Giấy mời")
# Types whose page starts with "Kính gửi:" (a công văn, a tờ trình).
ADDRESSED = ("Công văn", "Tờ trình")
TEXT_LIMITS = {"body": 20000, "greeting": 300, "parent_agency": 200, "agency": 200,
               "place": 60, "authority": 100, "position": 100, "name": 50, "subject": 500}


@dataclass(frozen=True)
class Template:
    """What the clerk types into a template; the rest comes from the draft's metadata."""

    type_name: str
    subject: str
    body: str
    agency: str
    notation: str
    place: str
    position: str
    name: str
    parent_agency: str = ""
    authority: str = ""  # TM. ỦY BAN NHÂN DÂN, KT. CHỦ TỊCH …
    greeting: str = ""  # Kính gửi: …
    recipients: tuple[str, ...] = field(default_factory=tuple)  # nơi nhận, "Lưu: VT" added

    def to_json(self) -> dict[str, Any]:
        return {"type_name": self.type_name, "subject": self.subject, "body": self.body,
                "agency": self.agency, "notation": self.notation, "place": self.place,
                "position": self.position, "name": self.name,
                "parent_agency": self.parent_agency, "authority": self.authority,
                "greeting": self.greeting, "recipients": list(self.recipients)}


def template_from(fields: dict[str, Any], meta: dict[str, Any], org_name: str) -> Template:
    """A template from the form's fields and the draft's metadata, checked."""
    type_name = nfc(str(meta.get("TypeName") or ""))
    if type_name not in TEMPLATE_TYPES:
        raise ValidationError(f"no template for {type_name}", "TypeName",
                              msgid="%(label)s: a template exists for %(value)s only.",
                              value=", ".join(TEMPLATE_TYPES))

    def text(name: str, multiline: bool = False) -> str:
        raw = str(fields.get(name) or "")
        value = nfc_multiline(raw) if multiline else nfc(raw)
        if len(value) > TEXT_LIMITS.get(name, 500):
            raise ValidationError(f"{name} is too long", f"template.{name}",
                                  msgid="%(label)s has %(n)d characters; at most %(max)d are "
                                  "allowed.", n=len(value), max=TEXT_LIMITS.get(name, 500))
        return value

    body = text("body", True)
    if not body:
        raise ValidationError("the body is empty", "template.body",
                              msgid="%(label)s is required.")
    name = nfc(str(meta.get("SignerFullName") or fields.get("name") or ""))
    position = nfc(str(meta.get("SignerPosition") or fields.get("position") or ""))
    if not name or not position:
        raise ValidationError("the signer is not named", "SignerFullName" if not name
                              else "SignerPosition", msgid="%(label)s is required.")
    recipients = tuple(r["OrganName"] for r in meta.get("To") or () if r.get("OrganName"))
    return Template(
        type_name=type_name, subject=nfc(str(meta.get("Subject") or "")), body=body,
        agency=text("agency") or org_name, notation=str(meta.get("CodeNotation") or ""),
        place=text("place") or place_of(org_name), position=position, name=name,
        parent_agency=text("parent_agency"), authority=text("authority"),
        greeting=text("greeting"), recipients=recipients,
    )


def place_of(org_name: str) -> str:
    """Địa danh from the agency's name: Ủy ban nhân dân xã Đông Hải → Đông Hải."""
    words = nfc(org_name).split()
    for i, w in enumerate(words):
        if w.lower() in ("xã", "phường", "thị", "đặc", "tỉnh", "thành"):
            rest = words[i + 1:]
            if rest and rest[0].lower() in ("trấn", "khu", "phố"):
                rest = rest[1:]
            return " ".join(rest) or org_name
    return org_name


def _fonts() -> None:
    from reportlab.lib.fonts import addMapping
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    if "TNR" in pdfmetrics.getRegisteredFontNames():
        return
    for name, style in FONTS.items():
        pdfmetrics.registerFont(TTFont(name, f"{FONT_DIR}/LiberationSerif-{style}.ttf"))
    addMapping("TNR", 0, 0, "TNR")
    addMapping("TNR", 1, 0, "TNR-B")
    addMapping("TNR", 0, 1, "TNR-I")
    addMapping("TNR", 1, 1, "TNR-BI")


def _style(size: float, bold: bool = False, italic: bool = False, align: int = 1,
           indent: float = 0.0, after: float = 0.0, leading: float = 1.2) -> Any:
    from reportlab.lib.styles import ParagraphStyle

    font = "TNR-BI" if bold and italic else "TNR-B" if bold else "TNR-I" if italic else "TNR"
    return ParagraphStyle(f"s{size}{bold}{italic}{align}", fontName=font, fontSize=size,
                          leading=size * leading, alignment=align, firstLineIndent=indent,
                          spaceAfter=after)


class _Page:
    """A canvas with a cursor going down the page, turning pages as the text needs."""

    def __init__(self, canvas: Any) -> None:
        self.c = canvas
        self.page = 0
        self.y = PAGE_H - TOP

    def para(self, text: str, style: Any, x: float, width: float, keep: float = 0.0) -> float:
        """Draw a paragraph at the cursor; returns its height."""
        from reportlab.platypus import Paragraph

        p = Paragraph(escape(text).replace("\n", "<br/>"), style)
        _, h = p.wrap(width, PAGE_H)
        if self.y - h - keep < BOTTOM:
            self.new_page()
        p.drawOn(self.c, x, self.y - h)
        self.y -= h + style.spaceAfter
        return float(h)

    def new_page(self) -> None:
        self.c.showPage()
        self.page += 1
        self.y = PAGE_H - TOP
        self.c.setFont("TNR", 13)
        self.c.drawCentredString(LEFT + TEXT_W / 2, PAGE_H - TOP + 6, str(self.page + 1))
        self.y -= 14

    def rule(self, cx: float, width: float, gap: float = 3.0) -> None:
        self.c.setLineWidth(0.6)
        self.c.line(cx - width / 2, self.y + gap, cx + width / 2, self.y + gap)


def _width(text: str, font: str, size: float) -> float:
    from reportlab.pdfbase.pdfmetrics import stringWidth

    return float(stringWidth(text, font, size))


def _header(pg: _Page, t: Template) -> dict[str, Field]:
    lx, rx = LEFT_COL, RIGHT_COL
    lcx, rcx, lw, rw = (lx[0] + lx[1]) / 2, (rx[0] + rx[1]) / 2, lx[1] - lx[0], rx[1] - rx[0]
    top = pg.y
    if t.parent_agency:
        pg.para(t.parent_agency.upper(), _style(13), lx[0], lw)
    pg.para(t.agency.upper(), _style(13, bold=True), lx[0], lw)
    pg.rule(lcx, min(lw / 2, 70), gap=-2)
    pg.y -= 4
    left_bottom = pg.y
    pg.y = top
    pg.para("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", _style(13, bold=True), rx[0], rw)
    pg.para("Độc lập - Tự do - Hạnh phúc", _style(14, bold=True), rx[0], rw)
    pg.rule(rcx, _width("Độc lập - Tự do - Hạnh phúc", "TNR-B", 14), gap=-2)
    pg.y -= 4
    line_y = min(pg.y, left_bottom) - 20
    number = Field(0, (lx[0], line_y - 4, lx[1], line_y + 14), 13, False,
                   f"Số:      /{t.notation}", "Số: {number}/" + t.notation)
    date = Field(0, (rx[0], line_y - 5, rx[1], line_y + 15), 14, True,
                 f"{t.place}, ngày      tháng      năm      ",
                 t.place + ", ngày {day} tháng {month} năm {year}")
    pg.y = line_y - 10
    if t.type_name == "Công văn":
        pg.para(f"V/v {t.subject}" if not t.subject.startswith("V/v") else t.subject,
                _style(12), lx[0], lw)
    pg.y -= 14
    if t.type_name != "Công văn":
        pg.para(t.type_name.upper(), _style(14, bold=True), LEFT, TEXT_W)
        pg.para(t.subject, _style(14, bold=True), LEFT + 40, TEXT_W - 80)
        pg.rule(LEFT + TEXT_W / 2, 90, gap=-7)
        pg.y -= 18
    if t.greeting or t.type_name in ADDRESSED:
        greet = t.greeting or ", ".join(t.recipients)
        pg.para(f"Kính gửi: {greet}", _style(14), LEFT + 40, TEXT_W - 80, keep=40)
        pg.y -= 6
    return {"number": number, "date": date}


def _body(pg: _Page, t: Template) -> None:
    style = _style(14, align=4, indent=1 * 72 / 2.54, after=6)
    heading = _style(14, bold=True, after=6)
    basis = _style(14, italic=True, align=4, indent=1 * 72 / 2.54, after=6)
    for para in (p.strip() for p in t.body.replace("\r\n", "\n").split("\n\n")):
        if not para:
            continue
        if para.upper() == para and len(para) <= 40 and any(ch.isalpha() for ch in para):
            pg.para(para, heading, LEFT, TEXT_W, keep=30)  # QUYẾT ĐỊNH:, a centred heading
        elif para.startswith(("Căn cứ", "Theo đề nghị", "Xét đề nghị")):
            pg.para(para, basis, LEFT, TEXT_W)  # căn cứ ban hành: italic (Phụ lục I)
        else:
            pg.para(para, style, LEFT, TEXT_W)


def _footer(pg: _Page, t: Template) -> tuple[int, Rect]:
    """Nơi nhận on the left, the signer's block on the right; returns box 7c."""
    recipients = [*t.recipients, "Lưu: VT"]
    title = [x for x in (t.authority.upper(), t.position.upper()) if x]
    need = 14 * 1.2 * len(title) + SIGN_GAP + 20
    need = max(need, 14 + 12 * len(recipients))
    pg.y -= 12
    if pg.y - need < BOTTOM:
        pg.new_page()
    top = pg.y
    lw = LEFT_COL[1] - LEFT_COL[0] + 20
    pg.para("Nơi nhận:", _style(12, bold=True, italic=True, align=0), LEFT, lw)
    for i, r in enumerate(recipients):
        end = "." if i == len(recipients) - 1 else ";"
        pg.para(f"- {r}{end}", _style(11, align=0, leading=1.15), LEFT, lw)
    pg.y = top
    rx = RIGHT_COL
    rw = rx[1] - rx[0]
    cx = (rx[0] + rx[1]) / 2
    for line in title:
        pg.para(line, _style(14, bold=True), rx[0], rw)
    box_top = pg.y
    pg.y -= SIGN_GAP
    pg.para(t.name, _style(14, bold=True), rx[0], rw)
    name_top = pg.y + 14 * 1.2
    return pg.page, signer_rect(cx, box_top, name_top)


def compose(t: Template) -> tuple[bytes, Placement]:
    """The PDF of a template and the placement of its number, date and signatures."""
    from reportlab.pdfgen import canvas

    _fonts()
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=(PAGE_W, PAGE_H), pageCompression=1)
    c.setTitle(f"{t.type_name} - {t.subject}"[:200])
    c.setAuthor(t.agency)
    pg = _Page(c)
    fields = _header(pg, t)
    _body(pg, t)
    page, signer = _footer(pg, t)
    c.showPage()
    c.save()
    return buf.getvalue(), Placement(fields, page, signer, seal_rect(signer))
