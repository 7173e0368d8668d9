"""COSE_Sign1 (appliance/cose.py): the exact bytes signed, strict decoding, verification that
fails closed, and agreement with pycose in both directions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from appliance import cbor, cose
from appliance.errors import EncodingError, SignatureError
from appliance.keys.software import SoftwareKey
from appliance.keys.verify import load_public_key, verifier

PAYLOAD = "Sổ đăng ký văn bản đến, số 01".encode()


@pytest.fixture
def key(tmp_path: Path) -> SoftwareKey:
    return SoftwareKey.create(tmp_path / "k")


def _signed(key: SoftwareKey, payload: bytes = PAYLOAD) -> cose.Sign1:
    return cose.sign1(payload, key.alg, key.kid, key.sign, {cose.HDR_CONTENT_TYPE: "text/plain"})


def _verify(msg: cose.Sign1, key: SoftwareKey) -> None:
    cose.verify_sign1(msg, verifier(load_public_key(key.public_key_pem())))


def _tagged(protected: Any, unprotected: Any, payload: Any, signature: Any) -> bytes:
    return cbor2.dumps(cbor2.CBORTag(18, [protected, unprotected, payload, signature]))


def test_sig_structure_is_rfc9052_signature1_array() -> None:
    """Sig_structure is ["Signature1", protected, external_aad, payload] in CBOR."""
    got = cose.sig_structure(b"\xa1\x01\x27", b"data", b"aad")
    assert got == cbor2.dumps(["Signature1", b"\xa1\x01\x27", b"aad", b"data"])
    assert cose.sig_structure(b"", b"data") == cbor2.dumps(["Signature1", b"", b"", b"data"])


def test_sign1_signs_the_exact_protected_bytes_and_round_trips(key: SoftwareKey) -> None:
    """sign1 puts alg, kid and extra headers in the protected map; encode/decode is lossless."""
    msg = _signed(key)
    assert cbor2.loads(msg.protected) == {1: cose.ALG_EDDSA, 4: key.kid, 3: "text/plain"}
    assert msg.unprotected == {} and msg.payload == PAYLOAD
    raw = msg.encode()
    assert cbor2.loads(raw).tag == cose.COSE_SIGN1_TAG
    back = cose.decode_sign1(raw)
    assert back == msg and back.encode() == raw
    assert back.alg == cose.ALG_EDDSA and back.kid == key.kid
    ed25519.Ed25519PublicKey.from_public_bytes(
        load_public_key(key.public_key_pem()).public_bytes_raw()  # type: ignore[union-attr]
    ).verify(msg.signature, cbor2.dumps(["Signature1", msg.protected, b"", PAYLOAD]))
    _verify(back, key)


def test_a_non_deterministic_protected_header_is_kept_byte_for_byte(key: SoftwareKey) -> None:
    """The protected header is never re-encoded: a map with its keys out of order still verifies
    over the bytes that were signed, and re-encoding the message gives the same bytes."""
    protected = b"\xa2\x04\x50" + key.kid + b"\x01\x27"  # {4: kid, 1: -8}
    assert cbor2.loads(protected) == {4: key.kid, 1: cose.ALG_EDDSA}  # kid first: not canonical
    assert protected != cbor.dumps({1: cose.ALG_EDDSA, 4: key.kid})
    sig = key.sign(cose.sig_structure(protected, PAYLOAD))
    raw = _tagged(protected, {}, PAYLOAD, sig)
    msg = cose.decode_sign1(raw)
    assert msg.protected == protected and msg.encode() == raw
    _verify(msg, key)


def test_untagged_array_is_accepted() -> None:
    """A bare four-item array (COSE_Sign1 without tag 18) decodes the same."""
    raw = cbor2.dumps([cbor.dumps({1: -8}), {}, b"p", b"s"])
    assert cose.decode_sign1(raw) == cose.Sign1(cbor.dumps({1: -8}), {}, b"p", b"s")


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (cbor2.dumps(cbor2.CBORTag(98, [b"", {}, b"", b""])), "tag 98 is not COSE_Sign1"),
        (cbor2.dumps([b"", {}, b""]), "array of four items"),
        (cbor2.dumps({"a": 1}), "array of four items"),
        (cbor2.dumps([{}, {}, b"", b""]), "headers are malformed"),
        (cbor2.dumps([b"", [], b"", b""]), "headers are malformed"),
        (cbor2.dumps([b"", {}, "text", b""]), "payload or signature is not a byte string"),
        (cbor2.dumps([b"", {}, None, b""]), "payload or signature is not a byte string"),
        (cbor2.dumps([b"", {}, b"", 7]), "payload or signature is not a byte string"),
    ],
    ids=["other-tag", "three-items", "map", "protected-map", "unprotected-list",
         "text-payload", "detached-payload", "int-signature"],
)
def test_malformed_messages_are_refused(raw: bytes, match: str) -> None:
    """Anything but tag 18 over [bstr, map, bstr, bstr] is an EncodingError."""
    with pytest.raises(EncodingError, match=match):
        cose.decode_sign1(raw)


def test_garbage_that_is_not_cbor_is_an_encoding_error() -> None:
    """Truncated CBOR is refused as such, never half-read."""
    raw = cose.Sign1(cbor.dumps({1: -8}), {}, b"payload", b"s" * 64).encode()
    with pytest.raises(EncodingError, match="not valid CBOR"):
        cose.decode_sign1(raw[:-3])


def test_header_accessors_fail_closed() -> None:
    """No algorithm, or a protected header that is not a map, raises instead of guessing."""
    assert cose.Sign1(b"", {}, b"", b"").protected_headers == {}
    with pytest.raises(EncodingError, match="no algorithm"):
        _ = cose.Sign1(b"", {1: -8}, b"", b"").alg  # an unprotected alg does not count
    with pytest.raises(EncodingError, match="no algorithm"):
        _ = cose.Sign1(cbor.dumps({1: "EdDSA"}), {}, b"", b"").alg
    with pytest.raises(EncodingError, match="not a map"):
        _ = cose.Sign1(cbor.dumps([1, -8]), {}, b"", b"").alg


def test_kid_comes_from_protected_then_unprotected() -> None:
    """kid: the protected one wins, an unprotected one is used alone, none gives None."""
    both = cose.Sign1(cbor.dumps({1: -8, 4: b"P"}), {4: b"U"}, b"", b"")
    assert both.kid == b"P"
    assert cose.Sign1(cbor.dumps({1: -8}), {4: b"U"}, b"", b"").kid == b"U"
    assert cose.Sign1(cbor.dumps({1: -8}), {}, b"", b"").kid is None


@pytest.mark.parametrize("kid", ["abc", -1, 3.5, 2**40], ids=["text", "negative", "float", "big"])
@pytest.mark.parametrize("where", ["protected", "unprotected"])
def test_a_kid_that_is_not_a_byte_string_is_refused_when_decoding(kid: Any, where: str) -> None:
    """RFC 9052 kid is a bstr: any other type is an EncodingError at decode time (it used to
    reach ``bytes(kid)``: a TypeError, or 2^40 zero bytes asked of the allocator)."""
    headers: dict[int, Any] = {1: -8}
    unprotected: dict[int, Any] = {}
    (headers if where == "protected" else unprotected)[4] = kid
    raw = _tagged(cbor.dumps(headers), unprotected, b"payload", b"s" * 64)
    with pytest.raises(EncodingError, match="kid is not a byte string"):
        cose.decode_sign1(raw)


# What a changed protected header can turn into: another signature input, another algorithm,
# or bytes that no longer decode to a header map.
PROTECTED_REFUSALS = "does not verify|does not match the key type|no algorithm|not a map|CBOR"


@pytest.mark.parametrize("where", ["protected", "payload", "signature"])
def test_every_bit_flip_fails_verification(key: SoftwareKey, where: str) -> None:
    """Flipping any single bit of the protected header, payload or signature is refused."""
    msg = _signed(key)
    field = getattr(msg, where)
    for i in range(len(field) * 8):
        b = bytearray(field)
        b[i // 8] ^= 1 << (i % 8)
        parts = {"protected": msg.protected, "payload": msg.payload, "signature": msg.signature}
        parts[where] = bytes(b)
        forged = cose.Sign1(parts["protected"], {}, parts["payload"], parts["signature"])
        if where == "protected":
            with pytest.raises((SignatureError, EncodingError), match=PROTECTED_REFUSALS):
                _verify(forged, key)
        else:
            with pytest.raises(SignatureError, match="does not verify with the enrolled key"):
                _verify(forged, key)


def test_an_unprotected_header_is_not_covered_by_the_signature(key: SoftwareKey) -> None:
    """Changing an unprotected header leaves the signature valid: nothing there may be trusted."""
    msg = _signed(key)
    changed = cose.Sign1(msg.protected, {99: "anything"}, msg.payload, msg.signature)
    _verify(changed, key)


def test_wrong_key_and_wrong_algorithm_are_refused(key: SoftwareKey, tmp_path: Path) -> None:
    """Another key's verifier, or a header naming ES256 over an Ed25519 key, is refused."""
    msg = _signed(key)
    with pytest.raises(SignatureError, match="does not verify"):
        _verify(msg, SoftwareKey.create(tmp_path / "other"))
    es = cose.sign1(PAYLOAD, cose.ALG_ES256, key.kid, key.sign)
    with pytest.raises(SignatureError, match="algorithm -7 does not match the key type"):
        _verify(es, key)


