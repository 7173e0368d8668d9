"""The `luutru` command: thin adapters over library calls (see STYLE.md)."""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from . import clock as clockmod
from .cli_options import data_option
from .config import resolve_data_dir
from .errors import LuutruError
from .search import Filters

F = TypeVar("F", bound=Callable[..., Any])




def _fail(exc: LuutruError) -> click.ClickException:
    return click.ClickException(str(exc))


def _emit(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False))


COMMANDS: list[click.Command] = []


def _command(*args: Any, **kw: Any) -> Callable[[Callable[..., Any]], click.Command]:
    """A command of this part, added to the `luutru` group by ``register``."""

    def deco(fn: Callable[..., Any]) -> click.Command:
        cmd: click.Command = click.command(*args, **kw)(fn)
        COMMANDS.append(cmd)
        return cmd

    return deco


@_command()
@data_option
@click.option("--org-id", required=True, help="Mã định danh của cơ quan, e.g. 000.21.08.H49.")
@click.option("--org-name", required=True, help="Tên cơ quan, e.g. Ủy ban nhân dân xã Đông Hải.")
@click.option(
    "--agency-abbr",
    default="UBND",
    show_default=True,
    help="Chữ viết tắt tên cơ quan used in ký hiệu (QĐ-UBND).",
)
@click.option(
    "--key",
    "key_kind",
    default="software",
    show_default=True,
    help="Device key: software, tpm or auto.",
)
@click.option("--tcti", default=None, help="TPM connection (tpm keys), e.g. device:/dev/tpmrm0.")
def init(
    data: Path | None, org_id: str, org_name: str, agency_abbr: str, key_kind: str, tcti: str | None
) -> None:
    """Create a data folder with the agency's identity and a device key."""
    from .datadir import init_data_dir

    options: dict[str, object] = {"tcti": tcti} if tcti else {}
    try:
        res = init_data_dir(
            resolve_data_dir(data), org_id, org_name, key_kind, agency_abbr, options
        )
    except LuutruError as exc:
        raise _fail(exc) from exc
    if res.backing == "software":
        click.echo(
            "CẢNH BÁO / WARNING: the device key is a SOFTWARE key (no TPM): it can be "
            "copied with the disk.",
            err=True,
        )
    click.echo(
        f"initialised {res.data_dir} for {res.org_id}: {res.backing} device key "
        f"{res.kid}, code lists {res.codelists_version}"
    )


@_command("import")
@data_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--fond", default=None, help="Mã phông for rows that do not name one.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable progress and summary.")
def import_cmd(data: Path | None, file: Path, fond: str | None, as_json: bool) -> None:
    """Import a register: .jsonl (Phụ lục VI names), or .csv/.xlsx with Phụ lục IV headers."""
    from .importer import import_file, report_lines
    from .store import Store

    def progress(last_line: int, rep: Any) -> None:
        # Printed only after the batch's commit returned: every line up to here is durable.
        if as_json:
            _emit({"committed_through_line": last_line, "imported": rep.imported})
            sys.stdout.flush()

    try:
        with Store.open(resolve_data_dir(data)) as store:
            report = import_file(store, file, fond=fond, on_batch=progress)
            store.wait_sealed()
    except LuutruError as exc:
        raise _fail(exc) from exc
    if as_json:
        _emit(
            {
                "imported": report.imported,
                "skipped": report.skipped,
                "failed": [{"line": f.line, "reason": f.message} for f in report.failed],
                "warnings": [{"line": ln, "warning": w} for ln, w in report.warnings],
            }
        )
    else:
        for line in report_lines(report):
            click.echo(line, err=True)
        click.echo(
            f"imported {report.imported}, already present {report.skipped}, "
            f"refused {len(report.failed)}"
        )
    if report.failed:
        sys.exit(1)


@_command()
@data_option
@click.option("--json", "as_json", is_flag=True)
@click.option("--skip-content", is_flag=True, help="Do not re-hash content files.")
def verify(data: Path | None, as_json: bool, skip_content: bool) -> None:
    """Recompute the log, checkpoints, projections and content. Exit 0 intact, 1 findings."""
    from .verify import Report, verify_data_dir

    try:
        report = verify_data_dir(
            resolve_data_dir(data), check_content=not skip_content, counter=True
        )
    except Exception as exc:  # damage no check foresaw is still a finding, never a traceback
        report = Report()
        report.add("verify.failed", f"verification stopped: {type(exc).__name__}: {exc}")
    if as_json:
        _emit(report.to_json())
    else:
        for f in report.findings:
            click.echo(f"{f.severity.value}: [{f.code}] {f.message}")
        state = "intact" if report.ok else "FINDINGS"
        click.echo(
            f"{state}: {report.entries} entries, {report.checkpoints} checkpoints, "
            f"{report.records} records, {report.content_files} content files"
        )
    sys.exit(0 if report.ok else 1)


