"""A document's fields as people read them (labels, code-list labels, dd/mm/yyyy) and a
correction as a sentence ("Ngày đến: 03/09/2025 → 02/09/2025")."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any

from appliance.codelists import CodeLists
from appliance.errors import LuutruError
from appliance.fields import Kind, field_map
from appliance.kinds import Kind as EntryKind

from .messages import field_label
from .render import _vndate

SHOWN_FIELDS = (
    "Direction", "Status", "ArrivalNumber", "ArrivalDate", "TypeName", "CodeNumber",
    "CodeNotation", "IssuedDate", "OrganName", "Subject", "PageAmount", "SignerPosition",
    "SignerFullName", "To", "ToPlaces", "Priority", "DueDate", "IssuedAmount", "Mode",
    "Maintenance", "Language", "FileCode", "DocOrdinal", "FondCode", "Series", "Year",
    "Keyword", "Description", "TraceHeaderList", "CancelledDate", "CancelReason",
)
# Fields a correction never shows as such (the registry's own bookkeeping).
_QUIET = {"Handling", "Content", "DocOrdinal", "TypeCode", "Series", "Year", "Drafting",
          "Deliveries", "Relation"}
_VALUES = {
    "Direction": {"incoming": "Incoming document", "outgoing": "Outgoing document"},
    "Status": {"draft": "Draft", "registered": "Registered", "issued": "Issued",
               "recalled": "Recalled"},
    "Series": {"den": "Incoming register", "di": "Outgoing register",
               "mat": "Classified register", "sao": "Copies register"},
}


# What each kind of log entry is called in a record's history (never its code name).
KIND_LABELS = {
    EntryKind.DOCUMENT_REGISTER: "Registration",
    EntryKind.DOCUMENT_DRAFT: "Drafting",
    EntryKind.DOCUMENT_ISSUE: "Issue",
    EntryKind.DOCUMENT_UPDATE: "Correction",
    EntryKind.DOCUMENT_CONTENT: "Change of files",
    EntryKind.DOCUMENT_IMPORT: "Imported from an old register",
    EntryKind.DOCUMENT_DIGITISE: "Scanning",
    EntryKind.DOCUMENT_RECALL: "Recall",
    EntryKind.DOCUMENT_DESTROY: "Destruction",
    EntryKind.DOCUMENT_CANCEL: "Cancellation",
    EntryKind.DOCUMENT_DIRECT: "Direction given",
    EntryKind.DOCUMENT_PROGRESS: "Handling progress",
    EntryKind.DOCUMENT_TEXT: "Text recognised (OCR)",
    EntryKind.DOCUMENT_LTV: "Signature made long-term valid",
    EntryKind.FILE_OPEN: "File opened",
    EntryKind.FILE_CLOSE: "File closed",
    EntryKind.FILE_ADD_DOCUMENT: "Added to a file",
    EntryKind.FILE_REMOVE_DOCUMENT: "Taken out of a file",
    EntryKind.ARCHIVE_FREEZE: "Freeze",
    EntryKind.ARCHIVE_UNFREEZE: "Freeze lifted",
    EntryKind.ARCHIVE_RECALL: "Recall",
    EntryKind.POSTAL_SEND: "Sent by post",
    EntryKind.COPY_USE: "Kept copy lent",
    EntryKind.COPY_RETURN: "Kept copy returned",
    EntryKind.AUDIT_VIEW: "View",
    EntryKind.AUDIT_PRINT: "Print",
    EntryKind.AUDIT_DOWNLOAD: "Download",
    EntryKind.AUDIT_LIST: "Listing",
    EntryKind.DOCUMENT_MIGRATE: "Format migrated",
    EntryKind.DOCUMENT_VERSION: "New draft version",
    EntryKind.DOCUMENT_SUBMIT: "Submitted for approval",
    EntryKind.DOCUMENT_APPROVE: "Draft approved",
    EntryKind.DOCUMENT_RETURN: "Draft returned for changes",
    EntryKind.DOCUMENT_SIGN: "Draft signed",
    EntryKind.DOCUMENT_DELIVERY: "Delivery status changed",
    EntryKind.FILE_CONTENTS: "Contents of the file listed",
    EntryKind.ARCHIVE_HOLD: "Placed on hold",
    EntryKind.ARCHIVE_ACCESSION: "Accessioned",
    EntryKind.ARCHIVE_TRANSFER: "Transferred to the archive",
    EntryKind.ARCHIVE_DESTROY: "Destroyed",
    EntryKind.ARCHIVE_PACKAGE: "Packaged for transfer",
    EntryKind.ARCHIVE_EXPORT: "Exported",
    EntryKind.ARCHIVE_PUBLISH: "Published",
    EntryKind.ARCHIVE_UNPUBLISH: "Publication withdrawn",
    EntryKind.EDXML_RECEIVED: "Received electronically",
    EntryKind.EDXML_VERIFIED: "Signatures checked",
    EntryKind.EDXML_REGISTERED: "Registered from an electronic package",
    EntryKind.EDXML_RETURNED: "Returned to the sender",
    EntryKind.EDXML_STATUS_SENT: "Status message sent",
    EntryKind.EDXML_STATUS_RECEIVED: "Status message received",
    EntryKind.EDXML_REFUSED: "Electronic package refused",
    EntryKind.EDXML_EXPORTED: "Exported as edXML",
    EntryKind.USE_REQUEST: "Requested for use",
    EntryKind.USE_DECIDE: "Use request decided",
    EntryKind.USE_DELIVER: "Delivered for use",
}


def kind_label(kind: str, gettext: Callable[[str], str]) -> str:
    """A log entry's kind as people call it."""
    return gettext(KIND_LABELS.get(kind, "Other change"))  # type: ignore[call-overload]


