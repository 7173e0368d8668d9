"""What the catalogue's parts share: its settings, its state on the application, rendering."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from appliance.clock import vn_date
from appliance.fsutil import write_atomic
from sync.central import readers
from sync.central.centre import Centre

from .. import i18n
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
    pin_file: str | None = None  # a plain file with the token's PIN: migrated on start
    pin_tcti: str | None = None  # the centre's TPM, to seal the token's PIN to (token_pin.py)
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
            pin_tcti=raw.get("pin_tcti"),
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
    """The archive's agency key (keys/agency.json in the centre's folder), if set up, opened
    with the token PIN of the centre's secret store; a plain ``pin_file`` is migrated first."""
    from sync.central import token_pin

    if config.pin_file:
        token_pin.migrate_pin_file(centre.data_dir, Path(config.pin_file), config.pin_tcti)
    if not (centre.data_dir / "keys" / "agency.json").exists():
        return None
    from appliance.keys.agency import open_agency_key

    def open_key() -> AbstractContextManager[Any]:
        return open_agency_key(centre.data_dir,
                               token_pin.token_pin(centre.data_dir, config.pin_tcti))

    return open_key


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



def render(request: web.Request, template: str, status: int = 200, **ctx: Any) -> web.Response:
    cat = request.app[CATALOGUE]
    lang = request.get(LANG, "vi")
    q = "?lang=en" if lang == "en" else ""
    html = cat.envs[lang].get_template(template).render(
        archive_name=cat.config.archive_name, lq=q, path=request.path, **ctx)
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")


# -- readers' sessions and forms (reader_views.py; a document page shows the request form)

COOKIE = "luutru_reader"
PRE_COOKIE = "luutru_reader_pre"


def _binding(request: web.Request) -> str:
    token = request.cookies.get(COOKIE)
    return f"s:{token}" if token else f"p:{request.cookies.get(PRE_COOKIE, '')}"


def csrf_for(request: web.Request) -> str:
    secret = request.app[CATALOGUE].secret
    return hmac.new(secret, _binding(request).encode(), hashlib.sha256).hexdigest()


def check_csrf(request: web.Request, form: Any) -> None:
    if not hmac.compare_digest(csrf_for(request), str(form.get("csrf_token", ""))):
        raise web.HTTPForbidden(text="Biểu mẫu đã hết hạn; hãy tải lại trang (CSRF)\n")


async def reader_of(request: web.Request) -> str | None:
    cat = request.app[CATALOGUE]
    return await asyncio.to_thread(readers.session_reader, cat.centre,
                                   request.cookies.get(COOKIE))
