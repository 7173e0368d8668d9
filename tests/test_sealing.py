"""Secrets sealed to the TPM (swtpm), and the plain-file fallback that says it is one."""

from __future__ import annotations

from pathlib import Path

import cbor2
import pytest

from appliance.keys.base import Backing
from appliance.keys.errors import SealedSecretError, TpmBlobCorruptedError, TpmForeignKeyError
from appliance.keys.loader import KeyConfig
from appliance.keys.sealing import SecretStore, open_secret_store
from tests.swtpm import Swtpm, SwtpmFactory, swtpm, swtpm_factory

__all__ = ["swtpm", "swtpm_factory"]

SECRET = b"\x00session-secret\xff" * 2


def test_tpm_seal_round_trip_and_file_holds_no_plaintext(tmp_path: Path, swtpm: Swtpm) -> None:
    """A sealed secret unseals to the same bytes; the file on disk does not contain them."""
    store = SecretStore(tmp_path, swtpm.tcti)
    assert store.backing is Backing.TPM and "sealed to the TPM" in store.describe()
    store.seal("session", SECRET)
    path = tmp_path / "secrets" / "session.sealed"
    assert SECRET not in path.read_bytes() and b"session-secret" not in path.read_bytes()
    assert path.stat().st_mode & 0o777 == 0o600
    assert store.unseal("session") == SECRET


def test_sealed_secret_survives_tpm_restart(tmp_path: Path, swtpm: Swtpm) -> None:
    """After a swtpm restart on the same state the secret still unseals."""
    SecretStore(tmp_path, swtpm.tcti).seal("session", SECRET)
    swtpm.restart()
    assert SecretStore(tmp_path, swtpm.tcti).unseal("session") == SECRET


def test_other_tpm_cannot_unseal(tmp_path: Path, swtpm: Swtpm, swtpm_factory: SwtpmFactory) -> None:
    """A copied data folder cannot unseal on another TPM: clear error, not the secret."""
    SecretStore(tmp_path, swtpm.tcti).seal("session", SECRET)
    other = swtpm_factory()
    with pytest.raises(TpmForeignKeyError, match="another TPM"):
        SecretStore(tmp_path, other.tcti).unseal("session")


def test_damaged_sealed_file_is_refused(tmp_path: Path, swtpm: Swtpm) -> None:
    """One flipped byte in the sealed blob, or garbage, gives TpmBlobCorruptedError."""
    store = SecretStore(tmp_path, swtpm.tcti)
    store.seal("session", SECRET)
    path = tmp_path / "secrets" / "session.sealed"
    blob = cbor2.loads(path.read_bytes())
    private = bytearray(blob["private"])
    private[-10] ^= 0x01  # inside the TPM-wrapped private part
    path.write_bytes(cbor2.dumps({**blob, "private": bytes(private)}))
    with pytest.raises(TpmBlobCorruptedError):
        store.unseal("session")
    path.write_bytes(b"garbage")
    with pytest.raises(TpmBlobCorruptedError, match="damaged"):
        store.unseal("session")


def test_software_fallback_is_a_0600_file_and_says_so(tmp_path: Path) -> None:
    """Without a TPM the secret is a 0600 file and the store describes itself as not sealed."""
    store = open_secret_store(tmp_path, KeyConfig(Backing.SOFTWARE, "keys/x", {}))
    assert store.backing is Backing.SOFTWARE and "NOT sealed" in store.describe()
    value = store.get_or_create("session")
    assert len(value) == 32 and store.get_or_create("session") == value
    path = tmp_path / "secrets" / "session.secret"
    assert path.read_bytes() == value and path.stat().st_mode & 0o777 == 0o600


def test_store_follows_device_key_backing(tmp_path: Path, swtpm: Swtpm) -> None:
    """A TPM device key config gives a TPM-sealing store on the same TCTI."""
    config = KeyConfig(Backing.TPM, "keys/device-tpm.pem", {"tcti": swtpm.tcti})
    store = open_secret_store(tmp_path, config)
    assert store.backing is Backing.TPM
    assert store.unseal("s") if store.exists("s") else store.get_or_create("s", 64)


def test_backing_mismatch_and_bad_names_are_refused(tmp_path: Path, swtpm: Swtpm) -> None:
    """A secret stored in software is not silently read by a TPM store; names are checked."""
    SecretStore(tmp_path, None).seal("session", SECRET)
    with pytest.raises(SealedSecretError, match="different backing"):
        SecretStore(tmp_path, swtpm.tcti).unseal("session")
    with pytest.raises(SealedSecretError):
        SecretStore(tmp_path, None).seal("../etc/passwd", SECRET)
    with pytest.raises(SealedSecretError):
        SecretStore(tmp_path, None).seal("big", bytes(129))
