"""The due-date engine: earliest rule applies, 30-day warnings, holds, permanent files onward."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from appliance.archive import custody
from appliance.archive.due import DueStatus, Stage, files_due, load_rules, parse_rules
from appliance.errors import ConfigError, ConflictError, ValidationError
from appliance.store import Store
from tests.archive.conftest import Hoso


def _by_stage(items: list, code: str) -> dict[Stage, object]:
    return {i.stage: i for i in items if i.file_code == code}


def test_open_file_is_never_due(store: Store, make_hoso: Callable[..., Hoso]) -> None:
    """A hồ sơ whose work has not ended has no deadline."""
    h = make_hoso(close=False)
    assert [i for i in files_due(store, dt.date(2030, 1, 1)) if i.file_code == h.code] == []


def test_earliest_rule_applies_and_warns_30_days_ahead(
    store: Store, make_hoso: Callable[..., Hoso]
) -> None:
    """TT 05's 60 days beats Decree 30's one year and the law's year-end; warned 30 days ahead."""
    h = make_hoso(close=True)
    end = dt.date.fromisoformat(h.file.data["EndDate"])
    due = end + dt.timedelta(days=60)
    assert _by_stage(files_due(store, due - dt.timedelta(days=31)), h.code) == {}
    item = _by_stage(files_due(store, due - dt.timedelta(days=30)), h.code)[Stage.CURRENT]
    assert item.deadline == due and item.rule == "tt05-60d"  # type: ignore[attr-defined]
    assert item.status is DueStatus.DUE_SOON  # type: ignore[attr-defined]
    late = _by_stage(files_due(store, due + dt.timedelta(days=1)), h.code)[Stage.CURRENT]
    assert late.status is DueStatus.OVERDUE and late.days_left == -1  # type: ignore[attr-defined]


def test_rules_are_configurable_per_appliance(
    store: Store, make_hoso: Callable[..., Hoso]
) -> None:
    """Disabling the 60-day rule in <data>/due_rules.json leaves Decree 30's one year."""
    raw = json.loads(
        (Path(__file__).resolve().parents[2] / "appliance/data/due_rules.json").read_text()
    )
    for r in raw["current_archive"]:
        if r["id"] == "tt05-60d":
            r["enabled"] = False
    (store.data_dir / "due_rules.json").write_text(json.dumps(raw), "utf-8")
    h = make_hoso(close=True)
    end = dt.date.fromisoformat(h.file.data["EndDate"])
    item = _by_stage(files_due(store, end + dt.timedelta(days=400), include_upcoming=True),
                     h.code)[Stage.CURRENT]
    assert item.rule == "nd30-d30.2"  # type: ignore[attr-defined]
    assert item.deadline == dt.date(end.year + 1, end.month, end.day)  # type: ignore[attr-defined]
    (store.data_dir / "due_rules.json").write_text("{not json", "utf-8")
    with pytest.raises(ConfigError):
        load_rules(store.data_dir)


def test_construction_files_get_three_months(
    store: Store, make_hoso: Callable[..., Hoso]
) -> None:
    """A heading naming XDCB matches the Decree 30 three-month rule when it is earliest."""
    rules = parse_rules(
        json.dumps(
            {
                "version": "t",
                "current_archive": [
                    {"id": "y", "kind": "after_end", "months": 12},
                    {"id": "x", "kind": "after_end", "months": 3,
                     "match": {"heading_contains": ["XDCB"]}},
                ],
                "historical_archive": [],
            }
        ).encode()
    )
    from appliance import fileplan

    fileplan.set_headings(store, 2025, [{"title": "Văn phòng"},
                                        {"title": "Xây dựng cơ bản (XDCB)"}])
    h = make_hoso(close=True, Heading="II. Xây dựng cơ bản (XDCB)")
    other = make_hoso(close=True)
    items = files_due(store, dt.date(2030, 1, 1), rules=rules)
    assert _by_stage(items, h.code)[Stage.CURRENT].rule == "x"  # type: ignore[attr-defined]
    assert _by_stage(items, other.code)[Stage.CURRENT].rule == "y"  # type: ignore[attr-defined]


def test_permanent_files_fall_due_for_historical_archive(
    store: Store, make_hoso: Callable[..., Hoso]
) -> None:
    """Accessioned permanent files are due at the historical archive ≤ 5 years after the year
    of accession; registration 12 months before; time-limited files never are."""
    perm = make_hoso(close=True, maintenance="01")
    limited = make_hoso(close=True, maintenance="06")
    custody.accession(store, perm.code, "2025-11-01")
    custody.accession(store, limited.code, "2025-11-01")
    items = files_due(store, dt.date(2030, 12, 1))
    p = _by_stage(items, perm.code)
    assert Stage.CURRENT not in p
    assert p[Stage.HISTORICAL].deadline == dt.date(2030, 12, 31)  # type: ignore[attr-defined]
    assert p[Stage.REGISTER].deadline == dt.date(2029, 12, 31)  # type: ignore[attr-defined]
    assert _by_stage(items, limited.code) == {}
    expiry = _by_stage(files_due(store, dt.date(2035, 12, 31)), limited.code)
    assert expiry[Stage.EXPIRY].deadline == dt.date(2035, 12, 31)  # type: ignore[attr-defined]
    custody.record_transfer(store, perm.code, "uuid-X", "2030-06-01")
    assert _by_stage(files_due(store, dt.date(2030, 12, 1)), perm.code) == {}
    with pytest.raises(ConflictError):
        custody.record_transfer(store, limited.code, "uuid-Y")


def test_hold_needs_approval_and_lasts_at_most_two_years(
    store: Store, make_hoso: Callable[..., Hoso]
) -> None:
    """Điều 31.3: a unit keeps a due file only with written consent, for ≤ 02 years."""
    h = make_hoso(close=True)
    end = dt.date.fromisoformat(h.file.data["EndDate"])
    due = end + dt.timedelta(days=60)
    with pytest.raises(ValidationError):
        custody.hold(store, h.code, due + dt.timedelta(days=100), "  ")
    with pytest.raises(ValidationError):
        custody.hold(store, h.code, dt.date(due.year + 3, 1, 1), "Công văn 12/UBND-VP")
    custody.hold(store, h.code, due + dt.timedelta(days=300), "Công văn 12/UBND-VP")
    item = _by_stage(files_due(store, due + dt.timedelta(days=290)), h.code)[Stage.CURRENT]
    assert item.rule == "nd30-d31.3-hold"  # type: ignore[attr-defined]
    assert item.deadline == due + dt.timedelta(days=300)  # type: ignore[attr-defined]


def test_accession_needs_a_closed_file(store: Store, make_hoso: Callable[..., Hoso]) -> None:
    """Only a closed hồ sơ can be handed to the current archive, and only once."""
    h = make_hoso(close=False)
    with pytest.raises(ConflictError):
        custody.accession(store, h.code)
    store.close_file(h.code)
    custody.accession(store, h.code)
    with pytest.raises(ConflictError):
        custody.accession(store, h.code)
