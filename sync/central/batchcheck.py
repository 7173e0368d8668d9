"""Checking a batch against the centre's copy of an appliance's log, without changing it.

``check_batch`` returns a verdict (park it until the gap is filled, a duplicate of what is
held, or new entries to append with the new tree state) or raises: ``BatchError`` for a batch
that is wrong in itself (a checkpoint that does not verify, entries that do not hash to its
root, a classified record carried in full), ``ForkError`` when the appliance's log contradicts
what the centre accepted (a different root for a size, a differing entry, a failed RFC 9162
consistency proof): fork detection lives here. Order: the checkpoint's signature, origin and
size; each entry's encoding, index and the classified-record rule; the fork checks; the
consistency proof from the centre's copy; the recomputed root.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from appliance import cbor, merkle
from appliance.checkpoint import Checkpoint, verify_checkpoint
from appliance.classified import carries_classified
from appliance.errors import EncodingError, ProofError, SignatureError
from appliance.keys.verify import PublicKey
from appliance.ledger import Entry
from appliance.search import fts_body
from appliance.versions import placement

from .. import wire
from ..errors import BatchError, ClassifiedError, ForkError
from .storage import (
    ApplianceRecord,
    CentreView,
    CheckpointRecord,
    ContentLink,
    ContentRef,
    DocumentRow,
    EntryRow,
)


class Disposition(StrEnum):
    PARK = "park"  # starts beyond what the centre holds: kept until the gap is filled
    DUPLICATE = "duplicate"  # everything in it is held already
    APPEND = "append"  # new entries extend the centre's copy


@dataclass(frozen=True)
class Verdict:
    disposition: Disposition
    checkpoint: Checkpoint
    known: CheckpointRecord | None  # the centre's own record of this size, if it has one
    seen: Examined | None = None
    frontier: tuple[bytes, ...] = ()  # the compact range at the batch's end
    root: bytes = b""


def check_batch(
    view: CentreView, app: ApplianceRecord, batch: wire.Batch, pub: PublicKey
) -> Verdict:
    """What to do with ``batch`` from ``app`` (signed by ``pub``) given the centre's copy."""
    try:
        cp = verify_checkpoint(batch.checkpoint, pub)
    except (SignatureError, EncodingError) as exc:
        raise BatchError(f"the batch's checkpoint does not verify: {exc}") from exc
    if cp.origin != app.origin:
        raise BatchError(f"checkpoint origin {cp.origin!r} is not {app.origin!r}")
    if cp.tree_size != batch.end:
        raise BatchError(
            f"checkpoint is for size {cp.tree_size}, the batch ends at {batch.end}"
        )
    seen = examine(app, batch)
    accepted = app.accepted_size
    known = view.checkpoint(app.id, batch.end)
    if known is not None and known.root_hash != cp.root_hash:
        raise ForkError(
            f"the appliance signed a different root for tree size {batch.end} than the one "
            "the centre accepted",
            claimed_size=batch.end,
            claimed_checkpoint=batch.checkpoint,
            conflicting_checkpoint=known.cose,
        )
    if batch.start > accepted:
        return Verdict(Disposition.PARK, cp, known)
    if batch.start < accepted:
        stored = view.leaves(app.id, batch.start, min(accepted, batch.end))
        for k, leaf in enumerate(stored):
            if leaf != seen.leaves[k]:
                raise ForkError(
                    f"entry {batch.start + k} differs from the one the centre accepted",
                    claimed_size=batch.end,
                    claimed_checkpoint=batch.checkpoint,
                    diverge_index=batch.start + k,
                )
    fr_start = frontier_at(view, app, batch.start)
    if batch.start > 0:
        try:
            old_root = merkle.frontier_root(fr_start)
            merkle.verify_consistency(batch.start, batch.end, old_root, cp.root_hash, batch.proof)
        except ProofError as exc:
            raise ForkError(
                f"the consistency proof from the centre's copy at size {batch.start} to "
                f"{batch.end} fails: {exc}",
                claimed_size=batch.end,
                claimed_checkpoint=batch.checkpoint,
            ) from exc
    fr_end = merkle.fold_leaves(fr_start, seen.leaves, batch.start)
    root = merkle.frontier_root(fr_end)
    if root != cp.root_hash:
        raise BatchError(
            f"entries {batch.start}-{batch.end} do not hash to the checkpoint's root"
        )
    disposition = Disposition.DUPLICATE if batch.end <= accepted else Disposition.APPEND
    return Verdict(disposition, cp, known, seen, tuple(fr_end), root)


@dataclass(frozen=True)
class Examined:
    leaves: list[bytes]
    rows: list[EntryRow]
    docs: list[DocumentRow]
    refs: list[ContentRef]
    links: list[ContentLink]
    entries: list[Entry]  # the full entries, decoded (the catalogue's sources)


