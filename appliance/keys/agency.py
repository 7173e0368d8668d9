"""The agency signing key (chữ ký số của cơ quan): in the TPM, or on the office's PKCS#11 token.

A TPM agency key is generated inside the chip; the appliance writes a PKCS#10 request for the
CA and imports the certificate the CA issues (refused if it is for another key or not valid
now). A PKCS#11 token comes with its key (and usually its certificate) already on it.
pyHanko and python-pkcs11 are imported lazily, only when a PDF is signed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ..fsutil import write_atomic
from .errors import AgencyCertificateError, AgencyKeyError
from .tpm import DEFAULT_TCTI, TpmKey, TpmKeyInfo, create_key_blob
from .verify import spki_der

AGENCY_CONFIG_PATH = "keys/agency.json"
AGENCY_TPM_KEY_PATH = "keys/agency-tpm.pem"
AGENCY_CERT_PATH = "keys/agency-cert.pem"
PKCS11_PIN_SECRET = "agency-pkcs11-pin"


@dataclass(frozen=True)
class AgencyConfig:
    """Where the agency key is: ``backing`` "tpm" or "pkcs11", with that backing's options."""

    backing: str
    options: dict[str, Any] = field(default_factory=dict)
    cert: str | None = None  # path of the imported certificate chain, relative to the data folder

    def to_json(self) -> dict[str, Any]:
        return {"backing": self.backing, "options": dict(self.options), "cert": self.cert}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> AgencyConfig:
        try:
            return cls(str(value["backing"]), dict(value.get("options", {})), value.get("cert"))
        except (KeyError, TypeError) as exc:
            raise AgencyKeyError(f"{AGENCY_CONFIG_PATH} is malformed: {exc}") from exc


def load_agency_config(data_dir: Path) -> AgencyConfig:
    path = data_dir / AGENCY_CONFIG_PATH
    try:
        return AgencyConfig.from_json(json.loads(path.read_text("utf-8")))
    except FileNotFoundError:
        raise AgencyKeyError(
            "no agency signing key is set up; run `luutru key agency-csr` (TPM) or configure "
            "the office's PKCS#11 token"
        ) from None
    except (OSError, ValueError) as exc:
        raise AgencyKeyError(f"cannot read {path}: {exc}") from exc


def save_agency_config(data_dir: Path, config: AgencyConfig) -> None:
    body = json.dumps(config.to_json(), indent=2) + "\n"
    write_atomic(data_dir / AGENCY_CONFIG_PATH, body.encode(), mode=0o640)


def create_agency_tpm_key(data_dir: Path, tcti: str = DEFAULT_TCTI) -> AgencyConfig:
    """Generate the agency key inside the TPM (non-exportable P-256) and record it."""
    if (data_dir / AGENCY_CONFIG_PATH).exists():
        raise AgencyKeyError("an agency key is already set up; refusing to replace it")
    # Unlike the device key, this one is DA-protected: it makes legal signatures.
    info = create_key_blob(data_dir / AGENCY_TPM_KEY_PATH, tcti, noda=False)
    config = AgencyConfig(
        "tpm",
        {
            "path": AGENCY_TPM_KEY_PATH,
            "tcti": tcti,
            "kid": info.kid.hex(),
            "srk_name": info.srk_name.hex(),
        },
    )
    save_agency_config(data_dir, config)
    return config


def configure_agency_pkcs11(
    data_dir: Path, module: str, token_label: str, key_label: str, cert_label: str | None = None,
    pin: str | None = None,
) -> AgencyConfig:
    """Use the office's PKCS#11 token (the agency's USB token from its CA). With ``pin``, the
    key is opened once with it (a wrong PIN or label changes nothing) and the PIN is kept as a
    sealed secret (keys/sealing.py: sealed to the TPM when the device key is in one, else a
    file only the service reads), so that the services that sign with the agency key — the
    capture worker, edXML, certified copies — can open the token unattended."""
    options: dict[str, Any] = {"module": module, "token_label": token_label, "key_label": key_label}
    if cert_label:
        options["cert_label"] = cert_label
    config = AgencyConfig("pkcs11", options)
    if pin is not None:
        session, _public, _chain = _open_pkcs11(config, pin)
        session.close()
    save_agency_config(data_dir, config)
    if pin is not None:
        _pin_store(data_dir).seal(PKCS11_PIN_SECRET, pin.encode())
    return config


