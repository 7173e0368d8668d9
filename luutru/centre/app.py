"""The centre's HTTP application: the sync API and the dashboard on one aiohttp app."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from ipaddress import IPv4Network, IPv6Network

from aiohttp import web

from sync.central.centre import Centre
from sync.central.server import SHUTDOWN_S, max_request_size, setup_ltv_job, setup_sync_api
from web_ui.catalogue import setup_catalogue
from web_ui.central import setup_dashboard

IPNetwork = IPv4Network | IPv6Network  # a --trusted-proxy block
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# The largest body any page of the centre but the sync API takes: the dashboard's and the
# catalogue's forms (a sign-in, an OAI-PMH request, a reader's request) are a few KB.
FORM_MAX = 64 * 1024
# A compressed sync request may inflate to at most this many times its size, or INFLATED_FLOOR:
# a batch of log entries (hashes, signatures, ids) deflates some 2-20 times, never 100, while
# a deflate bomb inflates a thousandfold and would cost the centre 32 MB for 32 KB sent.
INFLATE_RATIO = 100
INFLATED_FLOOR = 8 * 2**20


@web.middleware
async def body_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Only the sync API (/v1/) takes batches and upload chunks of up to
    ``max_request_size``, and a compressed one only up to INFLATE_RATIO times what was sent;
    everything else, open to anyone on the internet (the catalogue, the readers' pages, the
    dashboard's sign-in), reads at most FORM_MAX: an announced larger body is refused before a
    byte of it is read, a chunked or inflating one where it passes the limit."""
    if not request.body_exists:
        return await handler(request)
    length = request.content_length
    if request.path.startswith("/v1/"):
        if "Content-Encoding" not in request.headers:
            return await handler(request)
        limit = min(request.client_max_size,
                    max(INFLATED_FLOOR, INFLATE_RATIO * (length or 0)))
        return await handler(request.clone(client_max_size=limit))
    if length is not None and length > FORM_MAX:
        raise web.HTTPRequestEntityTooLarge(max_size=FORM_MAX, actual_size=length)
    return await handler(request.clone(client_max_size=FORM_MAX))


def create_app(
    centre: Centre, dashboard: bool = True, trusted_proxies: tuple[IPNetwork, ...] = ()
) -> web.Application:
    """The centre application: sync API under /v1, /healthz, and the dashboard (which believes
    X-Forwarded-For/-Proto only from ``trusted_proxies``)."""
    app = web.Application(client_max_size=max_request_size(centre), middlewares=[body_limit])
    setup_sync_api(app, centre)
    if dashboard:
        setup_dashboard(app, centre, trusted_proxies)
        setup_catalogue(app, centre)  # the public catalogue, OAI-PMH and readers (no sign-in)
    return app


def serve(centre: Centre, host: str, port: int,
          trusted_proxies: tuple[IPNetwork, ...] = ()) -> None:
    """Run the centre until SIGINT/SIGTERM; prints one line when it listens."""
    app = create_app(centre, trusted_proxies=trusted_proxies)
    setup_ltv_job(app)  # one process: the scheduled signature upgrade runs beside the API

    def announce(_: object) -> None:
        print(json.dumps({"listening": f"http://{host}:{port}"}), flush=True)

    web.run_app(app, host=host, port=port, print=announce, access_log=None,
                shutdown_timeout=SHUTDOWN_S)
