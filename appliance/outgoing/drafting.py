"""The draft and its review: versions, submission, return with comments, approval.

Each step is the document's full new version (kinds ``document.draft``, ``.version``,
``.submit``, ``.return``, ``.approve``) with its ``Drafting`` field (see the package's
docstring). The work that takes time (composing, converting, preparing the PDF) is done
before the writer's transaction, which then checks that the draft has not moved meanwhile.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import clock as clockmod
from .. import documents, records, writes
from ..accounts import CLEARED_ROLES, Role
from ..classified import document_is_classified
from ..errors import ConflictError, ValidationError
from ..kinds import Kind
from ..results import Record, WriteResult
from ..text import nfc_multiline
from ..writer import Txn
from . import layout, pdfform
from .errors import NotYoursError, WorkflowError
from .placement import Placement, locate

if TYPE_CHECKING:
    from ..store import Store

MAX_COMMENT = 2000
EDITABLE = ("draft", "returned")
APPROVERS = (Role.LEADER,)
REVIEWERS = (Role.LEADER, Role.HANDLER, Role.ARCHIVIST)
STATE_VI = {"draft": "đang soạn", "submitted": "đang trình duyệt", "returned": "bị trả lại",
            "approved": "đã duyệt, chờ ký", "signed": "đã ký, chờ ban hành"}


@dataclass(frozen=True)
class Source:
    """A draft version's content: the PDF, how it was made, and where its fields go."""

    pdf: bytes
    name: str
    origin: str  # template, pdf, docx
    template: dict[str, Any] | None = None
    placement: Placement | None = None


def from_template(store: Store, fields: Mapping[str, Any], meta: Mapping[str, Any]) -> Source:
    """Compose the version from a Phụ lục I template (outside the writer)."""
    prepared = documents.prepare_document(store.codes, "outgoing", dict(meta))
    prepared.setdefault("CodeNotation", _notation(store, prepared))
    t = layout.template_from(dict(fields), prepared, store.config.org_name)
    pdf, placement = layout.compose(t)
    return Source(pdf, "du-thao.pdf", "template", t.to_json(), placement)


def from_file(data: bytes, name: str, mime: str, meta: Mapping[str, Any],
              paper: bool) -> Source:
    """A version from an uploaded PDF or DOCX (converted on the box); an electronic draft's
    number, date and signature positions are found on its pages now, or refused."""
    from . import docx

    origin = "pdf"
    if mime == docx.DOCX_MIME:
        data, origin = docx.to_pdf(data), "docx"
    elif mime != "application/pdf":
        raise ValidationError(f"{mime} is not a PDF or DOCX", "file",
                              msgid="The draft must be a PDF or a DOCX file.")
    placement = None if paper else locate(data, str(meta.get("SignerFullName") or ""))
    stem = name.rsplit(".", 1)[0] or "du-thao"
    return Source(data, f"{stem}.pdf", origin, None, placement)


def _notation(store: Store, data: Mapping[str, Any]) -> str:
    from .. import numbering

    return numbering.default_notation(data, store.codes, store.config.agency_abbr)


def _comment(text: str | None, required: bool) -> str | None:
    value = nfc_multiline(text or "")
    if required:
        records.require({"Comment": value}, "Comment")
    if len(value) > MAX_COMMENT:
        raise ValidationError("the comment is too long", "Comment",
                              msgid="%(label)s has %(n)d characters; at most %(max)d are "
                              "allowed.", n=len(value), max=MAX_COMMENT)
    return value or None


def _stored(store: Store, src: Source, n: int) -> dict[str, Any]:
    stored = store.content.put_bytes(src.pdf)
    return {"sha256": stored.sha256, "size": stored.size, "name": f"v{n}-{src.name}",
            "mime": "application/pdf"}


def _version(src: Source, ref: Mapping[str, Any], n: int, actor: str, at: str,
             note: str | None) -> dict[str, Any]:
    v: dict[str, Any] = {"n": n, "sha256": ref["sha256"], "size": ref["size"],
                         "name": ref["name"], "source": src.origin, "at": at, "by": actor}
    if src.template is not None:
        v["template"] = src.template
    if src.placement is not None:
        v["placement"] = src.placement.to_json()
    if note:
        v["note"] = note
    return v


def _step(txn: Txn, actor: str, action: str, comment: str | None = None,
          version: int | None = None) -> dict[str, Any]:
    s: dict[str, Any] = {"at": clockmod.iso(txn.clock.now()), "by": actor, "action": action}
    if comment:
        s["comment"] = comment
    if version is not None:
        s["version"] = version
    return s


