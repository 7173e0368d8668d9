"""Recall (thu hồi) and freeze (phong tỏa) of records, spec §2.10; every step in the log.

A recalled outgoing document is frozen with its metadata. A recalled incoming document is
destroyed with its metadata, keeping only the recall metadata (its identification and the
recall note); its earlier versions stay in the sealed log, which cannot be rewritten.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import writes
from ..errors import ConflictError, ValidationError
from ..kinds import Kind
from ..store import Record
from ..writer import Txn
from . import state

if TYPE_CHECKING:
    from ..store import Store

# What a destroyed or recalled-incoming document keeps: who, what number, when (Phụ lục VI).
KEEP_WHEN_DESTROYED = (
    "Direction", "Status", "FondCode", "FileCode", "DocOrdinal", "TypeName", "TypeCode",
    "CodeNumber", "CodeNotation", "IssuedDate", "OrganName", "ArrivalDate", "ArrivalNumber",
    "Series", "Year", "Mode", "Language", "Maintenance",
)
TARGETS = {"document": "document", "file": "file", "fonds": "fonds"}


def _target(store: Store, txn: Txn, target_type: str, target: str) -> Record:
    if target_type == "document":
        return writes.current(txn, "document", id=target)
    if target_type == "file":
        return writes.current(txn, "file", FileCode=target)
    if target_type == "fonds":
        return writes.current(txn, "fonds", FondCode=target)
    raise ValidationError(f"cannot freeze a {target_type}", "target")


def _key(rec: Record) -> str:
    """Holds are keyed by the code people use: id, mã hồ sơ or mã phông."""
    if rec.type == "file":
        return str(rec.data["FileCode"])
    if rec.type == "fonds":
        return str(rec.data["FondCode"])
    return rec.id


def freeze(
    store: Store, target_type: str, target: str, reason: str, ref: str = "",
    actor: str = "system",
) -> dict[str, Any]:
    """Lock a document, hồ sơ or fonds against edits and moves until unfrozen."""
    if not reason.strip():
        raise ValidationError("a freeze needs a reason", "reason")

    def job(txn: Txn) -> dict[str, Any]:
        state.ensure_schema(txn.conn)
        rec = _target(store, txn, target_type, target)
        key = _key(rec)
        if writes.holds_on(txn.conn, [(target_type, key)]):
            raise ConflictError(f"{target_type} {key} is already frozen or recalled")
        data = {"target_type": target_type, "target": key, "reason": reason.strip(),
                "ref": ref.strip()}
        entry = writes.append_event(txn, Kind.ARCHIVE_FREEZE, actor, data, rec.type, rec.id)
        state.set_hold(txn, entry, target_type, key, "freeze", reason.strip(), ref.strip())
        return dict(data, log_index=entry.index)

    return store.writer_or_fail().call(job)


def unfreeze(
    store: Store, target_type: str, target: str, reason: str, actor: str = "system"
) -> dict[str, Any]:
    """Lift a freeze (recalls and destructions cannot be lifted)."""

    def job(txn: Txn) -> dict[str, Any]:
        state.ensure_schema(txn.conn)
        rec = _target(store, txn, target_type, target)
        key = _key(rec)
        if not state.release_hold(txn, target_type, key, "freeze"):
            raise ConflictError(f"{target_type} {key} is not frozen")
        data = {"target_type": target_type, "target": key, "reason": reason.strip()}
        entry = writes.append_event(txn, Kind.ARCHIVE_UNFREEZE, actor, data, rec.type, rec.id)
        return dict(data, log_index=entry.index)

    return store.writer_or_fail().call(job)


def live_references(txn: Txn, shas: list[str], excluding: set[str]) -> set[str]:
    """Which of ``shas`` some document outside ``excluding`` still names."""
    import json

    used: set[str] = set()
    want = set(shas)
    for doc_id, content in txn.conn.execute(
        'SELECT id, "Content" FROM documents WHERE "Content" IS NOT NULL'
    ):
        if doc_id in excluding:
            continue
        for c in json.loads(content):
            if c["sha256"] in want:
                used.add(c["sha256"])
    return used


def strip_document(rec: Record, note: str, status: str | None = None) -> dict[str, Any]:
    data = {k: v for k, v in rec.data.items() if k in KEEP_WHEN_DESTROYED}
    if status:
        data["Status"] = status
    data["Description"] = note[:500]
    return data


def remove_content(store: Store, shas: list[str]) -> None:
    """Delete content files after the commit that made them unreachable."""
    for sha in shas:
        store.content.path(sha).unlink(missing_ok=True)
        store.content.derived_path(sha).unlink(missing_ok=True)


def recall_in_txn(
    txn: Txn, doc_id: str, reason: str, ref: str, actor: str
) -> tuple[dict[str, Any], list[str]]:
    """``recall``'s work inside the caller's transaction (a recall notice issued in the same
    one: appliance.outgoing.issuing); returns the event and the content to delete after."""
    state.ensure_schema(txn.conn)
    rec = writes.current(txn, "document", id=doc_id)
    if rec.data.get("Status") == "recalled":
        raise ConflictError(f"document {doc_id} is already recalled")
    note = f"Đã thu hồi theo {ref.strip()}: {reason.strip()}"
    direction = rec.data.get("Direction")
    destroyed: list[str] = []
    if direction == "incoming":
        shas = [c["sha256"] for c in rec.data.get("Content") or []]
        destroyed = sorted(set(shas) - live_references(txn, shas, {rec.id}))
        data = strip_document(rec, note, "recalled")
    else:
        data = dict(rec.data, Status="recalled")
        data["Description"] = (f"{rec.data.get('Description', '')} {note}".strip())[:500]
    new = writes.put(txn, "document", Kind.DOCUMENT_RECALL, actor, data, rec.id, rec.version)
    event = {"document": rec.id, "direction": direction, "reason": reason.strip(),
             "ref": ref.strip(), "destroyed_content": destroyed}
    entry = writes.append_event(txn, Kind.ARCHIVE_RECALL, actor, event, "document", rec.id)
    state.set_hold(txn, entry, "document", rec.id, "recall", reason.strip(), ref.strip())
    state.note_destroyed_content(txn, entry, destroyed)
    return dict(event, version=new.version, log_index=entry.index), destroyed


def recall(
    store: Store, doc_id: str, reason: str, ref: str, actor: str = "system"
) -> dict[str, Any]:
    """Thu hồi: freeze an outgoing document; destroy an incoming one, keeping recall metadata."""
    if not reason.strip() or not ref.strip():
        raise ValidationError("a recall needs the reason and the recalling document", "ref")

    def job(txn: Txn) -> tuple[dict[str, Any], list[str]]:
        return recall_in_txn(txn, doc_id, reason, ref, actor)

    out, destroyed = store.writer_or_fail().call(job)
    remove_content(store, destroyed)
    return out
