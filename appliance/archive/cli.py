"""Commands of the archival management (due, transfer, backup, restore, fixity, recall,
freeze, destroy, fonds). `register(main)` adds them to the `luutru` group.

Each command opens the store, makes one library call and turns a library error into a
ClickException. Import only click at module level: heavy imports go inside the bodies, so
that `luutru --help` stays fast on a small box.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from appliance.cli_options import data_option as _data_option

F = TypeVar("F", bound=Callable[..., Any])




def _actor_option(fn: F) -> F:
    return click.option("--actor", default="luutru cli", show_default=True,
                        help="Who does this (recorded in the log).")(fn)


def _emit(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False))


@contextmanager
def _store(data: Path | None, readonly: bool = False) -> Iterator[Any]:
    """Open the data folder; every library error becomes a one-line ClickException."""
    from ..config import resolve_data_dir
    from ..errors import LuutruError
    from ..store import Store

    try:
        with Store.open(resolve_data_dir(data), readonly=readonly) as store:
            yield store
            if not readonly:
                store.wait_sealed()
    except LuutruError as exc:
        raise click.ClickException(str(exc)) from exc


@contextmanager
def _errors() -> Iterator[None]:
    from ..errors import LuutruError

    try:
        yield
    except LuutruError as exc:
        raise click.ClickException(str(exc)) from exc


def register(main: click.Group) -> None:
    """Add this part's commands to the `luutru` group."""
    for cmd in (due, hoso, transfer, fixity, backup_cmd, recall, freeze, unfreeze, destroy,
                fonds, retention_cmd):
        main.add_command(cmd)


# -- due ------------------------------------------------------------------------------------


@click.command()
@_data_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--all", "show_all", is_flag=True, help="Also deadlines beyond the 30-day window.")
@click.option("--today", default=None, help="Compute as of this date (dd/mm/yyyy).")
def due(data: Path | None, as_json: bool, show_all: bool, today: str | None) -> None:
    """Hồ sơ falling due for the current or historical archive (warned 30 days ahead)."""
    from ..clock import parse_date, vn_date
    from .due import STAGE_LABELS, files_due

    with _store(data, readonly=True) as store, _errors():
        when = parse_date(today, "today") if today else None
        items = files_due(store, when, include_upcoming=show_all)
    for item in items:
        if as_json:
            _emit(item.to_json())
        else:
            flag = {"overdue": "QUÁ HẠN", "due_soon": "sắp đến hạn"}.get(item.status.value, "")
            click.echo(f"{vn_date(item.deadline)}  {flag:12} {item.file_code}  "
                       f"{STAGE_LABELS[item.stage]}: {item.title}")
    if not items and not as_json:
        click.echo("không có hồ sơ nào đến hạn nộp lưu trong 30 ngày tới")


@click.command("retention")
@_data_option
@click.option("--json", "as_json", is_flag=True, help="The whole table as one JSON object.")
@click.option("--csv", "as_csv", is_flag=True, help="One row per kind, with its TT 05 code.")
def retention_cmd(data: Path | None, as_json: bool, as_csv: bool) -> None:
    """The retention table (kinds of hồ sơ → period, legal source) and Circular 05 codes."""
    import csv

    from .. import retention
    from ..cells import safe_row
    from ..config import resolve_data_dir

    with _errors():
        table = retention.load(resolve_data_dir(data))
    if as_json:
        _emit(table.to_json())
        return
    rows = [i.to_json(table.sources) for i in table.items]
    if as_csv:
        w = csv.writer(sys.stdout)
        w.writerow(["id", "group", "title", "period", "years", "maintenance", "source",
                    "provenance"])
        for r in rows:
            w.writerow(safe_row([r["id"], r["group"], r["title"], r["period"], r["years"] or "",
                                 r["maintenance"], r["source"], r["provenance"]]))
        return
    click.echo(f"Bảng thời hạn lưu trữ, phiên bản {table.version} ({table.origin})")
    for group, items in table.groups():
        click.echo(group)
        for i in items:
            click.echo(f"  {i.code}  {i.period:10} {i.title}  [{i.source}, {i.provenance}]")


# -- hồ sơ ----------------------------------------------------------------------------------


@click.group()
def hoso() -> None:
    """Hồ sơ: close (contents list, page counts, retention re-assessed), accession, hold."""


