"""Preparing and writing documents: registering văn bản đến, drafting and issuing văn bản đi,
editing, content, hồ sơ membership. `Store` exposes each as a method; the work is done here,
on the write primitives of ``writes`` (never on the store itself)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from . import numbering, records, schema, writes
from .codelists import CodeLists
from .errors import ConflictError, NotFoundError, ValidationError
from .identifiers import format_number
from .kinds import Kind
from .records import require
from .results import Record, WriteResult
from .text import nfc
from .writer import Txn
from .writes import WriteContext


def prepare_document(codes: CodeLists, direction: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Validate and complete a document (outside the writer)."""
    raw = dict(raw)
    signer = raw.pop("SignerInfo", None)
    if isinstance(signer, Mapping):
        raw.setdefault("SignerPosition", signer.get("Position"))
        raw.setdefault("SignerFullName", signer.get("FullName"))
    data = records.normalise("document", raw, codes)
    data["Direction"] = direction
    return records.complete_document(data, codes)


def _open_fonds(
    store: WriteContext, txn: Txn, code: str | None, what: str, file_code: Any = None
) -> str:
    """The fonds a new document goes to (its hồ sơ's when it names none), refusing a closed
    one."""
    code = code or writes.file_fonds(txn.conn, file_code)
    fonds = writes.fonds_state(txn.conn, store.config.fond_code, code)
    writes.require_open_fonds(txn.conn, fonds["FondCode"], what)
    return str(fonds["FondCode"])


def register_incoming(
    store: WriteContext, raw: Mapping[str, Any], actor: str = "system"
) -> WriteResult:
    """Register a văn bản đến: the next số đến of the year is given automatically."""
    data = prepare_document(store.codes, "incoming", raw)
    # A petition or an invitation may carry no number at all; its author is always known.
    require(data, "OrganName")
    data.pop("ArrivalNumber", None)

    def job(txn: Txn) -> WriteResult:
        fond = _open_fonds(store, txn, data.get("FondCode"), "no registrations",
                           data.get("FileCode"))
        now = txn.clock.now()
        d = dict(
            data,
            FondCode=fond,
            Status="registered",
            Series=numbering.INCOMING,
            Year=now.year,
        )
        d.setdefault("ArrivalDate", now.date().isoformat())
        d["ArrivalNumber"] = numbering.next_number(
            txn.conn, d["FondCode"], numbering.INCOMING, now.year
        )
        writes.place_in_file(txn, d)
        warnings = writes.duplicate_warnings(txn.conn, d, None)
        rec = writes.put(txn, "document", Kind.DOCUMENT_REGISTER, actor, d)
        return WriteResult(rec, tuple(warnings))

    return store.writer_or_fail().call(job)


def draft_outgoing(
    store: WriteContext, raw: Mapping[str, Any], actor: str = "system"
) -> WriteResult:
    """Record a draft văn bản đi; its number is given only when it is issued."""
    data = prepare_document(store.codes, "outgoing", raw)
    for f in ("CodeNumber", "IssuedDate"):
        data.pop(f, None)
    data.setdefault("OrganName", store.config.org_name)
    if "CodeNotation" not in data:
        data["CodeNotation"] = numbering.default_notation(
            data, store.codes, store.config.agency_abbr
        )

    def job(txn: Txn) -> WriteResult:
        fond = _open_fonds(store, txn, data.get("FondCode"), "no new documents",
                           data.get("FileCode"))
        d = dict(data, FondCode=fond, Status="draft")
        writes.place_in_file(txn, d)
        return WriteResult(writes.put(txn, "document", Kind.DOCUMENT_DRAFT, actor, d))

    return store.writer_or_fail().call(job)


