"""Sổ đăng ký văn bản đến / đi: on screen by page, and printed (PDF) or exported (XLSX)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web
from markupsafe import Markup

from appliance import registers as regs

from .common import audit_list, blocking, cpu_read, render, services
from .params import int_arg, register_params
from .register_print import print_register
from .render import escape_all
from .services import Services
from .status import today


async def registers(request: web.Request) -> web.Response:
    s = services(request)
    years = await blocking(regs.register_years, s.store.reader())
    this_year = today(s).year
    if this_year not in years:
        years.insert(0, this_year)
    return render(request, "registers.html", years=years)


@dataclass(frozen=True)
class RegisterPages:
    """A register's cover data and where each of its pages starts."""

    info: regs.Register
    starts: list[tuple[Any, ...]]


def register_pages(s: Services, conn: Any, direction: str, year: int, classified: bool,
                   size: int, compute: bool = True) -> RegisterPages | None:
    """The cover data (count, first/last date and number) and the page starts change only
    with the documents, so they are kept per documents version (web_ui/changes.py); a page
    then costs one indexed read of its rows. Call inside the transaction reading the rows.
    Without ``compute``, None unless they are at hand."""
    fond = s.store.config.org_id

    def read() -> RegisterPages:
        return RegisterPages(
            regs.register_info(conn, fond, s.org_name, direction, year, classified),
            regs.page_starts(conn, fond, direction, year, classified, size),
        )

    return s.documents_cache.get(conn, ("register", direction, year, classified, size),
                                 read if compute else None)


_ROW_FMT = {
    # the trích yếu column links to the document
    "incoming": "<tr>" + "<td>{}</td>" * 5 + '<td><a href="/documents/{}">{}</a></td>'
    + "<td>{}</td>" * 4 + "</tr>\n",
    "outgoing": "<tr>" + "<td>{}</td>" * 2 + '<td><a href="/documents/{}">{}</a></td>'
    + "<td>{}</td>" * 7 + "</tr>\n",
}
_LINK = {"incoming": 5, "outgoing": 2}


def rows_html(direction: str, rows: list[tuple[str, list[str]]]) -> Markup:
    """The register rows as HTML, escaped in one call for the whole page rather than cell by
    cell in Jinja (a page is 50 rows of 11 values)."""
    link = _LINK[direction]
    flat: list[str] = []
    for doc_id, cells in rows:
        flat += cells[:link]
        flat.append(doc_id)
        flat += cells[link:]
    parts = escape_all(flat)
    fmt = _ROW_FMT[direction]
    return Markup("".join(fmt.format(*parts[i:i + 11]) for i in range(0, len(parts), 11)))


async def register(request: web.Request) -> web.Response:
    s = services(request)
    direction, year, classified = register_params(request)
    size = s.config.register_page_size
    page = int_arg(request.query.get("page"), 1, 1, 100_000) or 1
    fond = s.store.config.org_id

    def load(compute: bool) -> tuple[regs.Register, Markup, list[str]] | None:
        with s.store.snapshot() as conn:  # info and rows from one snapshot
            reg = register_pages(s, conn, direction, year, classified, size, compute)
            if reg is None:
                return None
            rows = [] if page > len(reg.starts) else regs.page_rows(
                conn, fond, direction, year, classified, size, reg.starts[page - 1])
        return reg.info, rows_html(direction, rows) if rows else Markup(), [r[0] for r in rows]

    # With the register's pages at hand, a page is one indexed read of at most `size` rows
    # (~0.1 ms): cheaper on the event loop than a hop to a thread and back. Reading the whole
    # year for the cover data goes to a thread.
    loaded = load(False) or await cpu_read(lambda: load(True))
    assert loaded is not None
    info, rows, ids = loaded
    await audit_list(request, "register", ids, register=f"{direction}:{year}", page=page,
                     classified=classified, via="web")
    pages = max(1, -(-info.total // size))
    return render(request, "register.html", reg=info, rows=rows, page=page, pages=pages,
                  classified=classified, direction=direction, year=year)


async def register_print(request: web.Request) -> web.StreamResponse:
    direction, year, classified = register_params(request)
    fmt = request.match_info["fmt"]
    if fmt not in ("pdf", "xlsx"):
        raise web.HTTPNotFound()
    return await print_register(request, direction, year, classified, fmt)


HANDLERS = {
    "registers": registers,
    "register": register,
    "register_print": register_print,
}
