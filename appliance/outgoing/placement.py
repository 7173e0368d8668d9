"""Where Phụ lục I puts the number, the date and the two signatures on a draft's pages.

A draft composed from a template knows its positions exactly (``layout``). An uploaded PDF
(or a converted DOCX) is read with poppler's ``pdftotext -bbox``: the number goes in the gap
after "Số:" on page 1, the date's day, month and year in the gaps of "ngày … tháng … năm …",
and the signer's image in the space above the signer's name on the last page where it
appears (box 7c). What cannot be found is refused with the reason, before anyone approves.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from ..errors import ValidationError
from ..text import nfc

Rect = tuple[float, float, float, float]  # x1, y1, x2, y2 in PDF points, origin bottom left

SEAL_MM = 36.0  # a commune's round seal: 35–36 mm across (its true size on the page)
PT_PER_MM = 72 / 25.4
SIGNER_BOX = (150.0, 72.0)  # width, height of box 7c in points


@dataclass(frozen=True)
class Field:
    """A form field to fill at issue: its page, rectangle, font and what it shows."""

    page: int
    rect: Rect
    size: float
    italic: bool
    placeholder: str
    text: str  # a format with {number}, {day}, {month}, {year}

    def to_json(self) -> dict[str, Any]:
        return {"page": self.page, "rect": list(self.rect), "size": self.size,
                "italic": self.italic, "placeholder": self.placeholder, "text": self.text}

    @classmethod
    def from_json(cls, v: dict[str, Any]) -> Field:
        r = [float(x) for x in v["rect"]]
        return cls(int(v["page"]), (r[0], r[1], r[2], r[3]), float(v["size"]),
                   bool(v["italic"]), str(v["placeholder"]), str(v["text"]))


@dataclass(frozen=True)
class Placement:
    """The fields of a draft: number and date (filled at issue) and the signature boxes."""

    fields: dict[str, Field]  # name -> field
    signer_page: int
    signer: Rect  # box 7c
    seal: Rect  # the agency's seal: true size, over the left third of the signer's image

    def to_json(self) -> dict[str, Any]:
        return {"fields": {k: f.to_json() for k, f in self.fields.items()},
                "signer_page": self.signer_page, "signer": list(self.signer),
                "seal": list(self.seal)}

    @classmethod
    def from_json(cls, v: dict[str, Any]) -> Placement:
        def rect(x: Any) -> Rect:
            r = [float(a) for a in x]
            return (r[0], r[1], r[2], r[3])

        return cls({k: Field.from_json(f) for k, f in v["fields"].items()},
                   int(v["signer_page"]), rect(v["signer"]), rect(v["seal"]))


def seal_rect(signer: Rect, seal_mm: float = SEAL_MM) -> Rect:
    """The seal at its true size, its right edge a third of the way into the signer's image
    from the left, centred on it vertically (Phụ lục I, box 8; Điều 33 on paper)."""
    d = seal_mm * PT_PER_MM
    x1, y1, x2, y2 = signer
    right = x1 + (x2 - x1) / 3
    cy = (y1 + y2) / 2
    return (right - d, cy - d / 2, right, cy + d / 2)


def signer_rect(cx: float, top: float, bottom: float) -> Rect:
    """Box 7c centred at ``cx`` between the position line (``top``) and the name (``bottom``)."""
    w, h = SIGNER_BOX
    h = min(h, top - bottom)
    cy = (top + bottom) / 2
    return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


def vn_date_parts(day: int, month: int, year: int) -> dict[str, str]:
    """Phụ lục I: days below 10 and the months 1 and 2 take a leading 0 (ngày 05 tháng 02)."""
    return {"day": f"{day:02d}", "month": f"{month:02d}" if month < 3 else str(month),
            "year": str(year)}


# -- reading an uploaded PDF's words --------------------------------------------------------

@dataclass(frozen=True)
class Word:
    page: int
    text: str
    x1: float
    y1: float  # from the page's top (pdftotext's convention)
    x2: float
    y2: float


def words(pdf: bytes, timeout: float = 30.0) -> tuple[list[Word], list[tuple[float, float]]]:
    """Every word with its box, and each page's (width, height), from ``pdftotext -bbox``."""
    with tempfile.TemporaryDirectory(prefix="luutru-bbox-") as tmp:
        src = Path(tmp) / "in.pdf"
        src.write_bytes(pdf)
        try:
            out = subprocess.run(["pdftotext", "-bbox", str(src), "-"], capture_output=True,
                                 timeout=timeout, check=True).stdout
        except (OSError, subprocess.SubprocessError) as exc:
            raise ValidationError(f"the PDF's text cannot be read: {exc}", "file",
                                  msgid="The file's text cannot be read (is it a scan?).") from exc
    root = ElementTree.fromstring(re.sub(rb"<!DOCTYPE[^>]*>", b"", out))
    found: list[Word] = []
    sizes: list[tuple[float, float]] = []
    for n, page in enumerate(root.iter("{http://www.w3.org/1999/xhtml}page")):
        sizes.append((float(page.get("width", 595)), float(page.get("height", 842))))
        for w in page.iter("{http://www.w3.org/1999/xhtml}word"):
            found.append(Word(n, nfc(w.text or ""), float(w.get("xMin", 0)),
                              float(w.get("yMin", 0)), float(w.get("xMax", 0)),
                              float(w.get("yMax", 0))))
    return found, sizes


