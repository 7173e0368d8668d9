"""Use of the archive at the commune: requests (phiếu yêu cầu), approval, delivery, and the
register of use, as pages and as /api/v1. Thin handlers over ``appliance.archive.use``.

Who may do what is the route table (web_ui/permissions.py: the approvers are configurable)
and the library's rules, fed with what the web knows of the user (``actor_of``): clearance
(restricted and classified documents are offered only to cleared roles), approval right,
the desk (văn thư, lưu trữ).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from appliance.archive import use
from appliance.archive.use import Actor, CopyMaker, Form, Level
from appliance.errors import LuutruError, ValidationError
from appliance.search import Filters
from appliance.search import search as run_search

from . import permissions
from . import use_register as reg
from .common import blocking, cpu_read, form_of, render, services
from .errors import ForbiddenError
from .params import int_arg
from .reqkeys import me
from .status import today

# The forms of use as the pages name them (message ids of web_ui/locale).
FORMS = {Form.READ: "Read on the spot", Form.COPY: "Copy", Form.CERTIFIED: "Certified copy"}


def actor_of(request: web.Request) -> Actor:
    user = me(request)
    return Actor(user.username, cleared=user.cleared,
                 approver=user.role in services(request).use_approvers,
                 desk=user.role in permissions.USE_DESK)


async def _call(fn: Any, *args: Any, **kw: Any) -> Any:
    try:
        return await blocking(fn, *args, **kw)
    except use.UseForbidden as exc:
        raise ForbiddenError(str(exc)) from exc


def _candidates(request: web.Request, q: str, preset: list[str]) -> list[dict[str, Any]]:
    """Documents to pick for a request: a search, and any named by ?doc=; restricted and
    classified ones only for a cleared user (never offered otherwise)."""
    s = services(request)
    a = actor_of(request)
    conn = s.store.reader()
    ids: list[str] = list(preset)
    if q.strip():
        ids += [h.id for h in run_search(conn, q, Filters(include_classified=a.cleared),
                                         limit=30)]
    out = []
    for doc_id in dict.fromkeys(ids):
        rec = s.store.find_one("document", id=doc_id)
        if rec is None:
            continue
        level = use.level_of(conn, doc_id)
        if level is not Level.PUBLIC and not a.cleared:
            continue
        out.append({"id": doc_id, "data": rec.data, "level": level.value,
                    "code": use.archival_code(rec.data)})
    return out


# -- pages -----------------------------------------------------------------------------------

async def use_list(request: web.Request) -> web.Response:
    s = services(request)
    year = int_arg(request.query.get("year"), today(s).year, 1900, 2200)
    status = request.query.get("status") or None
    reqs = await blocking(use.list_requests, s.store.reader(), actor_of(request), year, status)
    return render(request, "use_list.html", reqs=reqs, year=year, state=status or "",
                  labels=use.STATUS_LABELS, purposes=use.PURPOSES)


async def use_form(request: web.Request, error: str | None = None, field: str | None = None,
                   values: Mapping[str, Any] | None = None, status: int = 200) -> web.Response:
    values = dict(values or {})
    q = str(values.get("q", request.query.get("q", "")))
    preset = [str(d) for d in values.get("docs", request.query.getall("doc", []))]
    docs = await cpu_read(lambda: _candidates(request, q, preset))
    return render(request, "use_new.html", status, values=values, q=q, docs=docs,
                  chosen=set(preset), error=error, field=field, purposes=use.PURPOSES,
                  forms=FORMS, desk=actor_of(request).desk)


def _raw_from_form(form: Mapping[str, Any]) -> dict[str, Any]:
    docs = [d for d in str(form.get("docs", "")).split(",") if d]
    docs += [k.removeprefix("pick_") for k in form if k.startswith("pick_")]
    items = [{"document": d, "form": str(form.get(f"form_{d}", "read"))}
             for d in dict.fromkeys(docs)]
    reader = {k: str(form.get(f"reader_{k}", "")) for k in ("kind", *use.READER_FIELDS)}
    return {"purpose": str(form.get("purpose", "")),
            "purpose_code": str(form.get("purpose_code", "05")), "reader": reader,
            "items": items}


async def use_create(request: web.Request) -> web.Response:
    form = await form_of(request)
    raw = _raw_from_form(form)
    if form.get("search") is not None:  # the form's own search button: show candidates
        values = {**form, "docs": [i["document"] for i in raw["items"]]}
        return await use_form(request, values=values)
    try:
        req = await _call(use.create_request, services(request).store, actor_of(request), raw)
    except (ValidationError, LuutruError) as exc:
        if isinstance(exc, ForbiddenError):
            raise
        values = {**form, "docs": [i["document"] for i in raw["items"]]}
        return await use_form(request, str(exc), getattr(exc, "field", None), values, 422)
    raise web.HTTPSeeOther(f"/use/{req['id']}")


async def _visible(request: web.Request) -> dict[str, Any]:
    s = services(request)
    req = await blocking(use.get_request, s.store.reader(), request.match_info["id"])
    if not use.visible(req, actor_of(request)):
        raise web.HTTPNotFound()
    return dict(req)


async def use_request(request: web.Request) -> web.Response:
    req = await _visible(request)
    a = actor_of(request)
    approved = set((req["decision"] or {}).get("items", ()))
    return render(request, "use_request.html", req=req, approved=approved, actor=a,
                  labels=use.STATUS_LABELS, purposes=use.PURPOSES, forms=FORMS)


async def use_approve(request: web.Request) -> web.Response:
    form = await form_of(request)
    items = [int(k.removeprefix("item_")) for k in form if k.startswith("item_")
             and k.removeprefix("item_").isdigit()]
    await _call(use.decide, services(request).store, actor_of(request), request.match_info["id"],
                True, str(form.get("note", "")), items)
    raise web.HTTPSeeOther(f"/use/{request.match_info['id']}")


async def use_refuse(request: web.Request) -> web.Response:
    form = await form_of(request)
    await _call(use.decide, services(request).store, actor_of(request), request.match_info["id"],
                False, str(form.get("note", "")))
    raise web.HTTPSeeOther(f"/use/{request.match_info['id']}")


async def _deliver(request: web.Request, item: Any, medium: str) -> web.StreamResponse:
    s = services(request)
    a = actor_of(request)
    idx = int_arg(str(item), None, 0, 10_000)
    if idx is None:
        raise ValidationError("item is the number of an item of the request", "item")

    def run() -> use.Delivered:
        req = use.get_request(s.store.reader(), request.match_info["id"])
        if not use.visible(req, a):
            raise web.HTTPNotFound()
        form = req["items"][idx]["form"] if idx < len(req["items"]) else "read"
        if form != Form.CERTIFIED:
            return use.deliver(s.store, a, req["id"], idx, medium, CopyMaker(s.store))
        with s.open_agency_key() as key:
            return use.deliver(s.store, a, req["id"], idx, medium,
                               CopyMaker(s.store, key, s.org_name))

    got: use.Delivered = await _call(run)
    if got.pdf is None:  # read on screen: the marked pages (views_reading.py)
        where = f"/use/{got.request['id']}/read/{idx + 1}"
        if request.path.startswith("/api/"):
            return web.json_response({"request": got.request, "read": where})
        raise web.HTTPSeeOther(where)
    disposition = "inline" if medium == "paper" else "attachment"
    return web.Response(body=got.pdf, content_type="application/pdf", headers={
        "Content-Disposition": f'{disposition}; filename="{got.filename}"'})


async def use_deliver(request: web.Request) -> web.StreamResponse:
    form = await form_of(request)
    return await _deliver(request, form.get("item"), str(form.get("medium", "")))


def _year(request: web.Request) -> int:
    year = int_arg(request.match_info["year"], None, 1900, 2200)
    if year is None:
        raise web.HTTPNotFound()
    return year


async def use_register(request: web.Request) -> web.Response:
    s = services(request)
    year = _year(request)
    a = actor_of(request)
    rows = await blocking(use.register_rows, s.store.reader(), year, a)
    stats = await blocking(use.statistics, s.store.reader(), year, a)
    return render(request, "use_register.html", year=year, rows=rows, stats=stats,
                  columns=use.REGISTER_COLUMNS, stat_lines=reg.stat_lines(stats))


async def use_register_print(request: web.Request) -> web.Response:
    s = services(request)
    year = _year(request)
    fmt = request.match_info["fmt"]
    if fmt not in ("pdf", "xlsx"):
        raise web.HTTPNotFound()
    user = me(request)
    a = actor_of(request)

    def build() -> tuple[int, bytes]:
        rows = use.register_rows(s.store.reader(), year, a)
        stats = use.statistics(s.store.reader(), year, a)
        if fmt == "pdf":
            return len(rows), reg.render_pdf(s.org_name, year, rows, stats, s.store.clock.now(),
                                             user.username)
        return len(rows), reg.render_xlsx(s.org_name, year, rows, stats)

    n, body = await blocking(build)
    await blocking(s.store.audit, "print" if fmt == "pdf" else "download", user.username,
                   "register", f"use:{year}", {"format": fmt, "rows": n})
    ctype = ("application/pdf" if fmt == "pdf" else
             "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    return web.Response(body=body, content_type=ctype, headers={
        "Content-Disposition": f'{"inline" if fmt == "pdf" else "attachment"}; '
                               f'filename="so-khai-thac-{year}.{fmt}"'})


# -- publication in the province's catalogue ---------------------------------------------------

async def file_publish(request: web.Request) -> web.Response:
    from urllib.parse import quote

    from appliance.archive import publication

    from .common import visible_file
    from .views_records import _file_page

    code = request.match_info["code"]
    await visible_file(request, code)
    form = await form_of(request)
    unpublish = request.path.endswith("/unpublish")
    try:
        if unpublish:
            await blocking(publication.unpublish, services(request).store, code,
                           str(form.get("reason", "")), me(request).username)
        else:
            await blocking(publication.publish, services(request).store, code,
                           str(form.get("ref", "")), me(request).username)
    except LuutruError as exc:
        return await _file_page(request, code, error=str(exc), status=422)
    done = "unpublished" if unpublish else "published"
    raise web.HTTPSeeOther(f"/files/{quote(code)}?done={done}")


# -- JSON API --------------------------------------------------------------------------------

async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ValidationError("the body is not JSON", "body") from None
    if not isinstance(body, dict):
        raise ValidationError("the body is a JSON object", "body")
    return body


async def api_use_list(request: web.Request) -> web.Response:
    s = services(request)
    raw_year = request.query.get("year")
    year = int_arg(raw_year, None, 1900, 2200)
    if raw_year is not None and year is None:
        raise ValidationError("year is a year from 1900 to 2200", "year")
    status = request.query.get("status")
    if status not in (None, "pending", "approved", "refused"):
        raise ValidationError("status is pending, approved or refused", "status")
    reqs = await blocking(use.list_requests, s.store.reader(), actor_of(request), year, status)
    return web.json_response({"items": reqs})


async def api_use_create(request: web.Request) -> web.Response:
    body = await _body(request)
    for k in ("reader", "items"):
        if k in body and not isinstance(body[k], dict if k == "reader" else list):
            raise ValidationError(f"{k} has the wrong type", k)
    req = await _call(use.create_request, services(request).store, actor_of(request), body)
    return web.json_response(req, status=201)


async def api_use_request(request: web.Request) -> web.Response:
    return web.json_response(await _visible(request))


async def _api_decide(request: web.Request, approve: bool) -> web.Response:
    body = await _body(request)
    items = body.get("items")
    if items is not None and not (isinstance(items, list) and all(
            isinstance(i, int) and not isinstance(i, bool) for i in items)):
        raise ValidationError("items is a list of item numbers", "items")
    note = body.get("note", "")
    if not isinstance(note, str):
        raise ValidationError("note is text", "note")
    await _visible(request)
    req = await _call(use.decide, services(request).store, actor_of(request),
                      request.match_info["id"], approve, note, items)
    return web.json_response(req)


async def api_use_approve(request: web.Request) -> web.Response:
    return await _api_decide(request, True)


async def api_use_refuse(request: web.Request) -> web.Response:
    return await _api_decide(request, False)


async def api_use_deliver(request: web.Request) -> web.StreamResponse:
    body = await _body(request)
    item, medium = body.get("item"), body.get("medium")
    if not isinstance(item, int) or isinstance(item, bool) or not isinstance(medium, str):
        raise ValidationError("item (a number) and medium (screen, digital, paper)", "item")
    return await _deliver(request, item, medium)


async def api_use_register(request: web.Request) -> web.Response:
    s = services(request)
    year = _year(request)
    a = actor_of(request)
    rows = await blocking(use.register_rows, s.store.reader(), year, a)
    stats = await blocking(use.statistics, s.store.reader(), year, a)
    await blocking(s.store.audit, "list", a.username, "register", f"use:{year}",
                   {"rows": len(rows)})
    return web.json_response({"year": year, "columns": list(use.REGISTER_COLUMNS),
                              "rows": rows, "statistics": stats})


HANDLERS = {
    "file_publish": file_publish,
    "file_unpublish": file_publish,
    "use_list": use_list,
    "use_form": use_form,
    "use_create": use_create,
    "use_request": use_request,
    "use_approve": use_approve,
    "use_refuse": use_refuse,
    "use_deliver": use_deliver,
    "use_register": use_register,
    "use_register_print": use_register_print,
    "api_use_list": api_use_list,
    "api_use_create": api_use_create,
    "api_use_request": api_use_request,
    "api_use_approve": api_use_approve,
    "api_use_refuse": api_use_refuse,
    "api_use_deliver": api_use_deliver,
    "api_use_register": api_use_register,
}
