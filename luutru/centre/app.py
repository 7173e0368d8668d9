"""The centre's HTTP application: the sync API and the dashboard on one aiohttp app."""

from __future__ import annotations

import json
from ipaddress import IPv4Network, IPv6Network

from aiohttp import web

from sync.central.centre import Centre
from sync.central.server import SHUTDOWN_S, max_request_size, setup_ltv_job, setup_sync_api
from web_ui.catalogue import setup_catalogue
from web_ui.central import setup_dashboard

IPNetwork = IPv4Network | IPv6Network  # a --trusted-proxy block


def create_app(
    centre: Centre, dashboard: bool = True, trusted_proxies: tuple[IPNetwork, ...] = ()
) -> web.Application:
    """The centre application: sync API under /v1, /healthz, and the dashboard (which believes
    X-Forwarded-For/-Proto only from ``trusted_proxies``)."""
    app = web.Application(client_max_size=max_request_size(centre))
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
