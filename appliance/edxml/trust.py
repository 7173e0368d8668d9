"""The managed trust store and the revocation cache, both in the data folder.

``DIR/trust/roots/<sha256>.pem``: the CA certificates whose signatures the box trusts, added by
``luutru trust add`` (shipped empty: see ``README.txt`` written beside them). Only CA
certificates are taken (a signer's own certificate is refused: trusting it would trust one
key, not the CA that vouches for it).

``DIR/trust/revocation/<sha256>.ocsp|.crl``: every OCSP response and CRL the validator fetched
while the link was up, kept so that a signature can be checked again on a box that has been
offline for years (each verification report also names the ones it used, and they are stored
as content of the document, so they travel to the centre with it).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ..fsutil import private_dirs, write_atomic
from .errors import TrustStoreError

TRUST_DIR = "trust"
README = """Kho chứng thư số tin cậy (trust store) của luutru
====================================================

Thư mục roots/ chứa chứng thư số của các tổ chức chứng thực (CA) mà hộp tin cậy khi kiểm tra
chữ ký số của văn bản điện tử đến. Khi mới cài đặt, kho trống: mọi chữ ký đều được báo
"không kiểm tra được chữ ký" cho đến khi thêm chứng thư gốc.

Thêm chứng thư (tệp PEM hoặc DER) bằng lệnh:

    luutru trust add --data THƯ_MỤC_DỮ_LIỆU TỆP.pem
    luutru trust list --data THƯ_MỤC_DỮ_LIỆU
    luutru trust remove --data THƯ_MỤC_DỮ_LIỆU DẤU_VÂN_TAY

Nên thêm:
- Chứng thư gốc của hệ thống chứng thực chữ ký số chuyên dùng Chính phủ (Ban Cơ yếu Chính phủ,
  Cục Chứng thực số và Bảo mật thông tin), tải từ trang chính thức của Ban Cơ yếu (ca.gov.vn);
- Chứng thư gốc của Trung tâm Chứng thực điện tử quốc gia (NEAC, Bộ Khoa học và Công nghệ;
  trước đây Bộ Thông tin và Truyền thông), tải từ neac.gov.vn — gốc của các CA công cộng được
  cấp phép (VNPT-CA, Viettel-CA, BKAV-CA, FPT-CA, MISA-CA, …);
- Chứng thư của các CA công cộng trung gian mà các cơ quan gửi văn bản thường dùng, nếu chúng
  không đi kèm trong chữ ký.

Kiểm tra dấu vân tay (SHA-256) của tệp với cơ quan cấp trước khi thêm. Không thêm chứng thư
của người ký (chỉ thêm chứng thư của CA).

Thư mục revocation/ lưu các phản hồi OCSP và danh sách thu hồi (CRL) đã tải khi có mạng, để
kiểm tra lại chữ ký khi hộp không có mạng.
"""


@dataclass(frozen=True)
class TrustedRoot:
    fingerprint: str  # SHA-256 of the DER, hex
    subject: str
    not_after: str  # ISO date
    path: Path

    def to_json(self) -> dict[str, str]:
        return {"fingerprint": self.fingerprint, "subject": self.subject,
                "not_after": self.not_after}


def fingerprint(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def _load_certs(data: bytes) -> list[x509.Certificate]:
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise TrustStoreError(f"the file is not an X.509 certificate ({exc})") from exc


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


class TrustStore:
    """The trust roots and revocation cache of one data folder."""

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / TRUST_DIR
        self.roots_dir = self.root / "roots"
        self.revocation_dir = self.root / "revocation"

    def ensure(self) -> None:
        private_dirs(self.roots_dir)
        private_dirs(self.revocation_dir)
        readme = self.root / "README.txt"
        if not readme.exists():
            write_atomic(readme, README.encode("utf-8"), mode=0o644)

    # -- roots ---------------------------------------------------------------------------

    def add(self, data: bytes) -> list[TrustedRoot]:
        """Add every certificate of a PEM bundle (or one DER); each must be a CA."""
        certs = _load_certs(data)
        for c in certs:
            if not _is_ca(c):
                raise TrustStoreError(
                    f"'{c.subject.rfc4514_string()}' is not a CA certificate (no BasicConstraints "
                    "CA=true): add the certificate of the CA that issued it, not the signer's"
                )
        self.ensure()
        out = []
        for c in certs:
            fp = fingerprint(c)
            path = self.roots_dir / f"{fp}.pem"
            write_atomic(path, c.public_bytes(serialization.Encoding.PEM), mode=0o644)
            out.append(self._info(c, path))
        return out

    def remove(self, prefix: str) -> TrustedRoot:
        """Remove the root whose fingerprint starts with ``prefix`` (at least 8 hex digits)."""
        prefix = prefix.strip().lower().replace(":", "")
        if len(prefix) < 8:
            raise TrustStoreError("give at least 8 hex digits of the fingerprint")
        found = [r for r in self.roots() if r.fingerprint.startswith(prefix)]
        if len(found) != 1:
            raise TrustStoreError(
                f"{len(found)} trusted certificates have a fingerprint starting with {prefix}"
            )
        found[0].path.unlink()
        return found[0]

    def roots(self) -> list[TrustedRoot]:
        if not self.roots_dir.is_dir():
            return []
        out = []
        for path in sorted(self.roots_dir.glob("*.pem")):
            for c in _load_certs(path.read_bytes()):
                out.append(self._info(c, path))
        return out

    def certificates(self) -> list[x509.Certificate]:
        return [c for r in self.roots() for c in _load_certs(r.path.read_bytes())]

    @staticmethod
    def _info(cert: x509.Certificate, path: Path) -> TrustedRoot:
        return TrustedRoot(fingerprint(cert), cert.subject.rfc4514_string(),
                           cert.not_valid_after_utc.date().isoformat(), path)

    # -- revocation data -------------------------------------------------------------------

    def cached_revocation(self) -> tuple[list[bytes], list[bytes]]:
        """(OCSP responses, CRLs) kept from earlier fetches, as DER."""
        if not self.revocation_dir.is_dir():
            return [], []
        ocsps = [p.read_bytes() for p in sorted(self.revocation_dir.glob("*.ocsp"))]
        crls = [p.read_bytes() for p in sorted(self.revocation_dir.glob("*.crl"))]
        return ocsps, crls

    def keep_revocation(self, kind: str, der: bytes) -> str:
        """Keep an OCSP response (``kind`` "ocsp") or CRL ("crl"); returns its SHA-256."""
        if kind not in ("ocsp", "crl"):
            raise ValueError(kind)
        self.ensure()
        sha = hashlib.sha256(der).hexdigest()
        path = self.revocation_dir / f"{sha}.{kind}"
        if not path.exists():
            write_atomic(path, der, mode=0o644)
        return sha


def asn1_certs(certs: list[x509.Certificate]) -> list[Any]:
    from asn1crypto import x509 as asn1_x509

    return [asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER)) for c in certs]

