"""The agency signing key: TPM-generated with a CSR and CA certificate, or a SoftHSM2 token."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from appliance.cli_key import key as key_cli
from appliance.config import ApplianceConfig, save_config
from appliance.keys import agency
from appliance.keys.errors import AgencyCertificateError, AgencyKeyError
from appliance.keys.loader import create_key
from appliance.keys.verify import key_id, load_public_key, spki_der
from tests.pki import SoftHsmToken, make_ca, pem, softhsm_token
from tests.swtpm import Swtpm, swtpm, swtpm_factory

__all__ = ["softhsm_token", "swtpm", "swtpm_factory"]

AGENCY = "Ủy ban nhân dân xã Phú Mỹ"


def _subject() -> x509.Name:
    return agency.agency_subject(AGENCY, "Thành phố Hồ Chí Minh", "000.00.00.H29")


def _csr(data: Path, tcti: str) -> x509.CertificateSigningRequest:
    agency.create_agency_tpm_key(data, tcti)
    with agency.open_agency_key(data) as key:
        return x509.load_pem_x509_csr(agency.make_csr(key, _subject()))


def _data_folder(tmp_path: Path, kind: str, tcti: str | None = None) -> Path:
    options = {"tcti": tcti} if tcti else {}
    key = create_key(tmp_path, kind, options)
    save_config(
        tmp_path,
        ApplianceConfig(
            org_id="000.00.00.H29",
            org_name=AGENCY,
            agency_abbr="UBND",
            origin="luutru/test",
            key=key,
        ),
    )
    return tmp_path


def test_csr_is_signed_in_tpm_for_the_agency_key(tmp_path: Path, swtpm: Swtpm) -> None:
    """The CSR's signature verifies, its key is the TPM agency key, its subject is Vietnamese."""
    csr = _csr(tmp_path, swtpm.tcti)
    assert csr.is_signature_valid
    assert isinstance(csr.public_key(), ec.EllipticCurvePublicKey)
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == AGENCY
    with agency.open_agency_key(tmp_path) as key:
        assert spki_der(csr.public_key()) == spki_der(key.public_key())


def test_agency_key_is_not_the_device_key(tmp_path: Path, swtpm: Swtpm) -> None:
    """The agency key is its own TPM key, distinct from the device key."""
    device = create_key(tmp_path, "tpm", {"tcti": swtpm.tcti})
    _csr(tmp_path, swtpm.tcti)
    config = agency.load_agency_config(tmp_path)
    assert config.options["kid"] != device.options["kid"]


def test_issued_certificate_is_imported(tmp_path: Path, swtpm: Swtpm) -> None:
    """A CA certificate for the agency key is stored with its chain and used afterwards."""
    csr = _csr(tmp_path, swtpm.tcti)
    ca = make_ca()
    cert = ca.issue(csr.public_key(), csr.subject)
    agency.import_agency_cert(tmp_path, pem(cert) + pem(ca.cert))
    with agency.open_agency_key(tmp_path) as key:
        assert key.certificate == cert and key.chain[1] == ca.cert


def test_certificate_for_another_key_is_refused(tmp_path: Path, swtpm: Swtpm) -> None:
    """A certificate whose public key is not the agency key's is refused; nothing is stored."""
    _csr(tmp_path, swtpm.tcti)
    ca = make_ca()
    stranger = ec.generate_private_key(ec.SECP256R1()).public_key()
    with pytest.raises(AgencyCertificateError, match="different key"):
        agency.import_agency_cert(tmp_path, pem(ca.issue(stranger, _subject())))
    assert not (tmp_path / agency.AGENCY_CERT_PATH).exists()


def test_expired_or_future_certificate_is_refused(tmp_path: Path, swtpm: Swtpm) -> None:
    """An expired certificate, or one not valid yet, is refused with the date."""
    csr = _csr(tmp_path, swtpm.tcti)
    ca = make_ca()
    now = datetime.now(UTC)
    expired = ca.issue(
        csr.public_key(), csr.subject, now - timedelta(days=400), now - timedelta(days=1)
    )
    with pytest.raises(AgencyCertificateError, match="expired"):
        agency.import_agency_cert(tmp_path, pem(expired))
    future = ca.issue(
        csr.public_key(), csr.subject, now + timedelta(days=2), now + timedelta(days=400)
    )
    with pytest.raises(AgencyCertificateError, match="not valid before"):
        agency.import_agency_cert(tmp_path, pem(future))


def test_no_agency_key_is_a_clear_error(tmp_path: Path) -> None:
    """Opening an agency key that was never set up says how to set one up."""
    with pytest.raises(AgencyKeyError, match="agency-csr"):
        agency.open_agency_key(tmp_path)


def test_pkcs11_token_key_and_certificate_import(
    tmp_path: Path, softhsm_token: SoftHsmToken
) -> None:
    """The SoftHSM2 token's key opens through PKCS#11 and accepts a CA certificate for it."""
    agency.configure_agency_pkcs11(
        tmp_path, softhsm_token.module, softhsm_token.token_label, softhsm_token.key_label
    )
    with agency.open_agency_key(tmp_path, softhsm_token.pin) as key:
        public = key.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    ca = make_ca()
    cert = ca.issue(public, _subject())
    agency.import_agency_cert(tmp_path, pem(cert), pin=softhsm_token.pin)
    with agency.open_agency_key(tmp_path, softhsm_token.pin) as key:
        assert key.certificate == cert
    with pytest.raises(AgencyKeyError, match="PIN"):
        agency.open_agency_key(tmp_path, "000000")


