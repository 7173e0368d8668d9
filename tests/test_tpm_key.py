"""The TPM device key against a real (software) TPM: swtpm on a loopback port."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from appliance import cose
from appliance.checkpoint import Checkpoint, sign_checkpoint, verify_checkpoint
from appliance.errors import KeyUnavailableError, SignatureError
from appliance.keys.base import Backing, KeyProvider
from appliance.keys.errors import (
    TpmBlobCorruptedError,
    TpmError,
    TpmForeignKeyError,
    TpmLockoutError,
    TpmUnavailableError,
)
from appliance.keys.loader import TPM_KEY_PATH, KeyConfig, create_key, open_key
from appliance.keys.tpm import TpmKey
from appliance.keys.verify import key_id, load_public_key
from tests.swtpm import Swtpm, SwtpmFactory, free_port_pair, swtpm, swtpm_factory

__all__ = ["swtpm", "swtpm_factory"]  # fixtures used by name below


def _checkpoint(key: KeyProvider, size: int = 3) -> Checkpoint:
    return Checkpoint(
        origin="luutru/xa-test",
        tree_size=size,
        root_hash=hashlib.sha256(b"root %d" % size).digest(),
        time="2025-07-01T09:30:15+07:00",
        backing=key.backing,
        alg=key.alg,
    )


def _provision(data: Path, tpm: Swtpm, **options: Any) -> KeyConfig:
    return create_key(data, "tpm", {"tcti": tpm.tcti, **options})


def _lockout(tpm: Swtpm) -> None:
    """Put the TPM into dictionary-attack lockout: one wrong password with max_tries=1."""
    from tpm2_pytss import TSS2_Exception
    from tpm2_pytss.constants import TPM2_ALG, TPM2_RH, TPM2_ST, TPMA_OBJECT
    from tpm2_pytss.tsskey import TSSPrivKey
    from tpm2_pytss.types import TPM2B_PUBLIC, TPMT_SIG_SCHEME, TPMT_TK_HASHCHECK

    from appliance.keys.tpm import tpm_context

    attrs = (
        TPMA_OBJECT.FIXEDTPM
        | TPMA_OBJECT.FIXEDPARENT
        | TPMA_OBJECT.SENSITIVEDATAORIGIN
        | TPMA_OBJECT.USERWITHAUTH
        | TPMA_OBJECT.SIGN_ENCRYPT
    )
    tmpl = TPM2B_PUBLIC.parse("ecc256:ecdsa-sha256", objectAttributes=attrs).publicArea
    with tpm_context(tpm.tcti) as ectx:
        ectx.dictionary_attack_parameters(1, 1000, 1000)
        handle = TSSPrivKey.create(ectx, tmpl, password=b"right").load(ectx, password=b"right")
        ectx.tr_set_auth(handle, b"wrong")
        scheme = TPMT_SIG_SCHEME(scheme=TPM2_ALG.ECDSA)
        scheme.details.any.hashAlg = TPM2_ALG.SHA256
        ticket = TPMT_TK_HASHCHECK(tag=TPM2_ST.HASHCHECK, hierarchy=TPM2_RH.NULL)
        with pytest.raises(TSS2_Exception):
            ectx.sign(handle, bytes(32), scheme, ticket)
        ectx.flush_context(handle)


def test_provision_writes_tss2_pem_blob_and_config(tmp_path: Path, swtpm: Swtpm) -> None:
    """`create_key tpm` writes a 0600 TSS2 PEM blob and a config naming the TPM, kid and SRK."""
    config = _provision(tmp_path, swtpm)
    assert config.backing is Backing.TPM
    assert config.path == TPM_KEY_PATH
    assert set(config.options) == {"tcti", "kid", "srk_name"}
    blob = tmp_path / config.path
    assert blob.read_bytes().startswith(b"-----BEGIN TSS2 PRIVATE KEY-----")
    assert blob.stat().st_mode & 0o777 == 0o600
    assert KeyConfig.from_json(config.to_json()) == config


def test_key_is_non_exportable(tmp_path: Path, swtpm: Swtpm) -> None:
    """The TPM object is fixedTPM, fixedParent, sensitiveDataOrigin: the private part stays in."""
    from tpm2_pytss.constants import TPMA_OBJECT
    from tpm2_pytss.tsskey import TSSPrivKey

    config = _provision(tmp_path, swtpm)
    blob = TSSPrivKey.from_pem((tmp_path / config.path).read_bytes())
    attrs = blob.public.publicArea.objectAttributes
    for flag in (TPMA_OBJECT.FIXEDTPM, TPMA_OBJECT.FIXEDPARENT, TPMA_OBJECT.SENSITIVEDATAORIGIN):
        assert attrs & flag
    key = open_key(tmp_path, config)
    try:
        assert isinstance(key, TpmKey)
        with pytest.raises(ValueError, match="not exportable"):
            key.private_key().private_numbers()
        with pytest.raises(ValueError, match="not exportable"):
            key.private_key().private_bytes(None, None, None)
    finally:
        key.close()


def test_checkpoint_verifies_with_cryptography_from_exported_pem(
    tmp_path: Path, swtpm: Swtpm
) -> None:
    """An ES256 checkpoint signed in the TPM verifies with plain `cryptography` from the PEM."""
    key = open_key(tmp_path, _provision(tmp_path, swtpm))
    try:
        assert key.backing is Backing.TPM and key.alg == cose.ALG_ES256
        signed = sign_checkpoint(_checkpoint(key), key)
        pem = key.public_key_pem()
        kid = key.kid
    finally:
        key.close()
    public = load_public_key(pem)
    assert key_id(public) == kid
    assert verify_checkpoint(signed, public) == _checkpoint(key)
    # Independently of appliance.cose: rebuild Sig_structure and check r||s with cryptography.
    protected, _unprotected, payload, signature = cbor2.loads(signed).value
    tbs = cbor2.dumps(["Signature1", protected, b"", payload])
    assert len(signature) == 64
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(der, tbs, ec.ECDSA(hashes.SHA256()))


def test_pycose_accepts_tpm_checkpoint(tmp_path: Path, swtpm: Swtpm) -> None:
    """pycose (a COSE library other than ours) verifies the TPM-signed COSE_Sign1."""
    from pycose.keys import EC2Key
    from pycose.keys.curves import P256
    from pycose.messages import Sign1Message

    key = open_key(tmp_path, _provision(tmp_path, swtpm))
    try:
        signed = sign_checkpoint(_checkpoint(key), key)
        public = load_public_key(key.public_key_pem())
    finally:
        key.close()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    numbers = public.public_numbers()
    cose_key = EC2Key(crv=P256, x=numbers.x.to_bytes(32, "big"), y=numbers.y.to_bytes(32, "big"))
    # pycose 1.1 cannot decode with cbor2 6 (tuples inside tags): unwrap the tag ourselves.
    protected, unprotected, payload, signature = cbor2.loads(signed).value
    msg = Sign1Message.from_cose_obj([protected, dict(unprotected), payload, signature], True)
    msg.key = cose_key
    assert msg.verify_signature()


def test_one_changed_byte_fails_verification(tmp_path: Path, swtpm: Swtpm) -> None:
    """Flipping one bit of the signature or of the payload makes verification raise."""
    key = open_key(tmp_path, _provision(tmp_path, swtpm))
    try:
        signed = sign_checkpoint(_checkpoint(key), key)
        public = load_public_key(key.public_key_pem())
    finally:
        key.close()
    for index in (len(signed) - 5, len(signed) - 70):  # inside the signature, then the payload
        tampered = bytearray(signed)
        tampered[index] ^= 0x01
        with pytest.raises(SignatureError, match="does not verify"):
            verify_checkpoint(bytes(tampered), public)


def test_key_survives_swtpm_restart_with_same_state(tmp_path: Path, swtpm: Swtpm) -> None:
    """After a TPM reset (swtpm restart on the same state) the same key loads and signs."""
    config = _provision(tmp_path, swtpm)
    key = open_key(tmp_path, config)
    pem, kid = key.public_key_pem(), key.kid
    key.close()
    swtpm.restart()
    key = open_key(tmp_path, config)
    try:
        assert key.kid == kid and key.public_key_pem() == pem
        signed = sign_checkpoint(_checkpoint(key, 9), key)
    finally:
        key.close()
    assert verify_checkpoint(signed, load_public_key(pem)).tree_size == 9


def test_blob_from_another_tpm_is_refused(
    tmp_path: Path, swtpm: Swtpm, swtpm_factory: SwtpmFactory
) -> None:
    """A data folder moved to a TPM with a different state is refused, naming the cause."""
    config = _provision(tmp_path, swtpm)
    other = swtpm_factory()
    moved = KeyConfig(config.backing, config.path, {**config.options, "tcti": other.tcti})
    with pytest.raises(TpmForeignKeyError) as info:
        open_key(tmp_path, moved)
    message = str(info.value)
    assert "another TPM" in message and "What to do" in message
    # Even without the provisioned SRK name, the TPM itself refuses to unwrap the blob.
    bare = KeyConfig(config.backing, config.path, {"tcti": other.tcti})
    with pytest.raises(TpmForeignKeyError, match="another TPM"):
        open_key(tmp_path, bare)


def test_corrupted_blob_is_refused(tmp_path: Path, swtpm: Swtpm) -> None:
    """Garbage, a damaged private part, or another key's blob each give TpmBlobCorruptedError."""
    from tpm2_pytss.tsskey import TSSPrivKey
    from tpm2_pytss.types import TPM2B_PRIVATE

    config = _provision(tmp_path, swtpm)
    blob_path = tmp_path / config.path
    good = blob_path.read_bytes()

    blob_path.write_bytes(b"-----BEGIN TSS2 PRIVATE KEY-----\nnot base64\n")
    with pytest.raises(TpmBlobCorruptedError, match="not a valid TSS2 PEM"):
        open_key(tmp_path, config)

    parsed = TSSPrivKey.from_pem(good)
    private = bytearray(parsed.private.marshal())
    private[20] ^= 0x01
    damaged, _ = TPM2B_PRIVATE.unmarshal(bytes(private))
    blob_path.write_bytes(bytes(TSSPrivKey(damaged, parsed.public).to_pem()))
    with pytest.raises(TpmBlobCorruptedError, match="rejects the key blob"):
        open_key(tmp_path, config)

    other_dir = tmp_path / "other"
    other = _provision(other_dir, swtpm)
    blob_path.write_bytes((other_dir / other.path).read_bytes())
    with pytest.raises(TpmBlobCorruptedError, match="not the provisioned key"):
        open_key(tmp_path, config)

    blob_path.unlink()
    with pytest.raises(TpmBlobCorruptedError, match="cannot be read"):
        open_key(tmp_path, config)


