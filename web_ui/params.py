"""Reading what a request asks for (query and path parameters) into the library's terms; shared
by the pages and the JSON API."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from appliance import registers as regs
from appliance.agency_ids import file_filter
from appliance.search import Filters

from .common import blocking, services
from .errors import ForbiddenError
from .reqkeys import me


def int_arg(
    value: str | None, default: int | None = None, lo: int = 0, hi: int = 10**9
) -> int | None:
    if value is None or value == "":
        return default
    try:
        n = int(value)
    except ValueError:
        return default
    return n if lo <= n <= hi else default


def search_filters(query: Any, cleared: bool) -> Filters:
    direction = query.get("direction") or None
    if direction not in (None, "incoming", "outgoing"):
        direction = None
    return Filters(
        year=int_arg(query.get("year"), None, 1900, 2200),
        type_name=(query.get("type") or None),
        direction=direction,
        fond=(query.get("fond") or None),
        file_code=(query.get("file") or None),
        include_classified=cleared,
    )


async def resolved_filters(request: web.Request, filters: Filters) -> Filters:
    """``filters`` with its mã hồ sơ as stored: one written with another of the agency's
    codes (before or after a re-keying) finds the same hồ sơ."""
    if not filters.file_code:
        return filters
    store = services(request).store
    code = await blocking(file_filter, store.reader(), store.config, filters.file_code)
    return dataclasses.replace(filters, file_code=code)


@dataclass(frozen=True)
class RegisterAsk:
    """Which register a request asks for: its kind, the period of the year, mật or not."""

    kind: str
    period: regs.Period
    classified: bool

    @property
    def year(self) -> int:
        return self.period.year

    def query(self) -> str:
        """The query string asking for the same period and series ("" for the whole year)."""
        parts = [self.period.query(), "classified=1" if self.classified else ""]
        return "&".join(p for p in parts if p)


def register_params(request: web.Request) -> RegisterAsk:
    """The register of ``/registers/{kind}/{year}?from=&to=&classified=``: an unknown kind or
    year is not found; a period outside the year is refused (422, naming from or to)."""
    kind = request.match_info["kind"]
    if kind not in regs.KINDS:
        raise web.HTTPNotFound()
    year = int_arg(request.match_info["year"], None, 1900, 2200)
    if year is None:
        raise web.HTTPNotFound()
    period = regs.Period.of(year, request.query.get("from") or None,
                            request.query.get("to") or None)
    classified = request.query.get("classified") == "1"
    if classified and not me(request).cleared:
        raise ForbiddenError("Sổ văn bản mật chỉ dành cho người được phép (not cleared).")
    return RegisterAsk(kind, period, classified)
