"""Decree 30 numbering: which series a document is numbered in, and the counters' rules.

Each series restarts at 01 on 1 January (Asia/Ho_Chi_Minh) and has no gaps or duplicates;
the counter is read and advanced inside the writer's transaction, so concurrent
registrations are serialised by the one writer (and by SQLite's lock across processes).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

from .classified import is_classified
from .codelists import CodeLists
from .errors import ValidationError
from .kinds import Kind

INCOMING = "den"  # số đến: one yearly series for paper and electronic (Điều 22.2)
OUTGOING = "di"  # administrative documents: one series per agency unless the head decides
CLASSIFIED = "mat"  # văn bản mật: a series of their own (Điều 15.2)
COPIES = "sao"  # bản sao y / trích sao / sao lục share one series (Phụ lục I, II.II.1.c)


def type_abbreviation(data: Mapping[str, Any], codes: CodeLists) -> tuple[str | None, bool]:
    """(abbreviation, is_copy) of the document's type; công văn has none."""
    abbrs = codes["docTypeAbbreviation"]
    code = data.get("TypeCode")
    for item in abbrs.items:
        # The copies have no TT 05 code (null): a document without one must not match them.
        if item.label == data.get("TypeName") or (
            code is not None and item.get("typeName") == code
        ):
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
            msgid="A công văn's %(label)s names the agency and the unit, e.g. UBND-VP: "
            "fill it in.",
        )
    return f"{abbr}-{agency_abbr}"


def next_number(conn: sqlite3.Connection, fond: str, series: str, year: int) -> int:
    """Take the next number of (fond, series, year); call only inside the writer's transaction."""
    key = (fond, series, year)
    row = conn.execute(
        "UPDATE number_counters SET last = last + 1 WHERE fond = ? AND series = ? AND year = ? "
        "RETURNING last",
        key,
    ).fetchone()
    if row is not None:
        return int(row[0])
    conn.execute(
        "INSERT INTO number_counters (fond, series, year, last) VALUES (?, ?, ?, 1)", key
    )
    return 1


def observe_number(conn: sqlite3.Connection, fond: str, series: str, year: int, n: int) -> None:
    """Advance the counter past a number kept from a legacy register."""
    conn.execute(
        "INSERT INTO number_counters (fond, series, year, last) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (fond, series, year) DO UPDATE SET last = max(last, excluded.last)",
        (fond, series, year, n),
    )


# A classified document never leaves the appliance, so the number it takes would be unknown to
# a box rebuilt from the centre's copy, which could then give that number again. Each number a
# withheld document holds (appliance.classified: mật itself, or filed in a mật hồ sơ) is
# therefore also logged on its own, without the document: the series, year and number only
# (the ordinary register shows that a number is taken anyway).
NUMBER_USED_KIND = Kind.NUMBERING_USED
NUMBERING_KINDS = frozenset({Kind.DOCUMENT_REGISTER, Kind.DOCUMENT_ISSUE, Kind.DOCUMENT_IMPORT})


def number_taken(data: Mapping[str, Any]) -> dict[str, Any] | None:
    """The data of a ``numbering.used`` entry for the number a document holds, or None when
    it holds none."""
    series, year = data.get("Series"), data.get("Year")
    if data.get("Direction") == "incoming":
        n = data.get("ArrivalNumber")
    else:
        try:
            n = int(str(data.get("CodeNumber")))
        except ValueError:
            n = None
    if not isinstance(n, int) or not series or not isinstance(year, int):
        return None
    return {"FondCode": data.get("FondCode"), "Series": series, "Year": year, "Number": n}
