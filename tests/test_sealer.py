"""Grouped checkpoint signing (appliance/sealer.py): one signature covers every head committed
since the last, a slow key only makes groups larger, and a key that fails stops the writes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from appliance import clock as clockmod
from appliance import merkle
from appliance.checkpoint import verify_checkpoint
from appliance.clock import ManualClock
from appliance.errors import KeyUnavailableError
from appliance.keys.base import Backing
from appliance.keys.software import SoftwareKey
from appliance.keys.verify import load_public_key
from appliance.sealer import Sealer
from appliance.store import Store
from tests.conftest import incoming

ORIGIN = "luutru/000.21.08.H49/test"


class GatedKey:
    """A real software key (a KeyProvider) whose signing can be held at a gate or made to fail:
    a slow TPM, or one that is gone."""

    def __init__(self, path: Path, inner: SoftwareKey | None = None) -> None:
        self.inner = inner if inner is not None else SoftwareKey.create(path)
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.fail: Exception | None = None
        self.signed = 0

    @property
    def backing(self) -> Backing:
        return self.inner.backing

    @property
    def alg(self) -> int:
        return self.inner.alg

    @property
    def kid(self) -> bytes:
        return self.inner.kid

    def public_key_pem(self) -> str:
        return self.inner.public_key_pem()

    def sign(self, tbs: bytes) -> bytes:
        self.entered.set()
        assert self.gate.wait(10), "the test never opened the gate"
        if self.fail is not None:
            raise self.fail
        self.signed += 1
        return self.inner.sign(tbs)

    def close(self) -> None:
        self.inner.close()


class Stored(list[tuple[int, bytes, str, bytes]]):
    """The checkpoints the sealer handed to its store callback, in order."""

    def __call__(self, size: int, root: bytes, signed_at: str, cose: bytes) -> None:
        self.append((size, root, signed_at, cose))


@pytest.fixture
def key(tmp_path: Path) -> GatedKey:
    return GatedKey(tmp_path / "device.key")


@pytest.fixture
def make_sealer(key: GatedKey, clock: ManualClock) -> Iterator[Callable[..., Sealer]]:
    made: list[Sealer] = []

    def factory(store: Callable[[int, bytes, str, bytes], None], signed_size: int = 0,
                min_interval: float = 0.0) -> Sealer:
        s = Sealer(key, ORIGIN, clock, store, signed_size, min_interval)
        made.append(s)
        return s

    yield factory
    key.gate.set()
    for s in made:
        s.close()


def _root(n: int) -> bytes:
    return merkle.root_hash(merkle.list_source([merkle.leaf_hash(b"%d" % i) for i in range(n)]), n)


def test_a_notified_head_is_signed_and_stored_as_a_verifying_checkpoint(
    make_sealer: Callable[..., Sealer], key: GatedKey, clock: ManualClock
) -> None:
    """wait_sealed returns once the head is signed; the stored COSE verifies and says what."""
    stored = Stored()
    sealer = make_sealer(stored)
    sealer.notify(3, _root(3))
    assert sealer.wait_sealed(3, timeout=10)
    assert sealer.signed_size == 3 and sealer.error is None
    ((size, root, signed_at, raw),) = stored
    assert (size, root, signed_at) == (3, _root(3), clockmod.iso(clock.now()))
    cp = verify_checkpoint(raw, load_public_key(key.public_key_pem()))
    assert (cp.origin, cp.tree_size, cp.root_hash, cp.time) == (ORIGIN, 3, _root(3), signed_at)
    assert cp.backing is Backing.SOFTWARE


def test_heads_committed_during_a_slow_signature_share_the_next_one(
    make_sealer: Callable[..., Sealer], key: GatedKey
) -> None:
    """While the key is busy with head 1, heads 2…40 arrive: one more signature covers them
    all, and the roots of the heads in between are never computed."""
    stored = Stored()
    computed: list[int] = []

    def lazy(n: int) -> Callable[[], bytes]:
        def root() -> bytes:
            computed.append(n)
            return _root(n)
        return root

    key.gate.clear()
    sealer = make_sealer(stored)
    sealer.notify(1, lazy(1))
    assert key.entered.wait(10)  # signing head 1, held at the gate
    for n in range(2, 41):
        sealer.notify(n, lazy(n))
    key.gate.set()
    assert sealer.wait_sealed(40, timeout=10)
    assert [s[0] for s in stored] == [1, 40] and key.signed == 2
    assert computed == [1, 40]
    assert stored[1][1] == _root(40)


def test_heads_not_newer_than_what_is_signed_or_pending_are_ignored(
    make_sealer: Callable[..., Sealer], key: GatedKey
) -> None:
    """A head at or below the signed size, or older than the pending one, starts nothing."""
    stored = Stored()
    sealer = make_sealer(stored, signed_size=5)
    sealer.notify(5, _root(5))
    sealer.notify(2, _root(2))
    assert sealer.wait_sealed(5, timeout=0) and stored == [] and key.signed == 0
    key.gate.clear()
    sealer.notify(6, _root(6))
    assert key.entered.wait(10)
    sealer.notify(9, _root(9))
    sealer.notify(8, _root(8))  # older than the pending 9: dropped
    key.gate.set()
    assert sealer.wait_sealed(9, timeout=10)
    assert [s[0] for s in stored] == [6, 9]


def test_the_pause_between_signatures_holds_unless_someone_waits(
    make_sealer: Callable[..., Sealer],
) -> None:
    """With a 30 s minimum interval the second head waits; a caller in wait_sealed cuts the
    pause short."""
    stored = Stored()
    sealer = make_sealer(stored, min_interval=30.0)
    sealer.notify(1, _root(1))
    assert sealer.wait_sealed(1, timeout=10)
    sealer.notify(2, _root(2))
    time.sleep(0.3)
    assert sealer.signed_size == 1 and len(stored) == 1  # pausing
    start = time.monotonic()
    assert sealer.wait_sealed(2, timeout=10)
    assert time.monotonic() - start < 5 and [s[0] for s in stored] == [1, 2]


def test_wait_sealed_times_out_false_when_nothing_covers_the_size(
    make_sealer: Callable[..., Sealer],
) -> None:
    """Waiting for a size nobody committed returns False after the timeout, not True."""
    sealer = make_sealer(Stored())
    assert sealer.wait_sealed(1, timeout=0.2) is False


def test_a_key_that_fails_is_kept_as_the_error_and_refuses_further_records(
    make_sealer: Callable[..., Sealer], key: GatedKey
) -> None:
    """The failure is recorded, waiters return False at once, check() raises; nothing stored."""
    stored = Stored()
    sealer = make_sealer(stored)
    sealer.check()  # fine before
    key.fail = KeyUnavailableError("no TPM answers")
    sealer.notify(1, _root(1))
    start = time.monotonic()
    assert sealer.wait_sealed(1, timeout=10) is False
    assert time.monotonic() - start < 5
    assert stored == [] and sealer.signed_size == 0
    assert isinstance(sealer.error, KeyUnavailableError)
    with pytest.raises(KeyUnavailableError, match=r"cannot sign checkpoints \(no TPM answers\)"):
        sealer.check()


def test_a_store_that_fails_stops_the_sealer_too(make_sealer: Callable[..., Sealer]) -> None:
    """A checkpoint that cannot be stored is not counted as signed."""

    def broken(size: int, root: bytes, signed_at: str, cose: bytes) -> None:
        raise OSError("disk full")

    sealer = make_sealer(broken)
    sealer.notify(1, _root(1))
    assert sealer.wait_sealed(1, timeout=10) is False
    assert sealer.signed_size == 0
    with pytest.raises(KeyUnavailableError, match="disk full"):
        sealer.check()


def test_close_signs_what_is_pending_then_stops(
    make_sealer: Callable[..., Sealer], key: GatedKey
) -> None:
    """close() does not drop the last head, even inside a long pause; later waits are False."""
    stored = Stored()
    sealer = make_sealer(stored, min_interval=30.0)
    sealer.notify(1, _root(1))
    assert sealer.wait_sealed(1, timeout=10)
    sealer.notify(4, _root(4))
    start = time.monotonic()
    sealer.close()
    assert time.monotonic() - start < 5
    assert [s[0] for s in stored] == [1, 4]
    assert sealer.wait_sealed(5, timeout=1) is False


def test_through_the_store_a_dead_key_refuses_the_next_registration(
    data_dir: Path, clock: ManualClock, tmp_path: Path
) -> None:
    """Store.open with a key that stops signing: the record whose head failed is durable, the
    next one is refused with KeyUnavailableError (README: 'If the key cannot sign, writes are
    refused')."""
    # The folder's own device key, gated: another key would be a foreign key to the start-up
    # check once the folder's first entries are sealed.
    from appliance.config import load_config
    from appliance.keys.loader import open_key

    own = open_key(data_dir, load_config(data_dir).key)
    assert isinstance(own, SoftwareKey)
    key = GatedKey(tmp_path / "unused", own)
    with Store.open(data_dir, clock=clock, key=key) as store:
        store.register_incoming(incoming(CodeNumber="1"))
        assert store.wait_sealed(10)
        key.fail = KeyUnavailableError("the TPM stopped answering")
        store.register_incoming(incoming(CodeNumber="2"))
        assert store.wait_sealed(10) is False
        with pytest.raises(KeyUnavailableError, match="no record is accepted until it is back"):
            store.register_incoming(incoming(CodeNumber="3"))
        assert store.count("document") == 2
        assert store.latest_checkpoint() is not None
        assert store.latest_checkpoint()[0] < store.tree_head()[0]  # type: ignore[index]
