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

import json
import os
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from appliance.clock import vn_date
from appliance.fsutil import write_atomic
from sync.central.centre import Centre

from .. import i18n
from ..central.auth import PUBLIC_PARTS, client_address
from ..throttle import Throttle
from .limits import Buckets, Rate

HERE = Path(__file__).parent
NAV_TTL_S = 60.0
PUBLIC_PREFIXES = ("/catalogue", "/oai", "/reader", "/static/catalogue/")
CONFIG_NAME = "catalogue.json"
SECRET_PATH = "keys/catalogue-secret"
CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")

KeyOpener = Callable[[], AbstractContextManager[Any]]


@dataclass(frozen=True)
class CatalogueConfig:
    """The catalogue's settings (``catalogue.json`` in the centre's folder, all optional)."""

    archive_name: str = "Lưu trữ lịch sử tỉnh"
    admin_email: str = "luutru@luutru.local"  # OAI-PMH needs a name@host.domain
    oai_namespace: str = "luutru.local"  # the repository part of oai: identifiers
    page_size: int = 20
    oai_page_size: int = 100
    pin_file: str | None = None  # the PIN of the archive's PKCS#11 token, if its key is one
    secure_cookies: bool = False
    rates: dict[str, Rate] = field(default_factory=lambda: {
        "page": Rate(5.0, 60), "oai": Rate(5.0, 20), "reader": Rate(2.0, 20)})

    @classmethod
    def load(cls, data_dir: Path) -> CatalogueConfig:
        path = data_dir / CONFIG_NAME
        if not path.exists():
            return cls()
        raw = json.loads(path.read_text("utf-8"))
        d = cls()
        rates = dict(d.rates)
        for kind, value in (raw.get("rates") or {}).items():
            if kind not in rates:
                raise ValueError(f"{CONFIG_NAME}: rates.{kind} is not page, oai or reader")
            rates[kind] = Rate(float(value[0]), int(value[1]))  # [per second, burst]
        return cls(
            archive_name=str(raw.get("archive_name", d.archive_name)),
            admin_email=str(raw.get("admin_email", d.admin_email)),
            oai_namespace=str(raw.get("oai_namespace", d.oai_namespace)),
            page_size=int(raw.get("page_size", d.page_size)),
            oai_page_size=int(raw.get("oai_page_size", d.oai_page_size)),
            pin_file=raw.get("pin_file"),
            secure_cookies=bool(raw.get("secure_cookies", False)),
            rates=rates,
        )


@dataclass
class Catalogue:
    """What the catalogue's handlers share, built once by ``setup_catalogue``."""

    centre: Centre
    config: CatalogueConfig
    envs: dict[str, jinja2.Environment]
    secret: bytes
    buckets: Buckets
    throttle: Throttle
    open_key: KeyOpener | None
    _nav: tuple[float, Any] | None = None

    def navigation(self, ttl: float = NAV_TTL_S) -> tuple[Any, Any]:
        """The fonds, years and types the search filters offer: a scan of the whole
        catalogue, so kept for ``ttl`` seconds (a filter that lags a minute harms no one)."""
        now = time.monotonic()
        if self._nav is None or now - self._nav[0] > ttl:
            with self.centre.storage.view() as v:
                self._nav = (now, (v.catalogue_sets(), v.catalogue_facets()))
        return self._nav[1]


CATALOGUE = web.AppKey("catalogue", Catalogue)
LANG = web.RequestKey("catalogue_lang", str)


def default_key_opener(centre: Centre, config: CatalogueConfig) -> KeyOpener | None:
    """The archive's agency key (keys/agency.json in the centre's folder), if set up."""
    if not (centre.data_dir / "keys" / "agency.json").exists():
        return None
    from appliance.keys.agency import open_agency_key

    pin = None
    if config.pin_file:
        pin = Path(config.pin_file).read_text("utf-8").strip()
    return lambda: open_agency_key(centre.data_dir, pin)


def _secret(data_dir: Path) -> bytes:
    path = data_dir / SECRET_PATH
    if not path.exists():
        write_atomic(path, os.urandom(32), mode=0o600)
    return path.read_bytes()


def make_envs() -> dict[str, jinja2.Environment]:
    envs = {}
    for lang in i18n.LANGUAGES:
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(HERE / "templates")),
            autoescape=jinja2.select_autoescape(("html",)),
            extensions=["jinja2.ext.i18n"],
            trim_blocks=True,
            lstrip_blocks=True,
            undefined=jinja2.StrictUndefined,
        )
        env.install_gettext_translations(i18n.translations(lang), newstyle=True)  # type: ignore[attr-defined]
        env.filters["vndate"] = lambda v: vn_date(str(v)[:10]) if v else "—"
        env.globals["lang"] = lang
        envs[lang] = env
    return envs


def setup_catalogue(app: web.Application, centre: Centre, *,
                    config: CatalogueConfig | None = None,
                    open_key: KeyOpener | None = None) -> None:
    """Mount the public catalogue, OAI-PMH, the readers' pages and the archivists' pages."""
    from . import admin, reader_views, views

    config = config or CatalogueConfig.load(centre.data_dir)
    app[CATALOGUE] = Catalogue(
        centre, config, make_envs(), _secret(centre.data_dir), Buckets(config.rates),
        Throttle(), open_key or default_key_opener(centre, config))
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


def render(request: web.Request, template: str, status: int = 200, **ctx: Any) -> web.Response:
    cat = request.app[CATALOGUE]
    lang = request.get(LANG, "vi")
    q = "?lang=en" if lang == "en" else ""
    html = cat.envs[lang].get_template(template).render(
        archive_name=cat.config.archive_name, lq=q, path=request.path, **ctx)
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")