def create(store: Store, raw: Mapping[str, Any], source: Source | None, actor: str,
           paper: bool = False, relation: Mapping[str, Any] | None = None) -> WriteResult:
    """A new draft văn bản đi, with its first version when ``source`` is given."""
    meta = dict(raw)
    if source is not None and source.template is not None:
        t = source.template
        meta.setdefault("SignerFullName", t["name"])
        meta.setdefault("SignerPosition", t["position"])
    data = documents.prepare_document(store.codes, "outgoing", meta)
    if not paper and source is None:
        raise ValidationError("an electronic draft needs its content", "file",
                              msgid="Compose the draft from a template or attach its PDF or "
                              "DOCX (or mark it as a paper document).")
    ref = _stored(store, source, 1) if source is not None else None

    def job(txn: Txn) -> WriteResult:
        rel = _relation(txn, relation) if relation else None
        at = clockmod.iso(txn.clock.now())
        drafting: dict[str, Any] = {
            "state": "draft", "paper": paper, "drafter": actor, "versions": [],
            "steps": [_step(txn, actor, "create", version=1 if ref else None)],
        }
        d = dict(data)
        if ref is not None and source is not None:
            drafting["versions"] = [_version(source, ref, 1, actor, at, None)]
            d["Content"] = [ref]
        d["Drafting"] = drafting
        if rel is not None:
            d["Relation"] = rel
        return documents_draft(store, txn, d, actor)

    return store.writer_or_fail().call(job)


def documents_draft(store: Store, txn: Txn, data: dict[str, Any], actor: str) -> WriteResult:
    """documents.draft_outgoing's job, for a draft built here (one transaction)."""
    data.setdefault("OrganName", store.config.org_name)
    if "CodeNotation" not in data:
        data["CodeNotation"] = _notation(store, data)
    code = data.get("FondCode") or writes.file_fonds(txn.conn, data.get("FileCode"))
    fonds = writes.fonds_state(txn.conn, store.config.org_id, code)
    writes.require_open_fonds(txn.conn, fonds["FondCode"], "no new documents")
    d = dict(data, FondCode=fonds["FondCode"], Status="draft")
    writes.place_in_file(txn, d)
    return WriteResult(writes.put(txn, "document", Kind.DOCUMENT_DRAFT, actor, d))


def _relation(txn: Txn, relation: Mapping[str, Any]) -> dict[str, Any]:
    """A recall or correction names an issued văn bản đi of this box."""
    kind = relation.get("type")
    if kind not in ("recall", "correct"):
        raise ValidationError(f"relation {kind!r}", "Relation",
                              msgid="%(label)s: choose recall (thu hồi) or correction "
                              "(đính chính).")
    old = writes.current(txn, "document", id=str(relation.get("document") or ""))
    if old.data.get("Direction") != "outgoing" or old.data.get("Status") != "issued":
        raise WorkflowError("Chỉ thu hồi hoặc đính chính được văn bản đi đã ban hành.",
                            "Only an issued văn bản đi can be recalled or corrected.")
    return {"type": kind, "document": old.id,
            "number": f"{old.data.get('CodeNumber')}/{old.data.get('CodeNotation')}",
            "date": old.data.get("IssuedDate")}


def _draft(txn: Txn, doc_id: str) -> tuple[Record, dict[str, Any]]:
    rec = writes.current(txn, "document", id=doc_id)
    drafting = rec.data.get("Drafting")
    if rec.data.get("Direction") != "outgoing" or rec.data.get("Status") != "draft" \
            or not drafting:
        raise WorkflowError("Văn bản này không phải dự thảo văn bản đi đang soạn.",
                            "This is not a văn bản đi being drafted.")
    writes.check_correctable(txn.conn, rec)
    return rec, dict(drafting)


def _in_state(drafting: Mapping[str, Any], *states: str) -> None:
    state = str(drafting.get("state"))
    if state not in states:
        raise WorkflowError(f"Dự thảo {STATE_VI.get(state, state)}: không làm được bước này.",
                            f"The draft is {state}: this step is not possible now.")


def _put(txn: Txn, kind: Kind, actor: str, rec: Record, data: dict[str, Any],
         expect: int | None = None) -> Record:
    return writes.put(txn, "document", kind, actor, data, rec.id,
                      expect if expect is not None else rec.version)


