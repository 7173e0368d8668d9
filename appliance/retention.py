"""The retention table: kinds of hồ sơ → period (Vĩnh viễn or N years), with its legal source.

Versioned data like the code lists: ``appliance/data/retention.json``, overridden on one box
by ``<data>/retention.json``. A hồ sơ keeps the Circular 05 maintenance code (01–07) in
``Maintenance`` and the number of years in ``RetentionYears`` (none for Vĩnh viễn), so a
5-year file is code 07 "Khác" *and* expires after 5 years; ``RetentionRef`` names the row of
the table it was chosen from.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import ConfigError, ValidationError
from .text import nfc

FILE_NAME = "retention.json"
PERMANENT = "01"
# Circular 05/2025 maintenance codes of the periods that have one (spec §3.4).
TT05_CODES = {70: "02", 50: "03", 30: "04", 20: "05", 10: "06"}
OTHER = "07"
_YEARS = re.compile(r"^\s*0*(\d{1,3})\s*(năm|nam|years?)?\s*$", re.IGNORECASE)


def tt05_code(years: int | None) -> str:
    """The Circular 05 maintenance code of a period (None = Vĩnh viễn)."""
    if years is None:
        return PERMANENT
    return TT05_CODES.get(years, OTHER)


def period_label(years: int | None) -> str:
    """How the Danh mục writes a period: "Vĩnh viễn" or "05 năm" (two digits at least)."""
    return "Vĩnh viễn" if years is None else f"{years:02d} năm"


def code_years(code: str) -> int | None:
    """The years of a ranked code (02–06); None for 01 and 07."""
    for years, c in TT05_CODES.items():
        if c == code:
            return years
    return None


@dataclass(frozen=True)
class RetentionItem:
    id: str
    group: str
    title: str
    years: int | None  # None: Vĩnh viễn
    source: str
    provenance: str  # source · source-secondary · recalled · inference

    @property
    def code(self) -> str:
        return tt05_code(self.years)

    @property
    def period(self) -> str:
        return period_label(self.years)

    def to_json(self, sources: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
        return {"id": self.id, "group": self.group, "title": self.title, "years": self.years,
                "period": self.period, "maintenance": self.code,
                "source": self.source, "source_title": sources.get(self.source, {}).get("title"),
                "provenance": self.provenance}


@dataclass(frozen=True)
class RetentionTable:
    version: str
    items: tuple[RetentionItem, ...]
    sources: dict[str, dict[str, Any]]
    origin: str

    def get(self, item_id: str) -> RetentionItem:
        for item in self.items:
            if item.id == item_id:
                return item
        raise ValidationError(f"'{item_id}' is not a kind of hồ sơ in the retention table "
                              f"(version {self.version})", "RetentionRef")

    def groups(self) -> list[tuple[str, list[RetentionItem]]]:
        out: dict[str, list[RetentionItem]] = {}
        for item in self.items:
            out.setdefault(item.group, []).append(item)
        return list(out.items())

    def periods(self) -> list[int | None]:
        """Vĩnh viễn, then every period the table or the codes know, longest first."""
        years = {i.years for i in self.items if i.years is not None} | set(TT05_CODES)
        return [None, *sorted(years, reverse=True)]

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "origin": self.origin, "sources": self.sources,
                "items": [i.to_json(self.sources) for i in self.items]}


def parse(raw: bytes, origin: str) -> RetentionTable:
    try:
        doc = json.loads(raw.decode("utf-8"))
        sources = {str(k): dict(v) for k, v in doc.get("sources", {}).items()}
        items = []
        seen: set[str] = set()
        for it in doc["items"]:
            years = it.get("years")
            if years is not None and (not isinstance(years, int) or not 1 <= years <= 999):
                raise ValueError(f"{it.get('id')}: years must be 1–999 or null (Vĩnh viễn)")
            if it["id"] in seen or it["source"] not in sources:
                raise ValueError(f"{it['id']}: repeated, or its source is not listed")
            seen.add(it["id"])
            items.append(RetentionItem(str(it["id"]), nfc(it["group"]), nfc(it["title"]),
                                       years, str(it["source"]), str(it["provenance"])))
        return RetentionTable(str(doc["version"]), tuple(items), sources, origin)
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"retention table {origin} is not valid: {exc}") from exc


def load(data_dir: Path | None = None) -> RetentionTable:
    """The box's own table if it has one, else the bundled one."""
    if data_dir is not None and (data_dir / FILE_NAME).is_file():
        path = data_dir / FILE_NAME
        return parse(path.read_bytes(), str(path))
    raw = resources.files("appliance").joinpath(f"data/{FILE_NAME}").read_bytes()
    return parse(raw, f"appliance/data/{FILE_NAME}")


def parse_years(value: Any) -> int | None:
    """"05 năm", "5", 5 → 5; anything else → None (a code or a label of the code list)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if 1 <= value <= 999 else None
    m = _YEARS.match(str(value or ""))
    if m is None or (m.group(2) is None and len(str(value).strip()) == 2):
        return None  # "05" alone is the TT 05 code 05 (20 năm), not five years
    return int(m.group(1))


def resolve(raw: Mapping[str, Any], table: RetentionTable) -> dict[str, Any]:
    """The retention fields of a new hồ sơ from what the clerk gave: a kind of the table
    (``RetentionRef``), a period ("05 năm") or a code; never shorter than the table's."""
    out: dict[str, Any] = {}
    ref = str(raw.get("RetentionRef") or "").strip()
    item = table.get(ref) if ref else None
    given = raw.get("Maintenance")
    years: int | None
    if given in (None, ""):
        if item is None:
            return out
        years, code = item.years, item.code
    else:
        parsed = parse_years(given)
        if parsed is not None:
            years, code = parsed, tt05_code(parsed)
        else:
            code = str(given)
            years = code_years(code)
            if code == OTHER and raw.get("RetentionYears"):
                years = int(raw["RetentionYears"])
        if item is not None and shorter(years, code, item.years):
            raise ValidationError(
                f"Thời hạn lưu trữ {period_label(years) if code != OTHER or years else 'Khác'}"
                f" ngắn hơn thời hạn của loại hồ sơ '{item.title}' trong bảng thời hạn "
                f"({item.period}, {table.sources[item.source]['title'][:40]}…)",
                "Maintenance",
            )
    out["Maintenance"] = code
    out["RetentionYears"] = years if code != PERMANENT else None
    if item is not None:
        out["RetentionRef"] = item.id
    return out


def shorter(years: int | None, code: str, than: int | None) -> bool:
    """Whether a period (years, code) is shorter than ``than`` (None = Vĩnh viễn)."""
    if code == PERMANENT:
        return False
    if than is None:
        return True
    return years is not None and years < than
