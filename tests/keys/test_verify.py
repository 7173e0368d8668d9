"""Verifying with a public key only (appliance/keys/verify.py): Ed25519 and P-256 PEMs load,
others are refused, key ids are SHA-256 of the SPKI, and the COSE verifier fails closed."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from appliance import cose
from appliance.errors import SignatureError
from appliance.keys.verify import key_id, load_public_key, public_pem, spki_der, verifier

TBS = cose.sig_structure(b"\xa1\x01\x26", b"payload")


def _pem(key: object) -> bytes:
    return key.public_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _es256(private: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    r, s = decode_dss_signature(private.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def test_ed25519_and_p256_keys_load_and_round_trip() -> None:
    """Both device key types load from PEM (text or bytes) and print back the same PEM."""
    for private in (ed25519.Ed25519PrivateKey.generate(), ec.generate_private_key(ec.SECP256R1())):
        pem = _pem(private.public_key())
        key = load_public_key(pem.decode())
        assert load_public_key(pem).public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ) == spki_der(key)
        assert public_pem(key).encode() == pem


@pytest.mark.parametrize(
    "private",
    [rsa.generate_private_key(65537, 2048), ec.generate_private_key(ec.SECP384R1())],
    ids=["rsa", "p384"],
)
def test_other_key_types_are_refused(private: object) -> None:
    """RSA or another curve is not a device key."""
    with pytest.raises(SignatureError, match="neither Ed25519 nor ECDSA P-256"):
        load_public_key(_pem(private.public_key()))  # type: ignore[attr-defined]


def test_the_key_id_is_the_first_16_bytes_of_sha256_over_the_spki() -> None:
    """kid = SHA-256(SubjectPublicKeyInfo DER)[:16]."""
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    assert key_id(key) == hashlib.sha256(spki_der(key)).digest()[:16]


def test_es256_signatures_verify_as_raw_r_and_s_and_fail_when_flipped() -> None:
    """COSE ES256 is r||s (64 bytes); every flipped bit, a DER signature or the wrong
    algorithm is refused."""
    private = ec.generate_private_key(ec.SECP256R1())
    check = verifier(private.public_key())
    sig = _es256(private, TBS)
    check(cose.ALG_ES256, TBS, sig)
    for i in range(0, 512, 5):
        b = bytearray(sig)
        b[i // 8] ^= 1 << (i % 8)
        with pytest.raises(SignatureError, match="does not verify with the enrolled key"):
            check(cose.ALG_ES256, TBS, bytes(b))
    der = private.sign(TBS, ec.ECDSA(hashes.SHA256()))
    with pytest.raises(SignatureError, match="must be 64 bytes"):
        check(cose.ALG_ES256, TBS, der)
    with pytest.raises(SignatureError, match="algorithm -8 does not match the key type"):
        check(cose.ALG_EDDSA, TBS, sig)


def test_eddsa_signatures_fail_when_the_data_changes() -> None:
    """One changed byte of the signed structure is refused."""
    private = ed25519.Ed25519PrivateKey.generate()
    check = verifier(private.public_key())
    sig = private.sign(TBS)
    check(cose.ALG_EDDSA, TBS, sig)
    with pytest.raises(SignatureError, match="does not verify with the enrolled key"):
        check(cose.ALG_EDDSA, TBS[:-1] + b"\x00", sig)
    with pytest.raises(SignatureError, match="algorithm -7 does not match the key type"):
        check(cose.ALG_ES256, TBS, sig)
