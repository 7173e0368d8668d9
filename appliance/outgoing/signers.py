"""Signers (người có thẩm quyền ký): where each one's personal key lives, their certificate,
their signature image, and the agency's seal image.

A signer's key is (a) generated in the box's TPM with the signer's own PIN as its
authorisation (the TPM checks the PIN at each signing and locks out after repeated wrong
ones; a CSR goes to the CA and its certificate is imported here), (b) on a PKCS#11 token
plugged into the box, unlocked by the token's PIN at each signing, or (c) elsewhere: the
signer signs the prepared PDF with the CA's tool on their PC and the box checks the upload
against the certificate registered here. PINs are never stored.

Each profile is ``keys/signers/<username>.json`` in the data folder, with the certificate
(``<username>.pem``) and the signature image (``<username>.png``: blue, transparent) beside
it; the seal image is ``keys/agency-seal.png`` (red, transparent, true size).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from ..errors import KeyError_, NotFoundError, ValidationError
from ..fsutil import write_atomic
from ..keys.agency import AgencyConfig, AgencyKey, _open_pkcs11, check_certificate
from ..keys.errors import AgencyCertificateError
from .errors import SigningError

SIGNERS_DIR = "keys/signers"
SEAL_PATH = "keys/agency-seal.png"
BACKINGS = ("tpm", "pkcs11", "external")
WARN_DAYS = 30  # a certificate this close to its end is shown as a warning
MAX_IMAGE = 1 << 20
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789._-")


@dataclass(frozen=True)
class SignerProfile:
    """One signer's key and certificate, and their signature image."""

    username: str
    backing: str
    options: dict[str, Any] = field(default_factory=dict)
    cert: str | None = None  # relative to the data folder
    image: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"username": self.username, "backing": self.backing,
                "options": dict(self.options), "cert": self.cert, "image": self.image}

    @classmethod
    def from_json(cls, v: dict[str, Any]) -> SignerProfile:
        return cls(str(v["username"]), str(v["backing"]), dict(v.get("options") or {}),
                   v.get("cert"), v.get("image"))


@dataclass(frozen=True)
class CertStatus:
    """What the signers page shows of a certificate: whose, until when, whether to warn."""

    subject: str
    issuer: str
    not_after: datetime
    days_left: int
    expired: bool
    warn: bool


def _check_name(username: str) -> str:
    if not 2 <= len(username) <= 40 or not set(username) <= _NAME_CHARS:
        raise ValidationError(f"{username!r} is not a user name", "Signer")
    return username


def _path(data_dir: Path, username: str, suffix: str) -> Path:
    return data_dir / SIGNERS_DIR / f"{_check_name(username)}{suffix}"


def load(data_dir: Path, username: str) -> SignerProfile | None:
    try:
        raw = json.loads(_path(data_dir, username, ".json").read_text("utf-8"))
    except FileNotFoundError:
        return None
    return SignerProfile.from_json(raw)


def require(data_dir: Path, username: str) -> SignerProfile:
    profile = load(data_dir, username)
    if profile is None:
        raise NotFoundError(f"no signer profile for {username}")
    return profile


def save(data_dir: Path, profile: SignerProfile) -> None:
    body = json.dumps(profile.to_json(), ensure_ascii=False, indent=2) + "\n"
    write_atomic(_path(data_dir, profile.username, ".json"), body.encode(), mode=0o640)


def all_profiles(data_dir: Path) -> list[SignerProfile]:
    folder = data_dir / SIGNERS_DIR
    if not folder.is_dir():
        return []
    return [SignerProfile.from_json(json.loads(p.read_text("utf-8")))
            for p in sorted(folder.glob("*.json"))]


def _check_pin(pin: str) -> bytes:
    if not 6 <= len(pin) <= 32:
        raise ValidationError("a PIN has 6 to 32 characters", "pin",
                              msgid="%(label)s must have 6 to 32 characters.")
    return pin.encode("utf-8")


