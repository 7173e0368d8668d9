"""COSE_Sign1 (RFC 9052 §4.2, §4.4): build and verify, with the signing delegated to a key.

The protected header is kept as the exact bytes that were signed and never re-encoded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cbor2

from . import cbor
from .errors import EncodingError, SignatureError

COSE_SIGN1_TAG = 18
HDR_ALG = 1
HDR_CONTENT_TYPE = 3
HDR_KID = 4
ALG_ES256 = -7
ALG_EDDSA = -8
ALG_NAMES = {ALG_ES256: "ES256", ALG_EDDSA: "EdDSA"}


def sig_structure(protected: bytes, payload: bytes, external_aad: bytes = b"") -> bytes:
    return cbor.dumps(["Signature1", protected, external_aad, payload])


@dataclass(frozen=True)
class Sign1:
    protected: bytes
    unprotected: dict[int, Any]
    payload: bytes
    signature: bytes

    @property
    def protected_headers(self) -> dict[Any, Any]:
        value = cbor.loads(self.protected) if self.protected else {}
        if not isinstance(value, dict):
            raise EncodingError("COSE protected header is not a map")
        return value

    @property
    def alg(self) -> int:
        alg = self.protected_headers.get(HDR_ALG)
        if not isinstance(alg, int):
            raise EncodingError("COSE protected header has no algorithm")
        return alg

    @property
    def kid(self) -> bytes | None:
        kid = self.protected_headers.get(HDR_KID, self.unprotected.get(HDR_KID))
        if kid is not None and not isinstance(kid, bytes):
            raise EncodingError("COSE kid is not a byte string")
        return kid

    def to_be_signed(self) -> bytes:
        return sig_structure(self.protected, self.payload)

    def encode(self) -> bytes:
        return cbor.dumps(
            cbor2.CBORTag(
                COSE_SIGN1_TAG, [self.protected, self.unprotected, self.payload, self.signature]
            )
        )


def sign1(
    payload: bytes,
    alg: int,
    kid: bytes,
    sign: Callable[[bytes], bytes],
    extra_protected: dict[int, Any] | None = None,
) -> Sign1:
    headers: dict[int, Any] = {HDR_ALG: alg, HDR_KID: kid}
    if extra_protected:
        headers.update(extra_protected)
    protected = cbor.dumps(headers)
    tbs = sig_structure(protected, payload)
    return Sign1(protected, {}, payload, sign(tbs))


def decode_sign1(data: bytes) -> Sign1:
    value = cbor.loads(data)
    if isinstance(value, cbor2.CBORTag):
        if value.tag != COSE_SIGN1_TAG:
            raise EncodingError(f"CBOR tag {value.tag} is not COSE_Sign1")
        value = value.value
    if not isinstance(value, list) or len(value) != 4:
        raise EncodingError("COSE_Sign1 must be an array of four items")
    protected, unprotected, payload, signature = value
    if not isinstance(protected, bytes) or not isinstance(unprotected, dict):
        raise EncodingError("COSE_Sign1 headers are malformed")
    if not isinstance(payload, bytes) or not isinstance(signature, bytes):
        raise EncodingError("COSE_Sign1 payload or signature is not a byte string")
    msg = Sign1(protected, unprotected, payload, signature)
    # Refused here, where callers expect EncodingError, not later wherever the kid is read.
    for headers in (msg.protected_headers, unprotected):
        if not isinstance(headers.get(HDR_KID, b""), bytes):
            raise EncodingError("COSE kid is not a byte string")
    return msg


def verify_sign1(msg: Sign1, verify: Callable[[int, bytes, bytes], None]) -> None:
    """Check ``msg`` with ``verify(alg, tbs, signature)``, which raises on failure."""
    try:
        verify(msg.alg, msg.to_be_signed(), msg.signature)
    except SignatureError:
        raise
    except Exception as exc:
        raise SignatureError(f"COSE signature does not verify: {exc}") from exc
