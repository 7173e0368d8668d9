"""Rebuild every projection from the log alone (a replacement box restored from the centre).

Every change is a log entry carrying the full new version of what it changes, and the tables
the UI reads are projections of the log written in the same transaction by the live code
paths. ``rebuild_projections`` empties those tables and replays the log into them, entry kind
by entry kind, as the live path wrote them:

- record entries (``RECORD_KINDS``: a record's full new version) → fonds, files, documents,
  memberships (rids follow each record's first visible version, as live inserts did), and
  the content table from each document version's ``Content`` list (first log index wins);
- ``document.text`` → document_text (the latest text of each document);
- ``codelists.load`` → codelist_versions (the entry names the version and its SHA-256; the
  body is not in the log and comes from ``codelist_body`` or the bundled lists);
- ``archive.*`` → the archive's tables, through ``archive.state``'s own writers;
- ``edxml.*`` → the electronic inbox and its status messages, through ``edxml.inbox.apply``
  (the function the live path calls);
- postal sendings, uses of kept copies, the Danh mục's headings and approvals, the agency's
  identifiers and units → their tables, through the live paths' own projectors (logbooks.py);
- then the search index from the documents and their OCR text (a bulk write: straight into
  document_fts, nothing left pending), and the Decree 30 number counters from the numbers
  the documents hold.

An empty log row is an entry held as its leaf hash only (a classified record's entry that never
left the old appliance): it is skipped and counted. A kind with no replay rule that is not
known to project nothing (``INERT_KINDS``, ``INERT_PREFIXES``) stops the rebuild, so a kind
added later without a rule here is noticed.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import cbor2

from . import logbooks, schema
from .errors import LuutruError
from .kinds import Kind
from .ledger import Entry
from .numbering import NUMBER_USED_KIND, observe_number
from .search import OCR_TEXT_KIND, drop_index_rows, write_index

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
_AUDITS: dict[str, tuple[str, bool]] = {
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

EDXML_TABLES = ("edxml_inbox", "edxml_outbox")
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

CHUNK_ENTRIES = 5000  # log rows read per query
CHUNK_BYTES = 32 * 2**20  # flush pending rows once this much entry data is held
FTS_CHUNK = 5000  # search rows written per statement (each a segment FTS5 merges later)

# The number counters as the live path leaves them: next_number and observe_number only ever
# raise a counter to a number a document then holds, so each counter is the highest number its
# (fonds, series, year) holds. verify._check_counters checks exactly this.
_COUNTERS_SQL = (
    "INSERT INTO number_counters (fond, series, year, last) "
    'SELECT "FondCode", "Series", "Year", max(CASE WHEN "Direction" = \'incoming\' '
    'THEN "ArrivalNumber" ELSE CAST("CodeNumber" AS INTEGER) END) AS n FROM documents '
    'WHERE "Series" IS NOT NULL AND "Year" IS NOT NULL GROUP BY 1, 2, 3 HAVING n IS NOT NULL'
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
            "appliance/rebuild.py and is not listed as projecting nothing: add it to "
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


@dataclass
class _ConnTxn:
    """What archive.state's writers use of a writer Txn: the connection."""

    conn: sqlite3.Connection


