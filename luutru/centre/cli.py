"""`luutru central serve`: the centre's application (sync API and dashboard) in one process
or N worker processes; it lives here because it joins sync and web_ui."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from sync.cli import CENTRE_DATA, centre_dir
from web_ui.central.proxy import parse_networks


def _networks(values: tuple[str, ...]) -> tuple[Any, ...]:
    try:
        return parse_networks(values)
    except ValueError as exc:
        raise click.BadParameter(f"{exc} (an address such as 10.0.0.5, or a block such as "
                                 "10.0.0.0/24)") from exc


@click.command("serve")
@CENTRE_DATA
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8470, show_default=True)
@click.option(
    "--workers",
    type=int,
    default=1,
    show_default=True,
    help="Worker processes on the one port (more than 1 needs PostgreSQL storage).",
)
@click.option(
    "--trusted-proxy",
    "trusted_proxies",
    multiple=True,
    metavar="ADDRESS[/BITS]",
    callback=lambda ctx, param, value: _networks(value),
    help="The TLS reverse proxy in front of the centre (an address or CIDR block; repeat for "
    "more). Only requests from it may name the client (X-Forwarded-For, for the dashboard's "
    "sign-in throttle) and the scheme (X-Forwarded-Proto; https, or none sent, makes the "
    "dashboard's cookies Secure and adds HSTS). Without it those headers are ignored.",
)
def central_serve(data: Path | None, host: str, port: int, workers: int,
                  trusted_proxies: tuple[Any, ...]) -> None:
    """Run the centre's HTTP server (sync API, /healthz, dashboard)."""
    import logging

    from appliance.errors import LuutruError
    from sync.central.centre import open_centre

    from .app import serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if workers != 1:
        from .workers import serve_workers

        try:
            serve_workers(centre_dir(data), host, port, workers, trusted_proxies)
        except (LuutruError, OSError) as exc:
            raise click.ClickException(str(exc)) from exc
        return
    try:
        with open_centre(centre_dir(data)) as c:
            serve(c, host, port, trusted_proxies)
    except LuutruError as exc:
        raise click.ClickException(str(exc)) from exc


def register(central: click.Group) -> None:
    """Add `serve` to the `luutru central` group."""
    central.add_command(central_serve)
