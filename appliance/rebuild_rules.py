"""What the rebuild knows of each log kind: the kinds it replays (records, archive, edXML, uses
of the archive, publications), the kinds known to project nothing, the tables it rewrites, and
its errors and report. A kind the ledger accepts must be known here (``known_kind``); replaying
an entry is ``replay.py``'s, running a rebuild ``rebuild.py``'s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import logbooks, schema
from .errors import LuutruError
from .kinds import Kind
from .numbering import NUMBER_USED_KIND
from .search import OCR_TEXT_KIND

# Kinds whose entry is a record's full new version (Store.put): projected into schema.TABLES.
RECORD_KINDS = frozenset(
    {
        Kind.FONDS_CREATE,  # store.create_fonds
        Kind.FONDS_IMPORT,  # legacy.insert
        Kind.FONDS_CLOSE,  # store.close_fonds, archive.fonds.close_fonds
        Kind.FILE_OPEN,  # store.insert_file (also legacy hồ sơ)
        Kind.FILE_CLOSE,  # archive.closing.close_in_txn
        Kind.FILE_ADD_DOCUMENT,  # documents.add_to_file (a membership)
        Kind.DOCUMENT_REGISTER,  # documents.register_incoming / register_draft
        Kind.DOCUMENT_DRAFT,  # documents.draft_outgoing
        Kind.DOCUMENT_ISSUE,  # documents.issue_outgoing
        Kind.DOCUMENT_UPDATE,  # documents.update_document
        Kind.DOCUMENT_CONTENT,  # documents.attach_content
        Kind.DOCUMENT_IMPORT,  # legacy.insert
        Kind.DOCUMENT_DIGITISE,  # capture.filing.new_document
        Kind.DOCUMENT_RECALL,  # archive.holds.recall
        Kind.DOCUMENT_DESTROY,  # archive.destruction.execute
        Kind.DOCUMENT_CANCEL,  # documents.cancel_document
        Kind.DOCUMENT_DIRECT,  # handling.direct
        Kind.DOCUMENT_PROGRESS,  # handling.report_progress
        Kind.DOCUMENT_LTV,  # signature_upgrade.record_upgrade
        Kind.DOCUMENT_MIGRATE,  # renditions.migrate
        Kind.DOCUMENT_VERSION,  # outgoing.drafting.new_version
        Kind.DOCUMENT_SUBMIT,  # outgoing.drafting.submit
        Kind.DOCUMENT_APPROVE,  # outgoing.drafting.approve
        Kind.DOCUMENT_RETURN,  # outgoing.drafting.return_draft
        Kind.DOCUMENT_SIGN,  # outgoing.signing
        Kind.DOCUMENT_DELIVERY,  # outgoing.deliveries.set_status
    }
)
CODELISTS_KIND = Kind.CODELISTS_LOAD  # store.load_codelists
# archive/use.py: each entry is a use request's full new state, projected into use_requests.
USE_KINDS = frozenset({Kind.USE_REQUEST, Kind.USE_DECIDE, Kind.USE_DELIVER})
# archive/publication.py: releases to the province's catalogue, into publication_items (an
# archive.transfer entry writes its items there too, besides archive_custody).
PUBLICATION_KINDS = frozenset({Kind.ARCHIVE_PUBLISH, Kind.ARCHIVE_UNPUBLISH})
# Archive kinds and the archive table each one writes (archive.state, archive.destruction).
ARCHIVE_KINDS = frozenset(
    {
        Kind.ARCHIVE_FREEZE,
        Kind.ARCHIVE_UNFREEZE,
        Kind.ARCHIVE_RECALL,
        Kind.ARCHIVE_ACCESSION,
        Kind.ARCHIVE_HOLD,
        Kind.ARCHIVE_TRANSFER,
        Kind.ARCHIVE_DESTRUCTION_LIST,
        Kind.ARCHIVE_DESTRUCTION_DECISION,
        Kind.ARCHIVE_DESTROY,
        Kind.ARCHIVE_BACKUP,
        Kind.ARCHIVE_FIXITY_AUDIT,
        Kind.ARCHIVE_HEAL,
        Kind.ARCHIVE_RESTORE,
    }
)
# archive_audits.kind of each audit entry kind, and whether the entry's own data says ok.
ARCHIVE_AUDITS: dict[str, tuple[str, bool]] = {
    Kind.ARCHIVE_BACKUP: ("backup", False),  # backup._log_event(..., "backup", True, ...)
    Kind.ARCHIVE_FIXITY_AUDIT: ("fixity", True),  # fixity.audit: ok = res.ok (data["ok"])
    Kind.ARCHIVE_HEAL: ("heal", False),
    Kind.ARCHIVE_RESTORE: ("restore", False),  # restore._log_restore: always True
}
# The electronic inbox (appliance/edxml/inbox.py): replayed by the live path's own apply.
EDXML_KINDS = frozenset(
    {
        Kind.EDXML_RECEIVED,
        Kind.EDXML_VERIFIED,
        Kind.EDXML_REGISTERED,
        Kind.EDXML_RETURNED,
        Kind.EDXML_STATUS_SENT,
        Kind.EDXML_REFUSED,
        Kind.EDXML_STATUS_RECEIVED,
    }
)
# Kinds known to project nothing that this rebuild can write.
INERT_KINDS = frozenset(
    {
        Kind.FILE_CONTENTS,  # archive.closing: the mục lục; file.close carries the record
        Kind.ARCHIVE_PACKAGE,  # archive.sip: a SIP was built
        Kind.ARCHIVE_EXPORT,  # archive.export: PDF + XML written
        Kind.ARCHIVE_FONDS_EXPORT,  # archive.fonds: a fonds handed over
        Kind.SYNC_RECEIPT,  # sync.agent.receipts: the centre's cosignature, read from the log
        Kind.DEVICE_HANDOVER,  # handover: read from the log by verify
        Kind.LOG_TAIL_RESTORED,  # sync.agent.tail: what was brought back and what was lost
        Kind.PROVISION_IDENTITY,  # provision.identity
        Kind.PROVISION_BOOT_EVIDENCE,  # provision.wizard
        Kind.SYSTEM_UPDATE_PREPARE,  # firmware_hooks.update
        Kind.SYSTEM_UPDATE_DONE,
        Kind.EDXML_EXPORTED,  # edxml.intake.export_document: the package is content
        Kind.EDXML_TRUST,  # edxml.intake.trust_add/remove: the roots are files, not rows
    }
)
INERT_PREFIXES = (
    "audit.",  # Store.audit: views, prints, downloads
    # appliance.accounts: web_users/web_sessions/web_tokens hold password and token hashes that
    # are never logged, so accounts cannot be rebuilt from the log (see the report's notes).
    "user.",
)

EDXML_TABLES = ("edxml_inbox", "edxml_outbox", "edxml_refused", "edxml_answers")
ARCHIVE_TABLES = (
    "archive_holds",
    "archive_custody",
    "archive_destruction",
    "archive_destroyed_content",
    "archive_audits",
    "use_requests",
    "publication_items",
)
CORE_TABLES = (
    *schema.TABLES.values(),
    "document_fts",
    "search_pending",  # the search index's rows not yet merged into document_fts
    "document_text",
    "content",
    "codelist_versions",
    "number_counters",
    *logbooks.TABLES,
)


CodelistSource = Callable[[str], bytes | None]


class RebuildError(LuutruError):
    """The log cannot be replayed into the projections; nothing of the rebuild should be kept."""

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index


class UnknownKindError(RebuildError):
    """A log entry's kind has no replay rule and is not known to project nothing."""

    def __init__(self, kind: str, index: int) -> None:
        super().__init__(
            f"log entry {index} has kind {kind!r}, which has no replay rule in "
            "appliance/rebuild_rules.py and is not listed as projecting nothing: add it to "
            "RECORD_KINDS, a replay rule, or INERT_KINDS",
            index,
        )
        self.kind = kind


