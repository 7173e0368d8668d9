"""The software device key (appliance/keys/software.py): an Ed25519 seed in a 0600 file,
never overwritten, refused when damaged, and its signatures verify as RFC 8032 says."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from appliance import cose
from appliance.errors import KeyUnavailableError
from appliance.keys.base import Backing, KeyProvider
from appliance.keys.software import SEED_SIZE, SoftwareKey
from appliance.keys.verify import key_id, load_public_key

# RFC 8032 §7.1, TEST 1: the empty message signed with this secret key.
RFC8032_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC8032_SIG = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9"
    "b46bd25bf5f0595bbe24655141438e7a100b")


def test_it_signs_as_rfc_8032_test_1() -> None:
    """The seed of RFC 8032's first vector gives its public key and its signature."""
    key = SoftwareKey(RFC8032_SEED)
    pub = load_public_key(key.public_key_pem())
    assert isinstance(pub, ed25519.Ed25519PublicKey)
    assert pub.public_bytes_raw() == RFC8032_PUBLIC
    assert key.sign(b"") == RFC8032_SIG
    assert key.kid == key_id(pub) and len(key.kid) == 16


def test_it_is_a_key_provider_that_says_it_is_software() -> None:
    """EdDSA, backing software: shown as such everywhere."""
    key = SoftwareKey(RFC8032_SEED)
    assert isinstance(key, KeyProvider)
    assert key.backing is Backing.SOFTWARE and key.alg == cose.ALG_EDDSA


def test_a_new_seed_is_a_private_file_and_loads_back(tmp_path: Path) -> None:
    """create writes 32 random bytes 0600; load gives the same key; a second create refuses
    to overwrite it."""
    path = tmp_path / "keys" / "device-ed25519.key"
    made = SoftwareKey.create(path)
    assert len(path.read_bytes()) == SEED_SIZE and path.stat().st_mode & 0o777 == 0o600
    assert SoftwareKey.load(path).public_key_pem() == made.public_key_pem()
    with pytest.raises(KeyUnavailableError, match="refusing to overwrite it"):
        SoftwareKey.create(path)
    assert SoftwareKey.load(path).kid == made.kid
    assert SoftwareKey.create(tmp_path / "other").kid != made.kid


def test_a_missing_or_damaged_seed_is_refused(tmp_path: Path) -> None:
    """No file: says to restore or re-provision; a seed of the wrong length is refused."""
    with pytest.raises(KeyUnavailableError, match="restore it from the backup or re-provision"):
        SoftwareKey.load(tmp_path / "missing")
    short = tmp_path / "short"
    short.write_bytes(RFC8032_SEED[:-1])
    with pytest.raises(KeyUnavailableError, match="seed must be 32 bytes"):
        SoftwareKey.load(short)
