"""`luutru edxml poll`: one pass of the exchange configured in ``DIR/edxml.json``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from appliance.cli_options import data_option
from appliance.config import resolve_data_dir
from appliance.errors import LuutruError


@click.command("poll")
@data_option
@click.option("--json", "as_json", is_flag=True)
def poll(data: Path | None, as_json: bool) -> None:
    """Take in the packages waiting at the exchange and send the status messages due."""
    from appliance.edxml.signing import open_signer
    from appliance.store import Store

    from .exchange import connector_for, load_config, run_once

    data_dir = resolve_data_dir(data)
    try:
        config = load_config(data_dir)
        if config is None:
            raise click.ClickException(f"no exchange is configured ({data_dir}/edxml.json)")
        with Store.open(data_dir) as store, open_signer(data_dir) as key:
            res = run_once(store, connector_for(config), config, key)
    except LuutruError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(res.to_json(), ensure_ascii=False))
    else:
        click.echo(f"nhận {len(res.imported)}, trùng {res.duplicates}, từ chối "
                   f"{len(res.refused)}, đã gửi {len(res.sent)} thông báo trạng thái")
    if res.errors:
        sys.exit(1)


def register(main: click.Group) -> None:
    group = main.commands.get("edxml")
    if isinstance(group, click.Group):
        group.add_command(poll)
