"""Reading what a request asks for (query and path parameters) into the library's terms; shared
by the pages and the JSON API."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from appliance import registers as regs
from appliance.search import Filters

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


def register_params(request: web.Request) -> tuple[str, int, bool]:
    direction = request.match_info["direction"]
    if direction not in regs.DIRECTIONS:
        raise web.HTTPNotFound()
    year = int_arg(request.match_info["year"], None, 1900, 2200)
    if year is None:
        raise web.HTTPNotFound()
    classified = request.query.get("classified") == "1"
    if classified and not me(request).cleared:
        raise ForbiddenError("Sổ văn bản mật chỉ dành cho người được phép (not cleared).")
    return direction, year, classified
