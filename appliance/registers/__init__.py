"""The five registers of Decree 30 Phụ lục IV: Sổ đăng ký văn bản đến, Sổ đăng ký văn bản đi,
Sổ theo dõi giải quyết văn bản đến, Sổ gửi văn bản đi bưu điện, Sổ sử dụng bản lưu.

Each has exactly the columns of its paper register (regulations.md §2.3) and its cover, for a
numbering year or any period inside it (a month, a quarter). Columns the appliance has no data
for (Ký nhận, Ngày chuyển…) print empty, to be filled in by hand on the bound copy, as the
decree expects of a printed register. Classified documents are registered under the
state-secrets law (Điều 16.3, 22.4): they are not in these registers; cleared roles can print
the separate registers of the "mật" documents.

``layout`` holds the columns and the cover, ``rows`` where the rows come from, ``render`` the
PDF and the XLSX.
"""

from __future__ import annotations

from .layout import (
    KINDS,
    LAYOUTS,
    Layout,
    Period,
    Register,
    display,
    quarter,
    typed,
    typed_json,
)
from .render import render_pdf, render_xlsx
from .rows import Row, page_starts, register_info, register_years, rows

DIRECTIONS = ("incoming", "outgoing")

__all__ = [
    "DIRECTIONS", "KINDS", "LAYOUTS", "Layout", "Period", "Register", "Row", "display",
    "page_starts", "quarter", "register_info", "register_years", "render_pdf", "render_xlsx",
    "rows", "typed", "typed_json",
]