def issue_outgoing(store: WriteContext, doc_id: str, actor: str = "system") -> WriteResult:
    """Issue a draft: assign the next number of its series and today's date."""

    def job(txn: Txn) -> WriteResult:
        rec = writes.current(txn, "document", id=doc_id)
        if rec.data.get("Direction") != "outgoing" or rec.data.get("Status") != "draft":
            raise ConflictError(f"document {doc_id} is not an outgoing draft")
        writes.check_correctable(txn.conn, rec)
        if not (rec.data.get("Drafting") or {}).get("paper", True):
            # An electronic draft is numbered only by appliance.outgoing.issuing, after its
            # signer's signature and with the agency's over the whole.
            raise ConflictError(f"document {doc_id} is an electronic draft: it is issued "
                                "signed (appliance.outgoing)")
        now = txn.clock.now()
        series = numbering.series_for(
            "outgoing", rec.data, store.codes, store.config.numbering.own_series_types
        )
        n = numbering.next_number(txn.conn, rec.data["FondCode"], series, now.year)

        d = dict(
            rec.data,
            Status="issued",
            Series=series,
            Year=now.year,
            CodeNumber=format_number(n),
            IssuedDate=now.date().isoformat(),
        )
        warnings = writes.duplicate_warnings(txn.conn, d, rec.id)
        out = writes.put(txn, "document", Kind.DOCUMENT_ISSUE, actor, d, rec.id, rec.version)
        return WriteResult(out, tuple(warnings))

    return store.writer_or_fail().call(job)


# Never changed by a correction: what the registry assigned (numbers, series, year, fonds,
# direction); our own số and ký hiệu once issued. A wrong registration is cancelled and
# registered again (its number stays in the register, marked huỷ).
FIXED = frozenset({"Direction", "Status", "Series", "Year", "ArrivalNumber", "FondCode",
                   "Handling", "CancelledDate", "CancelReason", "Content", "DocOrdinal",
                   "Drafting", "Deliveries", "Relation"})
MAX_REASON = 500


def check_draft_editable(rec: Record) -> None:
    """A draft văn bản đi with the approver, approved or signed changes only through its
    workflow (appliance/outgoing): returned to its drafter first."""
    state = (rec.data.get("Drafting") or {}).get("state")
    if rec.data.get("Status") == "draft" and state in ("submitted", "approved", "signed"):
        raise ConflictError(
            "Dự thảo đang trình duyệt hoặc đã duyệt, đã ký: không sửa được; người duyệt trả "
            "lại thì mới sửa (the draft is with its approver, approved or signed: it must be "
            "returned before it changes)")


# What a signed văn bản đi shows on its page and in its signed PDF: changed afterwards, the
# register would no longer say what was signed.
SIGNED_FIELDS = frozenset({"CodeNumber", "CodeNotation", "IssuedDate", "Subject", "TypeName",
                           "TypeCode", "OrganName", "SignerName", "SignerPosition",
                           "PageAmount"})


def signed_issue(rec: Record) -> bool:
    """An issued văn bản đi signed on the box or elsewhere (not one issued on paper)."""
    d = rec.data
    return (d.get("Direction") == "outgoing" and d.get("Status") == "issued"
            and bool((d.get("Drafting") or {}).get("signature")))


def check_not_signed_issue(rec: Record, what: str) -> None:
    """A signed, issued văn bản đi is never cancelled nor its bản lưu taken off: Decree 30
    recalls or corrects it with a new document (appliance/outgoing)."""
    if signed_issue(rec):
        raise ConflictError(
            f"Văn bản đi đã ký số và ban hành: không {what} được; thu hồi hoặc đính chính "
            "bằng một văn bản mới (a signed, issued document is recalled or corrected by a new "
            "one, never changed)")


def _reason(reason: str | None, required: bool) -> str | None:
    text = nfc(reason or "")
    if required:
        require({"Reason": text}, "Reason")
    if len(text) > MAX_REASON:
        raise ValidationError(f"the reason has {len(text)} characters", "Reason",
                              msgid="%(label)s has %(n)d characters; at most %(max)d are "
                              "allowed.", n=len(text), max=MAX_REASON)
    return text or None


