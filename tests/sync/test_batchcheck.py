"""Checking a batch (sync/central/batchcheck.py) without changing the centre's copy: a verdict
(park, duplicate, append) for a good batch; BatchError for a batch wrong in itself, ForkError
for one that contradicts what the centre accepted. Each check is made to fail once."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import cbor2
import pytest

from appliance import cbor, merkle
from appliance.keys.software import SoftwareKey
from appliance.keys.verify import PublicKey, load_public_key
from sync import wire
from sync.agent.outbox import build_batch
from sync.central.batchcheck import Disposition, Verdict, check_batch, examine
from sync.central.centre import Centre
from sync.central.storage import ApplianceRecord
from sync.errors import BatchError, ClassifiedError, ForkError
from tests.sync.conftest import Appliance, response


def _batch(app: Appliance, start: int, **kw: object) -> wire.Batch:
    assert app.store.key is not None
    out = build_batch(app.store, app.store.key, start, app.now(), **kw)  # type: ignore[arg-type]
    assert out is not None
    return out.batch


def _pub(app: Appliance) -> PublicKey:
    assert app.store.key is not None
    return load_public_key(app.store.key.public_key_pem())


def _check(centre: Centre, app: Appliance, batch: wire.Batch,
           pub: PublicKey | None = None) -> Verdict:
    with centre.storage.view() as v:
        rec = v.appliance(app.id)
        assert rec is not None
        return check_batch(v, rec, batch, pub or _pub(app))


def _record(centre: Centre, app: Appliance) -> ApplianceRecord:
    with centre.storage.view() as v:
        rec = v.appliance(app.id)
        assert rec is not None
        return rec


def test_a_first_batch_is_appended_with_the_root_it_recomputes(
    make_appliance: Callable[..., Appliance], centre: Centre
) -> None:
    """From 0: APPEND, the checkpoint read, the frontier and root of the whole log."""
    app = make_appliance()
    app.add(3)
    batch = _batch(app, 0)
    verdict = _check(centre, app, batch)
    assert verdict.disposition is Disposition.APPEND and verdict.known is None
    assert verdict.root == app.store.root_at(batch.end) == verdict.checkpoint.root_hash
    assert verdict.seen is not None and len(verdict.seen.leaves) == batch.end
    assert merkle.frontier_root(list(verdict.frontier)) == verdict.root


def test_batches_beyond_or_within_the_accepted_log_are_parked_or_duplicates(
    make_appliance: Callable[..., Appliance], centre: Centre
) -> None:
    """After the centre accepted [0, n): a batch from n+k waits (PARK), the same [0, n) again
    is a DUPLICATE, and [n, m) is appended with a consistency proof."""
    app = make_appliance()
    app.add(2)
    first = _batch(app, 0)
    assert response(centre, app.send(0)).accepted_size == first.end
    app.add(3)
    assert _check(centre, app, _batch(app, first.end + 1)).disposition is Disposition.PARK
    assert _check(centre, app, first).disposition is Disposition.DUPLICATE
    nxt = _batch(app, first.end)
    assert nxt.proof and _check(centre, app, nxt).disposition is Disposition.APPEND


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ("checkpoint-bit", "checkpoint does not verify"),
        ("other-key", "checkpoint does not verify"),
        ("size", "checkpoint is for size"),
        ("entry-swapped", "says it is entry"),
        ("entry-bytes", "do not hash to the checkpoint's root"),
        ("withheld-leaf", "do not hash to the checkpoint's root"),
        ("entry-encoding", "entry 2 is not a deterministic log entry"),
    ],
)
def test_a_batch_wrong_in_itself_is_a_batch_error(
    make_appliance: Callable[..., Appliance], centre: Centre, tmp_path: Path,
    change: str, match: str,
) -> None:
    """A checkpoint that does not verify (flipped, another key) or names another size,
    entries out of place, changed or replaced by a wrong leaf hash: BatchError."""
    app = make_appliance()
    app.add(3)
    batch = _batch(app, 0)
    pub = _pub(app)
    items = list(batch.items)
    if change == "checkpoint-bit":
        cp = bytearray(batch.checkpoint)
        cp[-2] ^= 0x01
        batch = dataclasses.replace(batch, checkpoint=bytes(cp))
    elif change == "other-key":
        pub = load_public_key(SoftwareKey.create(tmp_path / "k").public_key_pem())
    elif change == "size":
        batch = dataclasses.replace(batch, end=batch.end - 1, items=tuple(items[:-1]))
    elif change == "entry-swapped":
        items[1], items[2] = items[2], items[1]
        batch = dataclasses.replace(batch, items=tuple(items))
    elif change == "entry-bytes":
        m = cbor.loads(items[2])
        m["actor"] = "kẻ gian"
        items[2] = cbor.dumps_text_keyed(m)
        batch = dataclasses.replace(batch, items=tuple(items))
    elif change == "entry-encoding":  # the same entry, its map keys in another order
        m = cbor.loads(items[2])
        items[2] = cbor2.dumps(dict(reversed(list(m.items()))))
        batch = dataclasses.replace(batch, items=tuple(items))
    else:
        items[1] = wire.Withheld(b"\x00" * 32)
        batch = dataclasses.replace(batch, items=tuple(items))
    with pytest.raises(BatchError, match=match):
        _check(centre, app, batch, pub)


def test_a_classified_record_in_full_is_refused(
    make_appliance: Callable[..., Appliance], centre: Centre
) -> None:
    """An entry carrying a mật document's fields in full: ClassifiedError, whatever else."""
    app = make_appliance()
    app.add(1, Mode="03")
    size = app.store.latest_checkpoint()[0]  # type: ignore[index]
    full = wire.Batch(0, size, app.store.latest_checkpoint()[3],  # type: ignore[index]
                      (), tuple(raw for _, raw in app.store.entries(0, size)))
    with pytest.raises(ClassifiedError, match="carries a classified"):
        _check(centre, app, full)


