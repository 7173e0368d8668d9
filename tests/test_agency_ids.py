"""Re-keying the agency's mã định danh: the old code kept as an alias, historic mã hồ sơ still
resolving and verifying, numbering and registers going on in the same fonds; and the
administrative-unit codes of QĐ 19/2025 with the QĐ 124/2004 history."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from appliance import adminunits, agency_ids
from appliance import registers as regs
from appliance.clock import TZ, ManualClock
from appliance.config import CONFIG_NAME, load_config
from appliance.errors import ConflictError, ValidationError
from appliance.identifiers import FileCode
from appliance.search import Filters, search
from appliance.store import Store
from appliance.verify import verify_data_dir
from tests.conftest import ORG_ID, incoming

NEW = "000.00.37.H22"
OLD_CODE = f"{ORG_ID}.2025.01.VP"


def _before(store: Store) -> str:
    """A hồ sơ and two registrations under the old code; returns a document id."""
    store.open_file({"FileCatalog": 2025, "FileNotation": "01.VP", "Title": "Hồ sơ văn phòng",
                     "Maintenance": "05"})
    store.register_incoming(incoming(FileCode=OLD_CODE, CodeNumber="11"))
    return store.register_incoming(incoming(FileCode=OLD_CODE, CodeNumber="12",
                                            Subject="V/v kiện toàn bộ máy")).record.id


def test_rekey_keeps_the_old_code_as_an_alias(
    open_store: Callable[..., Store], data_dir: Path,
) -> None:
    """After a re-keying: new hồ sơ take the new code, the fonds and its numbering go on, old
    mã hồ sơ resolve (also written with the new code), the register holds every number, and
    the whole folder verifies."""
    store = open_store()
    doc = _before(store)
    done = agency_ids.rekey(store, NEW, "15/09/2025", "Công văn số 15/STTTT-BCVT",
                            "Sắp xếp đơn vị hành chính 2025", "kỹ thuật")
    assert (done.old, done.new, done.fond, done.effective) == (ORG_ID, NEW, ORG_ID,
                                                               "2025-09-15")
    cfg = store.config
    assert (cfg.org_id, cfg.former_ids, cfg.fond_code) == (NEW, (ORG_ID,), ORG_ID)
    on_disk = json.loads((data_dir / CONFIG_NAME).read_text())
    assert on_disk["org_id"] == NEW and on_disk["former_ids"] == [ORG_ID]
    assert on_disk["origin"].startswith(f"luutru/{ORG_ID}/")  # the log's name never changes
    # New hồ sơ carry the new code and stay in the agency's fonds; numbers go on.
    f2 = store.open_file({"FileCatalog": 2025, "FileNotation": "02.VP", "Title": "Hồ sơ mới",
                          "Maintenance": "05"})
    assert f2.data["FileCode"] == f"{NEW}.2025.02.VP" and f2.data["FondCode"] == ORG_ID
    third = store.register_incoming(incoming(FileCode=f2.data["FileCode"], CodeNumber="13"))
    assert third.record.data["ArrivalNumber"] == 3 and third.record.data["FondCode"] == ORG_ID
    # Old codes resolve as stored, and written with the other code too.
    conn = store.reader()
    assert agency_ids.resolve_file_code(conn, cfg, OLD_CODE) == OLD_CODE
    assert agency_ids.resolve_file_code(conn, cfg, f"{NEW}.2025.01.VP") == OLD_CODE
    assert agency_ids.resolve_file_code(conn, cfg, f"{ORG_ID}.2025.02.VP") == \
        f"{NEW}.2025.02.VP"
    assert agency_ids.resolve_file_code(conn, cfg, f"{NEW}.2025.09.VP") is None
    assert str(FileCode.parse(OLD_CODE)) == OLD_CODE
    code = agency_ids.file_filter(conn, cfg, f"{NEW}.2025.01.VP")
    hits = search(conn, "", Filters(file_code=code), 10)
    assert doc in {h.id for h in hits} and len(hits) == 2
    # The register of the year holds the numbers from before and after.
    rows = regs.rows(conn, cfg.fond_code, "incoming", regs.Period.of(2025), False,
                     dt.date(2025, 9, 15))
    assert [r[1][1] for r in rows] == ["1", "2", "3"]
    store.close()
    again = Store.open(data_dir)
    assert again.config.org_id == NEW
    again.close()
    report = verify_data_dir(data_dir)
    assert report.ok, [f.message for f in report.findings]


def test_rekey_refusals(store: Store, clock: ManualClock) -> None:
    with pytest.raises(ConflictError, match="hiện tại"):
        agency_ids.rekey(store, ORG_ID, "2025-09-01", "CV 1")
    with pytest.raises(ValidationError):
        agency_ids.rekey(store, "H22.37", "2025-09-01", "CV 1")
    with pytest.raises(ValidationError) as future:
        agency_ids.rekey(store, NEW, "2025-09-16", "CV 1")
    assert future.value.field == "effective"
    with pytest.raises(ValidationError) as no_ref:
        agency_ids.rekey(store, NEW, "2025-09-01", "  ")
    assert no_ref.value.field == "ref"
    agency_ids.rekey(store, NEW, "2025-09-01", "CV 1")
    with pytest.raises(ConflictError, match="không được dùng lại"):
        agency_ids.rekey(store, ORG_ID, "2025-09-15", "CV 2")
    third = "000.00.38.H22"
    agency_ids.rekey(store, third, "2025-09-15", "CV 3")
    assert store.config.all_ids == (third, NEW, ORG_ID)
    assert store.config.fond_code == ORG_ID
    assert agency_ids.equivalents(f"{ORG_ID}.2025.01.VP", store.config.all_ids) == [
        f"{third}.2025.01.VP", f"{NEW}.2025.01.VP"]


def test_a_rekeying_cut_short_is_completed_from_the_log(
    open_store: Callable[..., Store], data_dir: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Power cut between the durable entry and the configuration: the next opening finishes
    it (the log is the truth)."""
    store = open_store()

    def cut(*a: object, **k: object) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(agency_ids, "save_config", cut)
    with pytest.raises(OSError):
        agency_ids.rekey(store, NEW, "2025-09-01", "CV 1")
    store.close()
    assert load_config(data_dir).org_id == ORG_ID
    monkeypatch.undo()
    again = open_store()
    assert again.config.org_id == NEW and again.config.former_ids == (ORG_ID,)
    assert load_config(data_dir).org_id == NEW