def test_verify_wraps_any_verifier_failure_as_a_signature_error() -> None:
    """A verifier that raises anything is a failed verification, never an accepted message."""
    msg = cose.Sign1(cbor.dumps({1: -8}), {}, b"p", b"s")
    seen: list[tuple[int, bytes, bytes]] = []

    def broken(alg: int, tbs: bytes, sig: bytes) -> None:
        seen.append((alg, tbs, sig))
        raise RuntimeError("device gone")

    with pytest.raises(SignatureError, match="does not verify: device gone"):
        cose.verify_sign1(msg, broken)
    assert seen == [(-8, msg.to_be_signed(), b"s")]

    def refuses(alg: int, tbs: bytes, sig: bytes) -> None:
        raise SignatureError("bad signature, as raised")

    with pytest.raises(SignatureError, match=r"^bad signature, as raised$"):
        cose.verify_sign1(msg, refuses)


def test_a_message_signed_by_pycose_verifies_here_and_fails_when_flipped() -> None:
    """Interoperability the other way round from test_checkpoint: pycose signs, we verify."""
    from cryptography.hazmat.primitives import serialization
    from pycose.headers import KID, Algorithm
    from pycose.keys import OKPKey
    from pycose.keys.curves import Ed25519
    from pycose.messages import Sign1Message

    private = ed25519.Ed25519PrivateKey.generate()
    d = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    x = private.public_key().public_bytes_raw()
    msg = Sign1Message(phdr={Algorithm: "EdDSA", KID: b"pycose"}, payload=PAYLOAD)
    msg.key = OKPKey(crv=Ed25519, d=d, x=x)
    raw = msg.encode()
    ours = cose.decode_sign1(raw)
    assert ours.alg == cose.ALG_EDDSA and ours.kid == b"pycose" and ours.payload == PAYLOAD
    cose.verify_sign1(ours, verifier(private.public_key()))
    flipped = bytearray(raw)
    flipped[-1] ^= 0x80
    with pytest.raises(SignatureError, match="does not verify"):
        cose.verify_sign1(cose.decode_sign1(bytes(flipped)), verifier(private.public_key()))