def new_version(store: Store, doc_id: str, source: Source, actor: str,
                note: str | None = None, expect_version: int | None = None) -> Record:
    """Replace the draft's content with a new version (every earlier one is kept)."""
    why = _comment(note, False)
    ref_holder: list[dict[str, Any]] = []

    def job(txn: Txn) -> Record:
        rec, drafting = _draft(txn, doc_id)
        _in_state(drafting, *EDITABLE)
        versions = list(drafting.get("versions") or [])
        n = len(versions) + 1
        if not ref_holder:
            ref_holder.append(_stored(store, source, n))
        ref = ref_holder[0]
        versions.append(_version(source, ref, n, actor, clockmod.iso(txn.clock.now()), why))
        drafting.update(versions=versions,
                        steps=[*drafting.get("steps", []), _step(txn, actor, "version", why, n)])
        attachments = list(rec.data.get("Content") or [])[1:]
        data = dict(rec.data, Drafting=drafting, Content=[ref, *attachments])
        if source.template is not None:
            data.setdefault("SignerFullName", source.template["name"])
        return _put(txn, Kind.DOCUMENT_VERSION, actor, rec, data, expect_version)

    return store.writer_or_fail().call(job)


def _user(conn: sqlite3.Connection, username: str, roles: Sequence[Role], field: str,
          mat: bool) -> str:
    row = conn.execute("SELECT username, role FROM web_users WHERE username = ? AND "
                       "disabled = 0", (username,)).fetchone()
    if row is None or Role(row[1]) not in roles:
        raise ValidationError(f"{username!r} may not take this part", field,
                              msgid="%(label)s: '%(value)s' cannot approve or review drafts.",
                              value=username)
    if mat and Role(row[1]) not in CLEARED_ROLES:
        raise ValidationError(f"{username} may not see mật documents", field,
                              msgid="%(label)s: '%(value)s' may not see classified (mật) "
                              "documents.", value=username)
    return str(row[0])


def submit(store: Store, doc_id: str, approver: str, actor: str,
           reviewers: Sequence[str] = (), comment: str | None = None) -> Record:
    """To the reviewers (if any), then the approver, who is also its signer."""
    why = _comment(comment, False)

    def job(txn: Txn) -> Record:
        rec, drafting = _draft(txn, doc_id)
        _in_state(drafting, *EDITABLE)
        if not drafting.get("versions"):
            raise WorkflowError("Dự thảo chưa có nội dung: soạn theo mẫu hoặc tải tệp lên.",
                                "The draft has no content yet: compose it or upload it.")
        mat = document_is_classified(txn.conn, rec.data, rec.id)
        who = _user(txn.conn, approver, APPROVERS, "Approver", mat)
        seen = [_user(txn.conn, u, REVIEWERS, "Reviewers", mat)
                for u in dict.fromkeys(reviewers) if u and u != who]
        drafting.update(state="submitted", approver=who, reviewers=seen, approvals=[],
                        steps=[*drafting.get("steps", []), _step(txn, actor, "submit", why)])
        drafting.pop("prepared", None)
        return _put(txn, Kind.DOCUMENT_SUBMIT, actor, rec, dict(rec.data, Drafting=drafting))

    return store.writer_or_fail().call(job)


def _my_turn(drafting: Mapping[str, Any], actor: str) -> str:
    """``reviewer`` or ``approver``: the actor's part in the submitted draft."""
    pending = [u for u in drafting.get("reviewers", []) if u not in drafting.get("approvals", [])]
    if actor in pending:
        return "reviewer"
    if actor == drafting.get("approver"):
        if pending:
            raise WorkflowError("Còn chờ ý kiến của người xem xét: "
                                f"{', '.join(pending)}.",
                                f"Still waiting for the reviewers: {', '.join(pending)}.")
        return "approver"
    raise NotYoursError("Bạn không phải người xem xét hay người duyệt dự thảo này.",
                        "You are neither a reviewer nor the approver of this draft.")


def approve(store: Store, doc_id: str, actor: str, comment: str | None = None) -> Record:
    """A reviewer's or the approver's approval; the approver's prepares the PDF to sign."""
    why = _comment(comment, False)
    rec = store.get("document", doc_id)
    drafting = rec.data.get("Drafting") or {}
    prepared_ref = None
    if drafting.get("state") == "submitted" and actor == drafting.get("approver") \
            and not drafting.get("paper"):
        prepared_ref = _prepare(store, rec)

    def job(txn: Txn) -> Record:
        cur, d = _draft(txn, doc_id)
        _in_state(d, "submitted")
        part = _my_turn(d, actor)
        d["steps"] = [*d.get("steps", []), _step(txn, actor, "approve", why)]
        data = dict(cur.data)
        if part == "reviewer":
            d["approvals"] = [*d.get("approvals", []), actor]
        else:
            if cur.version != rec.version:
                raise ConflictError("the draft changed while it was being prepared; try again")
            d["state"] = "approved"
            if prepared_ref is not None:
                d["prepared"] = {"sha256": prepared_ref["sha256"],
                                 "version": len(d.get("versions", []))}
                data["Content"] = [prepared_ref, *list(cur.data.get("Content") or [])[1:]]
        data["Drafting"] = d
        return _put(txn, Kind.DOCUMENT_APPROVE, actor, cur, data)

    return store.writer_or_fail().call(job)