# -- pure checks ----------------------------------------------------------------------------


def examine(app: ApplianceRecord, batch: wire.Batch) -> Examined:
    """Decode every full entry of ``batch``: index, encoding, classification, projections."""
    leaves: list[bytes] = []
    rows: list[EntryRow] = []
    docs: list[DocumentRow] = []
    refs: list[ContentRef] = []
    links: list[ContentLink] = []
    decoded: list[Entry] = []
    for k, item in enumerate(batch.items):
        idx = batch.start + k
        if isinstance(item, wire.Withheld):
            leaves.append(item.leaf_hash)
            rows.append(EntryRow(idx, item.leaf_hash, None))
            continue
        h = merkle.leaf_hash(item)
        leaves.append(h)
        rows.append(EntryRow(idx, h, item))
        try:
            m = cbor.loads(item)
            if cbor.dumps_text_keyed(m) != item:
                cbor.loads_deterministic(item)
            entry = Entry.from_map(m)
        except EncodingError as exc:
            raise BatchError(f"entry {idx} is not a deterministic log entry: {exc}") from exc
        if entry.index != idx:
            raise BatchError(f"entry at position {idx} says it is entry {entry.index}")
        data = entry.data if isinstance(entry.data, dict) else None
        if carries_classified(entry.data):
            raise ClassifiedError(
                f"entry {idx} ({entry.kind}) carries a classified (mật) record's fields; "
                "classified records never leave the appliance: only its leaf hash may be sent"
            )
        sizes: dict[str, int] = {}
        if data is not None and isinstance(data.get("Content"), list):
            for c in data["Content"]:
                if isinstance(c, dict) and isinstance(c.get("size"), int):
                    sizes[str(c.get("sha256"))] = int(c["size"])
        for r in entry.refs:
            refs.append(ContentRef(r.hex(), sizes.get(r.hex(), -1), idx))
        if entry.type == "document" and data is not None:
            links.extend(content_links(data.get("Content"), idx))
        if entry.type == "document" and entry.id and data is not None:
            docs.append(document_row(app, entry, data))
        decoded.append(entry)
    return Examined(leaves, rows, docs, refs, links, decoded)


def content_links(content: Any, idx: int) -> list[ContentLink]:
    """The versions of a document's Content list the box does not send on their own."""
    if not isinstance(content, list) or not all(
        isinstance(c, dict) and isinstance(c.get("size"), int) and isinstance(c.get("sha256"), str)
        for c in content
    ):
        return []
    p = placement(content)
    sizes = {str(c["sha256"]): int(c["size"]) for c in content}
    out = [ContentLink(sha, "within", outer, size, idx) for sha, (outer, size) in p.within.items()]
    out += [ContentLink(sha, "unsent", None, sizes[sha], idx) for sha in p.released + p.box_only]
    return out


def document_row(app: ApplianceRecord, entry: Entry, data: dict[str, Any]) -> DocumentRow:
    def s(name: str) -> str | None:
        v = data.get(name)
        return None if v is None else str(v)

    def i(name: str) -> int | None:
        v = data.get(name)
        return v if isinstance(v, int) and not isinstance(v, bool) else None

    return DocumentRow(
        appliance_id=app.id,
        org_id=app.org_id,
        doc_id=str(entry.id),
        version=int(entry.version or 0),
        log_index=entry.index,
        direction=s("Direction"),
        type_name=s("TypeName"),
        code_number=s("CodeNumber"),
        code_notation=s("CodeNotation"),
        organ_name=s("OrganName"),
        subject=s("Subject"),
        issued_date=s("IssuedDate"),
        arrival_date=s("ArrivalDate"),
        arrival_number=i("ArrivalNumber"),
        year=i("Year"),
        file_code=s("FileCode"),
        folded=fts_body(data),
        data_json=json.dumps(data, ensure_ascii=False, sort_keys=True, default=str),
    )


def frontier_at(tx: CentreView, app: ApplianceRecord, size: int) -> list[bytes]:
    """The compact range of the centre's copy of the appliance's log at ``size``."""
    if size == app.accepted_size:
        return list(app.frontier)
    if size > app.accepted_size:
        raise BatchError(f"the centre holds only {app.accepted_size} entries, not {size}")
    cp = tx.checkpoint_at_or_below(app.id, size)
    base, fr = (cp.tree_size, list(cp.frontier)) if cp else (0, [])
    leaves = tx.leaves(app.id, base, size)
    if len(leaves) != size - base:
        raise BatchError(f"the centre's copy lacks entries {base}-{size}")
    return merkle.fold_leaves(fr, leaves, base)
