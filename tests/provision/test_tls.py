"""The LAN TLS certificate: names, CA signing, and re-runs that keep a fitting certificate."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from appliance.clock import TZ
from luutru.provision.errors import ProvisionError
from luutru.provision.tls import CERT_NAME, KEY_NAME, ensure_certificate

NOW = dt.datetime(2025, 9, 15, 9, 30, tzinfo=TZ)
HOST = "ubnd-xa-dong-hai.local"


def _ca(tmp_path: Path) -> tuple[Path, Path, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "CA Sở KH&CN tỉnh")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(NOW - dt.timedelta(days=1))
            .not_valid_after(NOW + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256()))
    cp, kp = tmp_path / "ca.crt", tmp_path / "ca.key"
    cp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    kp.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))
    return cp, kp, cert


def test_self_signed_with_the_lan_names(tmp_path: Path) -> None:
    info = ensure_certificate(tmp_path, HOST, ("192.168.1.20",), "UBND xã Đông Hải", NOW)
    cert = x509.load_pem_x509_certificate((tmp_path / CERT_NAME).read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [HOST]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("192.168.1.20")]
    assert info.fingerprint == cert.fingerprint(hashes.SHA256()).hex(":").upper()
    assert (tmp_path / KEY_NAME).stat().st_mode & 0o777 == 0o600
    cert.verify_directly_issued_by(cert)


def test_signed_by_a_local_ca(tmp_path: Path) -> None:
    cp, kp, ca = _ca(tmp_path)
    ensure_certificate(tmp_path, HOST, (), "UBND", NOW, cp, kp)
    chain = x509.load_pem_x509_certificates((tmp_path / CERT_NAME).read_bytes())
    assert len(chain) == 2
    chain[0].verify_directly_issued_by(ca)


def test_mismatched_ca_key_is_refused(tmp_path: Path) -> None:
    cp, _, _ = _ca(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    _, other_key, _ = _ca(other)
    with pytest.raises(ProvisionError, match="does not match"):
        ensure_certificate(tmp_path, HOST, (), "UBND", NOW, cp, other_key)
    assert not (tmp_path / CERT_NAME).exists()


def test_rerun_keeps_a_fitting_certificate_and_renews_otherwise(tmp_path: Path) -> None:
    first = ensure_certificate(tmp_path, HOST, ("10.0.0.5",), "UBND", NOW)
    same = ensure_certificate(tmp_path, HOST, ("10.0.0.5",), "UBND", NOW + dt.timedelta(days=9))
    assert same.fingerprint == first.fingerprint and not same.created
    moved = ensure_certificate(tmp_path, HOST, ("10.0.0.6",), "UBND", NOW)
    assert moved.created and moved.fingerprint != first.fingerprint
    late = ensure_certificate(tmp_path, HOST, ("10.0.0.6",), "UBND",
                              NOW + dt.timedelta(days=800))
    assert late.created


def test_bad_address_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ProvisionError, match="not an IP address"):
        ensure_certificate(tmp_path, HOST, ("192.168.1.300",), "UBND", NOW)