def test_a_log_that_contradicts_the_accepted_one_is_a_fork(
    make_appliance: Callable[..., Appliance], centre: Centre, tmp_path: Path
) -> None:
    """A checkpoint with another root for an accepted size, an accepted entry that differs,
    or a consistency proof that fails: ForkError, naming where it diverges."""
    app = make_appliance()
    app.add(3)
    accepted = response(centre, app.send(0)).accepted_size
    app.add(2)
    nxt = _batch(app, accepted)
    bad_proof = list(nxt.proof)
    bad_proof[0] = bytes([bad_proof[0][0] ^ 1]) + bad_proof[0][1:]
    with pytest.raises(ForkError, match=r"consistency proof .* fails"):
        _check(centre, app, dataclasses.replace(nxt, proof=tuple(bad_proof)))
    # a batch overlapping the accepted log with one accepted entry replaced by another leaf
    overlap = _batch(app, accepted - 2)
    items = list(overlap.items)
    items[0] = wire.Withheld(b"\x01" * 32)
    with pytest.raises(ForkError, match=f"entry {accepted - 2} differs") as info:
        _check(centre, app, dataclasses.replace(overlap, items=tuple(items)))
    assert info.value.diverge_index == accepted - 2  # type: ignore[attr-defined]


def test_examine_reads_rows_documents_and_content_sizes(
    make_appliance: Callable[..., Appliance], centre: Centre
) -> None:
    """Each full entry gives its row and leaf, a document its search row, a reference its
    size from the Content list; a withheld one only its leaf."""
    app = make_appliance()
    doc = app.add(1, Subject="Quyết định giao đất")[0]
    scan = app.store.content.put_bytes(b"scan bytes")
    app.store.attach_content(doc, [{"sha256": scan.sha256, "size": scan.size, "name": "a"}])
    app.add(1, Mode="03")
    batch = _batch(app, 0)
    seen = examine(_record(centre, app), batch)
    assert seen.leaves == [app.store.leaf_hash(i) for i in range(batch.end)]
    withheld = [r for r in seen.rows if r.entry is None]
    assert len(withheld) == batch.withheld_count >= 1
    assert [(r.sha256, r.size) for r in seen.refs] == [(scan.sha256, scan.size)]
    assert {d.doc_id for d in seen.docs} == {doc}
    assert all("giao dat" in d.folded for d in seen.docs)
