"""Import of legacy registers: JSON Lines, CSV and XLSX with the Phụ lục IV headers."""

from __future__ import annotations

import csv
import json
from importlib import resources
from pathlib import Path

import openpyxl
import pytest

from appliance.importer import import_file
from appliance.store import Store

from .conftest import ORG_ID

SAMPLE = Path(str(resources.files("appliance").joinpath("data/sample")))
DEN_HEADERS = [
    "Ngày đến",
    "Số đến",
    "Tác giả",
    "Số, ký hiệu văn bản",
    "Ngày tháng văn bản",
    "Tên loại và trích yếu nội dung văn bản",
    "Đơn vị hoặc người nhận",
    "Ngày chuyển",
    "Ký nhận",
    "Ghi chú",
]


def test_bundled_sample_imports_cleanly(store: Store) -> None:
    """The bundled sample registers import with no refused row."""
    for name, fond in (
        ("registers.jsonl", None),
        ("so-den-2024.csv", "000.21.07.H49"),
        ("so-di-2024.csv", "000.21.07.H49"),
    ):
        rep = import_file(store, SAMPLE / name, fond=fond)
        assert rep.ok, [(f.line, f.message) for f in rep.failed]
        assert rep.imported > 10
    closed = store.find_one("fonds", FondCode="000.21.07.H49")
    assert closed is not None and closed.data["Status"] == "closed"


def test_bad_rows_reported_good_rows_kept(store: Store, tmp_path: Path) -> None:
    """Each bad row is reported with its line and reason; the good ones are committed."""
    p = tmp_path / "mixed.jsonl"
    rows = [
        {
            "kind": "incoming",
            "TypeName": "Công văn",
            "CodeNumber": "12",
            "CodeNotation": "SNV-VP",
            "IssuedDate": "2025-01-02",
            "OrganName": "Sở Nội vụ",
            "Subject": "V/v một",
            "ArrivalDate": "2025-01-03",
            "ArrivalNumber": 1,
        },
        {"kind": "incoming", "TypeName": "Công văn", "Subject": "no numbers"},
        "not json",
        {
            "kind": "outgoing",
            "TypeName": "Quyết định",
            "CodeNumber": "01",
            "IssuedDate": "31/02/2025",
            "Subject": "bad date",
        },
        {"kind": "memo", "Subject": "x"},
        {
            "kind": "incoming",
            "TypeName": "Công văn",
            "CodeNumber": "13",
            "CodeNotation": "SNV-VP",
            "IssuedDate": "2025-01-02",
            "OrganName": "Sở Nội vụ",
            "Subject": "V/v hai",
            "ArrivalDate": "2025-01-03",
            "ArrivalNumber": 1,
        },
        {
            "kind": "incoming",
            "TypeName": "Công văn",
            "CodeNumber": "14",
            "CodeNotation": "SNV-VP",
            "IssuedDate": "2025-01-02",
            "OrganName": "Sở Nội vụ",
            "Subject": "V/v ba",
            "ArrivalDate": "2025-01-04",
            "ArrivalNumber": 2,
            "Language": "Tiếng Việt",
        },
    ]
    p.write_text(
        "\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows)
        + "\n",
        "utf-8",
    )
    rep = import_file(store, p)
    assert rep.imported == 2
    failed = {f.line: f.message for f in rep.failed}
    assert set(failed) == {2, 3, 4, 5, 6}
    assert "ArrivalNumber" in failed[2] and "JSON" in failed[3] and "31/02/2025" in failed[4]
    assert "already used" in failed[6]
    assert store.count("document") == 2


def test_reimport_is_idempotent(store: Store) -> None:
    """Importing the same register twice adds nothing the second time (resume after a crash)."""
    first = import_file(store, SAMPLE / "registers.jsonl")
    second = import_file(store, SAMPLE / "registers.jsonl")
    assert second.imported == 0 and second.ok
    assert second.skipped == first.imported + first.skipped


