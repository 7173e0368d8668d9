"""What the appliance sends (sync/agent/outbox.py): batches read from the log after the acknowledged
size, with a signed checkpoint at their end and a consistency proof from their start; classified
entries as leaf hashes only; content split into what may and may not go."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from appliance import cbor, merkle
from appliance.checkpoint import verify_checkpoint
from appliance.classified import load as load_classified
from appliance.errors import ProofError
from appliance.keys.verify import PublicKey, load_public_key
from sync import wire
from sync.agent.outbox import Outgoing, build_batch, content_of_entries, uploadable
from sync.agent.receipts import check_receipt, store_receipt
from sync.central.centre import Centre
from tests.sync.conftest import Appliance, response


def _build(app: Appliance, start: int, **kw: object) -> Outgoing | None:
    assert app.store.key is not None
    return build_batch(app.store, app.store.key, start, app.now(), **kw)  # type: ignore[arg-type]


def _device(app: Appliance) -> PublicKey:
    assert app.store.key is not None
    return load_public_key(app.store.key.public_key_pem())


def _attach(app: Appliance, doc: str, body: bytes) -> str:
    c = app.store.content.put_bytes(body)
    app.store.attach_content(doc, [{"sha256": c.sha256, "size": c.size, "name": "scan.pdf"}])
    assert app.store.wait_sealed()
    return c.sha256


def test_nothing_to_send_at_or_past_the_signed_size(
    make_appliance: Callable[..., Appliance],
) -> None:
    """No batch starts at or after the latest signed size; one before it does."""
    app = make_appliance(enrolled=False)
    app.add(2)
    size = app.store.latest_checkpoint()[0]  # type: ignore[index]
    assert size == app.store.tree_head()[0]
    assert _build(app, size) is None
    assert _build(app, size + 5) is None
    last = _build(app, size - 1)
    assert last is not None and (last.batch.start, last.batch.end) == (size - 1, size)


def test_first_batch_is_the_whole_signed_log_with_the_head_checkpoint(
    make_appliance: Callable[..., Appliance], centre: Centre
) -> None:
    """From 0: every entry in order, the latest checkpoint, no proof; the centre accepts it."""
    app = make_appliance()
    app.add(4)
    head = app.store.latest_checkpoint()
    assert head is not None
    out = _build(app, 0)
    assert out is not None
    assert (out.batch.start, out.batch.end, out.head_size) == (0, head[0], head[0])
    assert out.batch.checkpoint == out.head == head[3]
    assert out.batch.proof == ()
    assert list(out.batch.items) == [raw for _, raw in app.store.entries(0, head[0])]
    assert out.refs == () and out.withheld_refs == () and not out.bookkeeping_only
    resp = response(centre, app.send(0))
    assert resp.outcome is wire.Outcome.ACCEPTED and resp.accepted_size == head[0]


def test_a_batch_cut_short_carries_a_fresh_checkpoint_at_its_own_end(
    make_appliance: Callable[..., Appliance], centre: Centre
) -> None:
    """max_entries cuts the batch; its checkpoint is signed for the cut size and verifies, the
    head stays the latest claim, and the next batch chains by a consistency proof."""
    app = make_appliance()
    app.add(6)
    head_size = app.store.latest_checkpoint()[0]  # type: ignore[index]
    out = _build(app, 0, max_entries=3)
    assert out is not None and (out.batch.start, out.batch.end) == (0, 3)
    cp = verify_checkpoint(out.batch.checkpoint, _device(app))
    assert cp.tree_size == 3 and cp.root_hash == app.store.root_at(3)
    assert out.head_size == head_size and out.batch.checkpoint != out.head
    assert response(centre, app.send(0, max_entries=3)).accepted_size == 3

    nxt = _build(app, 3)
    assert nxt is not None and (nxt.batch.start, nxt.batch.end) == (3, head_size)
    merkle.verify_consistency(
        3, head_size, app.store.root_at(3), app.store.root_at(head_size), nxt.batch.proof
    )
    assert response(centre, app.send(3)).accepted_size == head_size


def test_max_bytes_stops_after_the_entry_that_reaches_it(
    make_appliance: Callable[..., Appliance],
) -> None:
    """The byte cap counts each entry plus 4; the batch ends with the one that reaches it and
    always holds at least one."""
    app = make_appliance(enrolled=False)
    app.add(5)
    entries = [raw for _, raw in app.store.entries(0, 5)]
    cap = len(entries[0]) + 4 + len(entries[1]) + 4
    out = _build(app, 0, max_bytes=cap)
    assert out is not None and out.batch.end == 2
    one = _build(app, 0, max_bytes=1)
    assert one is not None and one.batch.end == 1


def test_a_tampered_proof_or_root_does_not_verify(
    make_appliance: Callable[..., Appliance],
) -> None:
    """The consistency proof is real: one flipped bit in it fails verification."""
    app = make_appliance(enrolled=False)
    app.add(3)
    app.add(3)
    size = app.store.latest_checkpoint()[0]  # type: ignore[index]
    out = _build(app, 3)
    assert out is not None and out.batch.proof
    proof = list(out.batch.proof)
    proof[0] = bytes([proof[0][0] ^ 1]) + proof[0][1:]
    with pytest.raises(ProofError, match=r"does not lead to the (old|new) root"):
        merkle.verify_consistency(3, size, app.store.root_at(3), app.store.root_at(size), proof)


def test_classified_entries_travel_as_leaf_hashes_and_their_content_is_never_offered(
    make_appliance: Callable[..., Appliance], centre: Centre
) -> None:
    """A mật document's entries become Withheld(leaf hash) and its scan goes to withheld_refs;
    an ordinary scan is in refs and in content_of_entries; the centre accepts the batch."""
    app = make_appliance()
    public = app.add(1)[0]
    secret = app.add(1, Mode="03", Subject="Văn bản mật")[0]
    open_sha = _attach(app, public, b"public scan")
    secret_sha = _attach(app, secret, b"classified scan")
    size = app.store.latest_checkpoint()[0]  # type: ignore[index]
    out = _build(app, 0)
    assert out is not None and out.batch.end == size
    full = dict(app.store.entries(0, size))
    withheld = [i for i, it in enumerate(out.batch.items) if isinstance(it, wire.Withheld)]
    assert withheld and out.batch.withheld_count == len(withheld)
    for i in withheld:
        item = out.batch.items[i]
        assert isinstance(item, wire.Withheld)
        assert item.leaf_hash == merkle.leaf_hash(full[i]) == app.store.leaf_hash(i)
        assert cbor.loads(full[i]).get("id") == secret
    assert out.refs == (open_sha,) and out.withheld_refs == (secret_sha,)
    secret_set = load_classified(app.store.reader())
    assert content_of_entries(app.store, 0, size, secret_set) == [open_sha]
    resp = response(centre, app.send(0))
    assert resp.outcome is wire.Outcome.ACCEPTED and resp.missing == (open_sha,)


def test_receipts_alone_since_the_acknowledged_size_are_bookkeeping_only(
    make_appliance: Callable[..., Appliance], centre: Centre
) -> None:
    """After the centre's receipt is appended, the batch after it is only that receipt: not
    worth sending on its own."""
    app = make_appliance()
    app.add(2)
    acked = app.store.latest_checkpoint()[0]  # type: ignore[index]
    resp = response(centre, app.send(0))
    checked = check_receipt(resp.receipt or b"", centre.public_key, app.store)
    index = store_receipt(app.store, checked, "http://test")
    assert index == acked
    assert app.store.wait_sealed()
    out = _build(app, acked)
    assert out is not None and out.batch.end == acked + 1 and out.bookkeeping_only
    app.add(1)
    later = _build(app, acked)
    assert later is not None and not later.bookkeeping_only


def test_uploadable_keeps_what_is_here_and_not_classified(
    make_appliance: Callable[..., Appliance],
) -> None:
    """Content is offered only if the appliance holds it and it is not a classified file's."""
    app = make_appliance(enrolled=False)
    doc = app.add(1)[0]
    here = _attach(app, doc, b"scan one")
    secret = _attach(app, doc, b"scan two")
    absent = "ab" * 32
    ok, bad = uploadable([here, secret, absent], app.store, {secret})
    assert ok == [here] and bad == [secret, absent]
