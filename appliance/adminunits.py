"""Administrative-unit codes: the provinces of QĐ 19/2025/QĐ-TTg (from 01/7/2025) with those of
QĐ 124/2004/QĐ-TTg (until 30/6/2025) as history, and the box's own commune in both.

The province table is versioned data (``data/adminunits.json``), each item marked with where it
comes from ("source" or "recalled", see its description). A code means a unit only within its
scheme: "15" is Yên Bái under QĐ 124/2004 and Lào Cai under QĐ 19/2025, so a code is always
kept with its scheme, and looked up by date (``UnitsTable.province``). QĐ 19/2025 codes are
never reused for another unit.

Commune codes are not bundled (no full list could be read); the box records its own —
province and commune under QĐ 19/2025, and the QĐ 124/2004 units it was formed from — as an
``agency.units`` entry naming the table version it was checked against.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import re
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from . import clock as clockmod
from . import writes
from .errors import ValidationError
from .kinds import Kind
from .ledger import Entry
from .text import nfc
from .writer import Txn
from .writes import WriteContext

NEW, OLD = "QĐ19/2025", "QĐ124/2004"
SWITCH = dt.date(2025, 7, 1)  # QĐ 19/2025 applies from this day
_DIGITS = {2: re.compile(r"^\d{2}$"), 3: re.compile(r"^\d{3}$"), 5: re.compile(r"^\d{5}$")}

TABLE = "agency_units"
DDL = """
CREATE TABLE IF NOT EXISTS agency_units (
  log_index INTEGER PRIMARY KEY,
  province TEXT NOT NULL CHECK (length(province) = 2),
  commune TEXT NOT NULL CHECK (length(commune) = 5),
  since TEXT NOT NULL,
  history TEXT NOT NULL CHECK (json_valid(history)),
  table_version TEXT NOT NULL,
  actor TEXT NOT NULL,
  at TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Province:
    scheme: str
    code: str
    name: str
    sources: tuple[str, ...]  # QĐ 19/2025: the QĐ 124/2004 provinces it was formed from
    provenance: str  # "source" or "recalled"


@dataclass(frozen=True)
class UnitsTable:
    version: str
    sha256: str
    provinces: tuple[Province, ...]

    def get(self, scheme: str, code: str) -> Province:
        for p in self.provinces:
            if p.scheme == scheme and p.code == code:
                return p
        raise ValidationError(
            f"Mã tỉnh {code!r} không có trong bảng {scheme} (phiên bản {self.version}) "
            f"(province code {code!r} is not in {scheme})", "province")

    def province(self, code: str, on: dt.date) -> Province:
        """The province ``code`` meant on the day ``on``."""
        return self.get(NEW if on >= SWITCH else OLD, code)

    def successor(self, old_code: str) -> Province:
        """The QĐ 19/2025 province that a QĐ 124/2004 province became part of."""
        self.get(OLD, old_code)
        for p in self.provinces:
            if p.scheme == NEW and old_code in p.sources:
                return p
        raise ValidationError(f"tỉnh cũ {old_code} không thuộc tỉnh mới nào (no successor)",
                              "history")


def parse_table(raw: bytes) -> UnitsTable:
    doc = json.loads(raw.decode("utf-8"))
    provinces = tuple(
        Province(str(p["scheme"]), str(p["code"]), nfc(p["name"]),
                 tuple(str(c) for c in p.get("from", ())), str(p["provenance"]))
        for p in doc["provinces"])
    return UnitsTable(str(doc["version"]), hashlib.sha256(raw).hexdigest(), provinces)


@cache
def bundled() -> UnitsTable:
    """The table shipped with luutru."""
    return parse_table(resources.files("appliance").joinpath("data/adminunits.json")
                       .read_bytes())


def _code(value: Any, digits: int, field: str, what: str) -> str:
    code = str(value or "").strip()
    if not _DIGITS[digits].match(code) or set(code) == {"0"}:
        raise ValidationError(f"{what} phải gồm {digits} chữ số ({field}: {digits} digits, "
                              "not all zero)", field)
    return code


def prepare(table: UnitsTable, province: str, commune: str, since: str | dt.date,
            history: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The box's units checked against ``table``: its province and commune under QĐ 19/2025
    (from ``since``, not before 01/7/2025), and each QĐ 124/2004 commune it was formed from
    (province, district, commune, name, the day it ended), whose province must have become
    part of the box's."""
    prov = table.get(NEW, _code(province, 2, "province", "Mã tỉnh"))
    day = clockmod.parse_date(since, "since")
    if day < SWITCH:
        raise ValidationError("Mã theo QĐ 19/2025 áp dụng từ 01/07/2025 (since is before "
                              "01/07/2025)", "since")
    old: list[dict[str, Any]] = []
    for h in history:
        p_old = _code(h.get("province"), 2, "history", "Mã tỉnh cũ")
        if table.successor(p_old).code != prov.code:
            raise ValidationError(
                f"Tỉnh cũ {p_old} ({table.get(OLD, p_old).name}) không thuộc {prov.name} "
                f"(old province {p_old} did not become part of {prov.code})", "history")
        until = clockmod.parse_date(h.get("until") or "", "history")
        if until >= SWITCH:
            raise ValidationError("Mã theo QĐ 124/2004 chỉ dùng đến 30/06/2025 (until is "
                                  "after 30/06/2025)", "history")
        name = nfc(str(h.get("name") or "")).strip()
        if not name or len(name) > 200:
            raise ValidationError("Tên xã cũ từ 1 đến 200 ký tự (old name 1–200 characters)",
                                  "history")
        old.append({"scheme": OLD, "province": p_old,
                    "district": _code(h.get("district"), 3, "history", "Mã huyện cũ"),
                    "commune": _code(h.get("commune"), 5, "history", "Mã xã cũ"),
                    "name": name, "until": until.isoformat()})
    return {"scheme": NEW, "province": prov.code,
            "commune": _code(commune, 5, "commune", "Mã xã"), "since": day.isoformat(),
            "history": old, "table": table.version, "table_sha256": table.sha256}


def parse_history(text: str) -> dict[str, str]:
    """``TỈNH|HUYỆN|XÃ|Tên xã|dd/mm/yyyy`` (the command line's form of one old commune)."""
    parts = [p.strip() for p in nfc(text).split("|")]
    if len(parts) != 5:
        raise ValidationError("write an old commune as TỈNH|HUYỆN|XÃ|Tên xã|dd/mm/yyyy",
                              "history")
    return dict(zip(("province", "district", "commune", "name", "until"), parts, strict=True))


def set_units(store: WriteContext, province: str, commune: str, since: str | dt.date,
              history: Sequence[Mapping[str, Any]], actor: str = "system",
              table: UnitsTable | None = None) -> dict[str, Any]:
    """Record the box's administrative-unit codes (a new entry each time they are set)."""
    data = prepare(table or bundled(), province, commune, since, history)

    def job(txn: Txn) -> dict[str, Any]:
        entry = writes.append_event(txn, Kind.AGENCY_UNITS, actor, data)
        project(txn.conn, entry)
        return dict(data, log_index=entry.index)

    result: dict[str, Any] = store.writer_or_fail().call(job)
    return result


def project(conn: sqlite3.Connection, entry: Entry) -> None:
    """Write an ``agency.units`` entry's row (the live path and rebuild.py)."""
    d = entry.data or {}
    conn.execute(
        f"INSERT INTO {TABLE} (log_index, province, commune, since, history, table_version, "
        "actor, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (entry.index, d["province"], d["commune"], d["since"],
         json.dumps(d["history"], ensure_ascii=False, sort_keys=True), d["table"],
         entry.actor, entry.at))


def current(conn: sqlite3.Connection, table: UnitsTable | None = None) -> dict[str, Any] | None:
    """The box's units as last recorded, with the province's name; None if never recorded."""
    row = conn.execute(f"SELECT province, commune, since, history, table_version, log_index "
                       f"FROM {TABLE} ORDER BY log_index DESC LIMIT 1").fetchone()
    if row is None:
        return None
    t = table or bundled()
    prov = t.get(NEW, row[0])
    history = json.loads(row[3])
    for h in history:
        h["province_name"] = t.get(OLD, h["province"]).name
    return {"province": row[0], "province_name": prov.name, "commune": row[1],
            "since": row[2], "history": history, "table": row[4], "log_index": row[5],
            "provenance": dataclasses.asdict(prov)["provenance"]}
