"""Time (appliance/clock.py): ISO 8601 in Vietnam time for the log, dd/mm/yyyy for people, and
dates parsed strictly from either form."""

from __future__ import annotations

import datetime as dt

import pytest

from appliance.clock import TZ, ManualClock, SystemClock, iso, parse_date, vn_date
from appliance.errors import ValidationError


def test_iso_is_vietnam_time_with_milliseconds() -> None:
    """Any aware time is shown at +07:00 to the millisecond."""
    utc = dt.datetime(2025, 12, 31, 17, 30, 15, 120_999, tzinfo=dt.UTC)
    assert iso(utc) == "2026-01-01T00:30:15.120+07:00"


def test_clocks_are_aware_and_in_vietnam_time() -> None:
    """SystemClock and ManualClock both answer in Asia/Ho_Chi_Minh; the manual one moves only
    when told."""
    assert SystemClock().now().utcoffset() == dt.timedelta(hours=7)
    m = ManualClock(dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    assert m.now() == dt.datetime(2025, 1, 1, 7, 0, tzinfo=TZ) and m.now().tzinfo is TZ
    m.advance(90)
    assert m.now() == dt.datetime(2025, 1, 1, 7, 1, 30, tzinfo=TZ)
    m.set(dt.datetime(2030, 6, 1, 12, 0, tzinfo=TZ))
    assert m.now().year == 2030


@pytest.mark.parametrize(
    ("text", "date"),
    [
        ("2025-09-03", dt.date(2025, 9, 3)),
        ("03/09/2025", dt.date(2025, 9, 3)),
        ("3/9/2025", dt.date(2025, 9, 3)),
        ("03.09.2025", dt.date(2025, 9, 3)),
        ("03-09-2025", dt.date(2025, 9, 3)),
        (" 29/02/2024 ", dt.date(2024, 2, 29)),
    ],
)
def test_dates_are_read_in_either_form(text: str, date: dt.date) -> None:
    """YYYY-MM-DD, or day first as on paper registers, with /, . or -."""
    assert parse_date(text) == date


def test_date_and_datetime_values_pass_through() -> None:
    """A date is kept; a datetime becomes its date in Vietnam time (not UTC)."""
    assert parse_date(dt.date(2025, 1, 2)) == dt.date(2025, 1, 2)
    late = dt.datetime(2025, 12, 31, 18, 0, tzinfo=dt.UTC)
    assert parse_date(late) == dt.date(2026, 1, 1)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("09/2025", "is not a date"),
        ("2025/09/03", "is not a date"),
        ("3 tháng 9 năm 2025", "is not a date"),
        ("", "is not a date"),
        ("31/02/2025", "is not a valid date"),
        ("29/02/2025", "is not a valid date"),
        ("2025-13-01", "is not a valid date"),
        ("00/01/2025", "is not a valid date"),
    ],
)
def test_malformed_dates_are_refused_with_their_field(text: str, match: str) -> None:
    """Neither form, or a day that does not exist, is a ValidationError for the field."""
    with pytest.raises(ValidationError, match=match) as info:
        parse_date(text, "IssuedDate")
    assert info.value.field == "IssuedDate"


def test_vn_date_is_day_first_with_leading_zeros() -> None:
    """dd/mm/yyyy from a date or from either text form."""
    assert vn_date(dt.date(2025, 9, 3)) == "03/09/2025"
    assert vn_date("2025-09-03") == vn_date("3/9/2025") == "03/09/2025"
