"""The home page, search, and the hồ sơ pages (Danh mục hồ sơ, open, close, contents)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import web

from appliance import retention
from appliance.accounts import Role
from appliance.errors import LuutruError, NotFoundError
from appliance.search import search as run_search

from . import queries
from .common import (
    audit_list,
    blocking,
    clean,
    cpu_read,
    form_of,
    render,
    services,
    visible_file,
)
from .messages import error_field, error_text
from .params import int_arg, resolved_filters, search_filters
from .render import LIST_FIELDS
from .reqkeys import LANG, me
from .services import Services
from .status import status_summary, today

FILE_FIELDS = (
    "FileCatalog", "FileNotation", "Title", "RetentionRef", "Maintenance", "Rights", "Creator",
    "Heading", "StartDate", "Description", "Keyword",
)


def _home_lists(s: Services, cleared: bool) -> dict[str, Any]:
    conn = s.store.reader()
    d = today(s)
    return {
        "today": queries.todays_registrations(conn, d, cleared),
        "due": queries.due_for_reply(conn, d, cleared),
        "transfer": queries.files_due_for_transfer(s.store, d),
        "day": d,
    }


async def home(request: web.Request) -> web.Response:
    s = services(request)
    user = me(request)
    summary = await blocking(status_summary, s)
    lists = {}
    if user.role is not Role.TECHNICIAN:  # the technician never sees record contents
        lists = await blocking(_home_lists, s, user.cleared)
        shown = [d.id for d in (*lists["today"], *lists["due"])]
        await audit_list(request, "home", list(dict.fromkeys(shown)), via="web")
    return render(request, "home.html", summary=summary, **lists)


async def search(request: web.Request) -> web.Response:
    s = services(request)
    q = request.query.get("q", "")[:200]
    filters = await resolved_filters(request, search_filters(request.query, me(request).cleared))
    page = int_arg(request.query.get("page"), 1, 1, 10_000) or 1
    size = s.config.page_size
    hits = await cpu_read(
        lambda: run_search(
            s.store.reader(), q, filters, size + 1, (page - 1) * size, fields=LIST_FIELDS
        )
    )
    more = len(hits) > size
    await audit_list(request, "search", [h.id for h in hits[:size]], via="web")
    args = {k: v for k, v in request.query.items() if k != "page" and v}
    base = "/search?" + "&".join(f"{k}={quote(v)}" for k, v in args.items())
    return render(
        request, "search.html", q=q, hits=hits[:size], page=page, more=more, base=base,
        filters=filters, types=[i.label for i in s.store.codes["typeName"].items],
        searched=bool(request.query),
    )


# -- hồ sơ ------------------------------------------------------------------------------

async def files(request: web.Request) -> web.Response:
    s = services(request)
    year = int_arg(request.query.get("year"), today(s).year, 1900, 2200) or today(s).year
    return await files_page(request, year)


async def files_page(request: web.Request, year: int, error: str | None = None,
                     status: int = 200, **ctx: Any) -> web.Response:
    """The Danh mục hồ sơ of ``year``: its hồ sơ under the headings of its structure, its
    approval; ``error`` and ``ctx`` when the approval form is shown again."""
    s = services(request)
    rows = await blocking(queries.danh_muc, s.store.reader(), year, me(request).cleared)
    await audit_list(request, "files", [str(r["FileCode"]) for r in rows], year=year, via="web")
    years = sorted(set(await blocking(queries.file_years, s.store.reader())) | {year},
                   reverse=True)
    plan = await blocking(queries.plan_context, s.store, year, rows)
    permanent = sum(1 for f in rows if f.get("Maintenance") == queries.PERMANENT)
    labels = {i.code: i.label for i in s.store.codes["maintenance"].items}
    for f in rows:
        f["period"] = period_of(f, labels)
    return render(request, "files.html", status=status, year=year, years=years,
                  total=len(rows), permanent=permanent, limited=len(rows) - permanent,
                  maintenance=labels, error=error, done=request.query.get("done"),
                  today_vn=today(s).strftime("%d/%m/%Y"), **plan, **ctx)


def period_of(file: dict[str, Any], labels: dict[str, str]) -> str:
    """A hồ sơ's retention as the Danh mục writes it: "Vĩnh viễn" or "05 năm", never "Khác"
    when the number of years is known."""
    if file.get("RetentionYears"):
        return retention.period_label(int(file["RetentionYears"]))
    code = str(file.get("Maintenance") or "")
    return labels.get(code, code)


def _file_options(s: Services, year: int | None = None) -> dict[str, Any]:
    """The choices of the hồ sơ form: kinds of hồ sơ from the retention table (by group, each
    with its period and source), the periods themselves ("05 năm" is code 07 + 5 years), and
    the headings of the year's Danh mục structure."""
    from appliance import fileplan

    table = s.store.retention_table()
    periods = [("01", "Vĩnh viễn")] + [
        (retention.period_label(y), retention.period_label(y)) for y in table.periods()[1:]]
    y = year or today(s).year
    st = fileplan.structure(s.store.reader(), y)
    return {
        "kinds": [(group, [(i.id, f"{i.title} — {i.period}", i.period) for i in items])
                  for group, items in table.groups()],
        "periods": periods,
        "retention_version": table.version,
        "modes": [(i.code, i.label) for i in s.store.codes["mode"].items],
        "year": y,
        # (value, text, the abbreviation the hồ sơ number ends with) of each heading
        "headings": [(h.label, h.label if h.main else "\u2003" + h.label, st.main_of(h).abbr)
                     for h in st.headings] if st else [],
    }


