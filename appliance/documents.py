"""Writing documents: registering văn bản đến, drafting and issuing văn bản đi, editing,
content, hồ sơ membership. `Store` exposes each as a method; the work is done here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from . import numbering, records
from .errors import ConflictError, NotFoundError, ReadOnlyError, ValidationError
from .results import Record, WriteResult
from .writer import Txn

if TYPE_CHECKING:
    from .store import Store


def register_incoming(store: Store, raw: Mapping[str, Any], actor: str = "system") -> WriteResult:
    """Register a văn bản đến: the next số đến of the year is given automatically."""
    data = store.prepare_document("incoming", raw)
    for f in ("CodeNumber", "CodeNotation", "OrganName"):
        if f not in data:
            raise ValidationError(f"{f} is required for an incoming document", f)
    data.pop("ArrivalNumber", None)

    def job(txn: Txn) -> WriteResult:
        fonds = store.fonds_state(txn.conn, data.get("FondCode"))
        if fonds["Status"] != "open":
            raise ReadOnlyError(f"fonds {fonds['FondCode']} is closed: no registrations")
        now = txn.clock.now()
        d = dict(
            data,
            FondCode=fonds["FondCode"],
            Status="registered",
            Series=numbering.INCOMING,
            Year=now.year,
        )
        d.setdefault("ArrivalDate", now.date().isoformat())
        d["ArrivalNumber"] = numbering.next_number(
            txn.conn, d["FondCode"], numbering.INCOMING, now.year
        )
        store.place_in_file(txn, d)
        warnings = store.duplicate_warnings(txn, d, None)
        rec = store.put(txn, "document", "document.register", actor, d)
        return WriteResult(rec, tuple(warnings))

    return store.writer_or_fail().call(job)


def draft_outgoing(store: Store, raw: Mapping[str, Any], actor: str = "system") -> WriteResult:
    """Record a draft văn bản đi; its number is given only when it is issued."""
    data = store.prepare_document("outgoing", raw)
    for f in ("CodeNumber", "IssuedDate"):
        data.pop(f, None)
    data.setdefault("OrganName", store.config.org_name)
    if "CodeNotation" not in data:
        data["CodeNotation"] = numbering.default_notation(
            data, store.codes, store.config.agency_abbr
        )

    def job(txn: Txn) -> WriteResult:
        fonds = store.fonds_state(txn.conn, data.get("FondCode"))
        if fonds["Status"] != "open":
            raise ReadOnlyError(f"fonds {fonds['FondCode']} is closed: no new documents")
        d = dict(data, FondCode=fonds["FondCode"], Status="draft")
        store.place_in_file(txn, d)
        return WriteResult(store.put(txn, "document", "document.draft", actor, d))

    return store.writer_or_fail().call(job)


def issue_outgoing(store: Store, doc_id: str, actor: str = "system") -> WriteResult:
    """Issue a draft: assign the next number of its series and today's date."""

    def job(txn: Txn) -> WriteResult:
        rec = store.current(txn, "document", id=doc_id)
        if rec.data.get("Direction") != "outgoing" or rec.data.get("Status") != "draft":
            raise ConflictError(f"document {doc_id} is not an outgoing draft")
        store.check_editable(txn, rec)
        now = txn.clock.now()
        series = numbering.series_for(
            "outgoing", rec.data, store.codes, store.config.numbering.own_series_types
        )
        n = numbering.next_number(txn.conn, rec.data["FondCode"], series, now.year)
        from .identifiers import format_number

        d = dict(
            rec.data,
            Status="issued",
            Series=series,
            Year=now.year,
            CodeNumber=format_number(n),
            IssuedDate=now.date().isoformat(),
        )
        warnings = store.duplicate_warnings(txn, d, rec.id)
        out = store.put(txn, "document", "document.issue", actor, d, rec.id, rec.version)
        return WriteResult(out, tuple(warnings))

    return store.writer_or_fail().call(job)


