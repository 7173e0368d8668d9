"""Commands of the web UI (serve, user).

`register(main)` adds them to the `luutru` group.

Import only click at module level: heavy imports go inside the command bodies, so that
`luutru --help` stays fast on a small box.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from appliance.accounts import Role
from appliance.cli_options import data_option as _data_option

ROLES = tuple(r.value for r in Role)  # one list: appliance.accounts.Role




def _accounts(data: Path | None) -> Any:
    """Open the store for writing and the accounts library on it (a context manager)."""
    from contextlib import contextmanager

    from appliance.accounts import Accounts, ensure_schema
    from appliance.config import resolve_data_dir
    from appliance.keys.sealing import open_secret_store
    from appliance.store import Store

    @contextmanager
    def opened() -> Any:
        with Store.open(resolve_data_dir(data)) as store:
            ensure_schema(store)
            secret = open_secret_store(store.data_dir, store.config.key).get_or_create("session")
            yield Accounts(store, secret)
            store.wait_sealed()

    return opened()


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


def _read_password(stdin: bool) -> str:
    if stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt("Mật khẩu / password", hide_input=True, confirmation_prompt=True))


def register(main: click.Group) -> None:
    """Add this part's commands to the `luutru` group."""
    main.add_command(serve)
    main.add_command(user)


@click.command()
@_data_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 serves the office LAN.")
@click.option("--port", default=8080, show_default=True, type=int, help="TCP port (0: any).")
@click.option("--no-mdns", is_flag=True, help="Do not advertise on the LAN by mDNS.")
@click.option("--max-upload-mb", default=50, show_default=True, type=int)
@click.option("--secure-cookies", is_flag=True, help="Only when served over HTTPS.")
@click.option("--tls/--no-tls", "tls", default=None,
              help="HTTPS with the certificate provisioning wrote to DIR/tls/ (default: when "
                   "it exists).")
def serve(data: Path | None, host: str, port: int, no_mdns: bool, max_upload_mb: int,
          secure_cookies: bool, tls: bool | None) -> None:
    """Serve the clerks' web UI and the JSON API (/api/v1)."""
    from appliance.config import resolve_data_dir
    from appliance.errors import LuutruError

    from .config import MiB, WebConfig
    from .server import run

    data_dir = resolve_data_dir(data)
    cert, key = data_dir / "tls" / "appliance.crt", data_dir / "tls" / "appliance.key"
    has_cert = cert.is_file() and key.is_file()
    if tls and not has_cert:
        raise click.ClickException(f"--tls: no certificate at {cert} (run luutru provision)")
    use_tls = has_cert if tls is None else tls
    config = WebConfig(
        data_dir=data_dir, host=host, port=port, mdns=not no_mdns,
        max_upload=max_upload_mb * MiB, secure_cookies=secure_cookies or use_tls,
        background=True, tls_cert=cert if use_tls else None, tls_key=key if use_tls else None,
    )
    try:
        run(config)
    except LuutruError as exc:
        raise _fail(exc) from exc


@click.group()
def user() -> None:
    """Users of the web UI: add, list, set a role or password, API tokens."""


@user.command("add")
@_data_option
@click.option("--username", required=True)
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--full-name", default="")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line.")
def user_add(data: Path | None, username: str, role: str, full_name: str,
             password_stdin: bool) -> None:
    """Create a user (the log records it; the password hash stays out of the log)."""
    from appliance.errors import LuutruError

    password = _read_password(password_stdin)
    try:
        with _accounts(data) as accounts:
            u = accounts.add_user(username, role, password, "luutru user add", full_name)
    except LuutruError as exc:
        raise _fail(exc) from exc
    click.echo(f"added {u.username} ({u.role.value})")


