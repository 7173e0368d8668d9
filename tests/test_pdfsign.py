"""PAdES signing with the TPM agency key and a SoftHSM2 token, checked by pdfsig and pyHanko."""

from __future__ import annotations

import io
import shutil
import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from cryptography import x509

from appliance.keys import agency
from appliance.pdfsign import VN_TZ, sign_pdf, vn_time
from tests.pki import CA, SoftHsmToken, make_ca, pem, sample_pdf, softhsm_token
from tests.swtpm import Swtpm, swtpm, swtpm_factory

__all__ = ["softhsm_token", "swtpm", "swtpm_factory"]

AGENCY = "Ủy ban nhân dân xã Phú Mỹ"


def _pdfsig(pdf: bytes, tmp_path: Path) -> str:
    if shutil.which("pdfsig") is None:
        pytest.skip("pdfsig is not installed (apt-get install poppler-utils)")
    path = tmp_path / "check.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdfsig", str(path)], capture_output=True, text=True).stdout


def _pyhanko_status(pdf: bytes, ca: CA) -> tuple[bool, bool]:
    """(intact and valid, trusted) as pyHanko's validator reports them against the test CA."""
    from asn1crypto import x509 as asn1_x509
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    root = asn1_x509.Certificate.load(ca.cert.public_bytes(encoding=_der()))
    reader = PdfFileReader(io.BytesIO(pdf), strict=False)
    (sig,) = reader.embedded_signatures
    status = validate_pdf_signature(sig, ValidationContext(trust_roots=[root]))
    return status.intact and status.valid, status.bottom_line


def _der():  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives.serialization import Encoding

    return Encoding.DER


def _tamper(pdf: bytes) -> bytes:
    """Change one byte of the page text, inside the signed byte range."""
    index = pdf.index(b"Hello commune")
    return pdf[:index] + b"J" + pdf[index + 1 :]


@pytest.fixture
def tpm_agency(tmp_path: Path, swtpm: Swtpm) -> Iterator[tuple[Path, CA]]:
    """A data folder whose agency key is in swtpm, with a certificate from a test CA."""
    agency.create_agency_tpm_key(tmp_path, swtpm.tcti)
    with agency.open_agency_key(tmp_path) as key:
        csr = x509.load_pem_x509_csr(agency.make_csr(key, agency.agency_subject(AGENCY)))
    ca = make_ca()
    agency.import_agency_cert(tmp_path, pem(ca.issue(csr.public_key(), csr.subject)) + pem(ca.cert))
    yield tmp_path, ca


@pytest.fixture
def token_agency(tmp_path: Path, softhsm_token: SoftHsmToken) -> tuple[Path, CA]:
    """A data folder whose agency key is on the SoftHSM2 token, with a test CA certificate."""
    agency.configure_agency_pkcs11(
        tmp_path, softhsm_token.module, softhsm_token.token_label, softhsm_token.key_label
    )
    with agency.open_agency_key(tmp_path, softhsm_token.pin) as key:
        public = key.public_key()
    ca = make_ca()
    agency.import_agency_cert(
        tmp_path, pem(ca.issue(public, agency.agency_subject(AGENCY))), pin=softhsm_token.pin
    )
    return tmp_path, ca


def test_vn_time_is_iso8601_plus_0700() -> None:
    """Signing time is shown as ISO 8601 in Asia/Ho_Chi_Minh (+07:00), to the second."""
    from datetime import UTC

    assert vn_time(datetime(2025, 7, 1, 2, 30, 15, 999, tzinfo=UTC)) == "2025-07-01T09:30:15+07:00"


def test_tpm_signed_pdf_validates_and_tamper_fails(tmp_path: Path, tpm_agency) -> None:  # type: ignore[no-untyped-def]
    """TPM-signed PAdES: pdfsig says valid and pyHanko says intact+trusted; one byte breaks both."""
    data, ca = tpm_agency
    with agency.open_agency_key(data) as key:
        signed = sign_pdf(sample_pdf(), key, agency_name=AGENCY, copy_type="SAO Y")
    report = _pdfsig(signed, tmp_path)
    assert "Signature is Valid" in report and "ETSI.CAdES.detached" in report
    assert "Total document signed" in report
    assert _pyhanko_status(signed, ca) == (True, True)
    bad = _tamper(signed)
    assert "Digest Mismatch" in _pdfsig(bad, tmp_path)
    assert _pyhanko_status(bad, ca)[0] is False


def test_softhsm_signed_pdf_validates_and_tamper_fails(tmp_path: Path, token_agency) -> None:  # type: ignore[no-untyped-def]
    """PKCS#11 (SoftHSM2)-signed PAdES validates in pdfsig and pyHanko; one byte breaks both."""
    data, ca = token_agency
    with agency.open_agency_key(data, "123456") as key:
        signed = sign_pdf(sample_pdf(), key, agency_name=AGENCY)
    report = _pdfsig(signed, tmp_path)
    assert "Signature is Valid" in report
    assert _pyhanko_status(signed, ca) == (True, True)
    bad = _tamper(signed)
    assert "Digest Mismatch" in _pdfsig(bad, tmp_path)
    assert _pyhanko_status(bad, ca)[0] is False


def test_untrusted_ca_is_not_trusted(tmp_path: Path, tpm_agency) -> None:  # type: ignore[no-untyped-def]
    """Against another CA the signature is intact but not trusted (the test CA really counts)."""
    data, _ca = tpm_agency
    with agency.open_agency_key(data) as key:
        signed = sign_pdf(sample_pdf(), key, agency_name=AGENCY)
    assert _pyhanko_status(signed, make_ca()) == (True, False)


def test_visible_block_top_right_page1_with_vietnamese_text(tmp_path: Path, tpm_agency) -> None:  # type: ignore[no-untyped-def]
    """The text block is on page 1, top right, 10 pt Liberation Serif, text in Vietnamese."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    data, _ca = tpm_agency
    when = datetime(2025, 7, 1, 9, 30, 15, tzinfo=VN_TZ)
    with agency.open_agency_key(data) as key:
        signed = sign_pdf(sample_pdf(), key, agency_name=AGENCY, copy_type="SAO Y", signed_at=when)
    reader = PdfFileReader(io.BytesIO(signed), strict=False)
    page = reader.root["/Pages"]["/Kids"][0].get_object()
    media = page["/MediaBox"]
    width, height = float(media[2]), float(media[3])
    (widget,) = [a.get_object() for a in page["/Annots"] if a.get_object().get("/FT") == "/Sig"]
    x1, y1, x2, y2 = (float(v) for v in widget["/Rect"])
    assert x1 > width / 2 and y1 > height * 0.8 and x2 <= width and y2 <= height
    assert b"LiberationSerif" in signed
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext is not installed (apt-get install poppler-utils)")
    path = tmp_path / "signed.pdf"
    path.write_bytes(signed)
    text = subprocess.run(
        ["pdftotext", "-f", "1", "-l", "1", str(path), "-"], capture_output=True, text=True
    ).stdout
    assert "SAO Y" in text and AGENCY in text and "2025-07-01T09:30:15+07:00" in text