class _Replay:
    def __init__(
        self,
        conn: sqlite3.Connection,
        report: RebuildReport,
        codelist_body: CodelistSource,
        allow_unknown: bool,
        allow_missing_codelists: bool,
    ) -> None:
        self.conn = conn
        self.report = report
        self.codelist_body = codelist_body
        self.allow_unknown = allow_unknown
        self.allow_missing_codelists = allow_missing_codelists
        self.txn = cast(Any, _ConnTxn(conn))  # archive.state takes a Txn; it uses .conn only
        self.archive_ready = False
        self.inert: Counter[str] = Counter()
        self.numbers_used: dict[tuple[str, str, int], int] = {}
        self.unknown: Counter[str] = Counter()
        # Pending rows of the current chunk, flushed in log order.
        # record type -> id -> the row's parameters; a later version in the chunk replaces
        # the row but keeps the id's place, so rids follow each record's first appearance.
        self.records: dict[str, dict[str, tuple[Any, ...]]] = {t: {} for t in schema.TABLES}
        self.content: list[tuple[str, int, str | None, int]] = []
        self.texts: list[tuple[str, str, str, int]] = []
        self.pending_bytes = 0
        # Per record of the chunk: (first version seen in the chunk, last version seen), to
        # notice versions that are missing (withheld) without keeping every record in memory.
        self.seen: dict[str, dict[str, tuple[int, int]]] = {t: {} for t in schema.TABLES}
        self.upserts = {t: _upsert_sql(t) for t in schema.TABLES}

    # -- the log pass --------------------------------------------------------------------

    def run(self) -> None:
        start = 0
        while True:
            rows = self.conn.execute(
                "SELECT idx, entry FROM log WHERE idx >= ? ORDER BY idx LIMIT ?",
                (start, CHUNK_ENTRIES),
            ).fetchall()
            if not rows:
                break
            for idx, raw in rows:
                self.entry(int(idx), bytes(raw))
                if self.pending_bytes >= CHUNK_BYTES:
                    self.flush()
            self.flush()
            start = int(rows[-1][0]) + 1
        self.report.inert = dict(self.inert)
        self.report.unknown = dict(self.unknown)

    def entry(self, idx: int, raw: bytes) -> None:
        if idx != self.report.entries:  # a row missing (not withheld): the log is incomplete
            raise RebuildError(
                f"log entries {self.report.entries}–{idx - 1} are missing from the log", idx
            )
        self.report.entries += 1
        if not raw:
            self.report.withheld += 1
            return
        try:
            entry = Entry.from_map(cbor2.loads(raw))
        except (LuutruError, ValueError, cbor2.CBORDecodeError) as exc:
            raise RebuildError(f"log entry {idx} is not a valid entry: {exc}", idx) from exc
        if entry.index != idx:
            raise RebuildError(f"log entry stored at {idx} says it is entry {entry.index}", idx)
        kind = entry.kind
        try:
            if kind in RECORD_KINDS:
                self.record(entry, len(raw))
            elif kind == OCR_TEXT_KIND:
                self.text(entry, len(raw))
            elif kind in ARCHIVE_KINDS:
                self.flush()  # archive rules read nothing pending, but keep log order exact
                self.archive(entry)
            elif kind in EDXML_KINDS:
                self.flush()
                from .edxml.inbox import apply as apply_edxml

                apply_edxml(self.conn, entry)
            elif kind in logbooks.PROJECTORS:
                self.flush()  # they join documents only when read, but keep log order exact
                logbooks.PROJECTORS[kind](self.conn, entry)
            elif kind == Kind.FILE_REMOVE_DOCUMENT:
                self.flush()
                schema.end_membership(self.conn, str(entry.id))
            elif kind in USE_KINDS or kind in PUBLICATION_KINDS:
                self.flush()
                self.use_or_publication(entry)
            elif kind == CODELISTS_KIND:
                self.codelists(entry)
            elif kind == NUMBER_USED_KIND:
                self.number_used(entry)
            elif is_inert(kind):
                self.inert[kind] += 1
                return
            elif not self.allow_unknown:
                raise UnknownKindError(kind, idx)
            elif entry.type in schema.TABLES and entry.id and entry.version is not None:
                self.unknown[kind] += 1
                self.record(entry, len(raw))  # a record's version, whatever its kind
            else:
                self.unknown[kind] += 1
                return
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise RebuildError(
                f"log entry {idx} ({kind}) lacks what its replay needs: {exc!r}", idx
            ) from exc
        except sqlite3.IntegrityError as exc:
            raise RebuildError(
                f"log entry {idx} ({kind}): the database refuses its projection ({exc})", idx
            ) from exc
        self.report.replayed += 1

    def record(self, entry: Entry, size: int) -> None:
        record_type = entry.type
        if record_type not in schema.TABLES or not entry.id or entry.version is None:
            raise RebuildError(
                f"log entry {entry.index} ({entry.kind}) is not a record version "
                f"(type {record_type!r}, id {entry.id!r}, version {entry.version!r})",
                entry.index,
            )
        data = entry.data or {}
        version = int(entry.version)
        seen = self.seen[record_type]
        if entry.id in seen:
            first, last = seen[entry.id]
            if version != last + 1:
                self.report.version_gaps += 1
            seen[entry.id] = (first, version)
        else:
            seen[entry.id] = (version, version)
        params = (entry.id, entry.version, entry.index, *schema.row_values(record_type, data))
        self.records[record_type][entry.id] = params
        if record_type == "document":
            for c in data.get("Content") or ():
                self.content.append((c["sha256"], c["size"], c["mime"], entry.index))
        self.pending_bytes += size

    def text(self, entry: Entry, size: int) -> None:
        data = entry.data or {}
        if not entry.id:
            raise RebuildError(
                f"log entry {entry.index} (OCR text) names no document", entry.index
            )
        self.texts.append((entry.id, data["sha256"], data["text"], entry.index))
        self.pending_bytes += size

    def number_used(self, entry: Entry) -> None:
        data = entry.data or {}
        try:
            key = (str(data["FondCode"]), str(data["Series"]), int(data["Year"]))
            n = int(data["Number"])
        except (KeyError, TypeError, ValueError) as exc:
            raise RebuildError(
                f"log entry {entry.index} ({NUMBER_USED_KIND}) lacks {exc}", entry.index
            ) from exc
        self.numbers_used[key] = max(self.numbers_used.get(key, 0), n)

    def codelists(self, entry: Entry) -> None:
        data = entry.data or {}
        version, sha = str(data["version"]), str(data["sha256"])
        body = self.codelist_body(sha)
        if body is not None and hashlib.sha256(body).hexdigest() != sha:
            raise RebuildError(
                f"the body given for code-list version {version} does not have the SHA-256 "
                f"{sha} that log entry {entry.index} names",
                entry.index,
            )
        if body is None:
            if not self.allow_missing_codelists:
                raise RebuildError(
                    f"code-list version {version} (log entry {entry.index}, SHA-256 {sha}): "
                    "the log names it but does not hold its body; supply it (codelist_body)",
                    entry.index,
                )
            self.report.missing_codelists.append(version)
            return
        self.conn.execute(
            "INSERT OR IGNORE INTO codelist_versions (version, sha256, body, log_index) "
            "VALUES (?, ?, ?, ?)",
            (version, sha, body, entry.index),
        )

    def use_or_publication(self, entry: Entry) -> None:
        from .archive import publication, use

        if entry.kind in USE_KINDS:
            use.project(self.conn, entry)
        else:
            publication.project(self.conn, entry)

    # -- the archive's projections, as archive/{holds,custody,destruction,backup}.py write them

    def archive(self, entry: Entry) -> None:
        from .archive import state

        if not self.archive_ready:
            state.ensure_schema(self.conn)
            self.archive_ready = True
        kind, data, txn = entry.kind, entry.data or {}, self.txn
        if kind == Kind.ARCHIVE_FREEZE:
            state.set_hold(
                txn, entry, data["target_type"], data["target"], "freeze", data["reason"],
                data["ref"],
            )
        elif kind == Kind.ARCHIVE_UNFREEZE:
            state.release_hold(txn, data["target_type"], data["target"], "freeze")
        elif kind == Kind.ARCHIVE_RECALL:
            state.set_hold(
                txn, entry, "document", data["document"], "recall", data["reason"], data["ref"]
            )
            state.note_destroyed_content(txn, entry, list(data["destroyed_content"]))
        elif kind == Kind.ARCHIVE_ACCESSION:
            state.update_custody(txn, entry, data["FileCode"], accessioned_on=data["on"])
        elif kind == Kind.ARCHIVE_HOLD:
            state.update_custody(
                txn, entry, data["FileCode"], hold_until=data["until"], hold_ref=data["ref"]
            )
        elif kind == Kind.ARCHIVE_TRANSFER:
            from .archive import publication

            state.update_custody(
                txn, entry, data["FileCode"], transferred_on=data["on"], package=data["package"]
            )
            publication.project(self.conn, entry)
        elif kind == Kind.ARCHIVE_DESTRUCTION_LIST:
            self.conn.execute(
                "INSERT INTO archive_destruction (list_id, status, created_at, items, decision, "
                "log_index) VALUES (?, ?, ?, ?, NULL, ?)",
                (data["list_id"], data["status"], entry.at, state.dumps(data["items"]),
                 entry.index),
            )
        elif kind == Kind.ARCHIVE_DESTRUCTION_DECISION:
            decision = {k: v for k, v in data.items() if k != "list_id"}
            self.conn.execute(
                "UPDATE archive_destruction SET status = ?, decision = ?, log_index = ? "
                "WHERE list_id = ?",
                ("approved" if decision["approved"] else "rejected", state.dumps(decision),
                 entry.index, data["list_id"]),
            )
        elif kind == Kind.ARCHIVE_DESTROY:
            ref, list_id = data["decision_ref"], data["list_id"]
            note = f"Đã hủy theo {ref} (danh mục {list_id})"  # destruction.execute's note
            for code in data["files"]:
                state.set_hold(txn, entry, "file", code, "destroyed", note, ref)
            for doc_id in data["documents"]:
                state.set_hold(txn, entry, "document", doc_id, "destroyed", note, ref)
            state.note_destroyed_content(txn, entry, list(data["destroyed_content"]))
            self.conn.execute(
                "UPDATE archive_destruction SET status = 'destroyed', log_index = ? "
                "WHERE list_id = ?",
                (entry.index, list_id),
            )
        else:
            audit_kind, ok_from_data = _AUDITS[kind]
            ok = bool(data["ok"]) if ok_from_data else True
            state.record_audit(txn, entry, audit_kind, ok, data)

    # -- writing a chunk -----------------------------------------------------------------

    def flush(self) -> None:
        for record_type, pending in self.records.items():
            if pending:
                self._count_gaps(record_type)
                self._write_records(record_type, list(pending.values()))
                pending.clear()
        if self.content:
            self.conn.executemany(
                "INSERT OR IGNORE INTO content (sha256, size, mime, first_log_index) "
                "VALUES (?, ?, ?, ?)",
                self.content,
            )
            self.content.clear()
        if self.texts:
            self.conn.executemany(
                "INSERT OR REPLACE INTO document_text (document_id, sha256, text, log_index) "
                "VALUES (?, ?, ?, ?)",
                self.texts,
            )
            self.texts.clear()
        self.pending_bytes = 0

    def _count_gaps(self, record_type: str) -> None:
        """Records whose first version in this chunk does not follow the stored one."""
        seen = self.seen[record_type]
        later = [i for i, (first, _) in seen.items() if first > 1]
        stored: dict[str, int] = {}
        table = schema.TABLES[record_type]
        for n in range(0, len(later), 500):
            part = later[n : n + 500]
            stored.update(
                self.conn.execute(
                    f"SELECT id, version FROM {table} WHERE id IN ({', '.join('?' * len(part))})",
                    part,
                ).fetchall()
            )
        for record_id, (first, _) in seen.items():
            if first != stored.get(record_id, 0) + 1:
                self.report.version_gaps += 1
        seen.clear()

    def _write_records(self, record_type: str, rows: list[tuple[Any, ...]]) -> None:
        sql = self.upserts[record_type]
        try:
            self.conn.executemany(sql, rows)
        except sqlite3.IntegrityError:
            pass
        else:
            return
        # executemany stopped at a refused row: find it to name it (rows before it are kept,
        # so the upserts below only redo what is already there, and then meet the refusal).
        for params in rows:
            try:
                self.conn.execute(sql, params)
            except sqlite3.IntegrityError as exc:
                raise RebuildError(
                    f"log entry {params[2]}: the database refuses {record_type} {params[0]} "
                    f"({exc}); the schema no longer accepts what the log holds",
                    int(params[2]),
                ) from exc


