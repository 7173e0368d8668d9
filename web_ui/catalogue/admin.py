"""The archivists' side of the catalogue, behind the dashboard's sign-in: readers' requests to
approve or refuse (approving makes the marked, signed copy), and records withheld from
publication (personal data)."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from aiohttp import web

from appliance.clock import TZ
from appliance.errors import LuutruError
from sync.central import catalogue, readers

from ..central.auth import COOKIE, DASH_USER, DASH_USERS
from .common import CATALOGUE, render


def add_routes(app: web.Application) -> None:
    app.router.add_get("/online-requests", requests_page)
    app.router.add_post("/online-requests/{id}", decide)
    app.router.add_get("/withheld", withheld_page)
    app.router.add_post("/withheld", withheld_change)


def _csrf(request: web.Request) -> str:
    return request.app[DASH_USERS].csrf_token(request.cookies.get(COOKIE, ""))


def _check(request: web.Request, form: Any) -> None:
    if not request.app[DASH_USERS].check_csrf(request.cookies.get(COOKIE, ""),
                                              str(form.get("csrf_token", ""))):
        raise web.HTTPForbidden(text="CSRF token missing or wrong\n")


async def requests_page(request: web.Request, error: str | None = None,
                        status: int = 200) -> web.Response:
    cat = request.app[CATALOGUE]

    def load() -> Any:
        with cat.centre.storage.view() as v:
            return [(r, v.catalogue_item(r.oai_id), v.reader(r.username))
                    for r in v.reader_requests()]

    rows = await asyncio.to_thread(load)
    return render(request, "admin_requests.html", status, rows=rows, csrf=_csrf(request),
                  user=request[DASH_USER], error=error, status_vi=readers.STATUS_VI,
                  signing=cat.open_key is not None)


async def decide(request: web.Request) -> web.Response:
    cat = request.app[CATALOGUE]
    form = await request.post()
    _check(request, form)
    approve = form.get("decision") == "approve"

    def run() -> None:
        if not approve:
            readers.decide(cat.centre, request.match_info["id"], False, request[DASH_USER],
                           str(form.get("note", "")), None)
            return
        if cat.open_key is None:
            readers.decide(cat.centre, request.match_info["id"], True, request[DASH_USER],
                           str(form.get("note", "")), None)
            return
        with cat.open_key() as key:
            maker = readers.copy_maker(cat.config.archive_name, key,
                                       lambda: dt.datetime.now(TZ).date())
            readers.decide(cat.centre, request.match_info["id"], True, request[DASH_USER],
                           str(form.get("note", "")), maker)

    try:
        await asyncio.to_thread(run)
    except LuutruError as exc:
        return await requests_page(request, str(exc), 400)
    raise web.HTTPSeeOther("/online-requests")


async def withheld_page(request: web.Request, error: str | None = None,
                        status: int = 200) -> web.Response:
    cat = request.app[CATALOGUE]

    def load() -> Any:
        with cat.centre.storage.view() as v:
            return v.withheld_list(), {a.id: a for a in v.appliances()}

    rows, apps = await asyncio.to_thread(load)
    return render(request, "admin_withheld.html", status, rows=rows, apps=apps,
                  csrf=_csrf(request), user=request[DASH_USER], error=error)


async def withheld_change(request: web.Request) -> web.Response:
    cat = request.app[CATALOGUE]
    form = await request.post()
    _check(request, form)
    oai_id = str(form.get("id", "")).strip()
    remove = form.get("action") == "release"

    def run() -> None:
        c = cat.centre
        with c.storage.transaction() as tx:
            row = tx.catalogue_item(oai_id)
            if row is None:
                raise LuutruError(f"Không có {oai_id} trong mục lục")
            app = tx.appliance(row.appliance_id)
            assert app is not None
            kind = "file" if row.kind == "file" else "document"
            key = row.file_code if kind == "file" else str(row.doc_id)
            if remove:
                catalogue.release_withheld(tx, app, kind, key, c.now())
            else:
                try:
                    catalogue.withhold(tx, app, kind, key, str(form.get("reason", "")),
                                       request[DASH_USER], c.now())
                except ValueError:
                    raise LuutruError("Cần ghi lý do không công bố") from None

    try:
        await asyncio.to_thread(run)
    except LuutruError as exc:
        return await withheld_page(request, str(exc), 400)
    raise web.HTTPSeeOther("/withheld")
