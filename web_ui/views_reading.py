"""Reading a record on screen under a use request (đọc tại chỗ): the page the reader is shown,
and its pages as images, each drawn from the record with the reading mark in it (the reader,
the request's number, the time: ``appliance/readmark.py``). The record's file itself is never
sent: a reader in the reading room gets pictures that name them, not a PDF to save. Thin
handlers over ``appliance.archive.reading``; each opening of the page is a logged view.
"""

from __future__ import annotations

import io
from typing import Any

from aiohttp import web

from appliance.archive import reading

from .common import blocking, render, services
from .params import int_arg
from .previews import page_png
from .reqkeys import me
from .views_use import _call, actor_of

SIDE = 1400  # pixels of a page's longer side: an A4 page at about 120 dpi, legible on screen


def _target(request: web.Request) -> tuple[str, int]:
    item = int_arg(request.match_info["item"], None, 1, 10_000)
    if item is None:
        raise web.HTTPNotFound()
    return request.match_info["id"], item - 1


def _pages(pdf: bytes) -> int:
    import pikepdf

    with pikepdf.open(io.BytesIO(pdf)) as p:
        return len(p.pages)


async def use_read(request: web.Request) -> web.Response:
    s = services(request)
    rid, idx = _target(request)

    def run() -> tuple[reading.Reading, int]:
        got = reading.open_reading(s.store, actor_of(request), rid, idx)
        return got, _pages(got.pdf)

    got, pages = await _call(run)
    await blocking(s.store.audit, "view", me(request).username, "document", got.document,
                   {"use_request": rid, "item": idx + 1, "via": "reading"})
    resp = render(request, "use_read.html", req=got.request, item=idx + 1, title=got.title,
                  mark=got.mark.line(), pages=range(1, pages + 1))
    resp.headers["Cache-Control"] = "no-store"
    return resp


async def use_read_page(request: web.Request) -> web.Response:
    s = services(request)
    rid, idx = _target(request)
    page = int_arg(request.match_info["page"], None, 1, 100_000)
    if page is None:
        raise web.HTTPNotFound()
    got: Any = await _call(reading.open_reading, s.store, actor_of(request), rid, idx)
    if page > await blocking(_pages, got.pdf):
        raise web.HTTPNotFound()
    body = await page_png(request.app, got.pdf, page, SIDE, s.config.preview_timeout)
    return web.Response(body=body, content_type="image/png", headers={
        "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})


HANDLERS = {"use_read": use_read, "use_read_page": use_read_page}
