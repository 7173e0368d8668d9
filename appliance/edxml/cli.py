"""`luutru edxml …` and `luutru trust …`: thin adapters over the edXML library.

```
luutru edxml import   --data DIR FILE.edxml [--json] [--offline]
luutru edxml export   --data DIR --doc ID --to ORGAN_ID --out FILE.edxml
luutru edxml list     --data DIR [--status received|registered|returned] [--json]
luutru edxml register --data DIR ID [--accept-unverified] [--json]
luutru edxml return   --data DIR ID --reason TEXT
luutru edxml reverify --data DIR ID [--online] [--json]
luutru trust add|list|remove --data DIR [PEM | FINGERPRINT]
```
``edxml import`` exits 0 when the package is in the inbox (whatever its verdict, which it
prints), 1 when it is refused (the reason on stderr), 2 on a usage error.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from ..cli_options import data_option
from ..config import resolve_data_dir
from ..errors import LuutruError

STATUSES = ("received", "registered", "returned")


@contextlib.contextmanager
def agency_signer(data_dir: Path, required: bool = False) -> Iterator[Any]:
    """The agency key with its certificate (None when there is none, unless ``required``)."""
    from .signing import open_signer

    with open_signer(data_dir) as key:
        if key is None and required:
            raise click.ClickException(
                "no agency signing key with a certificate is set up: `luutru key agency-csr`, "
                "then `luutru key agency-cert` with the CA's certificate")
        yield key


def _open(data: Path | None) -> Any:
    from ..store import Store

    return Store.open(resolve_data_dir(data))


@click.group()
def edxml() -> None:
    """Văn bản điện tử liên thông (edXML, QCVN 102:2016): nhận, kiểm tra chữ ký, gửi."""


@edxml.command("import")
@data_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as JSON.")
@click.option("--offline", is_flag=True, help="Do not fetch OCSP/CRLs (use the cache only).")
def import_cmd(data: Path | None, file: Path, as_json: bool, offline: bool) -> None:
    """Verify a package, then put it into the electronic inbox; prints the verdict. An
    addressee's status message about one of our packages is checked and applied to its
    delivery instead (``answers``)."""
    from .answers import is_status, take_status
    from .errors import PackageRefused
    from .intake import import_package
    from .parse import read_limited

    try:
        with _open(data) as store, agency_signer(store.data_dir) as key:
            raw = read_limited(file)
            if is_status(raw):
                _print_answer(take_status(store, raw, source=file.name, online=not offline,
                                          actor="edxml"), as_json)
                return
            res = import_package(store, raw, source=file.name, online=not offline, key=key,
                                 actor="edxml import")
    except PackageRefused as exc:
        if as_json:
            click.echo(json.dumps({"refused": True, "reason": exc.reason}, ensure_ascii=False))
        click.echo(f"Không tiếp nhận gói tin: {exc.reason}", err=True)
        sys.exit(1)
    except LuutruError as exc:
        raise click.ClickException(str(exc)) from exc
    out = res.to_json()
    if as_json:
        click.echo(json.dumps(out, ensure_ascii=False))
        return
    click.echo(f"{out['verdict_label']}: {out['code_number']}/{out['code_notation']} "
               f"— {out['subject']} ({out['organ_name']})")
    if out["misaddressed"]:
        click.echo("Gửi nhầm nơi nhận: cơ quan không có trong danh sách nơi nhận.")
    for s in out["signatures"]:
        click.echo(f"  {s['target']}: {s['status']} — {s['signer']} {' '.join(s['reasons'])}")


def _print_answer(answer: Any, as_json: bool) -> None:
    out = answer.to_json()
    if as_json:
        click.echo(json.dumps(out, ensure_ascii=False))
        return
    click.echo(f"Báo trạng thái {out['code_label']} ({out['code']}) của {out['organ_name']}: "
               f"{out['verdict_label']} — {out['outcome_label']}")


@edxml.command("export")
@data_option
@click.option("--doc", "doc_id", required=True, help="The issued văn bản đi (its id).")
@click.option("--to", "to", required=True, help="The addressee's mã định danh (OrganId).")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def export_cmd(data: Path | None, doc_id: str, to: str, out: Path) -> None:
    """Package an issued document for an electronic addressee, signed with the agency key."""
    from ..fsutil import write_atomic
    from .export import export_document

    try:
        with _open(data) as store, agency_signer(store.data_dir, required=True) as key:
            raw = export_document(store, doc_id, to, key, actor="edxml export")
        write_atomic(out, raw, mode=0o640)
    except LuutruError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{out} ({len(raw):,} bytes)")


@edxml.command("list")
@data_option
@click.option("--status", type=click.Choice(STATUSES), default=None)
@click.option("--json", "as_json", is_flag=True)
def list_cmd(data: Path | None, status: str | None, as_json: bool) -> None:
    """The electronic inbox, newest first."""
    from ..store import Store
    from .inbox import list_items

    with Store.open(resolve_data_dir(data), readonly=True) as store:
        items = [i.to_json() for i in list_items(store.reader(), status)]
    if as_json:
        click.echo(json.dumps(items, ensure_ascii=False))
        return
    for i in items:
        click.echo(f"{i['id']}  {i['status']:<10}  {i['verdict_label'] or '':<38}  "
                   f"{i['code_number']}/{i['code_notation']}  {i['subject']}")


@edxml.command("register")
@data_option
@click.argument("item_id")
@click.option("--accept-unverified", is_flag=True,
              help="Register although the signatures could not be checked.")
@click.option("--json", "as_json", is_flag=True)
def register_cmd(data: Path | None, item_id: str, accept_unverified: bool, as_json: bool) -> None:
    """Register an inbox item as a văn bản đến (status 03 to the sender)."""
    from .intake import register

    try:
        with _open(data) as store, agency_signer(store.data_dir) as key:
            res = register(store, item_id, "edxml register", accept_unverified=accept_unverified,
                           key=key)
    except LuutruError as exc:
        raise click.ClickException(str(exc)) from exc
    d = res.record.data
    if as_json:
        click.echo(json.dumps({"id": res.record.id, "ArrivalNumber": d.get("ArrivalNumber"),
                               "warnings": list(res.warnings)}, ensure_ascii=False))
    else:
        click.echo(f"Số đến {d.get('ArrivalNumber')}: {res.record.id}")


@edxml.command("return")
@data_option
@click.argument("item_id")
@click.option("--reason", required=True, help="Why it is returned (sent to the sender).")
def return_cmd(data: Path | None, item_id: str, reason: str) -> None:
    """Return an inbox item to its sender (status 02 with the reason)."""
    from .intake import return_package

    try:
        with _open(data) as store, agency_signer(store.data_dir) as key:
            return_package(store, item_id, reason, "edxml return", key=key)
    except LuutruError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo("Đã trả lại.")


@edxml.command("reverify")
@data_option
@click.argument("item_id")
@click.option("--online", is_flag=True, help="Fetch OCSP/CRLs again (default: cached only).")
@click.option("--json", "as_json", is_flag=True)
def reverify_cmd(data: Path | None, item_id: str, online: bool, as_json: bool) -> None:
    """Check a received package again, at the time of its first check."""
    from .intake import reverify

    try:
        with _open(data) as store:
            report = reverify(store, item_id, online=online, actor="edxml reverify")
    except LuutruError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False))
    else:
        click.echo(report["label"])


@click.group()
def trust() -> None:
    """Kho chứng thư tin cậy để kiểm tra chữ ký số văn bản đến."""


@trust.command("add")
@data_option
@click.argument("pem", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def trust_add(data: Path | None, pem: Path) -> None:
    """Trust a CA certificate (PEM bundle or DER)."""
    from .intake_trust import add_root

    try:
        with _open(data) as store:
            for r in add_root(store, pem.read_bytes(), "trust add"):
                click.echo(f"{r.fingerprint}  {r.subject}  (đến {r.not_after})")
    except LuutruError as exc:
        raise click.ClickException(str(exc)) from exc


@trust.command("list")
@data_option
@click.option("--json", "as_json", is_flag=True)
def trust_list(data: Path | None, as_json: bool) -> None:
    """The trusted CA certificates."""
    from .trust import TrustStore

    roots = TrustStore(resolve_data_dir(data)).roots()
    if as_json:
        click.echo(json.dumps([r.to_json() for r in roots], ensure_ascii=False))
        return
    if not roots:
        click.echo("Kho tin cậy trống: xem trust/README.txt trong thư mục dữ liệu.")
    for r in roots:
        click.echo(f"{r.fingerprint}  {r.subject}  (đến {r.not_after})")


@trust.command("remove")
@data_option
@click.argument("fingerprint")
def trust_remove(data: Path | None, fingerprint: str) -> None:
    """Stop trusting a CA certificate (by its SHA-256 fingerprint, or 8+ leading digits)."""
    from .intake_trust import remove_root

    try:
        with _open(data) as store:
            r = remove_root(store, fingerprint, "trust remove")
    except LuutruError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Đã bỏ {r.fingerprint}  {r.subject}")


def register(main: click.Group) -> None:
    main.add_command(edxml)
    main.add_command(trust)
