"""The `luutru` group hangs each part's commands when first asked for: its table of owners is
exactly what the parts register, every command resolves, and serving the box does not import
the parts it never uses (the centre's dashboard, restore, capture, archive)."""

from __future__ import annotations

import subprocess
import sys

import click
from click.testing import CliRunner

from luutru import cli
from tests.web.server import ROOT


def test_the_owners_table_is_what_the_parts_register() -> None:
    for name, part in cli._OWNERS.items():
        group = click.Group()
        part(group)
        assert name in group.commands, f"{part.__name__} does not hang `{name}`"
    everything = click.Group()
    for part in dict.fromkeys(cli._OWNERS.values()):
        part(everything)
    assert set(everything.commands) == set(cli._OWNERS)


def test_every_command_resolves_and_help_lists_them_all() -> None:
    result = CliRunner().invoke(cli.main, ["--help"])
    assert result.exit_code == 0, result.output
    for name in [*cli._OWNERS, "demo"]:
        assert f"  {name}" in result.output
        sub = CliRunner().invoke(cli.main, [name, "--help"])
        assert sub.exit_code == 0, (name, sub.output)
    central = CliRunner().invoke(cli.main, ["central", "--help"])
    for sub_name in ("serve", "dashboard", "ltv", "purge-classified", "token"):
        assert sub_name in central.output, sub_name


def test_serving_the_box_imports_only_what_it_uses() -> None:
    probe = (
        "import sys, click\n"
        "from luutru.cli import main\n"
        "ctx = click.Context(main)\n"
        "assert main.get_command(ctx, 'serve') is not None\n"
        "assert main.get_command(ctx, 'user') is not None\n"
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('web_ui', 'sync', 'luutru', 'appliance'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=True)
    loaded = set(done.stdout.split())
    for unused in ("web_ui.central", "luutru.cli_restore", "appliance.capture.cli",
                   "appliance.archive.cli", "luutru.provision.cli", "sync.cli"):
        assert unused not in loaded, unused
