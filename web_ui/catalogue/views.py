"""The public pages: search and browse (HTML and JSON), a hồ sơ, a document, and OAI-PMH.

Thin handlers over ``sync.central`` (the catalogue's queries and ``oai.respond``); every one of
them reads the ``catalogue`` table only.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from appliance.codelists import load_bundled
from appliance.text import fold
from sync.central import oai
from sync.central.catalogue_store import CatalogueRow, SearchQuery

from .common import CATALOGUE, LANG, csrf_for, reader_of, render


def add_routes(app: web.Application) -> None:
    app.router.add_get("/catalogue", search_page)
    app.router.add_get("/catalogue.json", search_json)
    app.router.add_get("/catalogue/hoso/{code}", hoso_page)
    app.router.add_get("/catalogue/tailieu/{id}", document_page)
    app.router.add_get("/oai", oai_endpoint)
    app.router.add_post("/oai", oai_endpoint)


def _int(value: str | None, lo: int, hi: int) -> int | None:
    try:
        n = int(value or "")
    except ValueError:
        return None
    return n if lo <= n <= hi else None


def _query(request: web.Request) -> tuple[SearchQuery, int]:
    cat = request.app[CATALOGUE]
    q = request.query
    page = _int(q.get("page"), 1, 500) or 1
    kind = q.get("kind") if q.get("kind") in ("file", "document") else None
    size = cat.config.page_size
    return SearchQuery(
        folded=fold(q.get("q", ""))[:200], fonds=q.get("fonds") or None,
        year=_int(q.get("year"), 1900, 2200), type_code=q.get("type") or None, kind=kind,
        limit=size, offset=(page - 1) * size,
    ), page


def _type_names(lang: str = "vi") -> dict[str, str]:
    _, lists = load_bundled()
    return {i.code: i.label if lang == "vi" else i.label_en for i in lists["typeName"].items}


async def _search(request: web.Request) -> dict[str, Any]:
    cat = request.app[CATALOGUE]
    query, page = _query(request)

    def run() -> dict[str, Any]:
        with cat.centre.storage.view() as v:
            hits, total = v.catalogue_search(query)
        sets, (years, types) = cat.navigation()
        return {"hits": hits, "total": total, "sets": sets, "years": years, "types": types}

    out = await asyncio.to_thread(run)
    out.update(query=query, page=page, more=out["total"] is None,
               shown=query.offset + len(out["hits"]))
    return out


def public_json(row: CatalogueRow) -> dict[str, Any]:
    """A published record as the JSON routes give it (nothing but its public fields)."""
    meta = json.loads(row.meta_json)
    fonds = meta.pop("_fonds", {})
    return {"id": row.oai_id, "kind": "hoso" if row.kind == "file" else "tailieu",
            "title": row.title, "fonds": {"code": row.fond_code, **fonds},
            "file_code": row.file_code, "year": row.year, "metadata": meta,
            "url": f"/catalogue/{row.oai_id}", "updated": row.datestamp}


async def search_page(request: web.Request) -> web.Response:
    got = await _search(request)
    return render(request, "catalogue.html", q=request.query.get("q", ""),
                  type_names=_type_names(), meta=_meta, **got)


async def search_json(request: web.Request) -> web.Response:
    got = await _search(request)
    q: SearchQuery = got["query"]
    body = {"total": got["total"], "more": got["more"], "page": got["page"],
            "page_size": q.limit,
            "results": [public_json(r) for r in got["hits"]],
            "fonds": [{"code": c, "name": n, "files": k} for c, n, k in got["sets"]]}
    return web.json_response(body, dumps=lambda v: json.dumps(v, ensure_ascii=False))


def _meta(row: CatalogueRow) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(row.meta_json)
    return out


async def _item(request: web.Request, oai_id: str) -> tuple[CatalogueRow, list[CatalogueRow],
                                                            CatalogueRow | None]:
    cat = request.app[CATALOGUE]

    def load() -> tuple[CatalogueRow | None, list[CatalogueRow], CatalogueRow | None]:
        with cat.centre.storage.view() as v:
            row = v.catalogue_item(oai_id)
            if row is None or row.deleted:
                return None, [], None
            kids = v.catalogue_children(row.appliance_id, row.file_code) \
                if row.kind == "file" else []
            parent = v.catalogue_item(f"hoso/{row.file_code}") if row.kind != "file" else None
            return row, kids, parent

    row, kids, parent = await asyncio.to_thread(load)
    if row is None:
        raise web.HTTPNotFound(text="Không có hồ sơ, tài liệu này trong mục lục công bố\n")
    return row, kids, parent


async def hoso_page(request: web.Request) -> web.Response:
    row, kids, _ = await _item(request, f"hoso/{request.match_info['code']}")
    if request.query.get("format") == "json":
        return web.json_response({**public_json(row), "documents": [public_json(k)
                                                                    for k in kids]},
                                 dumps=lambda v: json.dumps(v, ensure_ascii=False))
    return render(request, "hoso.html", row=row, m=_meta(row), kids=kids, meta=_meta,
                  type_names=_type_names())


async def document_page(request: web.Request) -> web.Response:
    row, _, parent = await _item(request, f"tailieu/{request.match_info['id']}")
    if request.query.get("format") == "json":
        return web.json_response(public_json(row),
                                 dumps=lambda v: json.dumps(v, ensure_ascii=False))
    reader = await reader_of(request)
    return render(request, "tailieu.html", row=row, m=_meta(row), parent=parent,
                  type_names=_type_names(), reader=reader, csrf=csrf_for(request))


async def oai_endpoint(request: web.Request) -> web.Response:
    cat = request.app[CATALOGUE]
    args: dict[str, list[str]] = {}
    source = await request.post() if request.method == "POST" else request.query
    for k in source:
        args[k] = [str(v) for v in source.getall(k)]
    base = f"{request.scheme}://{request.host}/oai"
    repo = oai.Repository(cat.config.archive_name, base, cat.config.admin_email,
                          cat.config.oai_namespace, cat.config.oai_page_size)
    body = await asyncio.to_thread(oai.respond, repo, cat.centre.storage.view, args,
                                   cat.centre.clock.now())
    _ = request.get(LANG)
    return web.Response(body=body, content_type="text/xml", charset="utf-8")