@user.command("list")
@_data_option
@click.option("--json", "as_json", is_flag=True)
def user_list(data: Path | None, as_json: bool) -> None:
    """List users and their roles."""
    import json

    from appliance.errors import LuutruError

    try:
        with _accounts(data) as accounts:
            users = accounts.list_users()
    except LuutruError as exc:
        raise _fail(exc) from exc
    for u in users:
        if as_json:
            click.echo(json.dumps({"username": u.username, "role": u.role.value,
                                   "full_name": u.full_name, "disabled": u.disabled},
                                  ensure_ascii=False))
        else:
            state = " (disabled)" if u.disabled else ""
            click.echo(f"{u.username}\t{u.role.value}\t{u.full_name}{state}")


@user.command("role")
@_data_option
@click.option("--username", required=True)
@click.option("--role", required=True, type=click.Choice(ROLES))
def user_role(data: Path | None, username: str, role: str) -> None:
    """Change a user's role (their sessions and tokens end)."""
    from appliance.errors import LuutruError

    try:
        with _accounts(data) as accounts:
            accounts.set_role(username, role, "luutru user role")
    except LuutruError as exc:
        raise _fail(exc) from exc
    click.echo(f"{username} is now {role}")


@user.command("passwd")
@_data_option
@click.option("--username", required=True)
@click.option("--password-stdin", is_flag=True)
def user_passwd(data: Path | None, username: str, password_stdin: bool) -> None:
    """Set a user's password (their sessions and tokens end)."""
    from appliance.errors import LuutruError

    password = _read_password(password_stdin)
    try:
        with _accounts(data) as accounts:
            accounts.set_password(username, password, "luutru user passwd")
    except LuutruError as exc:
        raise _fail(exc) from exc
    click.echo(f"password of {username} changed")


@user.command("disable")
@_data_option
@click.option("--username", required=True)
@click.option("--enable", is_flag=True, help="Enable again instead.")
def user_disable(data: Path | None, username: str, enable: bool) -> None:
    """Disable (or --enable) a user."""
    from appliance.errors import LuutruError

    try:
        with _accounts(data) as accounts:
            accounts.set_disabled(username, not enable, "luutru user disable")
    except LuutruError as exc:
        raise _fail(exc) from exc
    click.echo(f"{username} {'enabled' if enable else 'disabled'}")


@user.command("token")
@_data_option
@click.option("--username", required=True)
@click.option("--name", default="script", show_default=True)
@click.option("--scope", type=click.Choice(("read", "read-write")), default="read-write",
              show_default=True, help="read: GET and HEAD only.")
@click.option("--expires-days", type=click.IntRange(1, 365), default=90, show_default=True,
              help="Days until the token stops working.")
@click.option("--revoke", "revoke_id", default=None, help="Revoke the token with this id.")
def user_token(data: Path | None, username: str, name: str, scope: str, expires_days: int,
               revoke_id: str | None) -> None:
    """Create an API token for USERNAME (printed once), or --revoke ID."""
    from appliance.clock import vn_date
    from appliance.errors import LuutruError

    try:
        with _accounts(data) as accounts:
            if revoke_id:
                accounts.revoke_token(revoke_id, username, "luutru user token")
                click.echo(f"revoked {revoke_id}")
                return
            token_id, token = accounts.create_token(username, name, "luutru user token",
                                                    expires_days, scope)
            made = next(t for t in accounts.list_tokens(username) if t["id"] == token_id)
    except LuutruError as exc:
        raise _fail(exc) from exc
    click.echo(f"token {token_id} for {username}, {scope}, expires "
               f"{vn_date(made['expires_at'][:10])} (shown once; use as "
               "'Authorization: Bearer …'):", err=True)
    click.echo(token)


@user.command("first-login")
@_data_option
def user_first_login(data: Path | None) -> None:
    """If there is no user yet, create the demo's first users and print their passwords once."""
    from appliance.config import resolve_data_dir
    from appliance.errors import LuutruError

    from .setup import ensure_first_users

    try:
        for line in ensure_first_users(resolve_data_dir(data)):
            click.echo(line)
    except LuutruError as exc:
        raise _fail(exc) from exc
