"""`luutru central dashboard-user`: the accounts of the centre's dashboard."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from sync.cli import CENTRE_DATA, centre_dir


@click.command("dashboard-user")
@CENTRE_DATA
@click.option("--username", default=None, help="The account to add, or give a new password.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--remove", is_flag=True, help="Remove the account (its sessions end).")
@click.option("--list", "list_", is_flag=True, help="List the accounts.")
def central_dashboard_user(
    data: Path | None, username: str | None, password_stdin: bool, remove: bool, list_: bool
) -> None:
    """Accounts that may sign in to the centre's dashboard (every page of it needs one)."""
    from appliance.errors import LuutruError
    from sync.central.centre import open_centre

    from .auth import DashboardUsers

    try:
        with open_centre(centre_dir(data)) as c:
            users = DashboardUsers(c.data_dir)
            if list_:
                for name in users.users():
                    click.echo(name)
                return
            if not username or remove == password_stdin:
                raise click.UsageError("give --username and one of --password-stdin, --remove")
            if remove:
                if not users.remove(username):
                    raise click.ClickException(f"no dashboard account {username!r}")
                click.echo(f"dashboard account {username} removed")
                return
            password = sys.stdin.readline().rstrip("\r\n")
            new = users.set_password(username, password, c.now())
            click.echo(f"dashboard account {username} {'added' if new else 'has a new password'}")
    except LuutruError as exc:
        raise click.ClickException(str(exc)) from exc


def register(central: click.Group) -> None:
    """Add `dashboard-user` to the `luutru central` group."""
    central.add_command(central_dashboard_user)