def test_missing_tpm_is_a_clear_retryable_error(tmp_path: Path, swtpm: Swtpm) -> None:
    """With the TPM gone, opening the key says so (KeyUnavailableError) and never falls back."""
    config = _provision(tmp_path, swtpm)
    swtpm.stop()
    with pytest.raises(TpmUnavailableError) as info:
        open_key(tmp_path, config)
    assert isinstance(info.value, KeyUnavailableError) and info.value.retryable
    assert "no TPM answers" in str(info.value) and "firmware" in str(info.value)


def test_tpm_vanishing_while_open_fails_signing_clearly(tmp_path: Path, swtpm: Swtpm) -> None:
    """If the TPM stops answering mid-run, sign raises TpmUnavailableError (nothing unsealed)."""
    key = open_key(tmp_path, _provision(tmp_path, swtpm))
    swtpm.stop()
    try:
        with pytest.raises(TpmUnavailableError, match="no TPM answers"):
            key.sign(b"tbs")
    finally:
        key.close()


def test_lockout_is_reported_with_what_to_do(tmp_path: Path, swtpm: Swtpm) -> None:
    """A DA-protected key on a TPM in lockout gives TpmLockoutError naming the recovery."""
    key = open_key(tmp_path, _provision(tmp_path, swtpm, noda=False))
    try:
        key.sign(b"before")
        _lockout(swtpm)
        with pytest.raises(TpmLockoutError) as info:
            key.sign(b"during")
        assert "lockout" in str(info.value) and info.value.retryable
    finally:
        key.close()