def update_document(
    store: WriteContext,
    doc_id: str,
    changes: Mapping[str, Any],
    actor: str = "system",
    expect_version: int | None = None,
    reason: str | None = None,
) -> Record:
    """Correct a document's fields (``reason``, kept in the log entry, is what the clerk
    gave: the pages and the API ask for one); it may move to another open hồ sơ, or out of
    its own (FileCode empty)."""
    bad = FIXED.intersection(changes)
    if bad:
        name = sorted(bad)[0]
        raise ValidationError(f"{', '.join(sorted(bad))} cannot be changed", name,
                              msgid="%(label)s cannot be changed.")
    patch = records.normalise("document", changes, store.codes)
    cleared = {k for k, v in changes.items() if v is None or v == ""}

    def job(txn: Txn) -> Record:
        rec = writes.current(txn, "document", id=doc_id)
        writes.check_correctable(txn.conn, rec)
        check_draft_editable(rec)
        issued = rec.data.get("Direction") == "outgoing" and rec.data.get("Status") != "draft"
        fixed = SIGNED_FIELDS if signed_issue(rec) else {"CodeNumber", "CodeNotation",
                                                         "IssuedDate"}
        own = fixed.intersection(changes) if issued else set()
        if own:
            raise ValidationError(f"{sorted(own)[0]} of an issued document cannot change",
                                  sorted(own)[0], msgid="%(label)s of an issued document "
                                  "cannot be changed: recall it and issue a new one.")
        why = _reason(reason, False)
        d = {k: v for k, v in rec.data.items() if k not in cleared}
        d.update(patch)
        d = records.complete_document(d, store.codes)
        if d.get("FileCode") != rec.data.get("FileCode"):
            d.pop("DocOrdinal", None)
            writes.place_in_file(txn, d)
        return writes.put(
            txn, "document", Kind.DOCUMENT_UPDATE, actor, d, rec.id,
            expect_version if expect_version is not None else rec.version, note=why,
        )

    return store.writer_or_fail().call(job)


def cancel_document(
    store: WriteContext, doc_id: str, reason: str, actor: str = "system"
) -> Record:
    """Cancel (huỷ) a registration or a draft: it keeps its place in the log and its number
    in the register, marked cancelled with ``reason``; nothing of it changes any more."""
    why = _reason(reason, True)

    def job(txn: Txn) -> Record:
        rec = writes.current(txn, "document", id=doc_id)
        writes.check_correctable(txn.conn, rec)
        check_not_signed_issue(rec, "huỷ")
        data = dict(rec.data, CancelledDate=txn.clock.now().date().isoformat(),
                    CancelReason=why)
        return writes.put(txn, "document", Kind.DOCUMENT_CANCEL, actor, data, rec.id,
                          rec.version, note=why)

    return store.writer_or_fail().call(job)


def remove_content(
    store: WriteContext, doc_id: str, sha256: str, reason: str, actor: str = "system"
) -> Record:
    """Take a wrong attachment off the document's current version (the file stays in the
    content store and in the log, as every earlier version does)."""
    why = _reason(reason, True)

    def job(txn: Txn) -> Record:
        rec = writes.current(txn, "document", id=doc_id)
        writes.check_correctable(txn.conn, rec)
        check_draft_editable(rec)
        check_not_signed_issue(rec, "gỡ tệp của bản lưu")
        content = [c for c in rec.data.get("Content") or () if c.get("sha256") != sha256]
        if len(content) == len(rec.data.get("Content") or ()):
            raise NotFoundError(f"document {doc_id} has no content {sha256}")
        data = {k: v for k, v in rec.data.items() if k != "Content"}
        if content:
            data["Content"] = content
        return writes.put(txn, "document", Kind.DOCUMENT_CONTENT, actor, data, rec.id,
                          rec.version, note=why)

    return store.writer_or_fail().call(job)


def remove_from_file(
    store: WriteContext, doc_id: str, file_code: str, reason: str, actor: str = "system"
) -> Record:
    """Take a document out of an open hồ sơ, with ``reason``: out of its own hồ sơ (a new
    version without it) or out of one it was added to as well (the membership ends; the log
    keeps when it began and ended). The document itself stays registered."""
    why = _reason(reason, True)

    def job(txn: Txn) -> Record:
        rec = writes.current(txn, "document", id=doc_id)
        writes.check_correctable(txn.conn, rec)
        if rec.data.get("FileCode") == file_code:
            data = {k: v for k, v in rec.data.items() if k not in ("FileCode", "DocOrdinal")}
            return writes.put(txn, "document", Kind.DOCUMENT_UPDATE, actor, data, rec.id,
                              rec.version, note=why)
        row = txn.conn.execute(
            'SELECT id FROM memberships WHERE "FileCode" = ? AND "DocumentId" = ?',
            (file_code, doc_id),
        ).fetchone()
        if row is None:
            raise ValidationError(f"document {doc_id} is not in hồ sơ {file_code}", "FileCode",
                                  msgid="%(label)s: the document is not in %(value)s.",
                                  value=file_code)
        writes.check_writable(txn.conn, writes.current(txn, "file", FileCode=file_code))
        writes.check_stays_listed(txn.conn, doc_id, file_code)
        schema.end_membership(txn.conn, str(row[0]))
        writes.append_event(txn, Kind.FILE_REMOVE_DOCUMENT, actor,
                            {"FileCode": file_code, "DocumentId": doc_id},
                            "membership", str(row[0]), note=why)
        return rec

    return store.writer_or_fail().call(job)


