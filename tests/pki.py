"""Test PKI: a throwaway CA made with `cryptography`, a PDF to sign, and a SoftHSM2 token."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SOFTHSM_MODULES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
)
TOKEN_LABEL = "agency-token"
KEY_LABEL = "agency-key"
USER_PIN = "123456"


@dataclass(frozen=True)
class CA:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    def issue(
        self,
        public: Any,
        subject: x509.Name,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
    ) -> x509.Certificate:
        start = not_before or datetime.now(UTC) - timedelta(days=1)
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.cert.subject)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(not_after or start + timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=True,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(self.key, hashes.SHA256())
        )


def make_ca(common_name: str = "Test CA chuyên dùng Chính phủ") -> CA:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    now = datetime.now(UTC) - timedelta(days=2)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return CA(key, cert)


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def sample_pdf(text: str = "Hello commune") -> bytes:
    """A two-page A4 PDF with uncompressed content, so a test can change one byte of it."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4, pageCompression=0)
    for page in (1, 2):
        c.drawString(72, 700, f"{text} page {page}")
        c.showPage()
    c.save()
    return buf.getvalue()


@dataclass(frozen=True)
class SoftHsmToken:
    module: str
    token_label: str
    key_label: str
    pin: str


_TOKEN: list[SoftHsmToken] = []  # one per process: PKCS#11 libraries initialise only once


@pytest.fixture(scope="session")
def softhsm_token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsmToken]:
    """One SoftHSM2 token with a P-256 key for the whole session (PKCS#11 libs load once)."""
    if _TOKEN:
        yield _TOKEN[0]
        return
    module = next((m for m in SOFTHSM_MODULES if Path(m).exists()), None)
    if module is None or shutil.which("softhsm2-util") is None:
        pytest.skip("SoftHSM2 is not installed (apt-get install softhsm2)")
    import pkcs11
    from pkcs11.util.ec import encode_named_curve_parameters

    root = tmp_path_factory.mktemp("softhsm")
    (root / "tokens").mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(
        [
            "softhsm2-util",
            "--init-token",
            "--free",
            "--label",
            TOKEN_LABEL,
            "--pin",
            USER_PIN,
            "--so-pin",
            "654321",
        ],
        check=True,
        capture_output=True,
    )
    token = pkcs11.lib(module).get_token(token_label=TOKEN_LABEL)
    with token.open(rw=True, user_pin=USER_PIN) as session:
        params = session.create_domain_parameters(
            pkcs11.KeyType.EC,
            {pkcs11.Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")},
            local=True,
        )
        params.generate_keypair(store=True, label=KEY_LABEL)
    _TOKEN.append(SoftHsmToken(module, TOKEN_LABEL, KEY_LABEL, USER_PIN))
    yield _TOKEN[0]


@dataclass(frozen=True)
class SoftwareAgencyKey:
    """An agency key held in memory with a test CA's certificate: a pyHanko signer for
    sign_pdf in tests that are about what happens to signed files, not about key storage."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    ca: CA

    @classmethod
    def make(cls, agency_name: str = "Ủy ban nhân dân xã Đông Hải") -> SoftwareAgencyKey:
        ca = make_ca()
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
                             x509.NameAttribute(NameOID.COMMON_NAME, agency_name)])
        return cls(key, ca.issue(key.public_key(), subject), ca)

    def pdf_signer(self) -> Any:
        from asn1crypto import keys as asn1_keys
        from asn1crypto import x509 as asn1_x509
        from cryptography.hazmat.primitives.serialization import (
            Encoding,
            NoEncryption,
            PrivateFormat,
        )
        from pyhanko.sign import signers
        from pyhanko_certvalidator.registry import SimpleCertificateStore

        cert = asn1_x509.Certificate.load(self.cert.public_bytes(Encoding.DER))
        root = asn1_x509.Certificate.load(self.ca.cert.public_bytes(Encoding.DER))
        der = self.key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
        return signers.SimpleSigner(cert, asn1_keys.PrivateKeyInfo.load(der),
                                    SimpleCertificateStore.from_certs([root]))
