"""Spreadsheet and CSV cells: formula-like text is neutralised (appliance/cells.py)."""

from __future__ import annotations

import datetime as dt

import pytest

from appliance.cells import safe_cell, safe_row


@pytest.mark.parametrize(
    "text",
    ["=1+1", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\t=1", "\r=1", "＝1+1",
     '=HYPERLINK("http://x","bấm")', "-", "+84 912 345 678"],
)
def test_text_that_a_spreadsheet_would_evaluate_gets_an_apostrophe(text: str) -> None:
    assert safe_cell(text) == "'" + text


@pytest.mark.parametrize(
    "value",
    ["Ủy ban nhân dân xã", "", "15/09/2025", "1245/UBND-NC", "'=already", " =1", "42",
     "-5", "+3.5", "-0,25", "1e5", 7, -7, 2.5, None, dt.date(2025, 9, 15)],
)
def test_other_values_are_kept_as_they_are(value: object) -> None:
    """Plain text, numbers (real or written as digits) and dates stay values."""
    assert safe_cell(value) == value and type(safe_cell(value)) is type(value)


def test_a_row_is_neutralised_cell_by_cell() -> None:
    assert safe_row(["=1", 3, "a"]) == ["'=1", 3, "a"]