def create_tpm_key(data_dir: Path, username: str, pin: str, tcti: str) -> SignerProfile:
    """A P-256 key generated in the TPM for ``username``, usable only with ``pin``."""
    from ..keys.tpm import create_key_blob

    secret = _check_pin(pin)
    blob = _path(data_dir, username, "-tpm.pem")
    blob.unlink(missing_ok=True)  # a new key replaces the old one (its certificate too)
    info = create_key_blob(blob, tcti, noda=False, auth=secret)
    profile = SignerProfile(username, "tpm", {"path": str(blob.relative_to(data_dir)),
                                              "tcti": tcti, "kid": info.kid.hex(),
                                              "srk_name": info.srk_name.hex()},
                            None, _keep_image(data_dir, username))
    save(data_dir, profile)
    return profile


def configure_pkcs11(data_dir: Path, username: str, module: str, token_label: str,
                     key_label: str, cert_label: str | None = None) -> SignerProfile:
    """The signer's key is on a PKCS#11 token plugged into the box (its PIN at each use)."""
    options: dict[str, Any] = {"module": module, "token_label": token_label,
                               "key_label": key_label}
    if cert_label:
        options["cert_label"] = cert_label
    profile = SignerProfile(username, "pkcs11", options, None, _keep_image(data_dir, username))
    save(data_dir, profile)
    return profile


def configure_external(data_dir: Path, username: str) -> SignerProfile:
    """The signer signs on their own PC; the box checks uploads against their certificate."""
    old = load(data_dir, username)
    profile = SignerProfile(username, "external", {}, old.cert if old else None,
                            _keep_image(data_dir, username))
    save(data_dir, profile)
    return profile


def _keep_image(data_dir: Path, username: str) -> str | None:
    old = load(data_dir, username)
    return old.image if old else None


def _agency_config(profile: SignerProfile) -> AgencyConfig:
    return AgencyConfig(profile.backing, profile.options, profile.cert)


def chain_of(data_dir: Path, profile: SignerProfile) -> list[x509.Certificate]:
    if not profile.cert:
        return []
    raw = (data_dir / profile.cert).read_bytes()
    return x509.load_pem_x509_certificates(raw)


@contextmanager
def open_key(data_dir: Path, profile: SignerProfile, pin: str) -> Iterator[AgencyKey]:
    """The signer's key unlocked by ``pin`` (never stored), with its certificate chain."""
    from ..keys.tpm import TpmKey, TpmKeyInfo

    chain = chain_of(data_dir, profile)
    secret = _check_pin(pin)
    config = _agency_config(profile)
    if profile.backing == "tpm":
        opts = profile.options
        tpm_key = TpmKey.open(data_dir / opts["path"], str(opts["tcti"]),
                              expected=TpmKeyInfo(bytes.fromhex(opts["kid"]),
                                                  bytes.fromhex(opts["srk_name"])),
                              auth=secret)
        key = AgencyKey(config, tpm_key.public_key(), chain, tpm_key=tpm_key)
    elif profile.backing == "pkcs11":
        session, public, token_chain = _open_pkcs11(config, pin)
        key = AgencyKey(config, public, chain or token_chain, pkcs11_session=session)
    else:
        raise SigningError("Người ký này ký bằng công cụ của CA trên máy của mình: tải tệp "
                           "cần ký về, ký rồi tải lên.",
                           "This signer signs with the CA's tool on their own PC: download the "
                           "file to sign, sign it and upload it.")
    try:
        yield key
    finally:
        key.close()


def public_key(data_dir: Path, profile: SignerProfile) -> Any:
    """The key's public half, read without its PIN."""
    from ..keys.tpm import TpmKey

    if profile.backing == "tpm":
        k = TpmKey.open(data_dir / profile.options["path"], str(profile.options["tcti"]))
        try:
            return k.public_key()
        finally:
            k.close()
    if profile.backing == "pkcs11":
        session, public, _ = _open_pkcs11(_agency_config(profile), None)
        session.close()
        return public
    return None


def csr(data_dir: Path, profile: SignerProfile, pin: str, full_name: str,
        org_name: str) -> bytes:
    """A PKCS#10 request for the signer's TPM key (signed in the TPM, with their PIN)."""
    from ..keys.agency import make_csr

    subject = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, org_name),
        x509.NameAttribute(NameOID.COMMON_NAME, full_name),
    ])
    if profile.backing != "tpm":
        raise SigningError("Chỉ tạo yêu cầu chứng thư cho khóa trong TPM của thiết bị.",
                           "A certificate request is made for a key in the box's TPM only.")
    with open_key(data_dir, profile, pin) as key:
        return make_csr(key, subject)