def display_value(name: str, value: Any, codes: CodeLists,
                  gettext: Callable[[str], str]) -> str:
    """One field's value as people read it."""
    f = field_map("document").get(name)
    if value is None or value == "":
        return "—"
    if f is not None and f.code_list:
        with contextlib.suppress(LuutruError):
            value = codes[f.code_list].by_code(str(value)).label
    if name == "To" and isinstance(value, list):
        return "; ".join(str(r.get("OrganName", "")) for r in value)
    if name in _VALUES:
        return gettext(_VALUES[name].get(str(value), str(value)))
    if f is not None and f.kind is Kind.DATE:
        return _vndate(value)
    return str(value)


def field_rows(data: Mapping[str, Any], codes: CodeLists,
               gettext: Callable[[str], str]) -> list[tuple[str, str]]:
    """(label, value) of every shown field the document has; a received document without a
    number (an đơn, an invitation) says so where its number would be."""
    rows = []
    for n in SHOWN_FIELDS:
        if n in data:
            rows.append((field_label(n, gettext), display_value(n, data[n], codes, gettext)))
        elif n == "CodeNumber" and data.get("Direction") == "incoming" \
                and not data.get("CodeNotation"):
            rows.append((gettext("Number and notation"), gettext("No number")))
    return rows


def describe_change(before: Mapping[str, Any], after: Mapping[str, Any], codes: CodeLists,
                    gettext: Callable[[str], str]) -> list[str]:
    """What a new version changed, one sentence per field: 'Ngày đến: a → b'."""
    out = []
    for name in (*SHOWN_FIELDS, *(k for k in after if k not in SHOWN_FIELDS)):
        if name in _QUIET or before.get(name) == after.get(name):
            continue
        if name not in before and name not in after:
            continue
        old = display_value(name, before.get(name), codes, gettext)
        new = display_value(name, after.get(name), codes, gettext)
        out.append(f"{field_label(name, gettext)}: {old} → {new}")
    out += _handling_change(before.get("Handling") or {}, after.get("Handling") or {}, gettext)
    out += _outgoing_change(before, after, gettext)
    old_files = {c["sha256"]: c.get("name") for c in before.get("Content") or ()}
    new_files = {c["sha256"]: c.get("name") for c in after.get("Content") or ()}
    for sha in new_files.keys() - old_files.keys():
        out.append(gettext("File added: %(name)s") % {"name": new_files[sha] or sha[:8]})
    for sha in old_files.keys() - new_files.keys():
        out.append(gettext("File removed: %(name)s") % {"name": old_files[sha] or sha[:8]})
    return out


_STEPS = {"create": "drafted", "version": "new version", "submit": "submitted",
          "approve": "approved", "return": "returned", "sign": "signed", "issue": "issued"}
_DELIVERY = {"pending": "waiting to be sent", "packaged": "edXML package made", "sent": "sent",
             "received": "received by the addressee",
             "returned": "returned to sender"}


def _outgoing_change(before: Mapping[str, Any], after: Mapping[str, Any],
                     gettext: Callable[[str], str]) -> list[str]:
    """A văn bản đi's new workflow steps (with their comments) and delivery statuses."""
    out = []
    steps = (after.get("Drafting") or {}).get("steps") or []
    for st in steps[len((before.get("Drafting") or {}).get("steps") or []):]:
        text = gettext(_STEPS.get(str(st.get("action")), str(st.get("action"))))
        out.append(f"{gettext('Draft')}: {text}" + (f" — {st['comment']}"
                                                    if st.get("comment") else ""))
    old = {d.get("n"): d.get("status") for d in before.get("Deliveries") or ()}
    for d in after.get("Deliveries") or ():
        if old.get(d.get("n")) != d.get("status"):
            to = (d.get("to") or {}).get("OrganName") or (d.get("to") or {}).get("username", "")
            status = gettext(_DELIVERY.get(str(d.get("status")), str(d.get("status"))))
            out.append(f"{gettext('Delivery')} {d.get('n')} ({to}): {status}")
    return out


def _handling_change(before: Mapping[str, Any], after: Mapping[str, Any],
                     gettext: Callable[[str], str]) -> list[str]:
    """The direction given or changed, and a handler's new progress note, in words."""
    out = []
    if after.get("direction") and after.get("direction") != before.get("direction"):
        out.append(f"{gettext('Direction')}: {after['direction']}")
    notes = after.get("progress") or []
    if len(notes) > len(before.get("progress") or []):
        last = notes[-1]
        done = f" ({gettext('Handled')})" if last.get("done") else ""
        out.append(f"{gettext('Progress')}: {last.get('note', '')}{done}")
    return out
