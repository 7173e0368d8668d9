"""The appliance's web application: ``create_app(config)`` and the services handlers share."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import jinja2
from aiohttp import web

from appliance.datadir import PUBLIC_KEY_NAME
from appliance.keys.sealing import open_secret_store
from appliance.keys.verify import load_public_key
from appliance.store import Store

from . import permissions
from .accounts import Accounts, HashParams
from .accounts import ensure_schema as ensure_account_schema
from .changes import DocumentsCache
from .config import WebConfig
from .history import LogIndex
from .previews import setup_previews
from .render import make_envs
from .seal import SealChecker
from .throttle import Throttle

log = logging.getLogger(__name__)

# Small partial index for the home page's "due for reply" list; owned by the web UI.
EXTRA_DDL = (
    'CREATE INDEX IF NOT EXISTS web_documents_due ON documents ("DueDate") '
    'WHERE "DueDate" IS NOT NULL',
)


@dataclass
class Services:
    """What every handler needs, built once at start-up."""

    config: WebConfig
    store: Store
    accounts: Accounts
    seal: SealChecker
    log_index: LogIndex
    envs: dict[str, jinja2.Environment]
    throttle: Throttle = field(default_factory=Throttle)
    key_backing: str = "software"
    secrets_description: str = ""
    started_at: float = 0.0
    background: list[asyncio.Task[Any]] = field(default_factory=list)
    documents_cache: DocumentsCache = field(default_factory=DocumentsCache)

    @property
    def org_name(self) -> str:
        return self.store.config.org_name

    def session_ttl(self) -> dt.timedelta:
        return dt.timedelta(hours=self.config.session_hours)


SERVICES = web.AppKey("services", Services)


def open_services(
    config: WebConfig, store: Store, hash_params: HashParams | None = None
) -> Services:
    """Prepare the module's tables and secrets on an open, writable store."""
    ensure_account_schema(store)

    def extra(txn: Any) -> None:
        for stmt in EXTRA_DDL:
            txn.conn.execute(stmt)

    store.writer_or_fail().submit(extra, guarded=False).result()
    secrets = open_secret_store(store.data_dir, store.config.key)
    accounts = Accounts(store, secrets.get_or_create("session"), hash_params)
    if store.key is not None:
        public_key = load_public_key(store.key.public_key_pem())
        backing = store.key.backing.value
    else:
        public_key = load_public_key((store.data_dir / PUBLIC_KEY_NAME).read_bytes())
        backing = store.config.key.backing.value
    index = LogIndex(store)
    index.ensure_schema()
    return Services(
        config=config,
        store=store,
        accounts=accounts,
        seal=SealChecker(store, public_key),
        log_index=index,
        envs=make_envs(),
        key_backing=backing,
        secrets_description=secrets.describe(),
    )


def create_app(
    config: WebConfig,
    store: Store | None = None,
    *,
    hash_params: HashParams | None = None,
    throttle: Throttle | None = None,
    on_ready: Callable[[Services], None] | None = None,
) -> web.Application:
    """The application; it opens the store itself unless one is given (tests give theirs)."""
    from . import (
        api,
        middleware,
        views_admin,
        views_auth,
        views_documents,
        views_records,
        views_registers,
    )

    app = web.Application(
        middlewares=middleware.MIDDLEWARES,
        client_max_size=permissions.FORM_BODY,  # each route its own: middleware.body_mw
    )
    handlers: dict[str, Any] = {}
    for module in (views_auth, views_documents, views_records, views_registers, views_admin, api):
        handlers.update(module.HANDLERS)
    missing = [r.name for r in permissions.ROUTES if r.name not in handlers]
    extra = sorted(set(handlers) - set(permissions.BY_NAME))
    if missing or extra:
        raise RuntimeError(f"routes without handlers {missing}, handlers without routes {extra}")
    for route in permissions.ROUTES:
        app.router.add_route(route.method, route.path, handlers[route.name], name=route.name)
    setup_previews(app, config.preview_renders)

    async def services_ctx(app: web.Application) -> AsyncIterator[None]:
        own = store is None
        s = await asyncio.to_thread(Store.open, config.data_dir) if store is None else store
        try:
            services = await asyncio.to_thread(open_services, config, s, hash_params)
            if throttle is not None:
                services.throttle = throttle
            services.started_at = asyncio.get_running_loop().time()
            app[SERVICES] = services
            task = asyncio.create_task(_index_forever(services))
            services.background.append(task)
            if on_ready is not None:
                on_ready(services)
            yield
            # Cancelling a task does not stop the thread it waits on: the history index's
            # catch-up must be done with the store before the store is closed.
            await asyncio.to_thread(services.log_index.stop)
            for t in services.background:
                t.cancel()
            await asyncio.gather(*services.background, return_exceptions=True)
        finally:
            if own:
                await asyncio.to_thread(s.close)

    app.cleanup_ctx.append(services_ctx)
    if config.background:
        from .background import background_ctx

        app.cleanup_ctx.append(background_ctx(lambda a: a[SERVICES].store))
    if config.mdns:
        from .mdns import mdns_ctx

        app.cleanup_ctx.append(mdns_ctx)
    return app


async def _index_forever(services: Services) -> None:
    """Keep the history index close to the log (run_once + a thin loop, STYLE.md rule 9)."""
    delay = 0.5
    while True:
        try:
            await asyncio.to_thread(services.log_index.catch_up)
            delay = 2.0
        except asyncio.CancelledError:
            raise
        except Exception:  # logged, retried with back-off; the pages scan the tail meanwhile
            log.exception("history index catch-up failed")
            delay = min(60.0, delay * 2)
        await asyncio.sleep(delay)