# Points added above and below a typed word's box for the field written over it: pyHanko's
# text box needs its line height (1.2 × the size) or it draws the figures high and clipped.
PAD = 6.0
# And beside it: the gap a typist leaves ('ngày   tháng') is often narrower than pyHanko's
# box for two figures; the field has no background, so reaching over the spaces is harmless.
PAD_X = 10.0


def _same_line(a: Word, b: Word) -> bool:
    return a.page == b.page and abs((a.y1 + a.y2) / 2 - (b.y1 + b.y2) / 2) < 4


def _missing(what: str, vi: str) -> ValidationError:
    return ValidationError(f"{what} not found on the page", "file", msgid=vi)


def locate(pdf: bytes, signer_name: str | None) -> Placement:
    """The placement on an uploaded PDF, or a ValidationError naming what is missing."""
    ws, sizes = words(pdf)
    if not sizes:
        raise _missing("pages", "The file has no page.")
    height = sizes[0][1]

    def box(page: int, x1: float, top: float, x2: float, bottom: float) -> Rect:
        h = sizes[page][1]
        return (x1, h - bottom, x2, h - top)

    first = [w for w in ws if w.page == 0]
    so = next((w for w in first if w.text.lower().rstrip(":") == "số"), None)
    if so is None:
        raise _missing("Số:", "The first page has no 'Số:' for the number: type 'Số:   /' "
                       "followed by the notation (e.g. Số:   /QĐ-UBND), or compose it from a "
                       "template.")
    after = [w for w in first if _same_line(w, so) and w.x1 > so.x2]
    slash = min(after, key=lambda w: w.x1, default=None)
    end = slash.x1 if slash is not None else so.x2 + 36
    fields = {"number": Field(0, box(0, so.x2 + 1 - PAD_X, so.y1 - PAD,
                                     max(end - 1, so.x2 + 14) + PAD_X, so.y2 + PAD), 13, False,
                              "", "{number}")}
    ngay = next((w for w in first if w.text.lower() == "ngày" and w.y1 < height / 2), None)
    if ngay is None:
        raise _missing("date", "The first page has no date line ('…, ngày   tháng   năm').")
    line = sorted((w for w in first if _same_line(w, ngay) and w.x1 > ngay.x1),
                  key=lambda w: w.x1)
    thang = next((w for w in line if w.text.lower() == "tháng"), None)
    nam = next((w for w in line if w.text.lower() == "năm"), None)
    if thang is None or nam is None:
        raise _missing("date", "The date line needs 'ngày', 'tháng' and 'năm'.")
    top, bottom = ngay.y1 - PAD, ngay.y2 + PAD
    fields["day"] = Field(0, box(0, ngay.x2 + 1 - PAD_X, top, thang.x1 - 1 + PAD_X, bottom),
                          14, True, "", "{day}")
    fields["month"] = Field(0, box(0, thang.x2 + 1 - PAD_X, top, nam.x1 - 1 + PAD_X, bottom),
                            14, True, "", "{month}")
    year_typed = any(w.x1 > nam.x2 and re.fullmatch(r"\d{4}", w.text) for w in line)
    if not year_typed:
        fields["year"] = Field(0, box(0, nam.x2 + 1, top, nam.x2 + 40, bottom), 14, True, "",
                               "{year}")
    return Placement(fields, *_signer_box(ws, sizes, signer_name))


def _signer_box(ws: list[Word], sizes: list[tuple[float, float]],
                signer_name: str | None) -> tuple[int, Rect, Rect]:
    """Box 7c: above the signer's name on the last page it appears on, below the line above."""
    name = nfc(signer_name or "").split()
    if not name:
        raise _missing("signer", "Give the signer's name: the signature goes above it.")
    for i in range(len(ws) - len(name), -1, -1):
        run = ws[i:i + len(name)]
        if [w.text for w in run] != name or not all(_same_line(run[0], w) for w in run):
            continue
        page = run[0].page
        h = sizes[page][1]
        x1, x2 = run[0].x1, run[-1].x2
        above = [w for w in ws if w.page == page and w.y2 < run[0].y1 - 2
                 and w.x2 > x1 - 40 and w.x1 < x2 + 40]
        top_y = max((w.y2 for w in above), default=run[0].y1 - 90)
        top_y = max(top_y, run[0].y1 - 110)
        signer = signer_rect((x1 + x2) / 2, h - top_y - 2, h - run[0].y1 + 2)
        return page, signer, seal_rect(signer)
    raise _missing("signer", "The signer's name is not on the page: the signature goes "
                   "above it.")
