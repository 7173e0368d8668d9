"""`luutru restore`: a data folder back from a backup medium (the archive's) or, for a
replacement box, from the provincial centre's copy (sync's): the one command needs both
parts, so it lives here, where the parts are joined."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from appliance.archive.cli import _actor_option, _errors
from appliance.archive.restore import BackupDirSource, restore_data_dir
from appliance.cli_options import data_option
from appliance.config import resolve_data_dir
from sync.agent.restore import CentreSource


def _emit(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False))


def _restore_source(
    from_backup: Path | None, set_id: str | None, centre: dict[str, Any] | None = None
) -> Any:
    """The restore source named on the command line: a backup medium, or the centre."""

    if centre is not None and centre.get("url"):
        if from_backup is not None:
            raise click.UsageError("name one source: --from-backup DIR or --from-centre URL")
        if not centre.get("token"):
            raise click.UsageError("--from-centre needs --token (from `luutru central token "
                                   "--replace`)")
        options: dict[str, Any] = {}
        if centre.get("tcti"):
            options["tcti"] = centre["tcti"]
        return CentreSource(
            url=str(centre["url"]),
            token=str(centre["token"]),
            key_kind=str(centre.get("key") or "auto"),
            key_options=options,
            agency_abbr=str(centre.get("agency_abbr") or "UBND"),
            allow_lost_content=bool(centre.get("accept_lost")),
            report=lambda msg: click.echo(msg, err=True),
        )
    if from_backup is None:
        raise click.UsageError("name a source: --from-backup DIR or --from-centre URL")
    return BackupDirSource(from_backup, set_id)


@click.command()
@data_option
@click.option("--from-backup", "from_backup", type=click.Path(exists=True, file_okay=False,
              path_type=Path), help="A backup medium written by `luutru backup`.")
@click.option("--set", "set_id", default=None, help="Restore this set (default: the latest).")
@click.option("--from-centre", "centre_url", default=None,
              help="Replace a dead appliance from the provincial centre's copy (URL).")
@click.option("--token", default=None, help="Replacement token (`luutru central token "
              "--replace`).")
@click.option("--key", "key_kind", type=click.Choice(["auto", "tpm", "software"]),
              default="auto", show_default=True, help="The new device key (TPM when one answers).")
@click.option("--tcti", default=None, help="TPM connection, default device:/dev/tpmrm0.")
@click.option("--agency-abbr", default="UBND", show_default=True,
              help="Chữ viết tắt of the agency (not kept in the log).")
@click.option("--accept-lost-content", "accept_lost", is_flag=True,
              help="Carry on when content never reached the centre (recorded in the log).")
@click.option("--tail-from-centre", "tail", is_flag=True,
              help="This box lost the tail of its log (it stopped writing and says so): bring "
                   "back the entries the centre holds, in place.")
@click.option("--accept-loss", is_flag=True,
              help="With --tail-from-centre: carry on when entries signed here never reached "
                   "the centre (the loss is recorded; their numbers are never given again).")
@click.option("--json", "as_json", is_flag=True)
@_actor_option
def restore(data: Path | None, from_backup: Path | None, set_id: str | None,
            centre_url: str | None, token: str | None, key_kind: str, tcti: str | None,
            agency_abbr: str, accept_lost: bool, tail: bool, accept_loss: bool, as_json: bool,
            actor: str) -> None:
    """Restore onto an EMPTY data folder, verify it, and log the restore; or, with
    --tail-from-centre, heal this box's own log in place.

    From a backup medium, or (a replacement box) from the provincial centre's copy: the log and
    content come back and are verified, and the new device key continues the log after a
    hand-over entry that the centre countersigns.
    """
    if tail:
        if from_backup is not None or centre_url is not None:
            raise click.UsageError("--tail-from-centre heals this folder in place; it takes no "
                                   "other source")
        _restore_tail(resolve_data_dir(data), accept_loss, accept_lost, as_json)
        return
    centre = {"url": centre_url, "token": token, "key": key_kind, "tcti": tcti,
              "agency_abbr": agency_abbr, "accept_lost": accept_lost}
    source = _restore_source(from_backup, set_id, centre)
    with _errors():
        res = restore_data_dir(resolve_data_dir(data), source, actor)
    if as_json:
        _emit(res.to_json())
    else:
        p = res.provenance
        if p.get("source") == "centre":
            click.echo(f"restored {res.data_dir} from the centre {p.get('centre')}: "
                       f"{p.get('tree_size')} entries, {p.get('content_files')} content files, "
                       f"hand-over at entry {p.get('handover_index')} countersigned; verify ok")
        else:
            click.echo(f"restored {res.data_dir} from {p.get('medium')} set {p.get('set_id')}: "
                       f"{p.get('tree_size')} entries, {p.get('content_files')} content files; "
                       "verify ok")
        for n in res.notes:
            click.echo(f"note: {n}", err=True)


def _restore_tail(data_dir: Path, accept_loss: bool, accept_lost: bool, as_json: bool) -> None:
    from sync.agent.tail import TailRestore

    with _errors():
        res = TailRestore(data_dir=data_dir, accept_loss=accept_loss,
                          allow_lost_content=accept_lost,
                          report=lambda msg: click.echo(msg, err=True)).run()
    if as_json:
        _emit(res.to_json())
        return
    if res.entry_index is None:
        click.echo(f"{data_dir}: nothing to restore")
        return
    click.echo(f"restored the tail of {data_dir} from the centre: {res.restored} entries "
               f"({res.local_size} → {res.centre_size}), {res.content_files} content files; "
               f"logged at entry {res.entry_index}; verify {'ok' if res.verify_ok else 'FAILED'}")
    if res.lost_anchors:
        click.echo(f"note: entries beyond the centre's copy are lost for good "
                   f"({len(res.lost_anchors)} anchors); {res.numbers_kept} numbers they took "
                   "are kept as used", err=True)
    click.echo("note: restart the web service (systemctl restart luutru-web) so that it writes "
               "again", err=True)