@_command()
@data_option
@click.argument("query", default="")
@click.option("--year", type=int, default=None)
@click.option("--type", "type_name", default=None, help="Type name or TT 05 code.")
@click.option("--direction", type=click.Choice(["incoming", "outgoing"]), default=None)
@click.option("--fond", default=None)
@click.option("--file", "file_code", default=None, help="Mã hồ sơ.")
@click.option("--limit", type=int, default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def search(
    data: Path | None,
    query: str,
    year: int | None,
    type_name: str | None,
    direction: str | None,
    fond: str | None,
    file_code: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Search documents in Vietnamese, with or without diacritics."""
    from .agency_ids import file_filter
    from .search import search as run_search
    from .store import Store

    try:
        with Store.open(resolve_data_dir(data), readonly=True) as store:
            code = file_filter(store.reader(), store.config, file_code)
            filters = Filters(year, type_name, direction, fond, code)
            hits = run_search(store.reader(), query, filters, limit)
    except LuutruError as exc:
        raise _fail(exc) from exc
    for hit in hits:
        d = hit.data
        if as_json:
            _emit({"id": hit.id, **d})
            continue
        number = f"{d.get('CodeNumber', '—')}/{d.get('CodeNotation', '')}"
        when = clockmod.vn_date(d["IssuedDate"]) if d.get("IssuedDate") else "—"
        arrow = "đến" if d["Direction"] == "incoming" else "đi"
        click.echo(f"[{arrow}] {number}  {when}  {d.get('TypeName', '')}: {d.get('Subject', '')}")


@click.group()
def log() -> None:
    """The sealed log: checkpoints, entries and proofs."""


def _store_ro(data: Path | None) -> Any:
    from .store import Store

    return Store.open(resolve_data_dir(data), readonly=True)


@log.command("checkpoint")
@data_option
@click.option("--json", "as_json", is_flag=True, required=True)
def log_checkpoint(data: Path | None, as_json: bool) -> None:
    """The latest signed checkpoint."""
    from .datadir import PUBLIC_KEY_NAME

    try:
        with _store_ro(data) as store:
            cp = store.latest_checkpoint()
            pem = (store.data_dir / PUBLIC_KEY_NAME).read_text()
    except LuutruError as exc:
        raise _fail(exc) from exc
    if cp is None:
        raise click.ClickException("no checkpoint has been signed yet")
    size, root, _, cose = cp
    _emit(
        {
            "tree_size": size,
            "root_hash": root.hex(),
            "cose_sign1": base64.b64encode(cose).decode(),
            "public_key": pem,
        }
    )


@log.command("entries")
@data_option
@click.option("--json", "as_json", is_flag=True, required=True)
@click.option("--from", "start", type=int, default=0)
@click.option("--to", "end", type=int, default=None, help="Exclusive end index.")
def log_entries(data: Path | None, as_json: bool, start: int, end: int | None) -> None:
    """Entries as the exact bytes hashed into the tree (base64)."""
    try:
        with _store_ro(data) as store:
            for idx, raw in store.entries(start, end, withheld=True):
                if not raw:  # restored from the centre as its leaf hash only (classified)
                    leaf = base64.b64encode(store.leaf_hash(idx)).decode()
                    _emit({"index": idx, "leaf": None, "withheld": True, "leaf_hash": leaf})
                    continue
                _emit({"index": idx, "leaf": base64.b64encode(raw).decode()})
    except LuutruError as exc:
        raise _fail(exc) from exc


@log.command("proof")
@data_option
@click.option("--index", type=int, required=True)
@click.option("--size", type=int, default=None, help="Tree size (default: latest checkpoint).")
@click.option("--json", "as_json", is_flag=True, required=True)
def log_proof(data: Path | None, index: int, size: int | None, as_json: bool) -> None:
    """RFC 9162 inclusion proof of entry INDEX."""
    try:
        with _store_ro(data) as store:
            size = size if size is not None else _signed_size(store)
            if not 0 <= index < size:
                raise click.UsageError(f"index {index} is outside the tree of size {size}")
            path = store.inclusion_proof(index, size)
    except LuutruError as exc:
        raise _fail(exc) from exc
    _emit({"index": index, "tree_size": size, "audit_path": [h.hex() for h in path]})


@log.command("consistency")
@data_option
@click.option("--old", type=int, required=True)
@click.option("--new", "new", type=int, default=None, help="Default: latest checkpoint.")
@click.option("--json", "as_json", is_flag=True, required=True)
def log_consistency(data: Path | None, old: int, new: int | None, as_json: bool) -> None:
    """RFC 9162 consistency proof between two tree sizes."""
    try:
        with _store_ro(data) as store:
            new = new if new is not None else _signed_size(store)
            if not 0 <= old <= new:
                raise click.UsageError(f"cannot prove {old} -> {new}")
            proof = store.consistency_proof(old, new)
    except LuutruError as exc:
        raise _fail(exc) from exc
    _emit({"old_size": old, "new_size": new, "proof": [h.hex() for h in proof]})


def _signed_size(store: Any) -> int:
    cp = store.latest_checkpoint()
    if cp is None:
        raise click.ClickException("no checkpoint has been signed yet")
    return int(cp[0])


def register(main: click.Group) -> None:
    """Add this part's commands (records, the sealed log, keys) to the `luutru` group."""
    from .cli_identity import identity
    from .cli_key import key
    from .edxml.cli import register as register_edxml

    for cmd in (*COMMANDS, log, key, identity):
        main.add_command(cmd)
    register_edxml(main)
