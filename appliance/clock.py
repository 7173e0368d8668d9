"""Time in Asia/Ho_Chi_Minh: ISO 8601 with +07:00 for the log, dd/mm/yyyy for people."""

from __future__ import annotations

import datetime as dt
import re
import threading
from typing import Protocol
from zoneinfo import ZoneInfo

from .errors import ValidationError

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
_VN_DATE = re.compile(r"^\s*(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})\s*$")
_ISO_DATE = re.compile(r"^\s*(\d{4})-(\d{2})-(\d{2})\s*$")


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """The current time, timezone-aware, in Asia/Ho_Chi_Minh."""
        ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(TZ)


class ManualClock:
    """A clock tests move by hand (year rollover, wrong clocks)."""

    def __init__(self, start: dt.datetime) -> None:
        self._now = start.astimezone(TZ)
        self._lock = threading.Lock()

    def now(self) -> dt.datetime:
        with self._lock:
            return self._now

    def set(self, when: dt.datetime) -> None:
        with self._lock:
            self._now = when.astimezone(TZ)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += dt.timedelta(seconds=seconds)


def iso(when: dt.datetime) -> str:
    """ISO 8601 in Vietnam time with milliseconds, e.g. 2025-07-01T09:30:15.120+07:00."""
    return when.astimezone(TZ).isoformat(timespec="milliseconds")


def parse_date(value: str | dt.date, field: str | None = None) -> dt.date:
    """Accept YYYY-MM-DD or dd/mm/yyyy (the paper registers' form)."""
    if isinstance(value, dt.datetime):
        return value.astimezone(TZ).date()
    if isinstance(value, dt.date):
        return value
    text = str(value)
    m = _ISO_DATE.match(text)
    if m:
        y, mo, d = int(m[1]), int(m[2]), int(m[3])
    else:
        m = _VN_DATE.match(text)
        if not m:
            raise ValidationError(f"'{text}' is not a date (use dd/mm/yyyy or YYYY-MM-DD)", field,
                                  msgid="%(label)s: '%(value)s' is not a date (dd/mm/yyyy).",
                                  value=text)
        d, mo, y = int(m[1]), int(m[2]), int(m[3])
    try:
        return dt.date(y, mo, d)
    except ValueError as exc:
        raise ValidationError(f"'{text}' is not a valid date: {exc}", field,
                              msgid="%(label)s: there is no day %(value)s.",
                              value=f"{d:02d}/{mo:02d}/{y:04d}") from exc


def vn_date(value: dt.date | str) -> str:
    """dd/mm/yyyy, as printed on registers."""
    d = parse_date(value) if isinstance(value, str) else value
    return f"{d.day:02d}/{d.month:02d}/{d.year:04d}"
