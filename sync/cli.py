"""Commands of the sync agent (enrol, sync) and the centre (central …).

`register(main)` adds them to the `luutru` group.

Import only click at module level: heavy imports go inside the command bodies, so that
`luutru --help` stays fast on a small box.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import click


def _emit(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False))


def _data_dir(value: Path | None) -> Path:
    from appliance.config import resolve_data_dir

    return resolve_data_dir(value)


def centre_dir(value: Path | None) -> Path:
    if value:
        return value
    env = os.environ.get("LUUTRU_CENTRE_DATA")
    return Path(env) if env else Path("var/centre")


class _OffsetClock:
    """The system clock moved by a fixed offset (a technician's test of a wrong clock)."""

    def __init__(self, offset_s: float) -> None:
        from appliance.clock import SystemClock

        self._base = SystemClock()
        self._offset = dt.timedelta(seconds=offset_s)

    def now(self) -> dt.datetime:
        return self._base.now() + self._offset


def _open_store(data: Path, clock_offset: float) -> Any:
    from appliance.store import Store

    clock = _OffsetClock(clock_offset) if clock_offset else None
    return Store.open(data, clock=clock)


_DATA = click.option(
    "--data",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Data folder (default: $LUUTRU_DATA, then ./var/appliance).",
)
_CLOCK_OFFSET = click.option(
    "--clock-offset", type=float, default=0.0, hidden=True,
    help="Seconds to add to the system clock (tests of a wrong appliance clock).",
)


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


@click.command()
@_DATA
@click.option("--centre", "centre_url", default=None, help="The centre's URL, e.g. https://…")
@click.option("--token", required=True, help="One-time token from `luutru central token`.")
@click.option(
    "--export", "export_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="No link: write the request to this folder (a USB stick) instead.",
)
@click.option("--force", is_flag=True, help="Enrol again even if already enrolled.")
@_CLOCK_OFFSET
def enrol(
    data: Path | None,
    centre_url: str | None,
    token: str,
    export_dir: Path | None,
    force: bool,
    clock_offset: float,
) -> None:
    """Enrol this appliance at the provincial centre (pins its key; the centre pins ours)."""
    import asyncio

    from appliance.clock import SystemClock
    from appliance.config import load_config
    from appliance.errors import LuutruError
    from appliance.keys.loader import open_key

    from .agent.enrol import enrol_export, enrol_online
    from .agent.state import ENROLMENT_NAME, sync_dir

    d = _data_dir(data)
    if (sync_dir(d) / ENROLMENT_NAME).exists() and not force:
        raise click.ClickException("already enrolled; use --force to enrol again")
    if not centre_url and not export_dir:
        raise click.UsageError("give --centre URL, or --export DIR for a USB stick")
    clock = _OffsetClock(clock_offset) if clock_offset else SystemClock()
    try:
        config = load_config(d)
        key = open_key(d, config.key)
        try:
            if export_dir:
                path = enrol_export(d, key, config, token, export_dir, clock)
                click.echo(f"enrolment request written to {path}; bring the stick to the centre")
                return
            assert centre_url
            e = asyncio.run(enrol_online(d, key, config, centre_url, token, clock))
        finally:
            key.close()
    except LuutruError as exc:
        raise _fail(exc) from exc
    where = e.centre_name or e.centre_origin
    click.echo(f"enrolled at {where} ({e.centre_url}) as {e.appliance_id}")


@click.command("sync")
@_DATA
@click.option("--once", is_flag=True, help="One cycle, then exit (0: in sync, 1: failed).")
@click.option(
    "--export", "export_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Write batches and content to this folder (a USB stick).",
)
@click.option(
    "--import-receipts", "receipts_dir", type=click.Path(file_okay=False, path_type=Path),
    default=None, help="Read the centre's answers from this folder (a USB stick).",
)
@click.option("--ignore-window", is_flag=True, help="Sync now even outside the time windows.")
@click.option("--json", "as_json", is_flag=True)
@_CLOCK_OFFSET
def sync_cmd(
    data: Path | None,
    once: bool,
    export_dir: Path | None,
    receipts_dir: Path | None,
    ignore_window: bool,
    as_json: bool,
    clock_offset: float,
) -> None:
    """Send the log and content to the provincial centre (or to/from a USB folder)."""
    import asyncio

    from appliance.errors import LuutruError

    d = _data_dir(data)
    if sum(bool(x) for x in (once, export_dir, receipts_dir)) > 1:
        raise click.UsageError("choose one of --once, --export, --import-receipts")
    try:
        with _open_store(d, clock_offset) as store:
            if export_dir:
                from .agent.usb import export

                rep: Any = export(d, store, export_dir)
                store.wait_sealed()
            elif receipts_dir:
                from .agent.usb import import_receipts

                rep = import_receipts(d, store, receipts_dir)
                store.wait_sealed()
            elif once:
                from .agent import run_once, seconds_until_window

                wait = seconds_until_window(store.config.sync.windows, store.clock.now())
                if wait > 0 and not ignore_window:
                    click.echo(f"outside the sync windows; next in {wait:.0f} s (--ignore-window)")
                    return
                rep = asyncio.run(run_once(d, store))
                store.wait_sealed()
            else:
                from .agent import run_agent

                asyncio.run(_forever(d, store, run_agent))
                return
    except LuutruError as exc:
        raise _fail(exc) from exc
    if as_json:
        _emit(rep.to_json())
    else:
        for k, v in rep.to_json().items():
            click.echo(f"{k}: {v}")


async def _forever(d: Path, store: Any, run_agent: Any) -> None:
    import asyncio
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await run_agent(d, stop, store)


# -- the centre -----------------------------------------------------------------------------

CENTRE_DATA = click.option(
    "--data",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Centre folder (default: $LUUTRU_CENTRE_DATA, then ./var/centre).",
)


@click.group()
def central() -> None:
    """The provincial centre: intake, enrolment tokens, reports, USB import."""


@central.command("init")
@CENTRE_DATA
@click.option("--db", default=None, help="Database URL (default sqlite:centre.db in the folder).")
@click.option("--name", default="Trung tâm dữ liệu tỉnh", show_default=True)
def central_init(data: Path | None, db: str | None, name: str) -> None:
    """Create a centre folder with its key and storage."""
    from appliance.errors import LuutruError

    from .central.centre import init_centre

    try:
        with init_centre(centre_dir(data), name, db) as c:
            from .central.storage import safe_url

            click.echo(f"centre {c.origin} initialised in {c.data_dir} ({safe_url(c.config.db)})")
            click.echo(
                "CẢNH BÁO / WARNING: the centre key is a SOFTWARE key; keep the folder's "
                "keys/ on encrypted storage.",
                err=True,
            )
    except LuutruError as exc:
        raise _fail(exc) from exc


@central.command("token")
@CENTRE_DATA
@click.option("--org-id", default=None, help="Mã định danh of the agency being enrolled.")
@click.option(
    "--replace",
    "replace",
    default=None,
    help="Instead, a replacement token for this dead appliance (its id, a unique prefix, or its "
    "agency's mã định danh): the new box spends it with `luutru restore --from-centre`.",
)
@click.option("--ttl-hours", type=int, default=None, help="Validity (default from centre.json).")
def central_token(
    data: Path | None, org_id: str | None, replace: str | None, ttl_hours: int | None
) -> None:
    """Issue a one-time enrolment (or replacement) token, printed alone on the last line."""
    from appliance.errors import LuutruError

    from .central.centre import open_centre
    from .central.enrolment import issue_token
    from .central.replacement import find_appliance, issue_replacement_token

    if (org_id is None) == (replace is None):
        raise click.UsageError("give --org-id (enrolment) or --replace (replacement), not both")
    try:
        with open_centre(centre_dir(data)) as c:
            ttl = ttl_hours if ttl_hours is not None else c.config.token_ttl_hours
            if replace is not None:
                app = find_appliance(c, replace)
                token = issue_replacement_token(c, app.id, ttl_hours)
                head = (
                    f"one-time replacement token for appliance {app.id} ({app.org_name}, "
                    f"{app.org_id}; {app.accepted_size} entries held here), valid {ttl} h:"
                )
            else:
                assert org_id is not None
                token = issue_token(c, org_id, ttl_hours)
                head = f"one-time enrolment token for {org_id}, valid {ttl} h:"
    except LuutruError as exc:
        raise _fail(exc) from exc
    click.echo(head)
    click.echo(token)


@central.command("import")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@CENTRE_DATA
@click.option("--json", "as_json", is_flag=True)
def central_import(folder: Path, data: Path | None, as_json: bool) -> None:
    """Import what communes sent on a USB stick; write receipts back onto it."""
    from appliance.errors import LuutruError

    from .central.centre import open_centre
    from .central.importer import import_folder
    from .central.intake import Intake

    try:
        with open_centre(centre_dir(data)) as c:
            rep = import_folder(Intake(c), folder)
    except LuutruError as exc:
        raise _fail(exc) from exc
    if as_json:
        _emit(rep.to_json())
        return
    for d in rep.devices:
        click.echo(
            f"{d.appliance_id}: batches {d.batches}, content stored {d.content_stored}, "
            f"refused {d.content_refused}; accepted {d.accepted_size}, "
            f"missing content {d.missing_content}"
            + (f"; errors: {'; '.join(d.errors)}" if d.errors else "")
        )


@central.command("report")
@CENTRE_DATA
@click.option("--json", "as_json", is_flag=True)
@click.option("--csv", "as_csv", is_flag=True)
def central_report(data: Path | None, as_json: bool, as_csv: bool) -> None:
    """Per appliance: last contact, accepted vs claimed size, content backlog, anomalies."""
    from appliance.errors import LuutruError

    from .central.centre import open_centre
    from .central.report import build_report, to_csv

    try:
        with open_centre(centre_dir(data)) as c, c.storage.view() as v:
            rep = build_report(v, c.now(), c.origin)
    except LuutruError as exc:
        raise _fail(exc) from exc
    if as_json:
        _emit(rep.to_json())
    elif as_csv:
        click.echo(to_csv(rep), nl=False)
    else:
        t = rep.totals
        click.echo(
            f"{t.appliances} thiết bị, {t.quarantined} cách ly, {t.entries} mục, "
            f"{t.documents} văn bản, thiếu {t.content_missing} tệp, {t.anomalies} bất thường"
        )
        for r in rep.rows:
            click.echo(
                f"{r.org_id} {r.org_name}: {r.status}, nhận {r.accepted_size}/{r.claimed_size}, "
                f"thiếu {r.content_missing} tệp, liên lạc {r.last_contact or '—'}"
                + (f", bất thường: {r.anomaly_kinds}" if r.anomaly_kinds else "")
            )
        for a in rep.alerts:
            click.echo(f"CẢNH BÁO {a.kind} {a.appliance_id}: {a.detail}")


@central.command("clear")
@CENTRE_DATA
@click.option("--appliance", "appliance_id", required=True, help="Device key id (hex).")
@click.option("--by", required=True, help="Technician's name, kept with the decision.")
def central_clear(data: Path | None, appliance_id: str, by: str) -> None:
    """Lift a quarantine after a fork: keep the common prefix, supersede the rest."""
    from appliance.errors import LuutruError

    from .central.centre import open_centre
    from .central.quarantine import clear_quarantine

    try:
        with open_centre(centre_dir(data)) as c:
            res = clear_quarantine(c, appliance_id, by)
    except LuutruError as exc:
        raise _fail(exc) from exc
    _emit(res.to_json())


@central.command("purge-classified")
@CENTRE_DATA
@click.option("--dry-run", is_flag=True, help="Only count what would be purged.")
def central_purge_classified(data: Path | None, dry_run: bool) -> None:
    """Keep only the leaf hash of held entries that name classified (mật) records."""
    from appliance.errors import LuutruError

    from .central.centre import open_centre
    from .central.purge import purge_classified

    try:
        with open_centre(centre_dir(data)) as c:
            res = purge_classified(c, dry_run=dry_run)
    except LuutruError as exc:
        raise _fail(exc) from exc
    _emit(res.to_json())


def register(main: click.Group) -> None:
    """Add this part's commands to the `luutru` group."""
    from .cli_ltv import ltv_group
    from .edxml.cli import register as register_edxml

    central.add_command(ltv_group)
    register_edxml(main)
    main.add_command(enrol)
    main.add_command(sync_cmd)
    main.add_command(central)
