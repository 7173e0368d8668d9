"""Evidence of the boot state for enrolment: a TPM2 quote over the boot PCRs.

The quote is signed by an attestation key (AK): a *restricted* ECC signing key, which the TPM
lets sign only structures it made itself, so the host cannot forge a quote with it (the
device key is unrestricted and could sign anything). The AK is a primary key of the owner
hierarchy, re-derived identically on every call. ``TPM2_Certify`` by the AK proves that the
device key lives in the same TPM. The verifier below is pure byte parsing (keylime's
layering): the centre needs no TPM library to check it.

With swtpm the PCRs are all zero (no firmware measured anything) but the quote is real.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from appliance.keys.verify import key_id, load_public_key

from .errors import ProvisionError

FORMAT = "luutru-tpm-quote-1"
BOOT_PCRS = (0, 1, 2, 3, 4, 5, 6, 7)
PCR_BANK = "sha256"
_MAGIC = 0xFF544347
_ST_ATTEST_QUOTE = 0x8018
_ST_ATTEST_CERTIFY = 0x8017
_ALG_NULL = 0x0010
_ALG_SHA256 = 0x000B
_ALG_ECC = 0x0023
_CURVE_P256 = 0x0003
_FIXEDTPM, _RESTRICTED, _SIGN = 0x2, 0x10000, 0x40000


class AttestationError(ProvisionError):
    """Boot evidence is malformed or does not verify."""


@dataclass(frozen=True)
class Verified:
    pcrs: dict[int, bytes]
    nonce: bytes
    ak_kid: str


def quote_boot_state(tcti: str, device_blob_pem: bytes, nonce: bytes) -> dict[str, Any]:
    """Quote PCRs 0–7 (sha256) with the AK and certify the device key; hex-encoded fields."""
    from appliance.keys.tpm_ops import quote_pcrs

    q = quote_pcrs(tcti, device_blob_pem, nonce, PCR_BANK, BOOT_PCRS)
    return {
        "format": FORMAT,
        "nonce": nonce.hex(),
        "pcr_bank": PCR_BANK,
        "pcrs": {str(p): d.hex() for p, d in zip(BOOT_PCRS, q["digests"], strict=True)},
        **{k: v.hex() for k, v in q.items() if k != "digests"},
    }


# -- verifying evidence (pure) ------------------------------------------------------------------


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise AttestationError("structure is truncated")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int(struct.unpack(">H", self.take(2))[0])

    def u32(self) -> int:
        return int(struct.unpack(">I", self.take(4))[0])

    def tpm2b(self) -> bytes:
        return self.take(self.u16())


def ecc_public(area: bytes) -> tuple[ec.EllipticCurvePublicKey, int]:
    """(public key, objectAttributes) of a marshalled TPMT_PUBLIC for an ECC P-256 key."""
    r = _Reader(area)
    if r.u16() != _ALG_ECC:
        raise AttestationError("not an ECC key")
    r.u16()  # nameAlg
    attrs = r.u32()
    r.tpm2b()  # authPolicy
    if r.u16() != _ALG_NULL:  # symmetric
        r.u16()
        r.u16()
    if r.u16() != _ALG_NULL:  # scheme
        r.u16()
    if r.u16() != _CURVE_P256:
        raise AttestationError("not a P-256 key")
    if r.u16() != _ALG_NULL:  # kdf
        r.u16()
    x, y = r.tpm2b(), r.tpm2b()
    point = b"\x04" + x.rjust(32, b"\0") + y.rjust(32, b"\0")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point), attrs
    except ValueError as exc:
        raise AttestationError(f"the key's point is invalid: {exc}") from exc


def name_of(area: bytes) -> bytes:
    """The TPM name of an object: nameAlg (sha256) ‖ SHA-256(TPMT_PUBLIC)."""
    return struct.pack(">H", _ALG_SHA256) + hashlib.sha256(area).digest()


def _attest(raw: bytes, kind: int) -> tuple[bytes, _Reader]:
    r = _Reader(raw)
    if r.u32() != _MAGIC or r.u16() != kind:
        raise AttestationError("not a TPM-generated attestation of the expected type")
    r.tpm2b()  # qualifiedSigner
    extra = r.tpm2b()
    r.take(17 + 8)  # clockInfo, firmwareVersion
    return extra, r


def _check_sig(key: ec.EllipticCurvePublicKey, sig: bytes, data: bytes, what: str) -> None:
    try:
        key.verify(sig, data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise AttestationError(f"the {what} signature does not verify") from None


def verify_evidence(ev: dict[str, Any], device_public_pem: str) -> Verified:
    """Check the quote and the certification; return the quoted PCRs. Raises on any doubt."""
    try:
        if ev.get("format") != FORMAT:
            raise AttestationError(f"unknown evidence format {ev.get('format')!r}")
        nonce = bytes.fromhex(ev["nonce"])
        ak_area = bytes.fromhex(ev["ak_public_area"])
        quote = bytes.fromhex(ev["quote"])
        certify = bytes.fromhex(ev["certify"])
        device_area = bytes.fromhex(ev["device_public_area"])
        pcrs = {int(k): bytes.fromhex(v) for k, v in ev["pcrs"].items()}
        quote_sig = bytes.fromhex(ev["quote_signature"])
        certify_sig = bytes.fromhex(ev["certify_signature"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise AttestationError(f"evidence is malformed: {exc}") from exc
    ak, attrs = ecc_public(ak_area)
    if attrs & (_FIXEDTPM | _RESTRICTED | _SIGN) != _FIXEDTPM | _RESTRICTED | _SIGN:
        raise AttestationError("the attestation key is not a restricted TPM signing key")
    _check_sig(ak, quote_sig, quote, "quote")
    extra, r = _attest(quote, _ST_ATTEST_QUOTE)
    if extra != nonce:
        raise AttestationError("the quote is not over this nonce (replayed?)")
    selected: list[int] = []
    for _ in range(r.u32()):
        alg = r.u16()
        mask = r.take(r.u8())
        if alg != _ALG_SHA256:
            raise AttestationError("the quote is not over the sha256 bank")
        selected += [i for i in range(len(mask) * 8) if mask[i // 8] >> (i % 8) & 1]
    if tuple(selected) != BOOT_PCRS or sorted(pcrs) != list(BOOT_PCRS):
        raise AttestationError("the quote does not cover PCRs 0–7")
    digest = r.tpm2b()
    if hashlib.sha256(b"".join(pcrs[i] for i in BOOT_PCRS)).digest() != digest:
        raise AttestationError("the PCR values do not match the quoted digest")
    _check_sig(ak, certify_sig, certify, "certification")
    extra, r = _attest(certify, _ST_ATTEST_CERTIFY)
    if extra != nonce or r.tpm2b() != name_of(device_area):
        raise AttestationError("the certification is not of this device key")
    device, _ = ecc_public(device_area)
    claimed = load_public_key(device_public_pem.encode())
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if device.public_bytes(*spki) != claimed.public_bytes(*spki):
        raise AttestationError("the certified key is not the appliance's device key")
    return Verified(pcrs, nonce, key_id(ak).hex())
