"""``luutru provision`` (the technician's wizard, in Vietnamese; every answer is also a flag)
and ``luutru hook …`` (the lifecycle hooks of firmware_hooks/).

Import only click at module level: the library is imported inside the command bodies.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from .wizard import Admin

CHECKS = ("tpm", "disk", "clock", "scanners", "centre", "mdns")
MARK = {"done": "✓", "kept": "=", "skipped": "–", "failed": "✗"}


def register(main: click.Group) -> None:
    """Add this part's commands to the `luutru` group."""
    from firmware_hooks.cli import hook

    main.add_command(provision)
    main.add_command(hook)


def _existing(data_dir: Path) -> dict[str, Any]:
    """Answers an earlier run already gave (a re-run needs none of them again)."""
    from appliance.config import CONFIG_NAME, load_config
    from appliance.errors import LuutruError

    from .wizard import STATE_NAME

    out: dict[str, Any] = {}
    if (data_dir / CONFIG_NAME).exists():
        try:
            cfg = load_config(data_dir)
            out.update(org_id=cfg.org_id, org_name=cfg.org_name, agency_abbr=cfg.agency_abbr)
        except LuutruError:
            pass
    try:
        state = json.loads((data_dir / STATE_NAME).read_text("utf-8"))
        out.update(unit_code=state.get("unit_code"), admin=state.get("admin"),
                   fonds=state.get("fonds"), hostname=state.get("hostname"),
                   ips=state.get("ips"))
    except (OSError, ValueError):
        pass
    return out


def _ask(value: Any, prompt: str, flag: str, interactive: bool, default: Any = None,
         required: bool = True, **kw: Any) -> Any:
    if value not in (None, ""):
        return value
    if interactive:
        return click.prompt(prompt, default=default, **kw)
    if default is not None or not required:
        return default
    raise click.UsageError(f"{flag} is required with --non-interactive")


