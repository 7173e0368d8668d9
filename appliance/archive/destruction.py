"""The destruction workflow (TT 05/2025 Chương VII): the system lists expired files and
duplicates as "Xem xét hủy", the appraisal council decides, then destruction runs; every
step is a log entry. Classified (mật) records never enter an automatic list.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import writes
from ..classified import is_classified
from ..clock import iso
from ..errors import NotFoundError, ValidationError
from ..kinds import Kind
from ..writer import Txn
from . import state
from .closing import contents_list
from .due import Stage, deadlines, load_rules
from .errors import WorkflowError
from .holds import live_references, remove_content, strip_document

if TYPE_CHECKING:
    from ..store import Store

REVIEW = "review"  # Xem xét hủy
STATUS_LABELS = {
    "review": "Xem xét hủy",
    "approved": "Hội đồng đồng ý hủy",
    "rejected": "Hội đồng không đồng ý hủy",
    "destroyed": "Đã hủy",
}


@dataclass(frozen=True)
class DestructionList:
    list_id: str
    status: str
    created_at: str
    items: list[dict[str, Any]]
    decision: dict[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        return {
            "list_id": self.list_id,
            "status": self.status,
            "status_label": STATUS_LABELS.get(self.status, self.status),
            "created_at": self.created_at,
            "items": self.items,
            "decision": self.decision,
        }


def get_list(store: Store, list_id: str) -> DestructionList:
    found = state.rows(
        store.reader(),
        "SELECT list_id, status, created_at, items, decision FROM archive_destruction "
        "WHERE list_id = ?",
        (list_id,),
    )
    if not found:
        raise NotFoundError(f"no destruction list {list_id}")
    r = found[0]
    return DestructionList(r[0], r[1], r[2], json.loads(r[3]), json.loads(r[4]) if r[4] else None)


def lists(store: Store) -> list[DestructionList]:
    return [
        get_list(store, str(r[0]))
        for r in state.rows(store.reader(),
                            "SELECT list_id FROM archive_destruction ORDER BY created_at")
    ]


def candidates(store: Store, today: dt.date) -> list[dict[str, Any]]:
    """Expired hồ sơ and duplicate documents, not classified, frozen or already listed."""
    conn = store.reader()
    rules = load_rules(store.data_dir)
    held = {(str(t), str(i)) for t, i, *_ in state.rows(
        conn, "SELECT target_type, target_id, kind FROM archive_holds")}
    listed: set[str] = set()
    for (items,) in state.rows(
        conn, "SELECT items FROM archive_destruction WHERE status IN ('review', 'approved')"
    ):
        listed.update(i.get("FileCode") or i.get("document_id") for i in json.loads(items))
    custody = state.all_custody(conn)
    out: list[dict[str, Any]] = []
    for rec in store.find("file"):
        f = rec.data
        code = str(f["FileCode"])
        if is_classified(f) or ("file", code) in held or code in listed:
            continue
        if f.get("FondCode") and ("fonds", str(f["FondCode"])) in held:
            continue
        for stage, when, _rule, label in deadlines(f, custody.get(code, {}), rules):
            if stage is Stage.EXPIRY and when < today:
                out.append({"type": "file", "FileCode": code, "Title": f.get("Title", ""),
                            "Maintenance": f.get("Maintenance"), "EndDate": f.get("EndDate"),
                            "reason": f"hết thời hạn lưu trữ ({label}, đến {when.isoformat()})"})
    for rec in store.find("file"):
        code = str(rec.data["FileCode"])
        if is_classified(rec.data) or code in listed or ("file", code) in held:
            continue
        seen: dict[str, int] = {}
        for item in contents_list(conn, code):
            if item.classified or item.member or ("document", item.document_id) in held:
                continue
            for sha in item.content:
                if sha in seen and item.document_id not in listed:
                    out.append({"type": "document", "document_id": item.document_id,
                                "FileCode": code, "Subject": item.subject,
                                "reason": f"trùng với văn bản số {seen[sha]} trong hồ sơ"})
                    break
                seen.setdefault(sha, item.ordinal)
    return out


def propose(store: Store, today: dt.date | None = None, actor: str = "system") -> DestructionList:
    """Build a Danh mục tài liệu hết giá trị with status "Xem xét hủy" and log it."""
    today = today or store.clock.now().date()
    items = candidates(store, today)
    if not items:
        raise WorkflowError("no expired hồ sơ or duplicate documents to review")
    list_id = "DMH-" + str(uuid.uuid4()).upper()[:8]

    def job(txn: Txn) -> DestructionList:
        state.ensure_schema(txn.conn)
        data = {"list_id": list_id, "status": REVIEW, "items": items, "as_of": today.isoformat()}
        entry = writes.append_event(txn, Kind.ARCHIVE_DESTRUCTION_LIST, actor, data)
        txn.conn.execute(
            "INSERT INTO archive_destruction (list_id, status, created_at, items, decision, "
            "log_index) VALUES (?, ?, ?, ?, NULL, ?)",
            (list_id, REVIEW, entry.at, state.dumps(items), entry.index),
        )
        return DestructionList(list_id, REVIEW, entry.at, items, None)

    return store.writer_or_fail().call(job)


def decide(
    store: Store,
    list_id: str,
    *,
    approve: bool,
    decision_ref: str,
    council: list[str],
    exclude: list[str] | None = None,
    note: str = "",
    actor: str = "system",
) -> DestructionList:
    """Record the appraisal council's decision on a list under review."""
    if not decision_ref.strip():
        raise ValidationError("the council's decision needs its number (số quyết định)", "ref")
    if not [c for c in council if c.strip()]:
        raise ValidationError("name the members of the appraisal council", "council")
    exclude = [e.strip() for e in exclude or [] if e.strip()]

    def job(txn: Txn) -> DestructionList:
        state.ensure_schema(txn.conn)
        current = get_list(store, list_id)
        if current.status != REVIEW:
            raise WorkflowError(f"list {list_id} is {STATUS_LABELS[current.status]}, not under "
                                "review")
        keys = {i.get("FileCode") if i["type"] == "file" else i.get("document_id")
                for i in current.items}
        unknown = set(exclude) - keys
        if unknown:
            raise ValidationError(f"not on the list: {', '.join(sorted(unknown))}", "exclude")
        decision = {"approved": approve, "ref": decision_ref.strip(),
                    "council": [c.strip() for c in council if c.strip()], "excluded": exclude,
                    "note": note.strip(), "at": iso(txn.clock.now())}
        status = "approved" if approve else "rejected"
        entry = writes.append_event(txn, Kind.ARCHIVE_DESTRUCTION_DECISION, actor,
                                   {"list_id": list_id, **decision})
        txn.conn.execute(
            "UPDATE archive_destruction SET status = ?, decision = ?, log_index = ? "
            "WHERE list_id = ?",
            (status, state.dumps(decision), entry.index, list_id),
        )
        return DestructionList(list_id, status, current.created_at, current.items, decision)

    return store.writer_or_fail().call(job)


