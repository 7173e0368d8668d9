"""The five registers of Decree 30 Phụ lục IV as layouts: title, columns, which columns hold
dates and numbers; the period a register covers; its cover data.

Columns are exactly those of the paper registers (regulations.md §2.3). A row's cells are text,
except that a date column holds its ISO date (``YYYY-MM-DD``, or "" when empty) and a number
column its digits: the screen and the PDF show dd/mm/yyyy (``display``), the XLSX writes real
dates and numbers (``typed``).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .. import clock as clockmod
from ..errors import ValidationError


@dataclass(frozen=True)
class Layout:
    kind: str
    title: str
    columns: tuple[str, ...]
    dates: frozenset[int]  # columns holding an ISO date
    numbers: frozenset[int]  # columns holding a whole number
    link: int  # the column that links to the document on screen
    numbered: bool  # the cover gives "Từ số … đến số …"
    pdf_mm: tuple[int, ...]  # column widths on A4 landscape (273 mm between the margins)
    xlsx_chars: tuple[int, ...]


LAYOUTS: dict[str, Layout] = {
    "incoming": Layout(
        "incoming", "SỔ ĐĂNG KÝ VĂN BẢN ĐẾN",
        ("Ngày đến", "Số đến", "Tác giả", "Số, ký hiệu văn bản", "Ngày tháng văn bản",
         "Tên loại và trích yếu nội dung văn bản", "Đơn vị hoặc người nhận", "Ngày chuyển",
         "Ký nhận", "Ghi chú"),
        frozenset({0, 4, 7}), frozenset({1}), 5, True,
        (21, 14, 32, 28, 21, 60, 32, 20, 19, 26), (12, 9, 28, 18, 12, 60, 28, 12, 12, 26)),
    "outgoing": Layout(
        "outgoing", "SỔ ĐĂNG KÝ VĂN BẢN ĐI",
        ("Số, ký hiệu văn bản", "Ngày tháng văn bản", "Tên loại và trích yếu nội dung văn bản",
         "Người ký", "Nơi nhận văn bản", "Đơn vị, người nhận bản lưu", "Số lượng bản",
         "Ngày chuyển", "Ký nhận", "Ghi chú"),
        frozenset({1, 7}), frozenset({6}), 2, True,
        (26, 21, 60, 32, 34, 26, 14, 20, 17, 23), (18, 12, 60, 26, 30, 20, 10, 12, 12, 26)),
    "handling": Layout(
        "handling", "SỔ THEO DÕI GIẢI QUYẾT VĂN BẢN ĐẾN",
        ("Số đến",
         "Tên loại, số, ký hiệu, ngày, tháng và tên cơ quan, tổ chức ban hành văn bản",
         "Đơn vị hoặc người nhận", "Thời hạn giải quyết", "Tiến độ giải quyết",
         "Số, ký hiệu văn bản trả lời", "Ghi chú"),
        frozenset({3}), frozenset({0}), 1, True,
        (16, 80, 40, 24, 55, 34, 24), (9, 60, 28, 14, 40, 24, 20)),
    "post": Layout(
        "post", "SỔ GỬI VĂN BẢN ĐI BƯU ĐIỆN",
        ("Ngày chuyển", "Số, ký hiệu văn bản", "Nơi nhận văn bản", "Số lượng bì",
         "Ký nhận và dấu bưu điện", "Ghi chú"),
        frozenset({0}), frozenset({3}), 1, False,
        (24, 40, 100, 20, 49, 40), (12, 18, 60, 10, 24, 24)),
    "copies": Layout(
        "copies", "SỔ SỬ DỤNG BẢN LƯU",
        ("Ngày tháng", "Họ tên người sử dụng", "Số, ký hiệu ngày tháng văn bản",
         "Tên loại và trích yếu nội dung văn bản", "Số và ký hiệu HS", "Ký nhận", "Ngày trả",
         "Người cho phép sử dụng", "Ghi chú"),
        frozenset({0, 6}), frozenset(), 3, False,
        (22, 36, 36, 66, 20, 20, 20, 29, 24), (12, 24, 24, 60, 12, 12, 12, 24, 20)),
}
KINDS = tuple(LAYOUTS)


@dataclass(frozen=True)
class Period:
    """The days a register shows: a whole numbering year, or a range inside it (a month, a
    quarter, any from–to)."""

    year: int
    start: dt.date
    end: dt.date
    whole_year: bool

    @classmethod
    def of(cls, year: int, start: str | dt.date | None = None,
           end: str | dt.date | None = None) -> Period:
        """The year, narrowed to ``start``–``end`` (YYYY-MM-DD or dd/mm/yyyy) when given;
        both must fall in ``year`` and ``start`` must not be after ``end``."""
        first, last = dt.date(year, 1, 1), dt.date(year, 12, 31)
        if not start and not end:
            return cls(year, first, last, True)
        a = clockmod.parse_date(start, "from") if start else first
        b = clockmod.parse_date(end, "to") if end else last
        for name, d in (("from", a), ("to", b)):
            if d.year != year:
                raise ValidationError(
                    f"ngày {clockmod.vn_date(d)} không thuộc năm {year} của sổ "
                    f"({name} {d.isoformat()} is not in {year})", name)
        if a > b:
            raise ValidationError(
                f"từ ngày {clockmod.vn_date(a)} sau đến ngày {clockmod.vn_date(b)} "
                "(from is after to)", "from")
        return cls(year, a, b, a == first and b == last)

    def query(self) -> str:
        """The query string that asks for this period again ("" for the whole year)."""
        if self.whole_year:
            return ""
        return f"from={self.start.isoformat()}&to={self.end.isoformat()}"

    def to_json(self) -> dict[str, Any]:
        return {"from": self.start.isoformat(), "to": self.end.isoformat(),
                "whole_year": self.whole_year}


def quarter(year: int, q: int) -> Period:
    """Quý ``q`` (1–4) of ``year``."""
    start = dt.date(year, 3 * q - 2, 1)
    end = (dt.date(year + 1, 1, 1) if q == 4 else dt.date(year, 3 * q + 1, 1)) - dt.timedelta(1)
    return Period.of(year, start, end)


@dataclass(frozen=True)
class Register:
    """A register's cover data (Phụ lục IV: cơ quan, tên sổ, năm, từ ngày … đến ngày …, từ
    số … đến số …, quyển số) and how many rows it holds."""

    kind: str
    period: Period
    org_name: str
    classified: bool
    total: int
    first_date: str | None
    last_date: str | None
    first_number: str | None
    last_number: str | None
    volume: int = 1

    @property
    def layout(self) -> Layout:
        return LAYOUTS[self.kind]

    @property
    def year(self) -> int:
        return self.period.year

    @property
    def direction(self) -> str:  # the name the incoming/outgoing registers had
        return self.kind

    @property
    def title(self) -> str:
        return self.layout.title + (" MẬT" if self.classified else "")

    @property
    def columns(self) -> tuple[str, ...]:
        return self.layout.columns

    @property
    def from_date(self) -> str | None:
        """Từ ngày: the period's first day when a range was asked for, else the first row's."""
        return self.first_date if self.period.whole_year else self.period.start.isoformat()

    @property
    def to_date(self) -> str | None:
        return self.last_date if self.period.whole_year else self.period.end.isoformat()

    def cover_lines(self) -> list[tuple[str, str]]:
        lines = [
            ("Cơ quan", self.org_name.upper()),
            ("Sổ", self.title),
            ("Năm", str(self.year)),
            ("Từ ngày", clockmod.vn_date(self.from_date) if self.from_date else "…"),
            ("đến ngày", clockmod.vn_date(self.to_date) if self.to_date else "…"),
        ]
        if self.layout.numbered:
            lines += [("Từ số", self.first_number or "…"), ("đến số", self.last_number or "…")]
        return [*lines, ("Quyển số", f"{self.volume:02d}")]

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "direction": self.kind,
            "year": self.year,
            "period": self.period.to_json(),
            "title": self.title,
            "org_name": self.org_name,
            "total": self.total,
            "from_date": self.from_date,
            "to_date": self.to_date,
            "from_number": self.first_number,
            "to_number": self.last_number,
            "volume": self.volume,
            "columns": list(self.columns),
        }


@functools.lru_cache(maxsize=4096)
def vn(value: str) -> str:
    """dd/mm/yyyy of an ISO date; a bad legacy value prints as it is."""
    if not value:
        return ""
    try:
        return clockmod.vn_date(value)
    except Exception:  # a register prints even around a bad legacy value
        return value


def display(kind: str, cells: Sequence[str]) -> list[str]:
    """The cells as the paper register writes them (dates dd/mm/yyyy)."""
    dates = LAYOUTS[kind].dates
    return [vn(c) if i in dates else c for i, c in enumerate(cells)]


def typed(kind: str, cells: Sequence[str]) -> list[Any]:
    """The cells as spreadsheet values: real dates and whole numbers where the column holds
    them, text elsewhere (and where a legacy value is not a date or a number)."""
    lay = LAYOUTS[kind]
    out: list[Any] = []
    for i, c in enumerate(cells):
        value: Any = c
        if c and i in lay.dates:
            try:
                value = dt.date.fromisoformat(c)
            except ValueError:
                value = c
        elif c and i in lay.numbers and c.isdigit():
            value = int(c)
        out.append(value if value != "" else None)
    return out


def typed_json(kind: str, cells: Sequence[str]) -> list[Any]:
    """The cells as JSON values: ISO dates, whole numbers, text; null when empty."""
    return [v.isoformat() if isinstance(v, dt.date) else v for v in typed(kind, cells)]
