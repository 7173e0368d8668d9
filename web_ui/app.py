"""The appliance's web application: ``create_app(config)``, its routes from the permissions
table, its services (``services.py``) opened and closed with it."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from appliance.accounts import HashParams
from appliance.retry import backoff
from appliance.store import Store

from . import permissions
from .config import WebConfig
from .previews import setup_previews
from .services import SERVICES, Services, open_services
from .throttle import Throttle

log = logging.getLogger(__name__)


def create_app(
    config: WebConfig,
    store: Store | None = None,
    *,
    hash_params: HashParams | None = None,
    throttle: Throttle | None = None,
    on_ready: Callable[[Services], None] | None = None,
) -> web.Application:
    """The application; it opens the store itself unless one is given (tests give theirs)."""
    from . import middleware

    app = web.Application(
        middlewares=middleware.MIDDLEWARES,
        client_max_size=permissions.FORM_BODY,  # each route its own: middleware.body_mw
    )
    _add_routes(app)
    setup_previews(app, config.preview_renders)
    app.cleanup_ctx.append(_services_ctx(config, store, hash_params, throttle, on_ready))
    if config.background:
        from .background import background_ctx

        app.cleanup_ctx.append(background_ctx(lambda a: a[SERVICES].store))
    if config.mdns:
        from .mdns import mdns_ctx

        app.cleanup_ctx.append(mdns_ctx)
    return app


def _add_routes(app: web.Application) -> None:
    """Every route of permissions.ROUTES with its handler: one handler per route, exactly."""
    from . import (
        api,
        api_handling,
        api_logbooks,
        api_outgoing,
        views_admin,
        views_auth,
        views_corrections,
        views_documents,
        views_edxml,
        views_fileplan,
        views_handling,
        views_logbooks,
        views_outgoing,
        views_reading,
        views_records,
        views_registers,
        views_signers,
        views_use,
    )

    handlers: dict[str, Any] = {}
    for module in (views_auth, views_documents, views_corrections, views_handling, views_edxml,
                   views_records, views_registers, views_admin, api, api_handling,
                   views_outgoing, views_signers, api_outgoing, views_logbooks, views_fileplan,
                   api_logbooks, views_use, views_reading):
        handlers.update(module.HANDLERS)
    missing = [r.name for r in permissions.ROUTES if r.name not in handlers]
    extra = sorted(set(handlers) - set(permissions.BY_NAME))
    if missing or extra:
        raise RuntimeError(f"routes without handlers {missing}, handlers without routes {extra}")
    for route in permissions.ROUTES:
        app.router.add_route(route.method, route.path, handlers[route.name], name=route.name)


def _services_ctx(
    config: WebConfig,
    store: Store | None,
    hash_params: HashParams | None,
    throttle: Throttle | None,
    on_ready: Callable[[Services], None] | None,
) -> Callable[[web.Application], AsyncIterator[None]]:
    """The store and the services for the app's lifetime, and the history index's task."""

    async def services_ctx(app: web.Application) -> AsyncIterator[None]:
        own = store is None
        # A start-up fault (a foreign key, a log behind its anchors) leaves a halted store:
        # reads and sign-ins work, the log takes no write (a damaged database raises).
        s = (await asyncio.to_thread(functools.partial(Store.open, config.data_dir,
                                                       halted_ok=True, keep_reserve=True))
             if store is None else store)
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

    return services_ctx


async def _index_forever(services: Services) -> None:
    """Keep the history index close to the log (run_once + a thin loop, STYLE.md rule 9)."""
    failures = 0
    while True:
        try:
            await asyncio.to_thread(services.log_index.catch_up)
            delay = 2.0
        except asyncio.CancelledError:
            raise
        except Exception:  # logged, retried with back-off; the pages scan the tail meanwhile
            failures += 1
            log.exception("history index catch-up failed")
            delay = backoff(failures, cap=60.0, base=1.0)
        else:
            failures = 0
        await asyncio.sleep(delay)