@click.command()
@click.option("--data", "data", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Data folder (default: $LUUTRU_DATA, then ./var/appliance).")
@click.option("--non-interactive", is_flag=True, help="Never prompt; a missing answer is an error.")
@click.option("--org-id", default=None, help="Mã định danh của cơ quan, e.g. 000.21.08.H49.")
@click.option("--org-name", default=None, help="Tên cơ quan, e.g. Ủy ban nhân dân xã Đông Hải.")
@click.option("--unit-code", default=None, help="Mã đơn vị hành chính cấp xã 2025 (5 digits).")
@click.option("--agency-abbr", default=None, help="Chữ viết tắt (default UBND).")
@click.option("--fonds", "fonds", multiple=True,
              help="Another fonds held: 'CODE|Tên phông|open' or 'CODE|Tên|closed|dd/mm/yyyy'.")
@click.option("--key", "key_kind", type=click.Choice(["auto", "tpm", "software"]), default=None,
              help="Device key (default auto: the TPM if one answers).")
@click.option("--tcti", default=None, help="TPM connection, default device:/dev/tpmrm0.")
@click.option("--hostname", default=None, help="LAN name (default <commune>.local).")
@click.option("--ip", "ips", multiple=True, help="LAN address for the certificate (repeat).")
@click.option("--url", default=None, help="Address printed on the sheet (default https://NAME/).")
@click.option("--tls-ca-cert", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--tls-ca-key", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--admin-username", default=None, help="First administrator (role: leader).")
@click.option("--admin-full-name", default=None)
@click.option("--admin-password-stdin", is_flag=True, help="Read the password from stdin.")
@click.option("--no-admin", is_flag=True, help="Create no administrator now.")
@click.option("--centre", "centre_url", default=None, help="The provincial centre's URL.")
@click.option("--token", default=None, help="One-time enrolment token (lt1.…).")
@click.option("--no-centre", is_flag=True, help="No centre now (offline; enrol later).")
@click.option("--sane-config-dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="SANE configuration folder for the scanner check.")
@click.option("--scan-interface", "scan_ifaces", multiple=True,
              help="Interface address for eSCL discovery (default: all).")
@click.option("--mdns-interface", "mdns_ifaces", multiple=True,
              help="Interface address for the mDNS check (default: all).")
@click.option("--skip-check", "skip_checks", multiple=True, type=click.Choice(CHECKS))
@click.option("--sheet", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write the setup sheet PDF (default DATA/provision/).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
# Long on purpose: every answer of the wizard is an option, asked for in turn when missing and
# interactive; the work itself is wizard.provision.
def provision(data: Path | None, non_interactive: bool, org_id: str | None,
              org_name: str | None, unit_code: str | None, agency_abbr: str | None,
              fonds: tuple[str, ...], key_kind: str | None, tcti: str | None,
              hostname: str | None, ips: tuple[str, ...], url: str | None,
              tls_ca_cert: Path | None, tls_ca_key: Path | None, admin_username: str | None,
              admin_full_name: str | None, admin_password_stdin: bool, no_admin: bool,
              centre_url: str | None, token: str | None, no_centre: bool,
              sane_config_dir: Path | None, scan_ifaces: tuple[str, ...],
              mdns_ifaces: tuple[str, ...], skip_checks: tuple[str, ...], sheet: Path | None,
              as_json: bool) -> None:
    """Cài đặt thiết bị tại xã: danh tính, khóa, chứng chỉ TLS, quản trị viên, đăng ký với
    trung tâm, tự kiểm tra và phiếu cài đặt. Re-running does only what is missing."""
    from appliance.clock import SystemClock
    from appliance.config import resolve_data_dir
    from appliance.errors import LuutruError

    from .identity import Identity
    from .selftest import SelfTestOptions
    from .wizard import Answers, Step
    from .wizard import provision as run

    d = resolve_data_dir(data)
    ask = not non_interactive
    known = _existing(d)
    if ask:
        click.echo(f"Cài đặt thiết bị lưu trữ — thư mục dữ liệu {d}", err=True)
    org_id = _ask(org_id, "Mã định danh của cơ quan (vd. 000.21.08.H49)", "--org-id", ask,
                  known.get("org_id"))
    org_name = _ask(org_name, "Tên cơ quan (vd. Ủy ban nhân dân xã Đông Hải)", "--org-name",
                    ask, known.get("org_name"))
    unit_code = _ask(unit_code, "Mã đơn vị hành chính cấp xã năm 2025 (5 chữ số)",
                     "--unit-code", ask, known.get("unit_code"))
    agency_abbr = agency_abbr or known.get("agency_abbr") or "UBND"
    held = list(fonds) or list(known.get("fonds") or [])
    if ask and not fonds and "org_id" not in known:
        held += _ask_more_fonds()
    try:
        identity = Identity.build(org_id, org_name, unit_code, agency_abbr, tuple(held))
    except LuutruError as exc:
        raise click.BadParameter(str(exc)) from exc
    key_kind = key_kind or (click.prompt("Khóa thiết bị: auto (ưu tiên TPM), tpm, software",
                                         default="auto",
                                         type=click.Choice(["auto", "tpm", "software"]))
                            if ask and "org_id" not in known else "auto")
    admin = None if no_admin else _ask_admin(admin_username, admin_full_name,
                                             admin_password_stdin, ask, known)
    centre_url, token = (None, None) if no_centre else _ask_centre(centre_url, token, ask)
    answers = Answers(
        identity=identity, key_kind=key_kind, tcti=tcti,
        hostname=hostname or known.get("hostname"), ips=tuple(ips or known.get("ips") or ()),
        url=url, tls_ca_cert=tls_ca_cert, tls_ca_key=tls_ca_key, admin=admin,
        centre_url=centre_url, token=token, sheet=sheet,
        selftest=SelfTestOptions(
            sane_config_dir=sane_config_dir, escl_interfaces=tuple(scan_ifaces) or None,
            mdns_interfaces=tuple(mdns_ifaces) or None, skip=frozenset(skip_checks)),
    )

    def show(step: Step) -> None:
        click.echo(f"{MARK.get(step.status, '?')} {step.name}: {step.message}", err=True)

    try:
        report = run(d, answers, SystemClock(), show)
    except LuutruError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(report.to_json(), ensure_ascii=False))
    else:
        for c in report.checks:
            click.echo(f"  [{c.status.value}] {c.name}: {c.reason}")
        click.echo(f"{'XONG' if report.ok else 'CHƯA XONG'}: {report.url} — phiếu cài đặt "
                   f"{report.sheet}")
    sys.exit(0 if report.ok else 1)


def _ask_more_fonds() -> list[str]:
    """Other fonds the commune holds, asked one per line until an empty answer."""
    held: list[str] = []
    while True:
        more = click.prompt("Phông khác đang giữ (MÃ|Tên phông|open hoặc "
                            "MÃ|Tên|closed|dd/mm/yyyy; Enter để bỏ qua)", default="",
                            show_default=False)
        if not more.strip():
            return held
        held.append(more)


def _ask_admin(admin_username: str | None, admin_full_name: str | None,
               password_stdin: bool, ask: bool, known: dict[str, Any]) -> Admin | None:
    """The first administrator (a leader), or None when none is named."""
    from .wizard import Admin

    username = _ask(admin_username, "Tên đăng nhập của quản trị viên đầu tiên (lãnh đạo)",
                    "--admin-username", ask, known.get("admin"), required=False)
    if not username:
        return None
    full_name = admin_full_name or (click.prompt("Họ và tên", default="")
                                    if ask and username != known.get("admin") else "")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif username == known.get("admin"):
        password = ""  # exists already: the step keeps it
    elif ask:
        password = click.prompt("Mật khẩu (ít nhất 12 ký tự, không phổ biến)",
                                hide_input=True, confirmation_prompt="Nhập lại mật khẩu")
    else:
        raise click.UsageError("--admin-password-stdin is required with "
                               "--non-interactive (or --no-admin)")
    return Admin(username, password, full_name)


def _ask_centre(centre_url: str | None, token: str | None,
                ask: bool) -> tuple[str | None, str | None]:
    """The provincial centre's address and the one-time enrolment token, if there is one."""
    centre_url = _ask(centre_url, "Địa chỉ trung tâm dữ liệu tỉnh (Enter nếu chưa có)",
                      "--centre", ask, "", required=False) or None
    if centre_url:
        token = _ask(token, "Mã đăng ký một lần (lt1.…)", "--token", ask, "",
                     required=False) or None
    return centre_url, token