def test_default_device_key_is_immune_to_lockout(tmp_path: Path, swtpm: Swtpm) -> None:
    """The default key (empty auth, noDA) keeps sealing while the TPM is in lockout."""
    key = open_key(tmp_path, _provision(tmp_path, swtpm))
    try:
        _lockout(swtpm)
        assert len(key.sign(b"during lockout")) == 64
    finally:
        key.close()


def test_auto_picks_tpm_when_one_answers_else_software(tmp_path: Path, swtpm: Swtpm) -> None:
    """`auto` returns a TPM config when the TCTI answers and a software one when it does not."""
    assert create_key(tmp_path / "a", "auto", {"tcti": swtpm.tcti}).backing is Backing.TPM
    dead = f"swtpm:host=127.0.0.1,port={free_port_pair()}"
    config = create_key(tmp_path / "b", "auto", {"tcti": dead})
    assert config.backing is Backing.SOFTWARE
    open_key(tmp_path / "b", config).close()


def test_sign_delay_is_added_to_every_signature(tmp_path: Path, swtpm: Swtpm) -> None:
    """`sign_delay_ms` makes each TPM signature take at least that long (bench mode)."""
    config = _provision(tmp_path, swtpm, sign_delay_ms=50)
    assert config.options["sign_delay_ms"] == 50.0
    key = open_key(tmp_path, config)
    try:
        start = time.perf_counter()
        key.sign(b"x")
        assert time.perf_counter() - start >= 0.05
    finally:
        key.close()


