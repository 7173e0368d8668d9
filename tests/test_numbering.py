"""Decree 30 numbering (appliance/numbering.py): which series a document takes, its default ký
hiệu, and counters that never gap, repeat or go back, on the store's real database."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from appliance import numbering
from appliance.clock import TZ, ManualClock
from appliance.codelists import CodeLists, load_bundled
from appliance.config import NumberingConfig, load_config, save_config
from appliance.errors import ValidationError
from appliance.store import Store, Txn
from tests.conftest import incoming, outgoing

FOND = "000.21.08.H49"


@pytest.fixture(scope="module")
def codes() -> CodeLists:
    return load_bundled()[1]


def _take(store: Store, series: str, year: int, fond: str = FOND) -> int:
    return store.writer_or_fail().call(
        lambda txn: numbering.next_number(txn.conn, fond, series, year)
    )


def _observe(store: Store, series: str, year: int, n: int) -> None:
    store.writer_or_fail().call(
        lambda txn: numbering.observe_number(txn.conn, FOND, series, year, n)
    )


# -- the type's abbreviation ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"TypeName": "Quyết định", "TypeCode": "02"}, ("QĐ", False)),
        ({"TypeCode": "02"}, ("QĐ", False)),  # the TT 05 code alone finds it
        ({"TypeName": "Tờ trình", "TypeCode": "15"}, ("TTr", False)),
        ({"TypeName": "Bản sao y", "TypeCode": "32"}, ("SY", True)),
        ({"TypeName": "Bản trích sao", "TypeCode": "32"}, ("TrS", True)),
        ({"TypeName": "Bản sao lục", "TypeCode": "32"}, ("SL", True)),
        ({"TypeName": "Công văn", "TypeCode": "22"}, (None, False)),
        ({"TypeName": "Thư công", "TypeCode": "29"}, (None, False)),
    ],
    ids=["decision", "code-only", "submission", "sao-y", "trich-sao", "sao-luc", "cong-van",
         "no-abbreviation"],
)
def test_type_abbreviation_follows_decree_30_appendix_iii(
    codes: CodeLists, data: dict[str, Any], expected: tuple[str | None, bool]
) -> None:
    """The Phụ lục III abbreviation and whether the type is a copy; công văn has none."""
    assert numbering.type_abbreviation(data, codes) == expected


def test_a_type_without_a_tt05_code_is_not_taken_for_a_copy(codes: CodeLists) -> None:
    """A công văn given by name only is not matched to the copies, whose TT 05 code is null."""
    assert numbering.type_abbreviation({"TypeName": "Công văn"}, codes) == (None, False)
    assert numbering.type_abbreviation({}, codes) == (None, False)


# -- series ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("direction", "data", "own", "series"),
    [
        ("incoming", {"TypeName": "Quyết định", "TypeCode": "02"}, (), "den"),
        ("incoming", {"TypeCode": "02", "Mode": "03"}, (), "den"),  # số đến: one series
        ("outgoing", {"TypeCode": "02"}, (), "di"),
        ("outgoing", {"TypeName": "Công văn", "TypeCode": "22"}, (), "di"),
        ("outgoing", {"TypeCode": "02", "Mode": "03"}, (), "mat"),
        ("outgoing", {"TypeName": "Bản sao y", "TypeCode": "32", "Mode": "03"}, (), "mat"),
        ("outgoing", {"TypeName": "Bản sao y", "TypeCode": "32"}, (), "sao"),
        ("outgoing", {"TypeName": "Bản trích sao", "TypeCode": "32"}, ("32",), "sao"),
        ("outgoing", {"TypeCode": "01"}, ("01", "02"), "loai-01"),
        ("outgoing", {"TypeCode": "10"}, ("01", "02"), "di"),
    ],
    ids=["incoming", "incoming-classified", "decision", "cong-van", "classified",
         "classified-copy", "copy", "copy-before-own", "own-series", "not-own"],
)
def test_series_for_follows_article_15(
    codes: CodeLists, direction: str, data: dict[str, Any], own: tuple[str, ...], series: str
) -> None:
    """den for all incoming; then mật before copies before a type's own series before di."""
    assert numbering.series_for(direction, data, codes, own) == series


def test_default_notation_is_abbreviation_dash_agency(codes: CodeLists) -> None:
    """A typed document's ký hiệu defaults to QĐ-UBND; a copy's to SY-UBND."""
    assert numbering.default_notation({"TypeCode": "02"}, codes, "UBND") == "QĐ-UBND"
    assert numbering.default_notation({"TypeName": "Bản sao y"}, codes, "HĐND") == "SY-HĐND"


def test_a_cong_van_needs_its_notation_given(codes: CodeLists) -> None:
    """Công văn has no abbreviation: its ký hiệu names the unit, so it must be given."""
    with pytest.raises(ValidationError, match="give CodeNotation") as info:
        numbering.default_notation({"TypeName": "Công văn", "TypeCode": "22"}, codes, "UBND")
    assert info.value.field == "CodeNotation"


# -- counters -------------------------------------------------------------------------------


def test_counters_start_at_one_and_are_separate_per_fond_series_and_year(store: Store) -> None:
    """Each (fond, series, year) counts 1, 2, 3 … on its own."""
    assert [_take(store, "di", 2025) for _ in range(3)] == [1, 2, 3]
    assert _take(store, "den", 2025) == 1
    assert _take(store, "di", 2026) == 1
    assert _take(store, "di", 2025, fond="000.21.09.H49") == 1
    assert _take(store, "di", 2025) == 4
    rows = store.reader().execute(
        "SELECT fond, series, year, last FROM number_counters ORDER BY fond, series, year"
    ).fetchall()
    assert [tuple(r) for r in rows] == [
        (FOND, "den", 2025, 1), (FOND, "di", 2025, 4), (FOND, "di", 2026, 1),
        ("000.21.09.H49", "di", 2025, 1),
    ]


