"""`luutru key …`: show the device key; the agency key's CSR and certificate import.

Each command opens the data folder, makes one library call and turns a library error into a
click error. Register with ``main.add_command(key)``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .config import load_config, resolve_data_dir
from .cose import ALG_NAMES
from .errors import LuutruError
from .keys import agency
from .keys.base import Backing
from .keys.loader import open_key
from .keys.tpm import DEFAULT_TCTI

_data_option = click.option(
    "--data",
    "data",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Data folder (default: $LUUTRU_DATA, then ./var/appliance).",
)


@click.group()
def key() -> None:
    """Device and agency keys."""


@key.command("show")
@_data_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show(data: Path | None, as_json: bool) -> None:
    """Show the device key: key id, algorithm, where it lives, public key."""
    data_dir = resolve_data_dir(data)
    try:
        config = load_config(data_dir)
        device = open_key(data_dir, config.key)
        try:
            info = {
                "kid": device.kid.hex(),
                "alg": ALG_NAMES[device.alg],
                "backing": device.backing.value,
                "public_key": device.public_key_pem(),
            }
        finally:
            device.close()
    except LuutruError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(info))
        return
    click.echo(f"kid:     {info['kid']}")
    click.echo(f"alg:     {info['alg']}")
    if info["backing"] == Backing.SOFTWARE.value:
        click.secho("backing: software (NO TPM: the key is a file on disk)", fg="yellow", bold=True)
    else:
        click.echo("backing: tpm (non-exportable)")
    click.echo(str(info["public_key"]).rstrip())


@key.command("agency-csr")
@_data_option
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the PKCS#10 request (PEM).",
)
@click.option(
    "--name",
    "name",
    default=None,
    help="Agency name in the certificate (default: the data folder's org name).",
)
@click.option("--province", default=None, help="Province (ST) in the certificate.")
@click.option(
    "--tcti", default=None, help="TPM to create the agency key in (default: the device key's TPM)."
)
def agency_csr(
    data: Path | None, out: Path, name: str | None, province: str | None, tcti: str | None
) -> None:
    """Create the agency key in the TPM (first time) and write its CSR for the CA."""
    data_dir = resolve_data_dir(data)
    try:
        config = load_config(data_dir)
        if not (data_dir / agency.AGENCY_CONFIG_PATH).exists():
            if tcti is None:
                if config.key.backing is not Backing.TPM:
                    raise click.ClickException(
                        "this appliance has no TPM device key; give --tcti, or use the office's "
                        "PKCS#11 token for the agency signature"
                    )
                tcti = str(config.key.options.get("tcti", DEFAULT_TCTI))
            agency.create_agency_tpm_key(data_dir, tcti)
        subject = agency.agency_subject(name or config.org_name, province, config.org_id)
        with agency.open_agency_key(data_dir) as agency_key:
            csr = agency.make_csr(agency_key, subject)
    except LuutruError as exc:
        raise click.ClickException(str(exc)) from exc
    out.write_bytes(csr)
    click.echo(f"wrote the certificate request to {out}; send it to the CA")


@key.command("agency-token")
@_data_option
@click.option("--module", required=True, help="The token's PKCS#11 library (.so).")
@click.option("--token-label", required=True, help="The token's label.")
@click.option("--key-label", required=True, help="The label of the agency's private key.")
@click.option("--cert-label", default=None, help="The label of its certificate on the token.")
@click.option("--pin-stdin", is_flag=True, required=True,
              help="Read the token's PIN from the first line (kept sealed for the services).")
def agency_token(data: Path | None, module: str, token_label: str, key_label: str,
                 cert_label: str | None, pin_stdin: bool) -> None:
    """Sign as the agency with its PKCS#11 token (the CA's USB token) instead of the TPM."""
    data_dir = resolve_data_dir(data)
    pin = sys.stdin.readline().rstrip("\r\n")
    if not pin:
        raise click.ClickException("no PIN on standard input")
    try:
        agency.configure_agency_pkcs11(data_dir, module, token_label, key_label, cert_label, pin)
        with agency.open_agency_key(data_dir) as agency_key:  # the sealed PIN opens it
            cert = agency_key.chain[0] if agency_key.chain else None
        where = _secrets_where(data_dir)
    except LuutruError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"the agency key is {key_label!r} on token {token_label!r}; {where}")
    if cert is None:
        click.echo("no certificate on the token: import the CA's with `luutru key agency-cert`")
    else:
        click.echo(f"certificate: {cert.subject.rfc4514_string()}")


def _secrets_where(data_dir: Path) -> str:
    from .keys.sealing import open_secret_store

    return "its PIN: " + open_secret_store(data_dir, load_config(data_dir).key).describe()


@key.command("agency-cert")
@_data_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--pin", default=None, help="PIN of the PKCS#11 token, if the key is on one.")
def agency_cert(data: Path | None, file: Path, pin: str | None) -> None:
    """Import the certificate the CA issued for the agency key."""
    data_dir = resolve_data_dir(data)
    try:
        cert = agency.import_agency_cert(data_dir, file.read_bytes(), pin=pin)
    except LuutruError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"imported: {cert.subject.rfc4514_string()}, valid until "
        f"{cert.not_valid_after_utc.isoformat()}"
    )
