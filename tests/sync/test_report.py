"""The centre's report as CSV: values from appliances never become formulas in a spreadsheet."""

from __future__ import annotations

import csv
import io

from sync.central.report import ApplianceRow, Report, Totals, to_csv

EVIL = {
    "org_id": "=1+1",
    "org_name": "=HYPERLINK(\"http://attacker.invalid/\",\"Xã Đông Hải\")",
    "backing": "+cmd|' /C calc'!A0",
    "status": "@SUM(1+1)",
    "enrolled_at": "-2+3",
    "last_contact": "\t=1",
    "claimed_at": "\r=1",
    "anomaly_kinds": "=cmd",
}


def _report() -> Report:
    row = ApplianceRow(
        appliance_id="ab" * 16, accepted_size=5, claimed_size=7, lag=2, entries=5, withheld=1,
        documents=3, content_expected=2, content_missing=1, anomalies=0, open_alerts=0,
        **EVIL,
    )
    totals = Totals(1, 0, 5, 1, 3, 2, 1, 2, 0, 0, 0)
    return Report("2025-09-15T10:00:00+07:00", "=centre", [row], totals)


def test_no_csv_cell_starts_a_formula_and_numbers_stay_numbers() -> None:
    rows = list(csv.reader(io.StringIO(to_csv(_report()).lstrip("\ufeff"))))
    cells = [c for r in rows for c in r]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    data = dict(zip(rows[0], rows[1], strict=True))
    assert data["Tên cơ quan"] == "'" + EVIL["org_name"]
    assert data["Khóa thiết bị"] == "'" + EVIL["backing"]
    assert data["Còn thiếu (mục)"] == "2" and data["Số mục đã nhận"] == "5"
    assert rows[2][0] == "TỔNG" and rows[2][2] == "1 thiết bị"
