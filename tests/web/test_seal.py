"""The "sealed" badge (web_ui/seal.py): sealed only when the checkpoint's signature, the
inclusion proof of the entry's exact bytes and the record shown all check; any change is
broken, never sealed; entries past the checkpoint are pending."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import pytest

from appliance.keys.software import SoftwareKey
from appliance.keys.verify import PublicKey, load_public_key
from appliance.store import Record, Store
from tests.conftest import incoming
from web_ui.seal import SealChecker, SealStatus


def _device(store: Store) -> PublicKey:
    assert store.key is not None
    return load_public_key(store.key.public_key_pem())


@pytest.fixture
def sealed(store: Store) -> Record:
    """A registered document whose entry a checkpoint covers."""
    rec = store.register_incoming(incoming()).record
    assert store.wait_sealed()
    return rec


def _raw_db(store: Store) -> sqlite3.Connection:
    return sqlite3.connect(store.db_path, isolation_level=None)


def test_a_sealed_record_shows_sealed_with_its_checkpoint(store: Store, sealed: Record) -> None:
    """Signature, proof and fields check: sealed, naming the checkpoint and the key kind."""
    state = SealChecker(store, _device(store)).check(sealed)
    size = store.latest_checkpoint()[0]  # type: ignore[index]
    assert (state.status, state.index, state.checkpoint_size, state.backing) == (
        SealStatus.SEALED, sealed.log_index, size, "software")
    assert state.to_json()["status"] == "sealed" and state.reason == ""


def test_entries_past_the_checkpoint_are_pending(store: Store, sealed: Record) -> None:
    """An index at or past the signed size is not yet sealed (and not broken)."""
    size = store.latest_checkpoint()[0]  # type: ignore[index]
    checker = SealChecker(store, _device(store))
    assert checker.check_entry(size).status is SealStatus.PENDING
    assert checker.check_entry(size + 100).checkpoint_size == size


@pytest.mark.parametrize("byte", [0, 17, -1])
def test_a_flipped_bit_in_the_sealed_entry_is_broken(
    store: Store, sealed: Record, byte: int
) -> None:
    """The entry's bytes changed in the database: the inclusion proof fails."""
    conn = _raw_db(store)
    raw = bytearray(conn.execute("SELECT entry FROM log WHERE idx = ?",
                                 (sealed.log_index,)).fetchone()[0])
    raw[byte] ^= 0x01
    conn.execute("UPDATE log SET entry = ? WHERE idx = ?", (bytes(raw), sealed.log_index))
    state = SealChecker(store, _device(store)).check_entry(sealed.log_index)
    assert state.status is SealStatus.BROKEN and "inclusion proof" in state.reason


def test_a_record_that_differs_from_its_entry_is_broken(store: Store, sealed: Record) -> None:
    """What the page shows must be what was sealed: other fields, another version or another
    record than the entry at that index is broken."""
    checker = SealChecker(store, _device(store))
    edited = dataclasses.replace(sealed, data={**sealed.data, "Subject": "sửa trộm"})
    state = checker.check(edited)
    assert state.status is SealStatus.BROKEN and "differs from its sealed entry" in state.reason
    newer = dataclasses.replace(sealed, version=sealed.version + 1)
    assert "another record or version" in checker.check(newer).reason
    other = dataclasses.replace(sealed, id="someone-else")
    assert checker.check(other).status is SealStatus.BROKEN


def test_a_checkpoint_that_does_not_verify_breaks_every_badge(
    store: Store, sealed: Record, tmp_path: Path
) -> None:
    """Another device key, a flipped bit in the signature, or a stored root that differs
    from the signed one: broken, with the reason."""
    other = load_public_key(SoftwareKey.create(tmp_path / "other").public_key_pem())
    state = SealChecker(store, other).check(sealed)
    assert state.status is SealStatus.BROKEN and state.reason.startswith("checkpoint: ")
    conn = _raw_db(store)
    size, cose = conn.execute(
        "SELECT tree_size, cose FROM checkpoints ORDER BY tree_size DESC LIMIT 1").fetchone()
    flipped = bytearray(cose)
    flipped[-3] ^= 0x01
    conn.execute("UPDATE checkpoints SET cose = ? WHERE tree_size = ?", (bytes(flipped), size))
    assert SealChecker(store, _device(store)).check(sealed).status is SealStatus.BROKEN
    conn.execute("UPDATE checkpoints SET cose = ?, root_hash = ? WHERE tree_size = ?",
                 (cose, b"\x00" * 32, size))
    state = SealChecker(store, _device(store)).check(sealed)
    assert state.status is SealStatus.BROKEN
    assert "differs from what its signature covers" in state.reason


def test_a_missing_entry_is_broken(store: Store, sealed: Record) -> None:
    """An entry erased from the log (a withheld one read as a record) cannot be sealed."""
    conn = _raw_db(store)
    conn.execute("UPDATE log SET entry = x'' WHERE idx = ?", (sealed.log_index,))
    state = SealChecker(store, _device(store)).check(sealed)
    assert state.status is SealStatus.BROKEN
    assert state.reason == f"log entry {sealed.log_index} is missing"
