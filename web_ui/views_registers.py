"""The registers of Phụ lục IV: on screen by page, and printed (PDF) or exported (XLSX), for a
year or any period of it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web
from markupsafe import Markup

from appliance import registers as regs

from .common import audit_list, blocking, cpu_read, render, services
from .params import RegisterAsk, int_arg, register_params
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
    year = int_arg(request.query.get("year"), this_year, 1900, 2200) or this_year
    if year not in years:
        years.append(year)
    return render(request, "registers.html", years=sorted(years, reverse=True), year=year,
                  kinds=[(k, regs.LAYOUTS[k].title) for k in regs.KINDS],
                  periods=periods(year))


def periods(year: int) -> list[tuple[str, str]]:
    """Links to the quarters of a year (label, query); a month or any range is typed."""
    return [(f"Q{q}", regs.quarter(year, q).query()) for q in range(1, 5)]


@dataclass(frozen=True)
class RegisterPages:
    """A register's cover data and where each of its pages starts."""

    info: regs.Register
    starts: list[tuple[Any, ...]]


def register_pages(s: Services, conn: Any, ask: RegisterAsk, size: int,
                   compute: bool = True) -> RegisterPages | None:
    """The cover data (count, first/last date and number) and the page starts change only
    with the documents, so they are kept per documents version (web_ui/changes.py); a page
    then costs one indexed read of its rows. Call inside the transaction reading the rows.
    Without ``compute``, None unless they are at hand."""
    fond = s.store.config.fond_code

    def read() -> RegisterPages:
        return RegisterPages(
            regs.register_info(conn, fond, s.org_name, ask.kind, ask.period, ask.classified),
            regs.page_starts(conn, fond, ask.kind, ask.period, ask.classified, size),
        )

    key = ("register", ask.kind, ask.period, ask.classified, size)
    return s.documents_cache.get(conn, key, read if compute else None)


_FORMATS: dict[str, str] = {}


def _row_format(kind: str) -> str:
    """One row of the register's table; the link column links to the document."""
    fmt = _FORMATS.get(kind)
    if fmt is None:
        lay = regs.LAYOUTS[kind]
        cells = ["<td>{}</td>"] * len(lay.columns)
        cells[lay.link] = '<td><a href="/documents/{}">{}</a></td>'
        fmt = _FORMATS[kind] = "<tr>" + "".join(cells) + "</tr>\n"
    return fmt


def rows_html(kind: str, rows: list[regs.Row]) -> Markup:
    """The register rows as HTML, escaped in one call for the whole page rather than cell by
    cell in Jinja (a page is 50 rows of 11 values)."""
    link = regs.LAYOUTS[kind].link
    width = len(regs.LAYOUTS[kind].columns) + 1
    flat: list[str] = []
    for doc_id, raw in rows:
        cells = regs.display(kind, raw)
        flat += cells[:link]
        flat.append(doc_id)
        flat += cells[link:]
    parts = escape_all(flat)
    fmt = _row_format(kind)
    return Markup("".join(fmt.format(*parts[i:i + width])
                          for i in range(0, len(parts), width)))


async def register(request: web.Request) -> web.Response:
    s = services(request)
    ask = register_params(request)
    size = s.config.register_page_size
    page = int_arg(request.query.get("page"), 1, 1, 100_000) or 1
    fond = s.store.config.fond_code
    day = today(s)

    def load(compute: bool) -> tuple[regs.Register, Markup, list[str]] | None:
        with s.store.snapshot() as conn:  # info and rows from one snapshot
            reg = register_pages(s, conn, ask, size, compute)
            if reg is None:
                return None
            rows = [] if page > len(reg.starts) else regs.rows(
                conn, fond, ask.kind, ask.period, ask.classified, day, size,
                reg.starts[page - 1])
        return reg.info, rows_html(ask.kind, rows) if rows else Markup(), [r[0] for r in rows]

    # With the register's pages at hand, a page is one indexed read of at most `size` rows
    # (~0.1 ms): cheaper on the event loop than a hop to a thread and back. Reading the whole
    # year for the cover data goes to a thread.
    loaded = load(False) or await cpu_read(lambda: load(True))
    assert loaded is not None
    info, rows, ids = loaded
    await audit_list(request, "register", ids, register=f"{ask.kind}:{ask.year}", page=page,
                     period=ask.period.to_json(), classified=ask.classified, via="web")
    pages = max(1, -(-info.total // size))
    q = ask.query()
    return render(request, "register.html", reg=info, rows=rows, page=page, pages=pages,
                  classified=ask.classified, kind=ask.kind, year=ask.year, period=ask.period,
                  q=q, amp=("&" + q) if q else "", periods=periods(ask.year))


async def register_print(request: web.Request) -> web.StreamResponse:
    ask = register_params(request)
    fmt = request.match_info["fmt"]
    if fmt not in ("pdf", "xlsx"):
        raise web.HTTPNotFound()
    return await print_register(request, ask, fmt)


HANDLERS = {
    "registers": registers,
    "register": register,
    "register_print": register_print,
}
