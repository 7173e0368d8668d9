"""Cells of every spreadsheet and CSV file luutru writes: text never becomes a live formula.

Register data comes from clerks, imports and (at the centre) from every commune's box, so a
value such as ``=HYPERLINK(…)`` or ``+cmd|' /C calc'!A0`` would run when a spreadsheet opens
the file. As OWASP recommends for CSV injection, text that begins with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return (or the full-width ＝ ＋ － ＠ that some spreadsheets also
take) gets a leading apostrophe, which spreadsheets read as "this is text". Numbers and
dates stay real values, and so does text that is only a number ("-5", "+3,5"): a spreadsheet
reads it as that number, never as a formula.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][+-]?\d+)?")


def safe_cell(value: Any) -> Any:
    """The value to write into a cell: formula-like text with an apostrophe, all else as is."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(
        value
    ):
        return "'" + value
    return value


def safe_row(values: Iterable[Any]) -> list[Any]:
    """``safe_cell`` of each value of a row."""
    return [safe_cell(v) for v in values]