@dataclass
class RebuildReport:
    """What a rebuild read and wrote."""

    entries: int = 0  # log rows read
    replayed: int = 0  # entries that wrote a projection row
    withheld: int = 0  # empty rows: a classified record's entry held as its leaf hash only
    inert: dict[str, int] = field(default_factory=dict)  # kinds seen that project nothing
    unknown: dict[str, int] = field(default_factory=dict)  # unknown kinds let through
    tables: dict[str, int] = field(default_factory=dict)  # rows per projection table after
    # Records whose first visible version is not 1 or whose versions skip: some of their
    # entries were withheld (a trailing withheld version cannot be seen at all).
    version_gaps: int = 0
    missing_codelists: list[str] = field(default_factory=list)  # versions without a body

    def to_json(self) -> dict[str, Any]:
        return {
            "entries": self.entries,
            "replayed": self.replayed,
            "withheld": self.withheld,
            "inert": dict(sorted(self.inert.items())),
            "unknown": dict(sorted(self.unknown.items())),
            "tables": dict(self.tables),
            "version_gaps": self.version_gaps,
            "missing_codelists": list(self.missing_codelists),
        }


def is_inert(kind: str) -> bool:
    return kind in INERT_KINDS or kind.startswith(INERT_PREFIXES)


def known_kind(kind: str) -> bool:
    """Whether the rebuild has a rule for ``kind`` (a replay, or knowing it projects nothing)."""
    return (
        kind in RECORD_KINDS
        or kind in ARCHIVE_KINDS
        or kind in EDXML_KINDS
        or kind in (OCR_TEXT_KIND, CODELISTS_KIND, NUMBER_USED_KIND, Kind.FILE_REMOVE_DOCUMENT)
        or kind in logbooks.PROJECTORS
        or kind in USE_KINDS
        or kind in PUBLICATION_KINDS
        or is_inert(kind)
    )
