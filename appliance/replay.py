"""One pass over the log that writes the projections back, entry kind by entry kind, as the
live paths wrote them (``rebuild.rebuild_projections`` runs it inside its transaction).

Rows are gathered per chunk of the log (``CHUNK_ENTRIES`` rows read at a time, flushed once
``CHUNK_BYTES`` of entry data is held) and written in log order, so that each record's rid
follows its first visible version as the live inserts did, and a log of millions of entries
replays in bounded memory.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections import Counter
from dataclasses import dataclass
from typing import Any, cast

import cbor2

from . import logbooks, schema
from .errors import LuutruError
from .kinds import Kind
from .ledger import Entry
from .numbering import NUMBER_USED_KIND
from .rebuild_rules import (
    ARCHIVE_AUDITS,
    ARCHIVE_KINDS,
    CODELISTS_KIND,
    EDXML_KINDS,
    PUBLICATION_KINDS,
    RECORD_KINDS,
    USE_KINDS,
    CodelistSource,
    RebuildError,
    RebuildReport,
    UnknownKindError,
    is_inert,
)
from .search import OCR_TEXT_KIND

CHUNK_ENTRIES = 5000  # log rows read per query
CHUNK_BYTES = 32 * 2**20  # flush pending rows once this much entry data is held


@dataclass
class _ConnTxn:
    """What archive.state's writers use of a writer Txn: the connection."""

    conn: sqlite3.Connection


class Replay:
    """The replay of one log into emptied projections; ``run`` then ``numbers_used``."""

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
            audit_kind, ok_from_data = ARCHIVE_AUDITS[kind]
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