def test_refuses_to_overwrite_existing_blob(tmp_path: Path, swtpm: Swtpm) -> None:
    """Provisioning twice into one data folder does not destroy the existing key."""
    _provision(tmp_path, swtpm)
    with pytest.raises(TpmError, match="already exists"):
        _provision(tmp_path, swtpm)


def test_many_open_close_cycles_do_not_leak_tpm_objects(tmp_path: Path, swtpm: Swtpm) -> None:
    """Transient handles are flushed: 10 opens (and 3 abandoned ones) fit in swtpm's 3 slots."""
    config = _provision(tmp_path, swtpm)
    for _ in range(10):
        open_key(tmp_path, config).close()
    abandoned = [open_key(tmp_path, config) for _ in range(3)]  # like crashed processes
    key = open_key(tmp_path, config)  # the TPM is full: stale objects get flushed
    try:
        assert len(key.sign(b"ok")) == 64
    finally:
        key.close()
        for leaked in abandoned:
            leaked.close()


def test_cryptography_view_signs_der(tmp_path: Path, swtpm: Swtpm) -> None:
    """`private_key()` is a cryptography EC key whose signatures are DER and verify."""
    key = open_key(tmp_path, _provision(tmp_path, swtpm))
    try:
        assert isinstance(key, TpmKey)
        priv = key.private_key()
        der = priv.sign(b"data", ec.ECDSA(hashes.SHA256()))
        priv.public_key().verify(der, b"data", ec.ECDSA(hashes.SHA256()))
    finally:
        key.close()
