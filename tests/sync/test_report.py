"""The province's report (sync/central/report.py): one row per appliance with its lag,
backlog and anomalies, totals that add up, and a CSV whose totals sit under their headers and
whose cells never become spreadsheet formulas."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

from sync import wire
from sync.central.centre import Centre
from sync.central.report import (
    CSV_HEADER,
    ApplianceRow,
    Report,
    Totals,
    build_report,
    to_csv,
)
from sync.central.storage import ApplianceStatus
from tests.sync.conftest import Appliance, response

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


def _evil_report() -> Report:
    row = ApplianceRow(
        appliance_id="ab" * 16, accepted_size=5, claimed_size=7, lag=2, entries=5, withheld=1,
        documents=3, content_expected=2, content_missing=1, anomalies=0, open_alerts=0,
        **EVIL,
    )
    totals = Totals(1, 0, 5, 1, 3, 2, 1, 2, 0, 0, 0)
    return Report("2025-09-15T10:00:00+07:00", "=centre", [row], totals)


def test_no_csv_cell_starts_a_formula_and_numbers_stay_numbers() -> None:
    """Values from appliances are quoted so that no cell starts a formula; numbers stay."""
    rows = list(csv.reader(io.StringIO(to_csv(_evil_report()).lstrip("\ufeff"))))
    cells = [c for r in rows for c in r]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    data = dict(zip(rows[0], rows[1], strict=True))
    assert data["Tên cơ quan"] == "'" + EVIL["org_name"]
    assert data["Khóa thiết bị"] == "'" + EVIL["backing"]
    assert data["Còn thiếu (mục)"] == "2" and data["Số mục đã nhận"] == "5"
    assert rows[2][0] == "TỔNG" and rows[2][2] == "1 thiết bị"


def _scan(app: Appliance, doc: str, body: bytes) -> None:
    c = app.store.content.put_bytes(body)
    app.store.attach_content(doc, [{"sha256": c.sha256, "size": c.size, "name": "s.pdf"}])
    assert app.store.wait_sealed()


def _report(centre: Centre) -> Report:
    with centre.storage.view() as v:
        return build_report(v, "2025-09-15T10:00:00+07:00", centre.origin)


def test_rows_and_totals_describe_each_appliance(
    make_appliance: Callable[..., Appliance], centre: Centre
) -> None:
    """A synced box with a missing scan and a classified record, a box that claims more than
    it sent, an unknown key, and a quarantine: each number is where it belongs."""
    a = make_appliance("a")
    docs = a.add(2)
    a.add(1, Mode="03")
    _scan(a, docs[0], b"scan a")
    size_a = a.store.tree_head()[0]
    assert response(centre, a.send(0)).accepted_size == size_a
    b = make_appliance("b")
    b.add(3)
    first = response(centre, b.send(0, max_entries=4)).accepted_size
    status = wire.sign_request(b.store.key, wire.RequestType.STATUS, 99, b.now(),  # type: ignore[arg-type]
                               {"head": b.store.latest_checkpoint()[3]})  # type: ignore[index]
    b.intake.handle(status)
    stranger = make_appliance("stranger", enrolled=False)
    stranger.add(1)
    stranger.send(0)  # refused: unknown key
    with centre.storage.transaction() as tx:
        tx.set_status(b.id, ApplianceStatus.QUARANTINED)

    rep = _report(centre)
    rows = {r.appliance_id: r for r in rep.rows}
    assert set(rows) == {a.id, b.id}
    ra, rb = rows[a.id], rows[b.id]
    assert (ra.accepted_size, ra.entries, ra.lag, ra.withheld) == (size_a, size_a, 0, 1)
    assert (ra.content_expected, ra.content_missing, ra.status) == (1, 1, "active")
    assert ra.key_id == a.id and ra.handovers == 0 and ra.org_name == a.store.config.org_name
    size_b = b.store.tree_head()[0]
    assert (rb.accepted_size, rb.claimed_size, rb.lag) == (first, size_b, size_b - first)
    assert rb.status == "quarantined"
    t = rep.totals
    assert (t.appliances, t.quarantined, t.entries, t.withheld) == (2, 1, size_a + first, 1)
    assert (t.content_expected, t.content_missing, t.lagging_entries) == (1, 1, size_b - first)
    assert t.unknown_key_refusals == 1 and t.anomalies >= 1
    j = rep.to_json()
    assert j["totals"]["appliances"] == 2 and len(j["appliances"]) == 2
    assert all(isinstance(x["kind"], str) for x in j["anomalies"])


def test_the_csv_has_vietnamese_headers_a_row_each_and_aligned_totals(
    make_appliance: Callable[..., Appliance], centre: Centre
) -> None:
    """UTF-8 with BOM; header row; one row per appliance; the totals row's numbers are in the
    columns their headers name."""
    app = make_appliance()
    app.add(2)
    response(centre, app.send(0))
    text = to_csv(_report(centre))
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text[1:])))
    header, row, totals = rows
    assert header == list(CSV_HEADER.values()) and header[2] == "Tên cơ quan"
    line = dict(zip(CSV_HEADER, row, strict=True))
    assert line["appliance_id"] == app.id and line["entries"] == str(app.store.tree_head()[0])
    total = dict(zip(CSV_HEADER, totals, strict=False))
    assert total["appliance_id"] == "TỔNG" and total["org_name"] == "1 thiết bị"
    assert total["entries"] == line["entries"] and total["lag"] == "0"
    assert total["status"] == "0 cách ly"
