"""The PIN of the archive's token at the centre (sync/central/token_pin.py): a plain pin_file
moves into the centre's secret store on start (sealed to a TPM when one is named) and is
removed; the catalogue still signs with it; a PIN that does not open the token is refused."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from appliance.keys import agency
from luutru.centre.app import create_app
from luutru.cli import main
from sync.central import token_pin
from sync.central.centre import Centre
from tests.pki import SoftHsmToken, softhsm_token
from tests.swtpm import Swtpm, swtpm, swtpm_factory
from web_ui.catalogue import CATALOGUE

__all__ = ["softhsm_token", "swtpm", "swtpm_factory"]


def _token_key(centre: Centre, token: SoftHsmToken) -> None:
    agency.configure_agency_pkcs11(centre.data_dir, token.module, token.token_label,
                                   token.key_label)


def _files_holding(root: Path, secret: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and secret in p.read_bytes()]


def _settings(centre: Centre, **values: object) -> None:
    (centre.data_dir / "catalogue.json").write_text(json.dumps(values))


@pytest.mark.parametrize("sealed", [True, False], ids=["tpm", "no-tpm"])
def test_a_plain_pin_file_moves_into_the_secret_store_on_start(
    centre: Centre, softhsm_token: SoftHsmToken, tmp_path: Path, sealed: bool,
    request: pytest.FixtureRequest,
) -> None:
    _token_key(centre, softhsm_token)
    plain = tmp_path / "etc" / "token-pin"
    plain.parent.mkdir()
    plain.write_text(softhsm_token.pin + "\n")
    tcti = request.getfixturevalue("swtpm").tcti if sealed else None
    _settings(centre, pin_file=str(plain), pin_tcti=tcti)
    app = create_app(centre)
    assert not plain.exists()  # the plain file is gone
    pin = softhsm_token.pin.encode()
    held = _files_holding(centre.data_dir, pin)
    if sealed:
        assert held == []  # nothing in the centre's folder holds the PIN: a TPM blob does
    else:  # no TPM: one 0600 file of the centre's own, and every description says so
        assert held == [centre.data_dir / "secrets" / f"{token_pin.SECRET}.secret"]
        assert stat.S_IMODE(held[0].stat().st_mode) == 0o600
        assert "NOT sealed" in token_pin.secret_store(centre.data_dir, None).describe()
    opener = app[CATALOGUE].open_key
    assert opener is not None
    with opener() as key:  # the catalogue still opens its token unattended
        assert key.public_key() is not None
    assert not token_pin.migrate_pin_file(centre.data_dir, plain, tcti)  # a second start


def test_a_wrong_pin_is_refused_and_nothing_is_kept(
    centre: Centre, softhsm_token: SoftHsmToken
) -> None:
    _token_key(centre, softhsm_token)
    runner = CliRunner()
    args = ["central", "catalogue-pin", "--data", str(centre.data_dir), "--pin-stdin"]
    wrong = runner.invoke(main, args, input="000000\n")
    assert wrong.exit_code != 0 and "the PIN was not kept" in wrong.output
    assert token_pin.token_pin(centre.data_dir) is None
    assert not (centre.data_dir / "secrets").exists() or not any(
        (centre.data_dir / "secrets").iterdir())
    right = runner.invoke(main, args, input=softhsm_token.pin + "\n")
    assert right.exit_code == 0, right.output
    assert "NOT sealed" in right.output  # no pin_tcti: said plainly
    assert token_pin.token_pin(centre.data_dir) == softhsm_token.pin


def test_a_pin_sealed_to_one_tpm_does_not_open_with_another(
    centre: Centre, softhsm_token: SoftHsmToken, swtpm: Swtpm,
    swtpm_factory: object,
) -> None:
    from appliance.keys.errors import TpmForeignKeyError

    _token_key(centre, softhsm_token)
    token_pin.set_pin(centre.data_dir, softhsm_token.pin, swtpm.tcti)
    other = swtpm_factory()  # type: ignore[operator]
    with pytest.raises(TpmForeignKeyError, match="another TPM"):
        token_pin.token_pin(centre.data_dir, other.tcti)