def update_document(store: Store, doc_id: str,
    changes: Mapping[str, Any],
    actor: str = "system",
    expect_version: int | None = None) -> Record:
    """Change a document's descriptive fields; numbers, direction and series are fixed."""
    fixed = {"Direction", "Status", "Series", "Year", "CodeNumber", "ArrivalNumber", "FondCode"}
    bad = fixed.intersection(changes)
    if bad:
        raise ValidationError(f"{', '.join(sorted(bad))} cannot be changed", sorted(bad)[0])
    patch = records.normalise("document", changes, store.codes)
    cleared = {k for k, v in changes.items() if v is None or v == ""}

    def job(txn: Txn) -> Record:
        rec = store.current(txn, "document", id=doc_id)
        store.check_editable(txn, rec)
        d = {k: v for k, v in rec.data.items() if k not in cleared}
        d.update(patch)
        d = records.complete_document(d, store.codes)
        if "FileCode" in patch and patch["FileCode"] != rec.data.get("FileCode"):
            d.pop("DocOrdinal", None)
            store.place_in_file(txn, d)
        return store.put(
            txn,
            "document",
            "document.update",
            actor,
            d,
            rec.id,
            expect_version if expect_version is not None else rec.version,
        )

    return store.writer_or_fail().call(job)


def register_draft(
    store: Store, doc_id: str, changes: Mapping[str, Any], actor: str = "system"
) -> WriteResult:
    """Register a draft văn bản đến (e.g. a digitised scan filed before anyone read it):
    the clerk's fields complete it and it gets the next số đến, as ``register_incoming``."""
    fixed = {"Direction", "Status", "Series", "Year", "ArrivalNumber", "FondCode"}
    bad = fixed.intersection(changes)
    if bad:
        raise ValidationError(f"{', '.join(sorted(bad))} cannot be set", sorted(bad)[0])
    patch = records.normalise("document", changes, store.codes)

    def job(txn: Txn) -> WriteResult:
        rec = store.current(txn, "document", id=doc_id)
        if rec.data.get("Direction") != "incoming" or rec.data.get("Status") != "draft":
            raise ConflictError(f"document {doc_id} is not a draft văn bản đến")
        store.check_editable(txn, rec)
        d = records.complete_document({**rec.data, **patch}, store.codes)
        for f in ("CodeNumber", "CodeNotation", "OrganName"):
            if not d.get(f):
                raise ValidationError(f"{f} is required to register a document", f)
        fonds = store.fonds_state(txn.conn, d.get("FondCode"))
        if fonds["Status"] != "open":
            raise ReadOnlyError(f"fonds {fonds['FondCode']} is closed: no registrations")
        now = txn.clock.now()
        d.update(Status="registered", Series=numbering.INCOMING, Year=now.year)
        d.setdefault("ArrivalDate", now.date().isoformat())
        d["ArrivalNumber"] = numbering.next_number(
            txn.conn, d["FondCode"], numbering.INCOMING, now.year
        )
        if d.get("FileCode") != rec.data.get("FileCode"):
            d.pop("DocOrdinal", None)
            store.place_in_file(txn, d)
        warnings = store.duplicate_warnings(txn, d, rec.id)
        new = store.put(txn, "document", "document.register", actor, d, rec.id, rec.version)
        return WriteResult(new, tuple(warnings))

    return store.writer_or_fail().call(job)


def attach_content(
    store: Store, doc_id: str, files: Sequence[Mapping[str, Any]], actor: str = "system"
) -> Record:
    """Reference content already in the content store from a new version of the document."""
    for f in files:
        if not store.content.exists(str(f.get("sha256"))):
            raise NotFoundError(f"content {f.get('sha256')} was not stored first")

    def job(txn: Txn) -> Record:
        rec = store.current(txn, "document", id=doc_id)
        store.check_editable(txn, rec)
        current = list(rec.data.get("Content") or [])
        known = {c["sha256"] for c in current}
        current.extend(dict(f) for f in files if f["sha256"] not in known)
        d = dict(rec.data, Content=current)
        d = records.normalise("document", d, store.codes)
        return store.put(txn, "document", "document.content", actor, d, rec.id, rec.version)

    return store.writer_or_fail().call(job)


def add_to_file(store: Store, doc_id: str, file_code: str, actor: str = "system") -> Record:
    """Put a document into another hồ sơ as well, without copying it (spec §2.10)."""

    def job(txn: Txn) -> Record:
        doc = store.current(txn, "document", id=doc_id)
        file = store.current(txn, "file", FileCode=file_code)
        store.check_editable(txn, file)
        if (
            doc.data.get("FileCode") == file_code
            or txn.conn.execute(
                'SELECT 1 FROM memberships WHERE "FileCode" = ? AND "DocumentId" = ?',
                (file_code, doc_id),
            ).fetchone()
        ):
            raise ConflictError(f"document {doc_id} is already in hồ sơ {file_code}")
        d: dict[str, Any] = {"FileCode": file_code}
        store.place_in_file(txn, d)
        d["DocumentId"] = doc_id
        return store.put(txn, "membership", "file.add_document", actor, d)

    return store.writer_or_fail().call(job)