def test_identity_commands(data_dir: Path, clock: ManualClock) -> None:
    from luutru.cli import main

    runner = CliRunner()
    today = dt.datetime.now(TZ).strftime("%d/%m/%Y")
    out = runner.invoke(main, ["identity", "rekey", "--data", str(data_dir), "--org-id", NEW,
                               "--effective", today, "--ref", "CV 15/STTTT", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["new"] == NEW
    out = runner.invoke(main, ["identity", "units", "--data", str(data_dir), "--province", "22",
                               "--commune", "07123", "--old",
                               "22|201|06880|Xã Đông Xá|30/06/2025"])
    assert out.exit_code == 0, out.output
    shown = runner.invoke(main, ["identity", "show", "--data", str(data_dir), "--json"])
    body = json.loads(shown.output)
    assert body["org_id"] == NEW and body["former_ids"] == [ORG_ID]
    assert body["units"]["province_name"] == "Tỉnh Quảng Ninh"
    assert body["units"]["history"][0]["province_name"] == "Tỉnh Quảng Ninh"
    bad = runner.invoke(main, ["identity", "rekey", "--data", str(data_dir), "--org-id",
                               ORG_ID, "--effective", today, "--ref", "x"])
    assert bad.exit_code != 0 and "không được dùng lại" in bad.output


# -- administrative units -----------------------------------------------------------------


def test_the_province_table_is_whole_and_marks_its_provenance() -> None:
    """34 provinces of QĐ 19/2025 formed from exactly the 63 of QĐ 124/2004, each old one in
    one new one; codes unique within a scheme; every item says where it comes from."""
    t = adminunits.bundled()
    new = [p for p in t.provinces if p.scheme == adminunits.NEW]
    old = [p for p in t.provinces if p.scheme == adminunits.OLD]
    assert len(new) == 34 and len(old) == 63
    assert len({p.code for p in new}) == 34 and len({p.code for p in old}) == 63
    sources = sorted(c for p in new for c in p.sources)
    assert sources == sorted(p.code for p in old)
    assert {p.provenance for p in t.provinces} <= {"source", "recalled"}
    # The codes read in a source (regulations.md §6.2) are marked so; the rest are leads.
    sourced = {p.code for p in new if p.provenance == "source"}
    assert sourced == {"01", "04", "08", "11", "12", "14", "15", "19", "20"}
    raw = json.loads((Path(adminunits.__file__).parent / "data/adminunits.json").read_text())
    assert "recalled" in raw["description"] and raw["sources"]


def test_a_code_means_a_unit_only_within_its_scheme() -> None:
    """"15" was Yên Bái until 30/06/2025 and is Lào Cai (which absorbed it) from 01/07."""
    t = adminunits.bundled()
    assert t.province("15", dt.date(2025, 6, 30)).name == "Tỉnh Yên Bái"
    assert t.province("15", dt.date(2025, 7, 1)).name == "Tỉnh Lào Cai"
    assert t.successor("10").code == "15" and t.successor("15").code == "15"
    assert t.successor("02").name == "Tỉnh Tuyên Quang"
    with pytest.raises(ValidationError):
        t.province("02", dt.date(2025, 7, 1))  # Hà Giang's code ended with it


def test_units_are_checked_against_the_table(store: Store) -> None:
    ok = adminunits.set_units(store, "22", "07123", "01/07/2025", [
        {"province": "22", "district": "201", "commune": "06880", "name": "Xã Đông Xá",
         "until": "30/06/2025"}])
    assert ok["table"] == adminunits.bundled().version
    cur = adminunits.current(store.reader())
    assert cur is not None and (cur["province"], cur["commune"]) == ("22", "07123")
    bad_cases = [
        ("99", "07123", []),  # no such province
        ("22", "0712", []),  # 4 digits
        ("22", "00000", []),
        ("22", "07123", [{"province": "01", "district": "001", "commune": "00001",
                          "name": "Phường Phúc Xá", "until": "2025-06-30"}]),  # not Quảng Ninh
        ("22", "07123", [{"province": "22", "district": "201", "commune": "06880",
                          "name": "Xã Đông Xá", "until": "2025-07-01"}]),  # after QĐ 124
    ]
    for province, commune, history in bad_cases:
        with pytest.raises(ValidationError):
            adminunits.set_units(store, province, commune, "2025-07-01", history)
    with pytest.raises(ValidationError):
        adminunits.set_units(store, "22", "07123", "2025-06-30", [])