async def file_form(request: web.Request) -> web.Response:
    s = services(request)
    year = int_arg(request.query.get("year"), today(s).year, 1900, 2200)
    return render(request, "file_new.html", values={"FileCatalog": year}, error=None,
                  error_field=None, **_file_options(s, year))


async def file_create(request: web.Request) -> web.Response:
    s = services(request)
    form = await form_of(request)
    values = clean(form, FILE_FIELDS)
    year = int_arg(values.get("FileCatalog"), None, 1900, 2200)
    try:
        rec = await blocking(s.store.open_file, values, me(request).username)
    except LuutruError as exc:
        return render(request, "file_new.html", status=422, values=values,
                      error=error_text(exc, request.get(LANG, "vi")), error_field=error_field(exc),
                      **_file_options(s, year))
    raise web.HTTPSeeOther(f"/files/{quote(rec.data['FileCode'])}?done=opened")


async def _file_page(request: web.Request, code: str, error: str | None = None,
                     status: int = 200) -> web.Response:
    s = services(request)
    rec = await visible_file(request, code)
    code = rec.data["FileCode"]  # as stored (an alias of the agency's code resolves to it)
    await blocking(s.store.audit, "view", me(request).username, "file", rec.id,
                   {"via": "web"})
    docs = await blocking(queries.file_contents, s.store.reader(), code, me(request).cleared)
    labels = {i.code: i.label for i in s.store.codes["maintenance"].items}
    from appliance.archive.publication import released

    published = code in await blocking(released, s.store.reader())
    return render(request, "file.html", status=status, file=rec.data, docs=docs, error=error,
                  maintenance=labels, done=request.query.get("done"), published=published)


async def file(request: web.Request) -> web.Response:
    return await _file_page(request, request.match_info["code"])


async def file_close(request: web.Request) -> web.Response:
    s = services(request)
    code = (await visible_file(request, request.match_info["code"])).data["FileCode"]
    try:
        await blocking(s.store.close_file, code, me(request).username)
    except NotFoundError:
        raise
    except LuutruError as exc:
        return await _file_page(request, code, error=str(exc), status=409)
    raise web.HTTPSeeOther(f"/files/{quote(code)}?done=closed")


HANDLERS = {
    "home": home,
    "search": search,
    "files": files,
    "file_form": file_form,
    "file_create": file_create,
    "file": file,
    "file_close": file_close,
}