def test_cli_key_show_json_tpm(tmp_path: Path, swtpm: Swtpm) -> None:
    """`key show --json` gives kid, ES256, tpm and a PEM whose key id is the kid."""
    data = _data_folder(tmp_path, "tpm", swtpm.tcti)
    result = CliRunner().invoke(key_cli, ["show", "--data", str(data), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert set(info) == {"kid", "alg", "backing", "public_key"}
    assert info["alg"] == "ES256" and info["backing"] == "tpm"
    assert key_id(load_public_key(info["public_key"])).hex() == info["kid"]


def test_cli_key_show_software_is_loud(tmp_path: Path) -> None:
    """A software device key is shown as EdDSA/software, and the text output says NO TPM."""
    data = _data_folder(tmp_path, "software")
    info = json.loads(CliRunner().invoke(key_cli, ["show", "--data", str(data), "--json"]).output)
    assert info["alg"] == "EdDSA" and info["backing"] == "software"
    text = CliRunner().invoke(key_cli, ["show", "--data", str(data)]).output
    assert "NO TPM" in text


def test_cli_key_show_missing_tpm_fails_clearly(tmp_path: Path, swtpm: Swtpm) -> None:
    """With the TPM gone, `key show` exits non-zero naming the cause, with no traceback."""
    data = _data_folder(tmp_path, "tpm", swtpm.tcti)
    swtpm.stop()
    result = CliRunner().invoke(key_cli, ["show", "--data", str(data), "--json"])
    assert result.exit_code == 1 and "no TPM answers" in result.output


def test_cli_agency_csr_then_cert(tmp_path: Path, swtpm: Swtpm) -> None:
    """`key agency-csr` writes a valid CSR; `key agency-cert` imports its certificate."""
    data = _data_folder(tmp_path, "tpm", swtpm.tcti)
    out = tmp_path / "agency.csr"
    result = CliRunner().invoke(key_cli, ["agency-csr", "--data", str(data), "--out", str(out)])
    assert result.exit_code == 0, result.output
    csr = x509.load_pem_x509_csr(out.read_bytes())
    assert csr.is_signature_valid
    ca = make_ca()
    cert_file = tmp_path / "issued.pem"
    cert_file.write_bytes(pem(ca.issue(csr.public_key(), csr.subject)))
    result = CliRunner().invoke(key_cli, ["agency-cert", "--data", str(data), str(cert_file)])
    assert result.exit_code == 0, result.output
    wrong = tmp_path / "wrong.pem"
    stranger = ec.generate_private_key(ec.SECP256R1()).public_key()
    wrong.write_bytes(pem(ca.issue(stranger, csr.subject)))
    result = CliRunner().invoke(key_cli, ["agency-cert", "--data", str(data), str(wrong)])
    assert result.exit_code == 1 and "different key" in result.output


def test_cli_agency_csr_without_tpm_says_what_to_do(tmp_path: Path) -> None:
    """On a software-key appliance, agency-csr refuses and points at --tcti or a token."""
    data = _data_folder(tmp_path, "software")
    result = CliRunner().invoke(
        key_cli, ["agency-csr", "--data", str(data), "--out", str(tmp_path / "x.csr")]
    )
    assert result.exit_code == 1 and "PKCS#11" in result.output


@pytest.mark.parametrize("device", ["software", "tpm"])
def test_an_agency_token_signs_unattended_with_its_sealed_pin(
    tmp_path: Path, softhsm_token: SoftHsmToken, swtpm: Swtpm, device: str
) -> None:
    """`luutru key agency-token … --pin-stdin`: a wrong PIN changes nothing; the right one is
    sealed (to the TPM when the device key is there) and the services — which open the agency
    key with no PIN, as the capture worker and edXML do — sign with the token."""
    import io as _io

    from asn1crypto import x509 as asn1_x509
    from cryptography.hazmat.primitives.serialization import Encoding
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    from appliance.pdfsign import sign_pdf
    from tests.archive.conftest import pdf_bytes

    data = _data_folder(tmp_path, device, swtpm.tcti if device == "tpm" else None)
    args = ["agency-token", "--data", str(data), "--module", softhsm_token.module,
            "--token-label", softhsm_token.token_label, "--key-label",
            softhsm_token.key_label, "--pin-stdin"]
    wrong = CliRunner().invoke(key_cli, args, input="000000\n")
    assert wrong.exit_code != 0 and "PIN" in wrong.output
    assert not (data / agency.AGENCY_CONFIG_PATH).exists() and not (data / "secrets").exists()
    ok = CliRunner().invoke(key_cli, args, input=softhsm_token.pin + "\n")
    assert ok.exit_code == 0, ok.output
    assert ("sealed to the TPM" in ok.output) == (device == "tpm"), ok.output
    sealed = list((data / "secrets").iterdir())
    assert [p.name for p in sealed] == [
        agency.PKCS11_PIN_SECRET + (".sealed" if device == "tpm" else ".secret")]
    assert sealed[0].stat().st_mode & 0o077 == 0
    assert (softhsm_token.pin.encode() in sealed[0].read_bytes()) == (device == "software")

    with agency.open_agency_key(data) as key:  # no PIN: the sealed one
        public = key.public_key()
    ca = make_ca()
    agency.import_agency_cert(data, pem(ca.issue(public, _subject())))
    with agency.open_agency_key(data) as key:
        signed = sign_pdf(pdf_bytes("Bản sao"), key, agency_name=AGENCY)
    (sig,) = PdfFileReader(_io.BytesIO(signed), strict=False).embedded_signatures
    verdict = validate_pdf_signature(sig, ValidationContext(
        trust_roots=[asn1_x509.Certificate.load(ca.cert.public_bytes(Encoding.DER))]))
    assert verdict.intact and verdict.valid
