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


@click.command("catalogue-pin")
@CENTRE_DATA
@click.option("--pin-stdin", is_flag=True, required=True,
              help="Read the PIN of the archive's PKCS#11 token from the first line.")
def catalogue_pin(data: Path | None, pin_stdin: bool) -> None:
    """Keep the PIN of the archive's token for signing readers' copies (tried on the token
    first; sealed to the TPM named by catalogue.json's pin_tcti, if any)."""
    import sys

    from appliance.errors import LuutruError
    from sync.central import token_pin
    from web_ui.catalogue.common import CatalogueConfig

    data_dir = centre_dir(data)
    pin = sys.stdin.readline().rstrip("\r\n")
    if not pin:
        raise click.ClickException("no PIN on standard input")
    config = CatalogueConfig.load(data_dir)
    try:
        where = token_pin.set_pin(data_dir, pin, config.pin_tcti)
    except LuutruError as exc:
        raise click.ClickException(f"the PIN was not kept: {exc}") from exc
    click.echo(f"the token's PIN is kept: {where}")


def register(central: click.Group) -> None:
    """Add `serve` and `catalogue-pin` to the `luutru central` group."""
    central.add_command(central_serve)
    central.add_command(catalogue_pin)
