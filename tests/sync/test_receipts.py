"""Receipts on the appliance (sync/agent/receipts.py): a receipt counts only if the pinned centre
signed it, over this appliance's own checkpoint, whose root is this log's at that size; it is
then kept once, as a sync.receipt entry."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

from appliance import cbor
from appliance.checkpoint import Checkpoint, sign_checkpoint
from appliance.keys.software import SoftwareKey
from appliance.store import Store
from sync import wire
from sync.agent.receipts import CheckedReceipt, check_receipt, store_receipt
from sync.central.centre import Centre
from sync.errors import AuthError, WireError
from tests.sync.conftest import Appliance, response

# What verify_receipt says when the bytes are not the centre's signed receipt.
NOT_A_RECEIPT = r"^(receipt is not signed by the pinned centre key|receipt is not a COSE_Sign1" \
    r"|not a luutru receipt|receipt lacks a field)"


def _receipted(make_appliance: Callable[..., Appliance], centre: Centre) -> tuple[Appliance, bytes]:
    app = make_appliance()
    app.add(3)
    resp = response(centre, app.send(0))
    assert resp.outcome is wire.Outcome.ACCEPTED and resp.receipt is not None
    return app, resp.receipt


def _resign(centre: Centre, raw: bytes, **change: object) -> bytes:
    """The centre's receipt with fields changed, signed again by the centre's own key."""
    rc = wire.verify_receipt(raw, centre.public_key)
    return wire.sign_receipt(dataclasses.replace(rc, **change), centre.key)


def test_the_centres_receipt_checks_and_is_kept_once(
    make_appliance: Callable[..., Appliance], centre: Centre
) -> None:
    """check_receipt returns it; store_receipt appends one sync.receipt entry with its data;
    the same receipt again appends nothing."""
    app, raw = _receipted(make_appliance, centre)
    size = app.store.tree_head()[0]
    checked = check_receipt(raw, centre.public_key, app.store)
    assert checked.raw == raw and checked.receipt.tree_size == size
    assert checked.receipt.root_hash == app.store.root_at(size)
    index = store_receipt(app.store, checked, "http://centre")
    assert index == size
    m = cbor.loads(dict(app.store.entries())[size])
    assert m["kind"] == "sync.receipt" and m["actor"] == "sync"
    assert m["data"] == {
        "centre": "http://centre", "witness": centre.origin, "tree_size": size,
        "root_hash": app.store.root_at(size).hex(), "accepted_at": checked.receipt.accepted_at,
        "receipt": wire.b64(raw),
    }
    assert store_receipt(app.store, checked, "http://centre") is None
    assert app.store.tree_head()[0] == size + 1


def test_every_bit_flip_of_a_receipt_is_refused(
    make_appliance: Callable[..., Appliance], centre: Centre
) -> None:
    """Any single flipped bit (every 3rd byte, all 8 bits) fails: signature or structure."""
    app, raw = _receipted(make_appliance, centre)
    for i in range(0, len(raw), 3):
        for bit in range(8):
            b = bytearray(raw)
            b[i] ^= 1 << bit
            with pytest.raises((AuthError, WireError), match=NOT_A_RECEIPT):
                check_receipt(bytes(b), centre.public_key, app.store)


def test_a_receipt_from_another_centre_key_is_refused(
    make_appliance: Callable[..., Appliance], centre: Centre, tmp_path: Path
) -> None:
    """Only the pinned centre key counts, however well-formed the receipt."""
    app, raw = _receipted(make_appliance, centre)
    rc = wire.verify_receipt(raw, centre.public_key)
    other = SoftwareKey.create(tmp_path / "impostor")
    forged = wire.sign_receipt(rc, other)
    with pytest.raises(AuthError, match="not signed by the pinned centre key"):
        check_receipt(forged, centre.public_key, app.store)


def test_a_response_is_not_a_receipt(
    make_appliance: Callable[..., Appliance], centre: Centre
) -> None:
    """The centre's signed answer is not accepted where a receipt is expected."""
    app, _ = _receipted(make_appliance, centre)
    answer = app.send(0).body
    with pytest.raises(WireError, match="not a luutru receipt"):
        check_receipt(answer, centre.public_key, app.store)


def test_a_receipt_for_another_appliances_checkpoint_is_refused(
    make_appliance: Callable[..., Appliance], centre: Centre
) -> None:
    """The checkpoint inside must carry this device key's signature."""
    app, _ = _receipted(make_appliance, centre)
    twin = make_appliance("twin")
    twin.add(3)
    twin_raw = response(centre, twin.send(0)).receipt
    assert twin_raw is not None
    with pytest.raises(AuthError, match="checkpoint is not this appliance's"):
        check_receipt(twin_raw, centre.public_key, app.store)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ("origin", "for another log or another size"),
        ("size", "for another log or another size"),
        ("root", "root differs from its checkpoint's"),
    ],
)
def test_a_receipt_that_disagrees_with_its_checkpoint_is_refused(
    make_appliance: Callable[..., Appliance], centre: Centre, change: str, match: str
) -> None:
    """Signed by the centre, but naming another origin, size or root than the appliance's
    own checkpoint inside it: refused."""
    app, raw = _receipted(make_appliance, centre)
    rc = wire.verify_receipt(raw, centre.public_key)
    assert app.store.key is not None
    if change == "origin":
        cp = Checkpoint("luutru/another/box", rc.tree_size, rc.root_hash,
                        "2025-09-15T09:30:00.000+07:00", app.store.key.backing,
                        app.store.key.alg)
        bad = _resign(centre, raw, checkpoint=sign_checkpoint(cp, app.store.key))
    elif change == "size":
        bad = _resign(centre, raw, tree_size=rc.tree_size - 1)
    else:
        bad = _resign(centre, raw, root_hash=bytes(32))
    with pytest.raises(AuthError, match=match):
        check_receipt(bad, centre.public_key, app.store)


def test_a_receipt_beyond_this_log_or_for_another_history_is_refused(
    make_appliance: Callable[..., Appliance], centre: Centre
) -> None:
    """A checkpoint this key signed for a size the log does not have, or with a root this log
    does not have at that size (a history that forked away), is not this log's receipt."""
    app, raw = _receipted(make_appliance, centre)
    assert app.store.key is not None
    size = app.store.tree_head()[0]
    key = app.store.key

    def receipt_for(tree_size: int, root: bytes) -> bytes:
        cp = Checkpoint(app.store.config.origin, tree_size, root,
                        "2025-09-15T09:30:00.000+07:00", key.backing, key.alg)
        return _resign(centre, raw, tree_size=tree_size, root_hash=root,
                       checkpoint=sign_checkpoint(cp, key))

    with pytest.raises(AuthError, match=f"covers {size + 5} entries; this log has {size}"):
        check_receipt(receipt_for(size + 5, bytes(32)), centre.public_key, app.store)
    with pytest.raises(AuthError, match=f"this log's root at size {size - 1} is not the one"):
        check_receipt(receipt_for(size - 1, b"\x07" * 32), centre.public_key, app.store)


def test_a_read_only_store_checks_with_the_device_key_on_disk(
    make_appliance: Callable[..., Appliance], centre: Centre
) -> None:
    """Without the private key (a read-only store), the public key file is used."""
    app, raw = _receipted(make_appliance, centre)
    ro = Store.open(app.data_dir, readonly=True)
    try:
        checked = check_receipt(raw, centre.public_key, ro)
        assert isinstance(checked, CheckedReceipt) and checked.receipt.tree_size > 0
    finally:
        ro.close()
