"""The retention table: versioned data with legal sources, periods computed, TT 05 codes."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest

from appliance import retention, schema
from appliance.archive import destruction
from appliance.archive.due import Stage, deadlines, load_rules
from appliance.config import DB_NAME
from appliance.errors import ValidationError
from appliance.store import Store


def test_the_bundled_table_names_its_sources_and_how_sure_each_row_is() -> None:
    """Every kind has a listed source, a period, and a provenance marker; the recalled rows
    are marked so (spec §0), and the file is versioned."""
    table = retention.load()
    assert table.version and len(table.items) >= 20
    assert {i.provenance for i in table.items} <= {"source", "source-secondary", "recalled",
                                                    "inference"}
    assert any(i.provenance == "recalled" for i in table.items)
    for i in table.items:
        assert i.source in table.sources and i.title and i.group
    assert "10/2022/TT-BNV" in table.sources["TT10-2022"]["title"]


@pytest.mark.parametrize(("years", "code"), [(None, "01"), (70, "02"), (50, "03"), (30, "04"),
                                             (20, "05"), (10, "06"), (5, "07"), (15, "07")])
def test_periods_export_as_circular_05_codes(years: int | None, code: str) -> None:
    assert retention.tt05_code(years) == code


def test_a_five_year_hoso_is_code_07_and_expires(store: Store) -> None:
    """"05 năm" keeps code 07 (Khác) for TT 05 and 5 years for the due dates: the file falls
    due for review (xem xét hủy) at the end of its fifth year, and is listed then."""
    f = store.open_file({"FileCatalog": 2019, "FileNotation": "05.VP", "Maintenance": "05 năm",
                         "Title": "Công văn trao đổi chung 2019"})
    assert (f.data["Maintenance"], f.data["RetentionYears"]) == ("07", 5)
    closed = store.close_file(f.data["FileCode"])
    end = dt.date.fromisoformat(closed.data["EndDate"])
    expiry = [d for s, d, *_ in deadlines(closed.data, {}, load_rules()) if s is Stage.EXPIRY]
    assert expiry == [dt.date(end.year + 5, 12, 31)]
    later = dt.date(end.year + 6, 1, 2)
    assert f.data["FileCode"] in [c.get("FileCode") for c in destruction.candidates(store, later)]


def test_a_kind_from_the_table_sets_the_period_and_refuses_a_shorter_one(store: Store) -> None:
    """Choosing a kind gives its period and code; a shorter explicit period is refused on the
    Maintenance field, a longer one kept."""
    item = retention.load().get("TT10.can-bo.ho-so-ca-nhan")
    f = store.open_file({"FileCatalog": 2025, "FileNotation": "06.TCCB", "Title": "Hồ sơ cán bộ",
                         "RetentionRef": item.id})
    assert (f.data["Maintenance"], f.data["RetentionYears"], f.data["RetentionRef"]) == (
        "02", 70, item.id)
    with pytest.raises(ValidationError) as err:
        store.open_file({"FileCatalog": 2025, "FileNotation": "07.TCCB", "Title": "x",
                         "RetentionRef": item.id, "Maintenance": "10 năm"})
    assert err.value.field == "Maintenance"
    g = store.open_file({"FileCatalog": 2025, "FileNotation": "08.TCCB", "Title": "y",
                         "RetentionRef": item.id, "Maintenance": "01"})
    assert g.data["Maintenance"] == "01" and g.data.get("RetentionYears") is None


def test_an_unknown_kind_is_refused(store: Store) -> None:
    with pytest.raises(ValidationError) as err:
        store.open_file({"FileCatalog": 2025, "FileNotation": "09.VP", "Title": "x",
                         "RetentionRef": "không có"})
    assert err.value.field == "RetentionRef"


def test_a_box_can_carry_its_own_table(store: Store) -> None:
    """<data>/retention.json (a province's sector circulars) replaces the bundled table."""
    own = {"version": "tinh-2026.1", "sources": {"TT74-2025": {"title": "Thông tư 74/2025/TT-BTC",
                                                               "provenance": "recalled"}},
           "items": [{"id": "TC.1", "group": "Tài chính", "title": "Hồ sơ thu chi ngân sách xã",
                      "years": 15, "source": "TT74-2025", "provenance": "recalled"}]}
    (store.data_dir / "retention.json").write_text(json.dumps(own, ensure_ascii=False))
    f = store.open_file({"FileCatalog": 2025, "FileNotation": "10.TC", "Title": "Thu chi",
                         "RetentionRef": "TC.1"})
    assert (f.data["Maintenance"], f.data["RetentionYears"]) == ("07", 15)


def test_an_older_folder_gets_the_new_columns(data_dir: Path) -> None:
    """A folder made before RetentionYears/RetentionRef existed gains them when opened."""
    with Store.open(data_dir) as s:
        s.open_file({"FileCatalog": 2025, "FileNotation": "01.VP", "Title": "cũ",
                     "Maintenance": "06"})
    conn = schema.connect(str(data_dir / DB_NAME))
    conn.execute('ALTER TABLE files DROP COLUMN "RetentionRef"')
    conn.execute('ALTER TABLE files DROP COLUMN "RetentionYears"')
    conn.close()
    with Store.open(data_dir) as s:
        f = s.open_file({"FileCatalog": 2025, "FileNotation": "02.VP", "Title": "mới",
                         "Maintenance": "5 năm"})
        assert f.data["RetentionYears"] == 5


def test_the_cli_exports_the_table_with_tt05_codes() -> None:
    out = subprocess.run([str(Path(sys.executable).parent / "luutru"), "retention", "--json"],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    doc = json.loads(out)
    codes = {i["id"]: i["maintenance"] for i in doc["items"]}
    assert codes["TT10.quy-hoach.cong-van"] == "07" and codes["TT10.can-bo.ho-so-ca-nhan"] == "02"
