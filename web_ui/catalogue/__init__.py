"""The province's public catalogue: a part of the centre's application of its own.

Its own routes (``/catalogue``, ``/catalogue.json``, ``/oai``, ``/reader/…``), templates,
stylesheet and rate limits; no sign-in is needed to browse, search or harvest. Readers sign up
and sign in (``/reader``) to ask for copies; the archivists decide in the dashboard
(``/online-requests``, ``/withheld``: behind the dashboard's own sign-in). Every page reads
the ``catalogue`` table only, which holds only what ``sync.central.catalogue.publishable``
passed. Vietnamese by default, ``?lang=en`` for English (gettext, web_ui/locale). No script.

``setup_catalogue(app, centre, …)`` mounts it on the centre's application, beside the
dashboard (today in sync/central/server.py; the lead moves the assembly to luutru/).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from sync.central.centre import Centre

from ..central.auth import PUBLIC_PARTS, client_address
from ..throttle import Throttle
from . import admin, reader_views, views
from .common import (
    CATALOGUE,
    CSP,
    HERE,
    LANG,
    PUBLIC_PREFIXES,
    Catalogue,
    CatalogueConfig,
    KeyOpener,
    _secret,
    default_key_opener,
    make_envs,
)
from .limits import Buckets

__all__ = ["CATALOGUE", "Catalogue", "CatalogueConfig", "setup_catalogue"]


def setup_catalogue(app: web.Application, centre: Centre, *,
                    config: CatalogueConfig | None = None,
                    open_key: KeyOpener | None = None) -> None:
    """Mount the public catalogue, OAI-PMH, the readers' pages and the archivists' pages."""
    config = config or CatalogueConfig.load(centre.data_dir)
    app[CATALOGUE] = Catalogue(
        centre, config, make_envs(), _secret(centre.data_dir), Buckets(config.rates),
        Throttle.shared(centre.data_dir / "catalogue-throttle.db"),
        open_key or default_key_opener(centre, config))
    app[PUBLIC_PARTS] = PUBLIC_PREFIXES
    app.middlewares.append(catalogue_mw)
    views.add_routes(app)
    reader_views.add_routes(app)
    admin.add_routes(app)
    app.router.add_static("/static/catalogue/", HERE / "static")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _kind(path: str) -> str:
    if path.startswith("/oai"):
        return "oai"
    return "reader" if path.startswith("/reader") else "page"


@web.middleware
async def catalogue_mw(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith(PUBLIC_PREFIXES):
        return await handler(request)
    cat = request.app[CATALOGUE]
    request[LANG] = "en" if request.query.get("lang") == "en" else "vi"
    wait = cat.buckets.take(_kind(request.path), client_address(request))
    if wait > 0:
        resp: web.StreamResponse = web.Response(
            status=429, text="Quá nhiều yêu cầu; hãy thử lại sau (too many requests)\n",
            headers={"Retry-After": str(max(1, int(wait + 0.999)))})
    else:
        try:
            resp = await handler(request)
        except web.HTTPException as exc:
            resp = exc
    resp.headers.setdefault("X-Content-Type-Options", "nosniff")
    resp.headers.setdefault("X-Frame-Options", "DENY")
    resp.headers.setdefault("Referrer-Policy", "same-origin")
    resp.headers.setdefault("Content-Security-Policy", CSP)
    private = request.path.startswith("/reader")
    resp.headers.setdefault("Cache-Control", "no-store" if private else "public, max-age=60")
    if request.secure:
        resp.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    if isinstance(resp, web.HTTPException):
        raise resp
    return resp


