"""The `luutru` command: one group, each part's commands hung off it."""

from __future__ import annotations

import os
from pathlib import Path

import click

from appliance.cli import register as register_appliance
from appliance.cli_options import data_option
from appliance.config import resolve_data_dir
from appliance.errors import LuutruError


@click.group()
@click.version_option(package_name="luutru")
def main() -> None:
    """luutru — sổ đăng ký văn bản, hồ sơ và lưu trữ niêm phong cho UBND xã."""


def run() -> None:
    """The `luutru` program (console script and ``python -m luutru``)."""
    # Records, keys and secrets: everything this process creates is its owner's alone,
    # whatever umask the shell or the service manager left (files that are meant to be
    # shared, like the public key, get their mode explicitly). Set here, in the program's
    # own process, not in the command group that tests invoke inside theirs.
    os.umask(0o077)
    main()


@main.command()
@data_option
def demo(data: Path | None) -> None:
    """Create a demo commune with the bundled sample registers if the folder is empty."""
    from .demo import ensure_demo

    try:
        for line in ensure_demo(resolve_data_dir(data)):
            click.echo(line)
    except LuutruError as exc:
        raise click.ClickException(str(exc)) from exc


def _register_parts() -> None:
    """Each part owns a module of commands; they all hang off the one `luutru` group."""
    from appliance.archive.cli import register as register_archive
    from appliance.capture.cli import register as register_capture
    from sync.cli import central
    from sync.cli import register as register_sync
    from web_ui.central.cli import register as register_dashboard
    from web_ui.cli import register as register_web

    from .centre.cli import register as register_centre
    from .cli_restore import restore
    from .provision.cli import register as register_provision

    for register in (register_appliance, register_web, register_sync, register_capture,
                     register_archive, register_provision):
        register(main)
    main.add_command(restore)
    register_centre(central)
    register_dashboard(central)


_register_parts()
