"""The record store: the library every CLI command and HTTP handler calls.

Writes run as jobs on the one writer: each validates, appends one log entry carrying the full
new version, and updates the projections in the same transaction. Reads use a connection per
thread. The sealer signs checkpoints over whatever the writer committed.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import agency_ids, documents, files, logbooks, merkle, records, schema, search, writes
from . import clock as clockmod
from .codelists import CodeLists, load_bundled
from .config import DB_NAME, ApplianceConfig, load_config
from .content import ContentStore
from .errors import (
    ConflictError,
    NotFoundError,
    ReadOnlyError,
    ValidationError,
)
from .identifiers import validate_organ_id
from .keys.base import KeyProvider
from .keys.loader import open_key
from .kinds import Kind, audit_kind
from .ledger import iter_entries, latest_checkpoint, node_source
from .results import Record, WriteResult
from .retention import RetentionTable
from .sealer import Sealer
from .writer import Txn, Writer

__all__ = ["Record", "Store", "Txn", "WriteResult"]


class Store:
    """A data folder opened for use. Close it to sign the last checkpoint."""

    def __init__(
        self,
        data_dir: Path,
        config: ApplianceConfig,
        key: KeyProvider | None,
        clock: clockmod.Clock,
    ) -> None:
        self.data_dir = data_dir
        self.config = config
        self.clock = clock
        self.content = ContentStore(data_dir / "content")
        self.db_path = str(data_dir / DB_NAME)
        self._local = threading.local()
        self._read_conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        conn = schema.connect(self.db_path)
        create_tables(conn)
        if key is not None:  # a re-keying cut short by a power cut is completed first
            config = self.config = agency_ids.reconcile(data_dir, config, conn)
        self.codes = self._load_codes(conn)
        self.key = key
        self.sealer: Sealer | None = None
        self.writer: Writer | None = None
        if key is not None:
            latest = latest_checkpoint(conn)
            self.sealer = Sealer(
                key,
                config.origin,
                clock,
                self._store_checkpoint,
                signed_size=latest[0] if latest else 0,
            )
            self.writer = Writer(conn, clock, self.sealer.notify, guard=self.sealer.check)
            size, root = self.writer.tree
            self.sealer.notify(size, root)  # seal a tail left unsigned by a crash
        else:
            conn.close()

    # -- opening and closing ------------------------------------------------------------

    @classmethod
    def open(
        cls,
        data_dir: Path,
        *,
        clock: clockmod.Clock | None = None,
        key: KeyProvider | None = None,
        readonly: bool = False,
    ) -> Store:
        """Open for writing (with the configured device key) or read-only (no key needed)."""
        config = load_config(data_dir)
        if not readonly and key is None:
            key = open_key(data_dir, config.key)
        return cls(data_dir, config, None if readonly else key, clock or clockmod.SystemClock())

    def close(self) -> None:
        if self.sealer is not None:
            self.sealer.close()
        if self.writer is not None:
            self.writer.close()
        if self.key is not None:
            self.key.close()
        with self._conns_lock:
            for c in self._read_conns:
                c.close()
            self._read_conns.clear()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _load_codes(self, conn: sqlite3.Connection) -> CodeLists:
        row = conn.execute(
            "SELECT body FROM codelist_versions ORDER BY log_index DESC LIMIT 1"
        ).fetchone()
        if row is not None:
            from .codelists import parse

            return parse(bytes(row[0]))
        return load_bundled()[1]

    # -- reading ----------------------------------------------------------------------------

    def reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = schema.connect(self.db_path)
            conn.execute("PRAGMA query_only = ON")
            conn.row_factory = sqlite3.Row
            self._local.conn = conn
            with self._conns_lock:
                self._read_conns.append(conn)
        return conn

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """This thread's read connection inside one read transaction: every query sees the
        same state of the database."""
        conn = self.reader()
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    def get(self, record_type: str, record_id: str) -> Record:
        row = (
            self.reader()
            .execute(f"SELECT * FROM {schema.TABLES[record_type]} WHERE id = ?", (record_id,))
            .fetchone()
        )
        if row is None:
            raise NotFoundError(f"no {record_type} with id {record_id}")
        return writes.record_of(record_type, row)

    def find(self, record_type: str, **where: Any) -> list[Record]:
        clauses = " AND ".join(f"{schema.q(k)} IS ?" for k in where) or "1"
        rows = (
            self.reader()
            .execute(
                f"SELECT * FROM {schema.TABLES[record_type]} WHERE {clauses} ORDER BY rid",
                tuple(where.values()),
            )
            .fetchall()
        )
        return [writes.record_of(record_type, r) for r in rows]

    def find_one(self, record_type: str, **where: Any) -> Record | None:
        found = self.find(record_type, **where)
        return found[0] if found else None

    def count(self, record_type: str) -> int:
        return int(
            self.reader()
            .execute(f"SELECT count(*) FROM {schema.TABLES[record_type]}")
            .fetchone()[0]
        )

    def tree_head(self) -> tuple[int, bytes]:
        conn = self.reader()
        conn.execute("BEGIN")
        try:
            row = conn.execute("SELECT max(idx) FROM log").fetchone()
            size = 0 if row[0] is None else int(row[0]) + 1
            return size, merkle.root_hash(node_source(conn), size)
        finally:
            conn.execute("COMMIT")

    def latest_checkpoint(self) -> tuple[int, bytes, str, bytes] | None:
        return latest_checkpoint(self.reader())

    def entries(
        self, start: int = 0, end: int | None = None, withheld: bool = False
    ) -> Iterator[tuple[int, bytes]]:
        """Entries in log order; empty rows held as leaf hashes only when ``withheld``."""
        return iter_entries(self.reader(), start, end, withheld)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        return merkle.inclusion_proof(node_source(self.reader()), index, size)

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        return merkle.consistency_proof(node_source(self.reader()), old_size, new_size)

    def root_at(self, size: int) -> bytes:
        return merkle.root_hash(node_source(self.reader()), size)

    def leaf_hash(self, index: int) -> bytes:
        """The sealed leaf hash of entry ``index`` (the only trace of a withheld entry)."""
        return node_source(self.reader())(0, index)

    def wait_sealed(self, timeout: float | None = 30.0) -> bool:
        """Block until every committed entry is covered by a signed checkpoint."""
        if self.writer is None or self.sealer is None:
            return True
        size, _ = self.writer.tree
        return self.sealer.wait_sealed(size, timeout)

    # -- writing: the primitive -------------------------------------------------------------

    def writer_or_fail(self) -> Writer:
        if self.writer is None:
            raise ReadOnlyError("the store was opened read-only")
        return self.writer

    def _store_checkpoint(self, size: int, root: bytes, signed_at: str, cose: bytes) -> None:
        def job(txn: Txn) -> None:
            txn.conn.execute(
                "INSERT OR IGNORE INTO checkpoints (tree_size, root_hash, signed_at, cose) "
                "VALUES (?, ?, ?, ?)",
                (size, root, signed_at, cose),
            )

        self.writer_or_fail().submit(job, guarded=False).result()

    def audit(
        self,
        action: str,
        actor: str,
        target_type: str | None = None,
        target_id: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> int:
        """Log a view, print or download of a record; returns the entry's index."""
        entry = self.writer_or_fail().call(
            lambda txn: writes.append_event(
                txn, audit_kind(action), actor, detail, target_type, target_id
            )
        )
        return entry.index

    # -- fonds ------------------------------------------------------------------------------

    def create_fonds(self, raw: Mapping[str, Any], actor: str = "system") -> Record:
        data = records.normalise("fonds", raw, self.codes)
        if "FondCode" not in data or "FondName" not in data:
            raise ValidationError("a fonds needs FondCode and FondName", "FondCode")
        data["FondCode"] = validate_organ_id(data["FondCode"], "FondCode", strict=False)
        data.setdefault("Status", "open")

        def job(txn: Txn) -> Record:
            if txn.conn.execute(
                'SELECT 1 FROM fonds WHERE "FondCode" = ?', (data["FondCode"],)
            ).fetchone():
                raise ConflictError(f"fonds {data['FondCode']} already exists")
            return writes.put(txn, "fonds", Kind.FONDS_CREATE, actor, data)

        return self.writer_or_fail().call(job)

    def close_fonds(
        self,
        fond_code: str,
        closed_date: str,
        successor: str | None = None,
        actor: str = "system",
    ) -> Record:
        """Close a fonds (a merger): its records become read-only and its numbering stops."""
        when = clockmod.parse_date(closed_date, "ClosedDate").isoformat()

        def job(txn: Txn) -> Record:
            rec = writes.current(txn, "fonds", FondCode=fond_code)
            if rec.data.get("Status") == "closed":
                raise ConflictError(f"fonds {fond_code} is already closed")
            data = dict(rec.data, Status="closed", ClosedDate=when)
            if successor:
                data["SuccessorFondCode"] = successor
            return writes.put(txn, "fonds", Kind.FONDS_CLOSE, actor, data, rec.id, rec.version)

        return self.writer_or_fail().call(job)

    # -- hồ sơ ------------------------------------------------------------------------------

    def open_file(self, raw: Mapping[str, Any], actor: str = "system") -> Record:
        """Open a hồ sơ (its mã hồ sơ built from the year and số, ký hiệu when not given)."""
        data = files.prepare_file(self.codes, self.config, raw, self.retention_table())
        return self.writer_or_fail().call(
            lambda txn: files.insert_file(txn, self.config, data, actor, legacy=False)
        )

    def retention_table(self) -> RetentionTable:
        """The retention table this box uses (its own retention.json, else the bundled one)."""
        from . import retention

        return retention.load(self.data_dir)

    def close_file(
        self,
        file_code: str,
        actor: str = "system",
        maintenance: str | None = None,
        reason: str | None = None,
    ) -> Record:
        """Close a hồ sơ: contents list (biên mục), counts, retention re-assessed (archive)."""
        from .archive.closing import close_file

        return close_file(self, file_code, actor, maintenance=maintenance, reason=reason).record

    # -- documents (the writes live in documents.py) -----------------------------------------

    def prepare_document(self, direction: str, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Validate and complete a document (outside the writer)."""
        return documents.prepare_document(self.codes, direction, raw)

    def register_incoming(self, raw: Mapping[str, Any], actor: str = "system") -> WriteResult:
        """Register a văn bản đến: the next số đến of the year is given automatically."""
        return documents.register_incoming(self, raw, actor)

    def draft_outgoing(self, raw: Mapping[str, Any], actor: str = "system") -> WriteResult:
        """Record a draft văn bản đi; its number is given only when it is issued."""
        return documents.draft_outgoing(self, raw, actor)

    def issue_outgoing(self, doc_id: str, actor: str = "system") -> WriteResult:
        """Issue a draft: assign the next number of its series and today's date."""
        return documents.issue_outgoing(self, doc_id, actor)

    def update_document(
        self,
        doc_id: str,
        changes: Mapping[str, Any],
        actor: str = "system",
        expect_version: int | None = None,
        reason: str | None = None,
    ) -> Record:
        """Correct a document's fields (with a reason once registered); numbers are fixed."""
        return documents.update_document(self, doc_id, changes, actor, expect_version, reason)

    def cancel_document(self, doc_id: str, reason: str, actor: str = "system") -> Record:
        """Cancel (huỷ) a registration or a draft; its number stays in the register."""
        return documents.cancel_document(self, doc_id, reason, actor)

    def remove_content(self, doc_id: str, sha256: str, reason: str,
                       actor: str = "system") -> Record:
        """Take an attachment off the document's current version."""
        return documents.remove_content(self, doc_id, sha256, reason, actor)

    def register_draft(
        self, doc_id: str, changes: Mapping[str, Any], actor: str = "system"
    ) -> WriteResult:
        """Register a draft văn bản đến (e.g. a digitised scan filed before anyone read it):
        the clerk's fields complete it and it gets the next số đến, as ``register_incoming``."""
        return documents.register_draft(self, doc_id, changes, actor)

    def attach_content(
        self, doc_id: str, files: Sequence[Mapping[str, Any]], actor: str = "system"
    ) -> Record:
        """Reference content already in the content store from a new version of the document."""
        return documents.attach_content(self, doc_id, files, actor)

    def add_to_file(self, doc_id: str, file_code: str, actor: str = "system") -> Record:
        """Put a document into another hồ sơ as well, without copying it (spec §2.10)."""
        return documents.add_to_file(self, doc_id, file_code, actor)

    def remove_from_file(self, doc_id: str, file_code: str, reason: str,
                         actor: str = "system") -> Record:
        """Take a document out of an open hồ sơ (its own, or one it was added to)."""
        return documents.remove_from_file(self, doc_id, file_code, reason, actor)

    def load_codelists(self, raw: bytes, actor: str = "system") -> str:
        """Record a version of the code lists in the log and use it from now on."""
        from .codelists import parse

        lists = parse(raw)
        # A version that does not ship with luutru (a province's own) goes into the content
        # store and its entry references it, so that it travels to the centre with the content
        # and a box rebuilt from there gets it back. Bundled bodies ship with every build.
        refs: tuple[bytes, ...] = ()
        if lists.sha256 != load_bundled()[1].sha256:
            refs = (bytes.fromhex(self.content.put_bytes(raw).sha256),)

        def job(txn: Txn) -> str:
            if txn.conn.execute(
                "SELECT 1 FROM codelist_versions WHERE version = ?", (lists.version,)
            ).fetchone():
                return lists.version
            entry = writes.append_event(
                txn,
                Kind.CODELISTS_LOAD,
                actor,
                {"version": lists.version, "sha256": lists.sha256},
                "codelists",
                lists.version,
                refs=refs,
            )
            txn.conn.execute(
                "INSERT INTO codelist_versions (version, sha256, body, log_index) "
                "VALUES (?, ?, ?, ?)",
                (lists.version, lists.sha256, raw, entry.index),
            )
            return lists.version

        version = self.writer_or_fail().call(job)
        self.codes = lists
        return version


def create_tables(conn: sqlite3.Connection) -> None:
    """Every table of a data folder's database: the log and projections, the search index."""
    schema.create_schema(conn)
    search.create_index(conn)
    logbooks.create_tables(conn)