def test_a_number_taken_in_a_failed_transaction_is_given_again(store: Store) -> None:
    """The counter moves inside the writer's transaction: a job that fails leaves no gap."""
    assert _take(store, "di", 2025) == 1

    def fails(txn: Txn) -> None:
        assert numbering.next_number(txn.conn, FOND, "di", 2025) == 2
        raise RuntimeError("the registration failed after taking its number")

    with pytest.raises(RuntimeError, match="failed after taking"):
        store.writer_or_fail().call(fails)
    assert _take(store, "di", 2025) == 2


def test_observing_a_legacy_number_advances_the_counter_but_never_back(store: Store) -> None:
    """A kept number moves the counter past it; a lower one later changes nothing."""
    _observe(store, "den", 2024, 57)
    assert _take(store, "den", 2024) == 58
    _observe(store, "den", 2024, 12)
    assert _take(store, "den", 2024) == 59
    _observe(store, "di", 2024, 3)  # a series with no counter yet starts at the number
    assert _take(store, "di", 2024) == 4


# -- numbers through the store --------------------------------------------------------------


def test_issued_documents_are_numbered_in_their_series(store: Store) -> None:
    """Issuing: a decision and a công văn share di, a copy counts in sao, mật in mat."""
    def issue(**over: object) -> dict[str, Any]:
        draft = store.draft_outgoing(outgoing(**over)).record
        return dict(store.issue_outgoing(draft.id).record.data)

    first = issue()
    letter = issue(TypeName="Công văn", CodeNotation="UBND-VP")
    copy = issue(TypeName="Bản sao y")
    secret = issue(Mode="03")
    assert [(d["Series"], d["CodeNumber"], d["CodeNotation"]) for d in
            (first, letter, copy, secret)] == [
        ("di", "01", "QĐ-UBND"), ("di", "02", "UBND-VP"), ("sao", "01", "SY-UBND"),
        ("mat", "01", "QĐ-UBND"),
    ]
    assert {d["Year"] for d in (first, letter, copy, secret)} == {2025}


def test_a_type_with_its_own_series_is_numbered_apart(
    data_dir: Path, open_store: Callable[..., Store]
) -> None:
    """numbering.own_series_types in appliance.json gives that TT 05 type a series loai-NN."""
    config = load_config(data_dir)
    save_config(data_dir, dataclasses.replace(config, numbering=NumberingConfig(("02",))))
    store = open_store()
    decision = store.draft_outgoing(outgoing()).record
    plan = store.draft_outgoing(outgoing(TypeName="Kế hoạch")).record
    d1 = store.issue_outgoing(decision.id).record.data
    d2 = store.issue_outgoing(plan.id).record.data
    assert (d1["Series"], d1["CodeNumber"]) == ("loai-02", "01")
    assert (d2["Series"], d2["CodeNumber"]) == ("di", "01")


def test_numbers_restart_at_midnight_of_1_january_vietnam_time(
    store: Store, clock: ManualClock
) -> None:
    """At 23:59 on 31 December in Hà Nội (16:59 UTC) a number is the year's; a minute past
    midnight there (still 31 December in UTC) it is the new year's 01."""
    clock.set(dt.datetime(2025, 12, 31, 23, 59, tzinfo=TZ))
    last = store.register_incoming(incoming(CodeNumber="1")).record.data
    clock.set(dt.datetime(2025, 12, 31, 17, 1, tzinfo=dt.UTC))  # 00:01 on 1 January, +07:00
    first = store.register_incoming(incoming(CodeNumber="2")).record.data
    assert (last["Year"], last["ArrivalNumber"]) == (2025, 1)
    assert (first["Year"], first["ArrivalNumber"]) == (2026, 1)


# -- numbering.used -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"Direction": "incoming", "FondCode": "F", "Series": "den", "Year": 2025,
          "ArrivalNumber": 7},
         {"FondCode": "F", "Series": "den", "Year": 2025, "Number": 7}),
        ({"Direction": "outgoing", "FondCode": "F", "Series": "mat", "Year": 2025,
          "CodeNumber": "012"},
         {"FondCode": "F", "Series": "mat", "Year": 2025, "Number": 12}),
    ],
    ids=["arrival-number", "code-number"],
)
def test_number_taken_names_series_year_and_number_only(
    data: dict[str, Any], expected: dict[str, Any]
) -> None:
    """The public trace of a withheld document's number carries no other field."""
    assert numbering.number_taken({**data, "Subject": "bí mật", "Mode": "03"}) == expected


@pytest.mark.parametrize(
    "data",
    [
        {"Direction": "outgoing", "Series": "di", "Year": 2025},  # a draft: no number yet
        {"Direction": "outgoing", "Series": "di", "Year": 2025, "CodeNumber": "12a"},
        {"Direction": "incoming", "Series": "den", "Year": 2025, "ArrivalNumber": "7"},
        {"Direction": "incoming", "Series": "", "Year": 2025, "ArrivalNumber": 7},
        {"Direction": "incoming", "Series": "den", "Year": "2025", "ArrivalNumber": 7},
    ],
    ids=["draft", "not-a-number", "text-arrival", "no-series", "text-year"],
)
def test_number_taken_is_none_without_a_whole_number(data: dict[str, Any]) -> None:
    """No entry is made for a document that holds no well-formed number."""
    assert numbering.number_taken(data) is None
