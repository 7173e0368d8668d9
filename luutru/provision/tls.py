"""The appliance's LAN TLS certificate: self-signed, or signed by the province's local CA.

The key is a software P-256 key in ``<data>/tls/`` (0600): the web server must hand it to
OpenSSL. Its names are the mDNS name (``<commune>.local``) and the LAN addresses. Re-running
keeps a certificate that still has the wanted names and more than 30 days to live.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from appliance.fsutil import write_atomic

from .errors import ProvisionError

TLS_DIR = "tls"
CERT_NAME = "tls/appliance.crt"
KEY_NAME = "tls/appliance.key"
VALID_DAYS = 825  # what browsers accept for a leaf
RENEW_BEFORE = dt.timedelta(days=30)


@dataclass(frozen=True)
class TlsInfo:
    cert_path: Path
    key_path: Path
    fingerprint: str  # SHA-256 of the DER certificate, colon-separated hex
    names: tuple[str, ...]
    issuer: str
    not_after: str
    created: bool

    def to_json(self) -> dict[str, object]:
        return {"cert": str(self.cert_path), "key": str(self.key_path),
                "fingerprint_sha256": self.fingerprint, "names": list(self.names),
                "issuer": self.issuer, "not_after": self.not_after, "created": self.created}


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def _names(hostname: str, ips: tuple[str, ...]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = [x509.DNSName(hostname)]
    for ip in ips:
        out.append(x509.IPAddress(ipaddress.ip_address(ip)))
    return out


def _wanted(hostname: str, ips: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(sorted({hostname.lower(), *(str(ipaddress.ip_address(i)) for i in ips)}))


def _cert_names(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    dns = [n.lower() for n in san.get_values_for_type(x509.DNSName)]
    ips = [str(i) for i in san.get_values_for_type(x509.IPAddress)]
    return tuple(sorted({*dns, *ips}))


def _info(data_dir: Path, cert: x509.Certificate, created: bool) -> TlsInfo:
    return TlsInfo(data_dir / CERT_NAME, data_dir / KEY_NAME, fingerprint(cert),
                   _cert_names(cert), cert.issuer.rfc4514_string(),
                   cert.not_valid_after_utc.isoformat(), created)


def ensure_certificate(
    data_dir: Path,
    hostname: str,
    ips: tuple[str, ...],
    org_name: str,
    now: dt.datetime,
    ca_cert: Path | None = None,
    ca_key: Path | None = None,
) -> TlsInfo:
    """Keep a fitting certificate, or make a new key and certificate."""
    try:
        wanted = _wanted(hostname, ips)
    except ValueError as exc:
        raise ProvisionError(f"not an IP address: {exc}") from exc
    cert_path, key_path = data_dir / CERT_NAME, data_dir / KEY_NAME
    if cert_path.exists() and key_path.exists():
        current = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if _cert_names(current) == wanted and current.not_valid_after_utc - now > RENEW_BEFORE:
            return _info(data_dir, current, False)
    issuer_cert: x509.Certificate | None = None
    issuer_key = None
    if ca_cert or ca_key:
        if not (ca_cert and ca_key):
            raise ProvisionError("a local CA needs both its certificate and its key")
        try:
            issuer_cert = x509.load_pem_x509_certificate(ca_cert.read_bytes())
            issuer_key = serialization.load_pem_private_key(ca_key.read_bytes(), password=None)
        except (OSError, ValueError) as exc:
            raise ProvisionError(f"the local CA cannot be read: {exc}") from exc
        if issuer_key.public_key() != issuer_cert.public_key():
            raise ProvisionError("the local CA's key does not match its certificate")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, hostname),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, org_name[:64]),
        x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
    ])
    start = now - dt.timedelta(minutes=5)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject if issuer_cert else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(_names(hostname, ips)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
    )
    signer = issuer_key if issuer_key is not None else key
    if issuer_cert is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_cert.public_key()),  # type: ignore[arg-type]
            critical=False)
    cert = builder.sign(signer, hashes.SHA256())  # type: ignore[arg-type]
    pem_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    chain = cert.public_bytes(serialization.Encoding.PEM)
    if issuer_cert is not None:
        chain += issuer_cert.public_bytes(serialization.Encoding.PEM)
    write_atomic(key_path, pem_key, mode=0o600)
    write_atomic(cert_path, chain, mode=0o644)
    return _info(data_dir, cert, True)