def register_draft(
    store: WriteContext, doc_id: str, changes: Mapping[str, Any], actor: str = "system"
) -> WriteResult:
    """Register a draft văn bản đến (e.g. a digitised scan filed before anyone read it):
    the clerk's fields complete it and it gets the next số đến, as ``register_incoming``."""
    fixed = {"Direction", "Status", "Series", "Year", "ArrivalNumber", "FondCode"}
    bad = fixed.intersection(changes)
    if bad:
        raise ValidationError(f"{', '.join(sorted(bad))} cannot be set", sorted(bad)[0])
    patch = records.normalise("document", changes, store.codes)

    def job(txn: Txn) -> WriteResult:
        rec = writes.current(txn, "document", id=doc_id)
        if rec.data.get("Direction") != "incoming" or rec.data.get("Status") != "draft":
            raise ConflictError(f"document {doc_id} is not a draft văn bản đến")
        writes.check_correctable(txn.conn, rec)
        d = records.complete_document({**rec.data, **patch}, store.codes)
        require(d, "OrganName")
        _open_fonds(store, txn, d.get("FondCode"), "no registrations")
        now = txn.clock.now()
        d.update(Status="registered", Series=numbering.INCOMING, Year=now.year)
        d.setdefault("ArrivalDate", now.date().isoformat())
        d["ArrivalNumber"] = numbering.next_number(
            txn.conn, d["FondCode"], numbering.INCOMING, now.year
        )
        if d.get("FileCode") != rec.data.get("FileCode"):
            d.pop("DocOrdinal", None)
            writes.place_in_file(txn, d)
        warnings = writes.duplicate_warnings(txn.conn, d, rec.id)
        new = writes.put(txn, "document", Kind.DOCUMENT_REGISTER, actor, d, rec.id, rec.version)
        return WriteResult(new, tuple(warnings))

    return store.writer_or_fail().call(job)


def attach_content(
    store: WriteContext, doc_id: str, files: Sequence[Mapping[str, Any]], actor: str = "system"
) -> Record:
    """Reference content already in the content store from a new version of the document."""
    for f in files:
        if not store.content.exists(str(f.get("sha256"))):
            raise NotFoundError(f"content {f.get('sha256')} was not stored first")

    def job(txn: Txn) -> Record:
        rec = writes.current(txn, "document", id=doc_id)
        writes.check_correctable(txn.conn, rec)
        check_draft_editable(rec)
        current = list(rec.data.get("Content") or [])
        known = {c["sha256"] for c in current}
        current.extend(dict(f) for f in files if f["sha256"] not in known)
        d = dict(rec.data, Content=current)
        d = records.normalise("document", d, store.codes)
        return writes.put(txn, "document", Kind.DOCUMENT_CONTENT, actor, d, rec.id, rec.version)

    return store.writer_or_fail().call(job)


def add_to_file(store: WriteContext, doc_id: str, file_code: str, actor: str = "system") -> Record:
    """Put a document into another hồ sơ as well, without copying it (spec §2.10)."""

    def job(txn: Txn) -> Record:
        doc = writes.current(txn, "document", id=doc_id)
        file = writes.current(txn, "file", FileCode=file_code)
        writes.check_writable(txn.conn, file)
        if (
            doc.data.get("FileCode") == file_code
            or txn.conn.execute(
                'SELECT 1 FROM memberships WHERE "FileCode" = ? AND "DocumentId" = ?',
                (file_code, doc_id),
            ).fetchone()
        ):
            raise ConflictError(f"document {doc_id} is already in hồ sơ {file_code}")
        d: dict[str, Any] = {"FileCode": file_code}
        writes.place_in_file(txn, d)
        d["DocumentId"] = doc_id
        return writes.put(txn, "membership", Kind.FILE_ADD_DOCUMENT, actor, d)

    return store.writer_or_fail().call(job)