@hoso.command("close")
@_data_option
@click.option("--file", "file_code", required=True, help="Mã hồ sơ.")
@click.option("--maintenance", default=None, help="Re-assessed retention (code or label).")
@click.option("--reason", default=None, help="Why the retention changes.")
@click.option("--json", "as_json", is_flag=True)
@_actor_option
def hoso_close(data: Path | None, file_code: str, maintenance: str | None, reason: str | None,
               as_json: bool, actor: str) -> None:
    """Close a hồ sơ and log its mục lục văn bản."""
    from .closing import close_file

    with _store(data) as store, _errors():
        res = close_file(store, file_code, actor, maintenance=maintenance, reason=reason)
    if as_json:
        _emit({"file": res.record.data, "contents": [i.to_json() for i in res.contents],
               "warnings": list(res.warnings)})
        return
    for w in res.warnings:
        click.echo(f"cảnh báo: {w}", err=True)
    click.echo(f"đã đóng {file_code}: {res.record.data['DocTotal']} văn bản, "
               f"{res.record.data['PageTotal']} trang, thời hạn {res.retention_after}")


@hoso.command("accession")
@_data_option
@click.option("--file", "file_code", required=True)
@click.option("--on", "on", default=None, help="Date handed over (dd/mm/yyyy); default today.")
@_actor_option
def hoso_accession(data: Path | None, file_code: str, on: str | None, actor: str) -> None:
    """Record a closed hồ sơ as handed over to the current archive (nộp lưu)."""
    from .custody import accession

    with _store(data) as store, _errors():
        _emit(accession(store, file_code, on, actor))


@hoso.command("publish")
@_data_option
@click.option("--file", "file_code", required=True)
@click.option("--ref", "ref", required=True, help="The head's decision to open it (số văn bản).")
@_actor_option
def hoso_publish(data: Path | None, file_code: str, ref: str, actor: str) -> None:
    """Open a public hồ sơ for the province's catalogue, at its current versions."""
    from .publication import publish

    with _store(data) as store, _errors():
        _emit(publish(store, file_code, ref, actor))


@hoso.command("unpublish")
@_data_option
@click.option("--file", "file_code", required=True)
@click.option("--reason", required=True)
@_actor_option
def hoso_unpublish(data: Path | None, file_code: str, reason: str, actor: str) -> None:
    """Withdraw a hồ sơ from the province's catalogue (transferred or opened)."""
    from .publication import unpublish

    with _store(data) as store, _errors():
        unpublish(store, file_code, reason, actor)
        _emit({"FileCode": file_code, "withdrawn": True})


@hoso.command("hold")
@_data_option
@click.option("--file", "file_code", required=True)
@click.option("--until", required=True, help="Keep in the unit until (≤ 2 years past due).")
@click.option("--ref", "ref", required=True, help="The head's written approval.")
@_actor_option
def hoso_hold(data: Path | None, file_code: str, until: str, ref: str, actor: str) -> None:
    """Keep a due hồ sơ in the unit with written consent (Decree 30 Điều 31.3)."""
    from .custody import hold

    with _store(data) as store, _errors():
        _emit(hold(store, file_code, until, ref, actor))


# -- transfer -------------------------------------------------------------------------------


@click.group()
def transfer() -> None:
    """Transfer to the historical archive (SIP_hoso) and the Decree 30 export."""


@transfer.command("package")
@_data_option
@click.option("--file", "file_code", required=True, help="Mã hồ sơ (must be permanent, 01).")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--include-classified", is_flag=True,
              help="Include mật items (only through the state-secrets procedure).")
@click.option("--record-status", default="NEW",
              type=click.Choice(["NEW", "SUPPLEMENT", "REPLACEMENT", "TEST", "OTHER"]))
@click.option("--no-check", is_flag=True, help="Skip re-checking the written package.")
@_actor_option
def transfer_package(data: Path | None, file_code: str, out: Path, include_classified: bool,
                     record_status: str, no_check: bool, actor: str) -> None:
    """Build the Circular 05/2025 SIP_hoso of a permanent hồ sơ as a ZIP."""
    from .sip import PackageOptions, build_package
    from .validate import check_package

    opts = PackageOptions(include_classified, record_status, actor=actor)
    with _store(data) as store, _errors():
        res = build_package(store, file_code, out, opts)
    report = res.to_json()
    if not no_check:
        check = check_package(res.path)
        report["check"] = check.to_json()
        if not check.ok:
            _emit(report)
            raise click.ClickException("the written package does not check out")
    _emit(report)


@transfer.command("check")
@click.argument("package", type=click.Path(exists=True, path_type=Path))
def transfer_check(package: Path) -> None:
    """Check a SIP_hoso (ZIP or folder): references, orphans, checksums, schemas."""
    from .validate import check_package

    check = check_package(package)
    _emit(check.to_json())
    sys.exit(0 if check.ok else 1)


@transfer.command("export")
@_data_option
@click.option("--file", "file_code", required=True)
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--include-classified", is_flag=True)
@_actor_option
def transfer_export(data: Path | None, file_code: str, out: Path, include_classified: bool,
                    actor: str) -> None:
    """Decree 30 export of a whole hồ sơ: PDF + XML in chronological order."""
    from .export import export_file

    with _store(data) as store, _errors():
        res = export_file(store, file_code, out, include_classified=include_classified,
                          actor=actor)
    _emit(res.to_json())