def import_cert(data_dir: Path, username: str, data: bytes,
                now: datetime | None = None) -> x509.Certificate:
    """Store the signer's certificate (leaf first, then its chain): for a key on the box it
    must be that key's; for an external signer it is who the uploads must be signed by."""
    profile = require(data_dir, username)
    try:
        chain = (x509.load_pem_x509_certificates(data) if b"-----BEGIN" in data
                 else [x509.load_der_x509_certificate(data)])
    except ValueError as exc:
        raise ValidationError(f"not a certificate: {exc}", "cert",
                              msgid="The file is not an X.509 certificate.") from exc
    public = public_key(data_dir, profile)
    try:
        if public is not None:
            check_certificate(_Public(public), chain, now)  # type: ignore[arg-type]
        elif chain[0].not_valid_after_utc < (now or datetime.now(UTC)):
            raise AgencyCertificateError("the certificate has expired")
    except AgencyCertificateError as exc:
        raise ValidationError(str(exc), "cert",
                              msgid="The certificate does not fit: %(value)s",
                              value=str(exc)) from exc
    pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)
    path = _path(data_dir, username, ".pem")
    write_atomic(path, pem, mode=0o644)
    save(data_dir, SignerProfile(profile.username, profile.backing, profile.options,
                                 str(path.relative_to(data_dir)), profile.image))
    return chain[0]


class _Public:
    """What check_certificate needs of a key: its public half."""

    def __init__(self, public: Any) -> None:
        self._public = public

    def public_key(self) -> Any:
        return self._public


def check_png(data: bytes, what: str) -> bytes:
    """A PNG with a transparent background, not too large."""
    from PIL import Image

    if len(data) > MAX_IMAGE or not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValidationError(f"{what} is not a PNG of at most 1 MB", "image",
                              msgid="The image must be a PNG file of at most 1 MB.")
    img = Image.open(io.BytesIO(data))
    if img.width * img.height > 4_000_000:
        raise ValidationError(f"{what} is too large", "image",
                              msgid="The image must be a PNG file of at most 1 MB.")
    if "A" not in img.getbands() and "transparency" not in img.info:
        raise ValidationError(f"{what} has no transparent background", "image",
                              msgid="The image needs a transparent background (PNG with "
                              "alpha).")
    return data


def set_image(data_dir: Path, username: str, data: bytes) -> SignerProfile:
    """The signer's signature image: PNG, blue, transparent background."""
    profile = load(data_dir, username) or SignerProfile(username, "external")
    path = _path(data_dir, username, ".png")
    write_atomic(path, check_png(data, "the signature image"), mode=0o644)
    new = SignerProfile(profile.username, profile.backing, profile.options, profile.cert,
                        str(path.relative_to(data_dir)))
    save(data_dir, new)
    return new


def image_of(data_dir: Path, profile: SignerProfile) -> bytes | None:
    return (data_dir / profile.image).read_bytes() if profile.image else None


def set_seal(data_dir: Path, data: bytes) -> None:
    """The agency's seal image: PNG, red, transparent, scanned at its true size."""
    write_atomic(data_dir / SEAL_PATH, check_png(data, "the seal image"), mode=0o644)


def seal_image(data_dir: Path) -> bytes | None:
    path = data_dir / SEAL_PATH
    return path.read_bytes() if path.is_file() else None


def cert_status(cert: x509.Certificate, now: datetime) -> CertStatus:
    end = cert.not_valid_after_utc
    days = (end - now).days
    return CertStatus(cert.subject.rfc4514_string(), cert.issuer.rfc4514_string(), end, days,
                      now > end, now <= end and days <= WARN_DAYS)


def same_person(a: x509.Certificate, b: x509.Certificate) -> bool:
    """The same person by the same CA: subject and issuer equal (a renewed certificate keeps
    them, with a new key and serial)."""
    return a.subject == b.subject and a.issuer == b.issuer


def usable_key(profile: SignerProfile) -> None:
    """Refuse a profile that cannot sign on the box (no certificate yet)."""
    if profile.cert is None:
        raise KeyError_(f"signer {profile.username} has no certificate yet")
