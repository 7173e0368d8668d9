"""What the appliance sends: the next batch of log entries after the acknowledged size.

Nothing is queued: a batch is read from the log when it is needed. An entry that names a
classified (mật) record, document or hồ sơ, or carries one's fields, travels as its leaf hash
only, marked withheld, whatever its kind (the rule lives in ``appliance.classified``); no
content file of a classified record is ever uploaded. The centre still recomputes the root
from the leaf hashes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass

from appliance import cbor, merkle
from appliance.checkpoint import Checkpoint, sign_checkpoint
from appliance.classified import ClassifiedSet, load
from appliance.keys.base import KeyProvider
from appliance.kinds import Kind
from appliance.store import Store
from appliance.versions import not_sent

from .. import wire

RECEIPT_KIND = Kind.SYNC_RECEIPT


@dataclass(frozen=True)
class Outgoing:
    batch: wire.Batch
    head: bytes  # the latest signed checkpoint (the appliance's claim)
    head_size: int
    refs: tuple[str, ...]  # content referenced by the batch's full entries
    withheld_refs: tuple[str, ...]  # content referenced by withheld entries
    bookkeeping_only: bool  # nothing but receipts since the acknowledged size


def _checkpoint_at(store: Store, key: KeyProvider, size: int, now: str) -> bytes:
    row = (
        store.reader()
        .execute("SELECT cose FROM checkpoints WHERE tree_size = ?", (size,))
        .fetchone()
    )
    if row is not None:
        return bytes(row[0])
    cp = Checkpoint(
        origin=store.config.origin,
        tree_size=size,
        root_hash=store.root_at(size),
        time=now,
        backing=key.backing,
        alg=key.alg,
    )
    return sign_checkpoint(cp, key)


def build_batch(
    store: Store,
    key: KeyProvider,
    start: int,
    now: str,
    max_entries: int = 2000,
    max_bytes: int = 512 * 1024,
    classified: ClassifiedSet | None = None,
) -> Outgoing | None:
    """The batch [start, end) up to the latest signed checkpoint, or None if nothing is."""
    latest = store.latest_checkpoint()
    if latest is None or latest[0] <= start:
        return None
    head_size, _, _, head = latest
    secret = classified if classified is not None else load(store.reader())
    items: list[wire.BatchItem] = []
    refs: list[str] = []
    withheld_refs: list[str] = []
    size = 0
    only_receipts = True
    limit = min(head_size, start + max_entries)
    for idx, raw in store.entries(start, limit, withheld=True):
        if not raw:  # restored as its leaf hash only (a replaced box's classified entry)
            items.append(wire.Withheld(store.leaf_hash(idx)))
            size += 40
            only_receipts = False
            continue
        m = cbor.loads(raw)
        if m.get("kind") != RECEIPT_KIND:
            only_receipts = False
        entry_refs = [bytes(r).hex() for r in m.get("refs", [])]
        if secret.withholds(m):
            items.append(wire.Withheld(merkle.leaf_hash(raw)))
            withheld_refs.extend(entry_refs)
            size += 40
        else:
            items.append(raw)
            refs.extend(entry_refs)
            size += len(raw) + 4
        if size >= max_bytes:
            break
    end = start + len(items)
    checkpoint = head if end == head_size else _checkpoint_at(store, key, end, now)
    proof = tuple(store.consistency_proof(start, end)) if start > 0 else ()
    batch = wire.Batch(start, end, checkpoint, proof, tuple(items))
    return Outgoing(
        batch=batch,
        head=head,
        head_size=head_size,
        refs=tuple(dict.fromkeys(refs)),
        withheld_refs=tuple(dict.fromkeys(withheld_refs)),
        bookkeeping_only=only_receipts and end == head_size,
    )


def content_of_entries(
    store: Store, start: int, end: int, secret: ClassifiedSet
) -> list[str]:
    """Content hashes referenced by the full (not withheld) entries in [start, end)."""
    out: dict[str, None] = {}
    for _idx, raw in store.entries(start, end):
        m = cbor.loads(raw)
        if secret.withholds(m):
            continue
        for r in m.get("refs", []):
            out[bytes(r).hex()] = None
    return list(out)


def uploadable(
    shas: Iterable[str], store: Store, never: frozenset[str] | set[str]
) -> tuple[list[str], list[str]]:
    """Split content hashes into (can upload, cannot: classified or not on this appliance)."""
    ok: list[str] = []
    bad: list[str] = []
    for sha in shas:
        if sha in never or not store.content.exists(sha):
            bad.append(sha)
        else:
            ok.append(sha)
    return ok, bad


def held_back(store: Store, shas: Iterable[str], hold_s: float) -> set[str]:
    """Of ``shas``, what the agent does not send now: a version sent inside another or never
    sent (appliance/versions.py: the PDF/A inside its signed file, a released or box-only
    lossless scan), and the content of a scan whose OCR or signing is still to come, filed
    less than ``hold_s`` ago: only its final version goes, once."""
    wanted = list(dict.fromkeys(shas))
    if not wanted:
        return set()
    reader = store.reader()
    pending: set[str] = set()
    from appliance.capture.queue import Queue, queue_exists

    if hold_s > 0 and queue_exists(store.data_dir):
        pending = Queue(store.data_dir).unfinished_documents(since=time.time() - hold_s)
    held: set[str] = set()
    for sha in wanted:
        rows = reader.execute(
            'SELECT id, "Content" FROM documents WHERE "Content" LIKE ?', (f'%"{sha}"%',)
        ).fetchall()
        for doc_id, raw in rows:
            content = json.loads(raw) if raw else []
            if doc_id in pending or sha in not_sent(content):
                held.add(sha)
                break
    return held