def _pin_store(data_dir: Path) -> Any:
    """The appliance's secret store (keys/sealing.py), which keeps the token's PIN."""
    from ..config import load_config
    from .sealing import open_secret_store

    return open_secret_store(data_dir, load_config(data_dir).key)


def _sealed_pin(data_dir: Path) -> str | None:
    """The token PIN ``configure_agency_pkcs11`` sealed, if any (none in a folder that is not
    an appliance's, such as the centre's, whose PIN comes from its own settings)."""
    from ..errors import LuutruError

    try:
        store = _pin_store(data_dir)
    except LuutruError:
        return None
    if not store.exists(PKCS11_PIN_SECRET):
        return None
    return bytes(store.unseal(PKCS11_PIN_SECRET)).decode()


def agency_subject(
    agency_name: str, province: str | None = None, org_id: str | None = None
) -> x509.Name:
    """The CSR subject: CN and O the agency's name, ST the province, C=VN."""
    attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, "VN")]
    if province:
        attrs.append(x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, province))
    attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, agency_name))
    if org_id:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, org_id))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, agency_name))
    return x509.Name(attrs)


class AgencyKey:
    """An opened agency key: its public key, certificate chain, and a pyHanko signer."""

    def __init__(
        self,
        config: AgencyConfig,
        public: ec.EllipticCurvePublicKey | Any,
        chain: list[x509.Certificate],
        tpm_key: TpmKey | None = None,
        pkcs11_session: Any = None,
    ) -> None:
        self.config = config
        self._public = public
        self.chain = chain
        self._tpm_key = tpm_key
        self._session = pkcs11_session

    @property
    def certificate(self) -> x509.Certificate:
        if not self.chain:
            raise AgencyKeyError(
                "the agency key has no certificate yet; send the CSR to the CA and import the "
                "issued certificate with `luutru key agency-cert FILE`"
            )
        return self.chain[0]

    def public_key(self) -> Any:
        return self._public

    def private_key(self) -> ec.EllipticCurvePrivateKey:
        """A cryptography key object whose signing runs in the TPM (for the CSR)."""
        if self._tpm_key is None:
            raise AgencyKeyError("a CSR is made only for a TPM agency key; a token has its own")
        return self._tpm_key.private_key()

    def xml_signing_key(self) -> ec.EllipticCurvePrivateKey:
        """A ``cryptography`` key object for signxml (edXML envelopes): its signing runs in
        the TPM or on the token, hashing on the host."""
        if self._tpm_key is not None:
            return self._tpm_key.private_key()
        if self._session is None:
            raise AgencyKeyError("the agency key is closed")
        return _Pkcs11EccPrivateKey(self._session, self.config.options["key_label"], self._public)

    def pdf_signer(self) -> Any:
        """A pyHanko ``Signer`` for this key and its certificate chain."""
        from asn1crypto import x509 as asn1_x509

        def load(cert: x509.Certificate) -> Any:
            return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))

        leaf = load(self.certificate)
        others = [load(c) for c in self.chain[1:]]
        if self._tpm_key is not None:
            return _tpm_pdf_signer(self._tpm_key, leaf, others)
        from pyhanko.sign.pkcs11 import PKCS11Signer

        return PKCS11Signer(
            self._session,
            key_label=self.config.options["key_label"],
            signing_cert=leaf,
            ca_chain=others,
            other_certs_to_pull=None,  # we hold the chain; do not search the token for more
            # Hash on the host, sign with plain CKM_ECDSA: tokens (SoftHSM2 among them) often
            # lack the combined CKM_ECDSA_SHA256 mechanism.
            use_raw_mechanism=True,
        )

    def close(self) -> None:
        if self._tpm_key is not None:
            self._tpm_key.close()
            self._tpm_key = None
        if self._session is not None:
            self._session.close()
            self._session = None

    def __enter__(self) -> AgencyKey:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Pkcs11EccPrivateKey(ec.EllipticCurvePrivateKey):
    """Only ``sign`` and ``public_key`` work: the private value stays on the token. Hashes on
    the host and signs with plain CKM_ECDSA, as the PDF signer does (tokens often lack the
    combined mechanism)."""

    def __init__(self, session: Any, label: str, public: ec.EllipticCurvePublicKey) -> None:
        self._session, self._label, self._public = session, label, public

    def sign(self, data: bytes | bytearray | memoryview,
             signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        import hashlib

        import pkcs11
        from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

        if not (isinstance(signature_algorithm, ec.ECDSA)
                and isinstance(signature_algorithm.algorithm, hashes.SHA256)):
            raise ValueError("the token key signs ECDSA with SHA-256 only")
        priv = self._session.get_key(object_class=pkcs11.ObjectClass.PRIVATE_KEY,
                                     label=self._label)
        raw = bytes(priv.sign(hashlib.sha256(bytes(data)).digest(),
                              mechanism=pkcs11.Mechanism.ECDSA))
        half = len(raw) // 2
        return encode_dss_signature(int.from_bytes(raw[:half], "big"),
                                    int.from_bytes(raw[half:], "big"))

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._public.curve

    @property
    def key_size(self) -> int:
        return self._public.curve.key_size

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        raise ValueError("the token's signing key does not do key exchange")

    def private_numbers(self) -> ec.EllipticCurvePrivateNumbers:
        raise ValueError("the token key is not exportable")

    def private_bytes(self, encoding: Any, format: Any, encryption_algorithm: Any) -> bytes:
        raise ValueError("the token key is not exportable")

    def __copy__(self) -> _Pkcs11EccPrivateKey:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> _Pkcs11EccPrivateKey:
        return self


def _tpm_pdf_signer(key: TpmKey, leaf: Any, others: list[Any]) -> Any:
    from asn1crypto import algos
    from pyhanko.sign.signers.pdf_cms import Signer
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    class TpmPdfSigner(Signer):
        """CMS signatures (DER ECDSA) made by the TPM."""

        def __init__(self) -> None:
            super().__init__(
                signing_cert=leaf,
                cert_registry=SimpleCertificateStore.from_certs(  # type: ignore[no-untyped-call]
                    [leaf, *others]
                ),
                signature_mechanism=algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"}),
            )

        async def async_sign_raw(
            self, data: bytes, digest_algorithm: str, dry_run: bool = False
        ) -> bytes:
            if dry_run:
                return bytes(72)  # the longest DER P-256 signature, to size the placeholder
            return key.sign_der(data)

    return TpmPdfSigner()


def _read_chain(path: Path) -> list[x509.Certificate]:
    raw = path.read_bytes()
    if b"-----BEGIN" in raw:
        return x509.load_pem_x509_certificates(raw)
    return [x509.load_der_x509_certificate(raw)]


def _open_pkcs11(config: AgencyConfig, pin: str | None) -> tuple[Any, Any, list[x509.Certificate]]:
    import pkcs11
    from pkcs11.util.ec import encode_ec_public_key
    from pyhanko.config.pkcs11 import TokenCriteria
    from pyhanko.sign.pkcs11 import open_pkcs11_session

    opts = config.options
    try:
        session = open_pkcs11_session(
            opts["module"], token_criteria=TokenCriteria(label=opts["token_label"]), user_pin=pin
        )
    except Exception as exc:
        raise AgencyKeyError(
            f"the PKCS#11 token {opts.get('token_label')!r} cannot be opened ({exc}); check that "
            "the token is plugged in and that its PIN is right"
        ) from exc
    try:
        pub = session.get_key(object_class=pkcs11.ObjectClass.PUBLIC_KEY, label=opts["key_label"])
        public = serialization.load_der_public_key(encode_ec_public_key(pub))  # type: ignore[arg-type]
        chain: list[x509.Certificate] = []
        if opts.get("cert_label"):
            for obj in session.get_objects(
                {
                    pkcs11.Attribute.CLASS: pkcs11.ObjectClass.CERTIFICATE,
                    pkcs11.Attribute.LABEL: opts["cert_label"],
                }
            ):
                chain.append(x509.load_der_x509_certificate(bytes(obj[pkcs11.Attribute.VALUE])))
    except Exception as exc:
        session.close()
        raise AgencyKeyError(
            f"key {opts.get('key_label')!r} is not on the PKCS#11 token ({exc})"
        ) from exc
    return session, public, chain


def open_agency_key(data_dir: Path, pin: str | None = None) -> AgencyKey:
    """Open the configured agency key with its imported certificate chain (if any); a PKCS#11
    token with ``pin``, else with the PIN sealed when it was configured."""
    config = load_agency_config(data_dir)
    chain = _read_chain(data_dir / config.cert) if config.cert else []
    if config.backing == "tpm":
        opts = config.options
        tpm_key = TpmKey.open(
            data_dir / opts["path"],
            str(opts.get("tcti", DEFAULT_TCTI)),
            expected=TpmKeyInfo(bytes.fromhex(opts["kid"]), bytes.fromhex(opts["srk_name"])),
        )
        return AgencyKey(config, tpm_key.public_key(), chain, tpm_key=tpm_key)
    if config.backing == "pkcs11":
        session, public, token_chain = _open_pkcs11(
            config, pin if pin is not None else _sealed_pin(data_dir))
        return AgencyKey(config, public, chain or token_chain, pkcs11_session=session)
    raise AgencyKeyError(f"agency key backing {config.backing!r} is not supported")


def make_csr(key: AgencyKey, subject: x509.Name) -> bytes:
    """A PEM PKCS#10 request for ``key``, signed inside the TPM."""
    builder = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(subject)
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
    )
    csr = builder.sign(key.private_key(), hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM)


