"""`luutru central ltv run|report`: the signature upgrade by hand or from a timer.

`central serve` (one process) runs the same pass every ``ltv.interval_s``; with several
workers, or to run it at a set hour, use a timer calling `luutru central ltv run`.
Exit status of `run`: 0 done (or not configured: said on stderr), 1 when files wait for an
unreachable TSA or revocation service (they are retried), 2 on a usage or configuration error.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click


def _centre_dir(value: Path | None) -> Path:
    env = os.environ.get("LUUTRU_CENTRE_DATA")
    return value or (Path(env) if env else Path("var/centre"))


def _emit(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, sort_keys=True, default=str))


@click.group("ltv")
def ltv_group() -> None:
    """Long-term validation of the boxes' signed PDFs (PAdES B-LTA, renewals)."""


@ltv_group.command("run")
@click.option("--data", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Centre folder (default: $LUUTRU_CENTRE_DATA, then ./var/centre).")
@click.option("--limit", type=int, default=None, help="Files per pass (default ltv.batch).")
@click.option("--json", "as_json", is_flag=True)
def ltv_run(data: Path | None, limit: int | None, as_json: bool) -> None:
    """One pass: find signed PDFs, upgrade them to B-LTA, renew time-stamps that age."""
    from appliance.errors import LuutruError

    from .central.centre import open_centre
    from .central.ltv_job import run_once

    try:
        with open_centre(_centre_dir(data)) as c:
            run = run_once(c, limit)
    except LuutruError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        _emit(run.to_json())
    elif not run.configured:
        click.echo("chưa cấu hình (centre.json: ltv.tsa_url, ltv.trust_roots) / "
                   "not configured", err=True)
    else:
        click.echo(
            f"xem {run.looked_at} tệp, nâng cấp {run.upgraded}, gia hạn {run.renewed}, "
            f"thử lại sau {run.retry}, từ chối {run.refused} ({run.seconds} s)"
        )
        for line in run.errors:
            click.echo(f"  {line}", err=True)
    if run.retry:
        raise SystemExit(1)


@ltv_group.command("report")
@click.option("--data", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Centre folder (default: $LUUTRU_CENTRE_DATA, then ./var/centre).")
@click.option("--json", "as_json", is_flag=True)
def ltv_report(data: Path | None, as_json: bool) -> None:
    """States and levels, versions waiting for their box, the next renewal, retries."""
    from appliance.errors import LuutruError

    from .central.centre import open_centre
    from .central.ltv_job import report

    try:
        with open_centre(_centre_dir(data)) as c:
            rep = report(c)
    except LuutruError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        _emit(rep.to_json())
        return
    click.echo(f"TSA: {rep.tsa_url or '—'}; " + ", ".join(
        f"{k} {v}" for k, v in sorted(rep.states.items())) + f"; chờ gửi về {rep.undelivered}")
    click.echo("mức: " + ", ".join(f"{k} {v}" for k, v in sorted(rep.levels.items())))
    click.echo(f"gia hạn tiếp theo: {rep.next_renewal or '—'}")
    for r in rep.retrying:
        click.echo(f"  thử lại {r['sha256'][:12]} ({r['attempts']} lần): {r['error']}")
