"""`luutru identity …`: the agency's identifiers over time and its administrative-unit codes.

Each command opens the data folder, makes one library call (appliance/agency_ids.py,
appliance/adminunits.py) and turns a library error into a click error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from .cli_options import data_option
from .config import resolve_data_dir
from .errors import LuutruError


def _emit(value: object) -> None:
    click.echo(json.dumps(value, ensure_ascii=False))


@click.group()
def identity() -> None:
    """The agency's mã định danh (current and former) and its administrative-unit codes."""


@identity.command("show")
@data_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show(data: Path | None, as_json: bool) -> None:
    """The current mã định danh, the former ones, the own fonds, the unit codes."""
    from . import adminunits, agency_ids
    from .store import Store

    try:
        with Store.open(resolve_data_dir(data), readonly=True) as store:
            conn = store.reader()
            out: dict[str, Any] = {
                "org_id": store.config.org_id, "org_name": store.config.org_name,
                "former_ids": list(store.config.former_ids),
                "fond_code": store.config.fond_code,
                "rekeyings": [r.to_json() for r in agency_ids.history(conn)],
                "units": adminunits.current(conn)}
    except LuutruError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        _emit(out)
        return
    click.echo(f"Mã định danh: {out['org_id']} ({out['org_name']})")
    for r in out["rekeyings"]:
        click.echo(f"  trước đây: {r['old']} (đến {r['effective']}, theo {r['ref']})")
    click.echo(f"Phông của cơ quan: {out['fond_code']}")
    units = out["units"]
    if units:
        click.echo(f"Mã ĐVHC (QĐ 19/2025): tỉnh {units['province']} {units['province_name']}, "
                   f"xã {units['commune']} từ {units['since']}")
        for h in units["history"]:
            click.echo(f"  QĐ 124/2004: tỉnh {h['province']} {h['province_name']}, huyện "
                       f"{h['district']}, xã {h['commune']} {h['name']} đến {h['until']}")


@identity.command("rekey")
@data_option
@click.option("--org-id", "new_id", required=True, help="The new mã định danh (000.00.00.H00).")
@click.option("--effective", required=True, help="From when (dd/mm/yyyy).")
@click.option("--ref", required=True, help="The decision or notice that assigned the code.")
@click.option("--reason", default=None, help="Why (e.g. the 2025 reorganisation).")
@click.option("--by", "actor", default="kỹ thuật", show_default=True)
@click.option("--json", "as_json", is_flag=True)
def rekey(data: Path | None, new_id: str, effective: str, ref: str, reason: str | None,
          actor: str, as_json: bool) -> None:
    """Give the agency a new mã định danh; the old one stays as an alias (historic mã hồ sơ
    still resolve and verify). Stop `luutru serve` first: it reads the code when it starts."""
    from . import agency_ids
    from .store import Store

    try:
        with Store.open(resolve_data_dir(data)) as store:
            done = agency_ids.rekey(store, new_id, effective, ref, reason, actor)
    except LuutruError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        _emit(done.to_json())
    else:
        click.echo(f"{done.old} → {done.new} từ {done.effective}; mã cũ giữ làm bí danh; "
                   f"phông {done.fond} tiếp tục.")


@identity.command("units")
@data_option
@click.option("--province", required=True, help="Mã tỉnh, QĐ 19/2025 (2 chữ số).")
@click.option("--commune", required=True, help="Mã xã, QĐ 19/2025 (5 chữ số).")
@click.option("--since", default="01/07/2025", show_default=True)
@click.option("--old", "old", multiple=True,
              help="A QĐ 124/2004 commune it was formed from: TỈNH|HUYỆN|XÃ|Tên xã|dd/mm/yyyy "
                   "(repeat for each).")
@click.option("--by", "actor", default="kỹ thuật", show_default=True)
@click.option("--json", "as_json", is_flag=True)
def units(data: Path | None, province: str, commune: str, since: str, old: tuple[str, ...],
          actor: str, as_json: bool) -> None:
    """Record the box's administrative-unit codes, checked against the bundled table."""
    from . import adminunits
    from .store import Store

    try:
        history = [adminunits.parse_history(o) for o in old]
        with Store.open(resolve_data_dir(data)) as store:
            done = adminunits.set_units(store, province, commune, since, history, actor)
    except LuutruError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        _emit(done)
    else:
        click.echo(f"tỉnh {done['province']}, xã {done['commune']} từ {done['since']} "
                   f"(bảng {done['table']}); {len(done['history'])} xã cũ")