def check_certificate(
    key: AgencyKey, chain: list[x509.Certificate], now: datetime | None = None
) -> None:
    """Raise unless ``chain[0]`` is for ``key``, valid at ``now`` and allowed to sign."""
    if not chain:
        raise AgencyCertificateError("the file holds no certificate")
    leaf = chain[0]
    if spki_der(leaf.public_key()) != spki_der(key.public_key()):  # type: ignore[arg-type]
        raise AgencyCertificateError(
            "the certificate is for a different key than this appliance's agency key; check that "
            "the CA answered this appliance's request"
        )
    moment = now or datetime.now(UTC)
    if moment < leaf.not_valid_before_utc:
        raise AgencyCertificateError(
            f"the certificate is not valid before {leaf.not_valid_before_utc.isoformat()}"
        )
    if moment > leaf.not_valid_after_utc:
        raise AgencyCertificateError(
            f"the certificate expired on {leaf.not_valid_after_utc.isoformat()}; ask the CA "
            "to renew it"
        )
    try:
        usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not (usage.digital_signature or usage.content_commitment):
        raise AgencyCertificateError("the certificate does not allow digital signatures")


def import_agency_cert(
    data_dir: Path, data: bytes, now: datetime | None = None, pin: str | None = None
) -> x509.Certificate:
    """Check the CA's certificate (leaf first, then any chain) and store it; return the leaf."""
    try:
        if b"-----BEGIN" in data:
            chain = x509.load_pem_x509_certificates(data)
        else:
            chain = [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise AgencyCertificateError(f"the file is not an X.509 certificate ({exc})") from exc
    with open_agency_key(data_dir, pin) as key:
        check_certificate(key, chain, now)
    pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)
    write_atomic(data_dir / AGENCY_CERT_PATH, pem, mode=0o644)
    config = load_agency_config(data_dir)
    save_agency_config(data_dir, AgencyConfig(config.backing, config.options, AGENCY_CERT_PATH))
    return chain[0]
