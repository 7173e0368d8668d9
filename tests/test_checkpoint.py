"""Checkpoints: COSE_Sign1 that other verifiers accept, and that fail closed on any change."""

from __future__ import annotations

import base64
from pathlib import Path

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from appliance import cose
from appliance.checkpoint import Checkpoint, sign_checkpoint, verify_checkpoint
from appliance.errors import EncodingError, SignatureError
from appliance.keys.base import Backing
from appliance.keys.software import SoftwareKey
from appliance.keys.verify import load_public_key


@pytest.fixture
def key(tmp_path: Path) -> SoftwareKey:
    return SoftwareKey.create(tmp_path / "k")


def _cp() -> Checkpoint:
    return Checkpoint(
        "luutru/000.21.08.H49/ab",
        42,
        bytes(range(32)),
        "2025-09-15T09:30:00.000+07:00",
        Backing.SOFTWARE,
        cose.ALG_EDDSA,
    )


def test_round_trip_and_key_kind(key: SoftwareKey) -> None:
    """A signed checkpoint verifies and says a software EdDSA key signed it."""
    raw = sign_checkpoint(_cp(), key)
    cp = verify_checkpoint(raw, load_public_key(key.public_key_pem()))
    assert cp == _cp() and cp.backing is Backing.SOFTWARE


def test_sig_structure_checked_by_hand_with_cryptography(key: SoftwareKey) -> None:
    """Independently: rebuild RFC 9052's Sig_structure by hand, verify with cryptography."""
    raw = sign_checkpoint(_cp(), key)
    tag = cbor2.loads(raw)
    assert tag.tag == 18
    protected, _unprotected, payload, signature = tag.value
    assert cbor2.loads(protected)[1] == -8
    tbs = cbor2.dumps(["Signature1", protected, b"", payload])
    pub = load_pem_public_key(key.public_key_pem().encode())
    assert isinstance(pub, ed25519.Ed25519PublicKey)
    pub.verify(signature, tbs)


def test_pycose_accepts_it(key: SoftwareKey) -> None:
    """pycose (another COSE implementation) verifies our checkpoint."""
    from pycose.keys import OKPKey
    from pycose.keys.curves import Ed25519
    from pycose.messages import Sign1Message

    raw = sign_checkpoint(_cp(), key)
    p, u, pl, s = cbor2.loads(raw).value
    msg = Sign1Message.from_cose_obj([p, dict(u), pl, s], True)
    pub = load_pem_public_key(key.public_key_pem().encode())
    x = pub.public_bytes_raw()  # type: ignore[union-attr]
    msg.key = OKPKey(crv=Ed25519, x=x)
    assert msg.verify_signature()


@pytest.mark.parametrize("where", ["protected", "payload", "signature"])
def test_bit_flip_fails(key: SoftwareKey, where: str) -> None:
    """One flipped bit anywhere in the message makes verification fail."""
    raw = sign_checkpoint(_cp(), key)
    p, u, pl, s = cbor2.loads(raw).value
    parts = {"protected": p, "payload": pl, "signature": s}
    b = bytearray(parts[where])
    b[len(b) // 2] ^= 0x01
    parts[where] = bytes(b)
    forged = cbor2.dumps(
        cbor2.CBORTag(18, [parts["protected"], u, parts["payload"], parts["signature"]])
    )
    with pytest.raises((SignatureError, EncodingError)):
        verify_checkpoint(forged, load_public_key(key.public_key_pem()))


def test_wrong_key_and_garbage(key: SoftwareKey, tmp_path: Path) -> None:
    """Another key, or bytes that are not COSE, are refused."""
    other = SoftwareKey.create(tmp_path / "other")
    raw = sign_checkpoint(_cp(), key)
    with pytest.raises(SignatureError):
        verify_checkpoint(raw, load_public_key(other.public_key_pem()))
    with pytest.raises(EncodingError):
        verify_checkpoint(base64.b64decode("AAAA"), load_public_key(key.public_key_pem()))