def execute(store: Store, list_id: str, actor: str = "system") -> dict[str, Any]:
    """Destroy what the council approved: content files removed, metadata cut to the
    identification the destruction record keeps; logged with every file's SHA-256."""

    def job(txn: Txn) -> tuple[dict[str, Any], list[str]]:
        state.ensure_schema(txn.conn)
        current = get_list(store, list_id)
        if current.status != "approved" or not current.decision:
            raise WorkflowError(f"list {list_id} has no approving council decision")
        excluded = set(current.decision.get("excluded", []))
        ref = current.decision["ref"]
        note = f"Đã hủy theo {ref} (danh mục {list_id})"
        files: list[str] = []
        doc_ids: list[str] = []
        for item in current.items:
            if item["type"] == "file" and item["FileCode"] not in excluded:
                files.append(item["FileCode"])
                doc_ids += [i.document_id for i in contents_list(txn.conn, item["FileCode"])
                            if not i.member]
            elif item["type"] == "document" and item["document_id"] not in excluded:
                doc_ids.append(item["document_id"])
        recs = [writes.current(txn, "document", id=d) for d in dict.fromkeys(doc_ids)]
        shas = sorted({c["sha256"] for r in recs for c in r.data.get("Content") or []})
        gone = sorted(set(shas) - live_references(txn, shas, {r.id for r in recs}))
        for r in recs:
            writes.put(txn, "document", Kind.DOCUMENT_DESTROY, actor, strip_document(r, note),
                      r.id, r.version)
        data = {"list_id": list_id, "decision_ref": ref, "files": files,
                "documents": [r.id for r in recs], "destroyed_content": gone}
        entry = writes.append_event(txn, Kind.ARCHIVE_DESTROY, actor, data)
        for code in files:
            state.set_hold(txn, entry, "file", code, "destroyed", note, ref)
        for r in recs:
            state.set_hold(txn, entry, "document", r.id, "destroyed", note, ref)
        state.note_destroyed_content(txn, entry, gone)
        txn.conn.execute(
            "UPDATE archive_destruction SET status = 'destroyed', log_index = ? "
            "WHERE list_id = ?",
            (entry.index, list_id),
        )
        return dict(data, log_index=entry.index), gone

    out, gone = store.writer_or_fail().call(job)
    remove_content(store, gone)
    return out
