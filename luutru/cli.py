"""The `luutru` command: one group, each part's commands hung off it when first asked for.

Each part (records, web, sync, capture, archive, provisioning, the centre) owns a module of
commands and a ``register(group)`` that hangs them. Importing every part costs about a second
and 60 MB on a Raspberry Pi class box before ``luutru serve`` can answer, and most of it (the
centre's dashboard, restore, capture) is never used by the command that runs. So the group
knows which part owns which command (``_OWNERS``) and imports a part only when one of its
commands is invoked; ``luutru --help`` still lists them all. ``tests/test_cli_lazy.py`` checks
that the table is exactly what the parts register.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from appliance.cli_options import data_option


def _after(group: click.Group, part: Part) -> None:
    """``part`` hung first (once, in the `luutru` group; a plain group: just run)."""
    if isinstance(group, _PartsGroup):
        group.hang(part)
    else:
        part(group)


def _appliance(group: click.Group) -> None:
    from appliance.cli import register

    register(group)


def _web(group: click.Group) -> None:
    from web_ui.cli import register

    register(group)


def _sync(group: click.Group) -> None:
    _after(group, _appliance)  # sync adds `edxml poll` to the records part's `edxml` group
    from sync.cli import register

    register(group)


def _centre(group: click.Group) -> None:
    """`luutru central …`: the sync part's group, with the centre's and dashboard's commands."""
    _after(group, _sync)
    from sync.cli import central
    from web_ui.central.cli import register as register_dashboard

    from .centre.cli import register as register_centre

    register_centre(central)
    register_dashboard(central)


def _capture(group: click.Group) -> None:
    from appliance.capture.cli import register

    register(group)


def _archive(group: click.Group) -> None:
    from appliance.archive.cli import register

    register(group)


def _provision(group: click.Group) -> None:
    from .provision.cli import register

    register(group)


def _restore(group: click.Group) -> None:
    from .cli_restore import restore

    group.add_command(restore)


Part = Callable[[click.Group], None]

# Every command of the `luutru` group and the part that hangs it.
_OWNERS: dict[str, Part] = {
    **dict.fromkeys(("identity", "import", "init", "key", "log", "search", "trust",
                     "verify"), _appliance),
    "edxml": _sync,
    **dict.fromkeys(("serve", "user"), _web),
    **dict.fromkeys(("enrol", "sync"), _sync),
    "central": _centre,
    **dict.fromkeys(("capture", "scan"), _capture),
    **dict.fromkeys(("backup", "destroy", "due", "fixity", "fonds", "freeze", "hoso", "recall",
                     "retention", "transfer", "unfreeze"), _archive),
    **dict.fromkeys(("hook", "provision"), _provision),
    "restore": _restore,
}


class _PartsGroup(click.Group):
    """A group whose commands are hung by their part the first time one is asked for."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._hung: set[Part] = set()

    def hang(self, part: Part) -> None:
        if part not in self._hung:
            self._hung.add(part)
            part(self)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(_OWNERS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        part = _OWNERS.get(cmd_name)
        if part is not None:
            self.hang(part)
        return super().get_command(ctx, cmd_name)


@click.group(cls=_PartsGroup)
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
    from appliance.config import resolve_data_dir
    from appliance.errors import LuutruError

    from .demo import ensure_demo

    try:
        for line in ensure_demo(resolve_data_dir(data)):
            click.echo(line)
    except LuutruError as exc:
        raise click.ClickException(str(exc)) from exc
