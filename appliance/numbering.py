"""Decree 30 numbering: which series a document is numbered in, and the counters' rules.

Each series restarts at 01 on 1 January (Asia/Ho_Chi_Minh) and has no gaps or duplicates;
the counter is read and advanced inside the writer's transaction, so concurrent
registrations are serialised by the one writer (and by SQLite's lock across processes).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

from .codelists import CodeLists
from .errors import ValidationError
from .records import is_classified

INCOMING = "den"  # số đến: one yearly series for paper and electronic (Điều 22.2)
OUTGOING = "di"  # administrative documents: one series per agency unless the head decides
CLASSIFIED = "mat"  # văn bản mật: a series of their own (Điều 15.2)
COPIES = "sao"  # bản sao y / trích sao / sao lục share one series (Phụ lục I, II.II.1.c)


def type_abbreviation(data: Mapping[str, Any], codes: CodeLists) -> tuple[str | None, bool]:
    """(abbreviation, is_copy) of the document's type; công văn has none."""
    abbrs = codes["docTypeAbbreviation"]
    for item in abbrs.items:
        if item.label == data.get("TypeName") or item.get("typeName") == data.get("TypeCode"):
            return item.code, bool(item.get("copy", False))
    return None, False


def series_for(
    direction: str, data: Mapping[str, Any], codes: CodeLists, own_series_types: tuple[str, ...]
) -> str:
    if direction == "incoming":
        return INCOMING
    if is_classified(data):
        return CLASSIFIED
    _, is_copy = type_abbreviation(data, codes)
    if is_copy:
        return COPIES
    code = data.get("TypeCode")
    if code in own_series_types:
        return f"loai-{code}"
    return OUTGOING


def default_notation(data: Mapping[str, Any], codes: CodeLists, agency_abbr: str) -> str:
    """QĐ-UBND for typed documents; a công văn needs the unit: UBND-VP."""
    abbr, _ = type_abbreviation(data, codes)
    if abbr is None:
        raise ValidationError(
            "a công văn's ký hiệu names the agency and the unit (e.g. UBND-VP): give CodeNotation",
            "CodeNotation",
        )
    return f"{abbr}-{agency_abbr}"


def next_number(conn: sqlite3.Connection, fond: str, series: str, year: int) -> int:
    """Take the next number of (fond, series, year); call only inside the writer's transaction."""
    row = conn.execute(
        "SELECT last FROM number_counters WHERE fond = ? AND series = ? AND year = ?",
        (fond, series, year),
    ).fetchone()
    n = 1 if row is None else int(row[0]) + 1
    conn.execute(
        "INSERT INTO number_counters (fond, series, year, last) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (fond, series, year) DO UPDATE SET last = excluded.last",
        (fond, series, year, n),
    )
    return n


def observe_number(conn: sqlite3.Connection, fond: str, series: str, year: int, n: int) -> None:
    """Advance the counter past a number kept from a legacy register."""
    conn.execute(
        "INSERT INTO number_counters (fond, series, year, last) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (fond, series, year) DO UPDATE SET last = max(last, excluded.last)",
        (fond, series, year, n),
    )