@transfer.command("confirm")
@_data_option
@click.option("--file", "file_code", required=True)
@click.option("--package", "package", required=True, help="The accepted package's OBJID.")
@click.option("--on", "on", default=None)
@_actor_option
def transfer_confirm(data: Path | None, file_code: str, package: str, on: str | None,
                     actor: str) -> None:
    """Record that the historical archive accepted the package."""
    from .custody import record_transfer

    with _store(data) as store, _errors():
        _emit(record_transfer(store, file_code, package, on, actor))


# -- preservation ---------------------------------------------------------------------------


@click.command("backup")
@_data_option
@click.option("--to", "to", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The second medium (a folder on another disk).")
@click.option("--full", is_flag=True, help="Force a full set (default: monthly full, daily "
              "incremental).")
@click.option("--incremental", is_flag=True, help="Force an incremental set.")
@click.option("--label", default=None, help="Medium label, on first use (e.g. USB-01).")
@click.option("--rated-years", type=click.IntRange(1, 100), default=None,
              help="The medium's rated lifetime in years (its label warns a year before).")
@_actor_option
def backup_cmd(data: Path | None, to: Path, full: bool, incremental: bool, label: str | None,
               rated_years: int | None, actor: str) -> None:
    """Back up the database and content to a second medium, with the metadata as XML, the
    backup minutes (biên bản sao lưu) and the medium's label."""
    from .backup import backup

    if full and incremental:
        raise click.UsageError("--full and --incremental exclude each other")
    kind = True if full else (False if incremental else None)
    with _store(data) as store, _errors():
        res = backup(store, to, full=kind, label=label, actor=actor, rated_years=rated_years)
    _emit(res.to_json())


@click.command()
@_data_option
@click.option("--media", "media", multiple=True, type=click.Path(file_okay=False,
              path_type=Path), help="Backup media to audit too (repeatable).")
@click.option("--minutes", "minutes", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Also write the biên bản kiểm tra (PDF) here.")
@click.option("--heal", "do_heal", is_flag=True, help="Repair failed copies from good ones.")
@click.option("--json", "as_json", is_flag=True)
@_actor_option
def fixity(data: Path | None, media: tuple[Path, ...], minutes: Path | None, do_heal: bool,
           as_json: bool, actor: str) -> None:
    """Fixity audit of every content file and log entry (and each medium), with minutes.

    Exit 0 when everything is intact (after healing, if asked), 1 when something failed.
    """
    from .fixity import audit, heal

    with _store(data) as store, _errors():
        res = audit(store, list(media), actor=actor, minutes_to=minutes)
        out: dict[str, Any] = {"audit": res.to_json()}
        ok = res.ok
        if do_heal and (not res.ok or (res.known_lost and media)):
            healed = heal(store, list(media), res, actor=actor)
            after = audit(store, list(media), actor=actor)
            out.update(heal=healed.to_json(), after=after.to_json())
            ok = after.ok
    if as_json:
        _emit(out)
    else:
        for f in res.failures:
            click.echo(f"LỖI [{f.medium}] {f.path}: {f.message}")
        for sha in res.known_lost:
            click.echo(f"đã ghi nhận mất khi thay thiết bị (không tính là lỗi): {sha}")
        for h in out.get("heal", {}).get("healed", []):
            click.echo(f"đã phục hồi {h.get('sha256') or h.get('set_id')} trên {h['to']} "
                       f"từ {h.get('from', h.get('action'))}")
        click.echo(f"{'toàn vẹn' if ok else 'CÓ LỖI'}: {res.content_checked} tệp, "
                   f"{res.entries_checked} mục nhật ký; biên bản {res.minutes_sha256}")
    sys.exit(0 if ok else 1)


@click.command()
@_data_option
@click.option("--doc", "doc_id", required=True, help="Document id.")
@click.option("--reason", required=True)
@click.option("--ref", "ref", required=True, help="The recalling document (số, ký hiệu).")
@_actor_option
def recall(data: Path | None, doc_id: str, reason: str, ref: str, actor: str) -> None:
    """Thu hồi a document: outgoing frozen; incoming destroyed, recall metadata kept."""
    from .holds import recall as do_recall

    with _store(data) as store, _errors():
        _emit(do_recall(store, doc_id, reason, ref, actor))


def _target_options(fn: F) -> F:
    for opt in (
        click.option("--doc", "doc_id", default=None, help="Document id."),
        click.option("--file", "file_code", default=None, help="Mã hồ sơ."),
        click.option("--fonds", "fond_code", default=None, help="Mã phông."),
    ):
        fn = opt(fn)
    return fn


def _target(doc_id: str | None, file_code: str | None, fond_code: str | None) -> tuple[str, str]:
    given = [(t, v) for t, v in (("document", doc_id), ("file", file_code),
                                 ("fonds", fond_code)) if v]
    if len(given) != 1:
        raise click.UsageError("name exactly one of --doc, --file, --fonds")
    return given[0][0], str(given[0][1])


@click.command()
@_data_option
@_target_options
@click.option("--reason", required=True)
@click.option("--ref", "ref", default="", help="The order to freeze.")
@_actor_option
def freeze(data: Path | None, doc_id: str | None, file_code: str | None, fond_code: str | None,
           reason: str, ref: str, actor: str) -> None:
    """Phong tỏa a document, hồ sơ or fonds: no edits or moves until unfrozen."""
    from .holds import freeze as do_freeze

    target_type, target = _target(doc_id, file_code, fond_code)
    with _store(data) as store, _errors():
        _emit(do_freeze(store, target_type, target, reason, ref, actor))


@click.command()
@_data_option
@_target_options
@click.option("--reason", required=True)
@_actor_option
def unfreeze(data: Path | None, doc_id: str | None, file_code: str | None,
             fond_code: str | None, reason: str, actor: str) -> None:
    """Lift a freeze."""
    from .holds import unfreeze as do_unfreeze

    target_type, target = _target(doc_id, file_code, fond_code)
    with _store(data) as store, _errors():
        _emit(do_unfreeze(store, target_type, target, reason, actor))


@click.group()
def destroy() -> None:
    """Destruction: the "Xem xét hủy" list, the council's decision, destruction."""


@destroy.command("list")
@_data_option
@click.option("--new", "new", is_flag=True, help="Build a new list of expired files and "
              "duplicates (otherwise show the existing lists).")
@click.option("--today", default=None)
@_actor_option
def destroy_list(data: Path | None, new: bool, today: str | None, actor: str) -> None:
    """Show destruction lists, or build a new "Xem xét hủy" list."""
    from ..clock import parse_date
    from .destruction import lists, propose

    with _store(data, readonly=not new) as store, _errors():
        if new:
            _emit(propose(store, parse_date(today, "today") if today else None, actor).to_json())
        else:
            for dl in lists(store):
                _emit(dl.to_json())


@destroy.command("decide")
@_data_option
@click.option("--list", "list_id", required=True)
@click.option("--approve/--reject", "approve", required=True)
@click.option("--ref", "ref", required=True, help="Số quyết định of the decision.")
@click.option("--council", "council", multiple=True, required=True,
              help="A member of the appraisal council (repeatable).")
@click.option("--exclude", "exclude", multiple=True, help="Keep this item (mã hồ sơ or id).")
@click.option("--note", default="")
@_actor_option
def destroy_decide(data: Path | None, list_id: str, approve: bool, ref: str,
                   council: tuple[str, ...], exclude: tuple[str, ...], note: str,
                   actor: str) -> None:
    """Record the appraisal council's decision on a list."""
    from .destruction import decide

    with _store(data) as store, _errors():
        _emit(decide(store, list_id, approve=approve, decision_ref=ref, council=list(council),
                     exclude=list(exclude), note=note, actor=actor).to_json())


@destroy.command("execute")
@_data_option
@click.option("--list", "list_id", required=True)
@_actor_option
def destroy_execute(data: Path | None, list_id: str, actor: str) -> None:
    """Destroy what the council approved (content removed, destruction logged)."""
    from .destruction import execute

    with _store(data) as store, _errors():
        _emit(execute(store, list_id, actor))


@click.group()
def fonds() -> None:
    """Fonds (phông) in a merger: close it, export it whole for hand-over."""


@fonds.command("close")
@_data_option
@click.option("--fonds", "fond_code", required=True)
@click.option("--date", "closed_date", required=True, help="Effective date of the merger.")
@click.option("--successor", default=None, help="Mã phông that takes over.")
@_actor_option
def fonds_close(data: Path | None, fond_code: str, closed_date: str, successor: str | None,
                actor: str) -> None:
    """Close open hồ sơ and the fonds: read-only, numbering stopped."""
    from .fonds import close_fonds

    with _store(data) as store, _errors():
        res = close_fonds(store, fond_code, closed_date, successor, actor)
    _emit({"fonds": res.fonds.data,
           "files_closed": [c.record.data["FileCode"] for c in res.files_closed]})


@fonds.command("export")
@_data_option
@click.option("--fonds", "fond_code", required=True)
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--include-classified", is_flag=True)
@_actor_option
def fonds_export(data: Path | None, fond_code: str, out: Path, include_classified: bool,
                 actor: str) -> None:
    """Export a whole fonds for hand-over (TT 06/2025 Điều 39–40)."""
    from .fonds import export_fonds

    with _store(data) as store, _errors():
        _emit(export_fonds(store, fond_code, out, include_classified=include_classified,
                           actor=actor).to_json())