def test_csv_register_with_vietnamese_headers(store: Store, tmp_path: Path) -> None:
    """A paper-era Sổ đăng ký văn bản đến in CSV: dd/mm/yyyy, số/ký hiệu, type in trích yếu."""
    p = tmp_path / "so-den.csv"
    with p.open("w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(DEN_HEADERS)
        w.writerow(
            [
                "05/03/2024",
                "45",
                "Sở Tài chính",
                "125/STC-NS",
                "01/03/2024",
                "Công văn V/v hướng dẫn quyết toán ngân sách xã năm 2023",
                "Kế toán xã",
                "06/03/2024",
                "Lan",
                "",
            ]
        )
        w.writerow(
            [
                "06/03/2024",
                "46",
                "UBND tỉnh Quảng Ninh",
                "15/QĐ-UBND",
                "02/03/2024",
                "Quyết định về việc giao chỉ tiêu kế hoạch năm 2024",
                "Chủ tịch",
                "",
                "",
                "gấp",
            ]
        )
        w.writerow(
            [
                "07/03/2024",
                "47",
                "Công an tỉnh",
                "không có số",
                "02/03/2024",
                "Thông báo về việc cấp căn cước",
                "",
                "",
                "",
                "",
            ]
        )
    rep = import_file(store, p)
    assert rep.imported == 2 and [f.line for f in rep.failed] == [4]
    qd = store.find_one("document", CodeNotation="QĐ-UBND")
    assert qd is not None
    assert (qd.data["TypeName"], qd.data["TypeCode"], qd.data["ArrivalNumber"]) == (
        "Quyết định",
        "02",
        46,
    )
    assert qd.data["Subject"] == "Về việc giao chỉ tiêu kế hoạch năm 2024"
    assert qd.data["ArrivalDate"] == "2024-03-06" and qd.data["FondCode"] == ORG_ID
    cv = store.find_one("document", CodeNotation="STC-NS")
    assert cv is not None and cv.data["TypeName"] == "Công văn"


def test_xlsx_outgoing_register(store: Store, tmp_path: Path) -> None:
    """A Sổ đăng ký văn bản đi in XLSX, with real date cells, imports and keeps its numbers."""
    import datetime as dt

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(
        [
            "Số, ký hiệu văn bản",
            "Ngày tháng văn bản",
            "Tên loại và trích yếu nội dung văn bản",
            "Người ký",
            "Nơi nhận văn bản",
            "Đơn vị, người nhận bản lưu",
            "Số lượng bản",
            "Ngày chuyển",
            "Ký nhận",
            "Ghi chú",
        ]
    )
    ws.append(
        [
            "07/TB-UBND",
            dt.datetime(2024, 4, 2),
            "Thông báo lịch tiếp công dân quý II",
            "Chủ tịch Trần Văn Hùng",
            "Các thôn; Công an xã",
            "Văn phòng",
            5,
            None,
            None,
            None,
        ]
    )
    ws.append(
        [
            "08/UBND-VP",
            "03/04/2024",
            "Công văn V/v rà soát hộ nghèo",
            "Phó Chủ tịch Lê Thị Hoa",
            "Các thôn",
            "Văn phòng",
            3,
            None,
            None,
            None,
        ]
    )
    p = tmp_path / "so-di.xlsx"
    wb.save(p)
    rep = import_file(store, p)
    assert rep.ok and rep.imported == 2
    tb = store.find_one("document", CodeNotation="TB-UBND")
    assert tb is not None
    assert (tb.data["CodeNumber"], tb.data["IssuedDate"], tb.data["SignerFullName"]) == (
        "07",
        "2024-04-02",
        "Trần Văn Hùng",
    )
    assert tb.data["To"] == [{"OrganName": "Các thôn"}, {"OrganName": "Công an xã"}]
    # The counter continues after the legacy numbers: the next 2024 number would be 09.
    row = (
        store.reader()
        .execute("SELECT last FROM number_counters WHERE series = 'di' AND year = 2024")
        .fetchone()
    )
    assert row[0] == 8


def test_unknown_layout_refused(store: Store, tmp_path: Path) -> None:
    """A CSV that is no register is refused with a message saying what is expected."""
    from appliance.errors import ValidationError

    p = tmp_path / "x.csv"
    p.write_text("a,b\n1,2\n", "utf-8")
    with pytest.raises(ValidationError, match="Sổ đăng ký"):
        import_file(store, p)


def test_bulk_import_leaves_one_search_segment(store: Store, tmp_path: Path) -> None:
    """After a bulk import the search index is merged into one segment (faster queries)."""
    from appliance.importer import BATCH
    from appliance.search import Filters, search

    p = tmp_path / "bulk.jsonl"
    with p.open("w", encoding="utf-8") as fh:
        for i in range(BATCH + 50):
            fh.write(json.dumps({
                "kind": "incoming", "TypeName": "Công văn", "CodeNumber": str(i + 1),
                "CodeNotation": "SNV-VP", "IssuedDate": "2024-03-02",
                "OrganName": "Sở Nội vụ", "Subject": f"V/v đất đai thửa số {i}",
                "ArrivalDate": "2024-03-04", "ArrivalNumber": i + 1,
            }, ensure_ascii=False) + "\n")
    rep = import_file(store, p)
    assert rep.imported == BATCH + 50 and not rep.failed
    conn = store.reader()
    (segments,) = conn.execute("SELECT count(DISTINCT segid) FROM document_fts_idx").fetchone()
    assert segments == 1
    hits = search(conn, "dat dai thua so 7", Filters(year=2024), limit=5)
    assert hits and hits[0].data["Subject"].startswith("V/v đất đai thửa số 7")
