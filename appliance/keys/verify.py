"""Verify COSE signatures from a PEM public key, with no access to any private key."""

from __future__ import annotations

import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from ..cose import ALG_EDDSA, ALG_ES256
from ..errors import SignatureError

PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey


def load_public_key(pem: str | bytes) -> PublicKey:
    raw = pem.encode() if isinstance(pem, str) else pem
    key = serialization.load_pem_public_key(raw)
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    raise SignatureError("public key is neither Ed25519 nor ECDSA P-256")


def spki_der(key: PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_id(key: PublicKey) -> bytes:
    return hashlib.sha256(spki_der(key)).digest()[:16]


def public_pem(key: PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def verifier(key: PublicKey):  # type: ignore[no-untyped-def]
    """A ``verify(alg, tbs, signature)`` callable for ``cose.verify_sign1``."""

    def verify(alg: int, tbs: bytes, signature: bytes) -> None:
        try:
            if alg == ALG_EDDSA and isinstance(key, ed25519.Ed25519PublicKey):
                key.verify(signature, tbs)
                return
            if alg == ALG_ES256 and isinstance(key, ec.EllipticCurvePublicKey):
                if len(signature) != 64:
                    raise SignatureError("ES256 signature must be 64 bytes (r||s)")
                r = int.from_bytes(signature[:32], "big")
                s = int.from_bytes(signature[32:], "big")
                key.verify(encode_dss_signature(r, s), tbs, ec.ECDSA(hashes.SHA256()))
                return
        except InvalidSignature as exc:
            raise SignatureError("signature does not verify with the enrolled key") from exc
        raise SignatureError(f"algorithm {alg} does not match the key type")

    return verify