def _upsert_sql(record_type: str) -> str:
    """schema.upsert_sql without RETURNING, so that executemany can run it."""
    names = ["id", "version", "log_index", *schema.field_columns(record_type)]
    cols = ", ".join(schema.q(n) for n in names)
    updates = ", ".join(f"{schema.q(n)} = excluded.{schema.q(n)}" for n in names[1:])
    return (
        f"INSERT INTO {schema.TABLES[record_type]} ({cols}) "
        f"VALUES ({', '.join('?' * len(names))}) ON CONFLICT(id) DO UPDATE SET {updates}"
    )


def _table_exists(conn: sqlite3.Connection, name: str) -> bool:
    return (
        conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
        ).fetchone()
        is not None
    )


def _empty(conn: sqlite3.Connection) -> None:
    for table in CORE_TABLES:
        if table == "document_fts":
            drop_index_rows(conn)
        else:
            conn.execute(f"DELETE FROM {table}")
    for table in (*ARCHIVE_TABLES, *EDXML_TABLES):
        if _table_exists(conn, table):
            conn.execute(f"DELETE FROM {table}")


def bundled_codelists(sha256: str) -> bytes | None:
    """The code lists shipped with the software, when they are the version asked for."""
    from .codelists import load_bundled

    raw, lists = load_bundled()
    return raw if lists.sha256 == sha256 else None