def _prepare(store: Store, rec: Record) -> dict[str, Any]:
    """The PDF to sign, from the current version: number and date fields, signature fields."""
    versions = (rec.data.get("Drafting") or {}).get("versions") or []
    if not versions or not versions[-1].get("placement"):
        raise WorkflowError("Dự thảo không có vị trí số, ngày và chữ ký: soạn lại theo mẫu.",
                            "The draft has no places for the number, date and signature.")
    v = versions[-1]
    with store.content.open(v["sha256"]) as fh:
        pdf = fh.read()
    prepared = pdfform.prepare(pdf, Placement.from_json(v["placement"]))
    stored = store.content.put_bytes(prepared)
    return {"sha256": stored.sha256, "size": stored.size, "name": "ban-trinh-ky.pdf",
            "mime": "application/pdf", "from": v["sha256"], "rendition": "prepared",
            "tool": "luutru outgoing.pdfform"}


def return_draft(store: Store, doc_id: str, actor: str, comment: str) -> Record:
    """Back to its drafter with a comment (required), from a reviewer or the approver."""
    why = _comment(comment, True)

    def job(txn: Txn) -> Record:
        rec, d = _draft(txn, doc_id)
        _in_state(d, "submitted", "approved")
        if actor not in (d.get("approver"), *d.get("reviewers", [])):
            raise NotYoursError("Bạn không phải người xem xét hay người duyệt dự thảo này.",
                                "You are neither a reviewer nor the approver of this draft.")
        d.update(state="returned", approvals=[],
                 steps=[*d.get("steps", []), _step(txn, actor, "return", why)])
        data = dict(rec.data, Drafting=d)
        if d.pop("prepared", None):
            data["Content"] = [version_ref(d["versions"][-1]),
                               *list(rec.data.get("Content") or [])[1:]]
        return _put(txn, Kind.DOCUMENT_RETURN, actor, rec, data)

    return store.writer_or_fail().call(job)


def version_ref(v: Mapping[str, Any]) -> dict[str, Any]:
    """The content reference of a draft version."""
    return {"sha256": v["sha256"], "size": v["size"], "name": v["name"],
            "mime": "application/pdf"}


@dataclass(frozen=True)
class DraftTask:
    """A draft awaiting someone: the leader's inbox, a drafter's work list."""

    id: str
    subject: str
    type_name: str
    state: str
    drafter: str
    submitted_at: str | None
    mine_as: str  # approver, reviewer, signer, drafter

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "subject": self.subject, "type_name": self.type_name,
                "state": self.state, "drafter": self.drafter,
                "submitted_at": self.submitted_at, "as": self.mine_as}


_DRAFTS_SQL = ('SELECT id, "Subject", "TypeName", "Drafting", "Mode" FROM documents WHERE '
               '"Direction" = \'outgoing\' AND "Status" = \'draft\' AND "CancelledDate" IS NULL '
               'AND "Drafting" IS NOT NULL')


def awaiting(conn: sqlite3.Connection, username: str,
             include_classified: bool = True) -> list[DraftTask]:
    """Drafts waiting for ``username``: to review, approve or sign; or returned to them."""
    import json

    out = []
    for rid, subject, type_name, raw, mode in conn.execute(_DRAFTS_SQL):
        if mode == "03" and not include_classified:
            continue
        d = json.loads(raw)
        state = d.get("state")
        submitted = next((s["at"] for s in reversed(d.get("steps", []))
                          if s.get("action") == "submit"), None)
        pending = [u for u in d.get("reviewers", []) if u not in d.get("approvals", [])]
        role = None
        if state == "submitted" and username in pending:
            role = "reviewer"
        elif state == "submitted" and username == d.get("approver") and not pending:
            role = "approver"
        elif state == "approved" and username == d.get("approver"):
            role = "signer"
        elif state in ("returned", "signed") and username == d.get("drafter"):
            role = "drafter"
        if role:
            out.append(DraftTask(rid, subject or "", type_name or "", state, d.get("drafter", ""),
                                 submitted, role))
    return sorted(out, key=lambda t: t.submitted_at or "")