def rebuild_projections(
    conn: sqlite3.Connection,
    *,
    codelist_body: CodelistSource | None = None,
    allow_unknown: bool = False,
    allow_missing_codelists: bool = False,
) -> RebuildReport:
    """Empty and rewrite every projection from ``log``, inside the caller's open transaction.

    ``codelist_body(sha256)`` returns a code-list body the log names by its SHA-256 (the log
    does not hold bodies); the bundled lists are tried when it gives nothing. A code-list
    version found nowhere raises, unless ``allow_missing_codelists`` (then it is reported).
    An unknown entry kind raises UnknownKindError, unless ``allow_unknown`` (then it is
    reported, and projected as a record version if it is one).
    """
    if not conn.in_transaction:
        raise RebuildError("rebuild_projections runs inside the caller's open transaction")

    def body_of(sha: str) -> bytes | None:
        found = codelist_body(sha) if codelist_body is not None else None
        return found if found is not None else bundled_codelists(sha)

    report = RebuildReport()
    _empty(conn)
    replay = _Replay(conn, report, body_of, allow_unknown, allow_missing_codelists)
    replay.run()
    write_index(conn, FTS_CHUNK)
    conn.execute(_COUNTERS_SQL)
    # Numbers taken by classified documents, which may be withheld: counters never go below.
    for (fond, series, year), n in replay.numbers_used.items():
        observe_number(conn, fond, series, year, n)
    tables = list(CORE_TABLES)
    tables += [t for t in (*ARCHIVE_TABLES, *EDXML_TABLES) if _table_exists(conn, t)]
    report.tables = {
        t: int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in tables
    }
    return report
