"""The record store: the library every CLI command and HTTP handler calls.

Writes run as jobs on the one writer: each validates, appends one log entry carrying the full
new version, and updates the projections in the same transaction. Reads use a connection per
thread. The sealer signs checkpoints over whatever the writer committed.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import (
    agency_ids,
    anchors,
    documents,
    files,
    fonds,
    logbooks,
    merkle,
    schema,
    search,
    writes,
)
from . import clock as clockmod
from .codelists import CodeLists, load_bundled
from .config import DB_NAME, ApplianceConfig, load_config
from .content import ContentStore
from .diskspace import DiskSpace
from .errors import (
    LuutruError,
    NotFoundError,
    ReadOnlyError,
)
from .keys.base import KeyProvider, MonotonicCounter, counter_of
from .keys.loader import open_key
from .kinds import Kind, audit_kind
from .ledger import iter_entries, latest_checkpoint, node_source
from .preflight import QUICK_CHECK_BUDGET_S, Fault, halted, preflight
from .results import Record, WriteResult
from .retention import RetentionTable
from .sealer import Sealer
from .writer import Txn, Writer

__all__ = ["Record", "Store", "Txn", "WriteResult"]
log = logging.getLogger(__name__)


class Store:
    """A data folder opened for use. Close it to sign the last checkpoint.

    With ``faults`` (the start-up check's, preflight.py) the store is *halted*: it reads, and
    its writer still takes the web UI's sessions, but every write to the log is refused with
    the faults and the commands that repair them."""

    def __init__(
        self,
        data_dir: Path,
        config: ApplianceConfig,
        key: KeyProvider | None,
        clock: clockmod.Clock,
        *,
        faults: Sequence[Fault] = (),
        readonly: bool | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.config = config
        self.clock = clock
        self.content = ContentStore(data_dir / "content")
        self.space = DiskSpace(data_dir, config.space)
        self.db_path = str(data_dir / DB_NAME)
        self.faults: tuple[Fault, ...] = tuple(faults)
        self._local = threading.local()
        self._read_conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        conn = schema.connect(self.db_path)
        create_tables(conn)
        if key is not None and not readonly and not self.faults:
            # a re-keying cut short by a power cut is completed first (not while halted)
            config = self.config = agency_ids.reconcile(data_dir, config, conn)
        self.codes = self._load_codes(conn)
        self.key = key
        self.sealer: Sealer | None = None
        self.writer: Writer | None = None
        self.counter: MonotonicCounter | None = None
        self._anchored = 0
        if readonly if readonly is not None else key is None:
            conn.close()
            return
        if key is not None and not self.faults:
            latest = latest_checkpoint(conn)
            self.sealer = Sealer(
                key,
                config.origin,
                clock,
                self._store_checkpoint,
                signed_size=latest[0] if latest else 0,
            )
            self.counter = counter_of(key)
        self.writer = Writer(
            conn,
            clock,
            self.sealer.notify if self.sealer is not None else _ignore_commit,
            guard=self._guard,
            on_full=self.space.release,
            free_bytes=self.space.free,
        )
        if self.sealer is not None:
            self._start_counter()
            size, root = self.writer.tree
            self.sealer.notify(size, root)  # seal a tail left unsigned by a crash
            self._append_held_audits()

    # -- opening and closing ------------------------------------------------------------

    @classmethod
    def open(
        cls,
        data_dir: Path,
        *,
        clock: clockmod.Clock | None = None,
        key: KeyProvider | None = None,
        readonly: bool = False,
        halted_ok: bool = False,
        budget_s: float = QUICK_CHECK_BUDGET_S,
        keep_reserve: bool = False,
    ) -> Store:
        """Open for writing (with the configured device key) or read-only (no key needed).

        Writing needs the start-up check (preflight.py) to pass: else ``HaltedError`` names
        each fault and its repair, or, with ``halted_ok`` (``serve``), a halted store is
        returned whose reads work and whose log takes no write (a damaged database is never
        opened). ``keep_reserve`` (``serve``): hold the disk reserve (diskspace.py)."""
        config = load_config(data_dir)
        clock = clock or clockmod.SystemClock()
        if readonly:
            return cls(data_dir, config, None, clock)
        DiskSpace(data_dir, config.space).check_essential()  # room to open it at all
        if key is None:
            key = open_key(data_dir, config.key)
        chip = _read_counter(key)
        faults = preflight(data_dir, data_dir / DB_NAME, key.public_key_pem(), chip, budget_s)
        if not faults:
            store = cls(data_dir, config, key, clock)
            if keep_reserve:
                store.space.keep_reserve = True
                store.space.replenish()
            return store
        key.close()  # a key that failed the check signs nothing
        if not halted_ok or any(f.code == "database.damaged" for f in faults):
            raise halted(faults)
        for f in faults:
            log.error("start-up check: %s (%s) — to repair: %s", f.english, f.code, f.recovery)
        return cls(data_dir, config, None, clock, faults=faults, readonly=False)

    @property
    def is_halted(self) -> bool:
        return bool(self.faults)

    def halt(self, *faults: Fault) -> None:
        """Stop writing to the log from now on (the sync agent found the log behind the
        centre's copy; a page of the database turned out damaged)."""
        new = [f for f in faults if f not in self.faults]
        if new:
            self.faults = self.faults + tuple(new)
            for f in new:
                log.error("halted: %s (%s) — to repair: %s", f.english, f.code, f.recovery)

    def check_can_write(self) -> None:
        """Raise now what a new record would meet (halted, key gone, disk full), before any
        file of it is stored."""
        if self.writer is None:
            raise ReadOnlyError("the store was opened read-only")
        self._guard(False)

    def _guard(self, essential: bool) -> None:
        if self.faults:
            raise halted(self.faults)
        if self.sealer is not None:
            self.sealer.check()  # no record is accepted that cannot be sealed
        if essential:
            self.space.check_essential()
        else:
            self.space.check_records()

    def _start_counter(self) -> None:
        """The value the TPM counter should have is kept in the database from the first
        opening with a TPM key; a chip found behind it (a crash between storing a checkpoint
        and advancing it) is brought up to it."""
        if self.counter is None:
            return
        counter = self.counter
        try:
            chip = counter.read()
        except LuutruError as exc:
            log.warning("the TPM's monotonic counter cannot be read (%s): the log's tail has "
                        "no hardware anchor until it can", exc)
            self.counter = None
            return

        def job(txn: Txn) -> int | None:
            expected = anchors.db_counter(txn.conn)
            if expected is None:
                anchors.set_db_counter(txn.conn, chip)
            return expected

        expected = self.writer_or_fail().submit(job, guarded=False).result()
        if expected is not None and expected > chip:
            counter.advance_to(expected)

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
        """Keep a signed checkpoint (the sealer's thread), then mirror it outside the
        database: the anchor file beside it and the TPM's monotonic counter."""
        counter = self.counter

        def job(txn: Txn) -> tuple[int | None, anchors.Counters]:
            txn.conn.execute(
                "INSERT OR IGNORE INTO checkpoints (tree_size, root_hash, signed_at, cose) "
                "VALUES (?, ?, ?, ?)",
                (size, root, signed_at, cose),
            )
            value = anchors.bump_db_counter(txn.conn) if counter is not None else None
            return value, anchors.read_counters(txn.conn)

        value, numbers = self.writer_or_fail().submit(job, guarded=False).result()
        # Both anchors follow the durable commit: a crash in between leaves them behind the
        # database, never ahead of it. Neither failing may stop sealing (a full disk, a TPM
        # hiccup): they only make a rollback noticed.
        if size > self._anchored:
            anchor = anchors.Anchor(anchors.CHECKPOINT, size, root, cose, signed_at, numbers,
                                    value)
            try:
                anchors.save_anchor(self.data_dir, anchor)
                self._anchored = size
            except OSError as exc:
                log.warning("the checkpoint of size %d is not mirrored beside the database: %s",
                            size, exc)
        if counter is not None and value is not None:
            try:
                counter.advance_to(value)
            except LuutruError as exc:
                log.warning("the TPM's monotonic counter was not advanced: %s", exc)

    def audit(
        self,
        action: str,
        actor: str,
        target_type: str | None = None,
        target_id: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> int | None:
        """Log a view, print or download of a record; returns the entry's index. Essential:
        it goes on when the disk is nearly full (diskspace.py). A halted store cannot append
        it: it is held, durably, outside the log (``held_audits``) and appended once the log
        is repaired, so that reading stays lawful meanwhile (None is returned)."""
        if self.faults:
            self._hold_audit(action, actor, target_type, target_id, detail)
            return None
        entry = self.writer_or_fail().call(
            lambda txn: writes.append_event(
                txn, audit_kind(action), actor, detail, target_type, target_id
            ),
            essential=True,
        )
        return entry.index

    def _hold_audit(self, action: str, actor: str, target_type: str | None,
                    target_id: str | None, detail: dict[str, Any] | None) -> None:
        audit_kind(action)  # an unknown action is refused now, not when the log is repaired
        at = clockmod.iso(self.clock.now())
        body = json.dumps(detail or {}, ensure_ascii=False, sort_keys=True)

        def job(txn: Txn) -> None:
            txn.conn.execute(
                "INSERT INTO held_audits (at, action, actor, target_type, target_id, detail) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (at, action, actor, target_type, target_id, body),
            )

        self.writer_or_fail().submit(job, guarded=False).result()

    def _append_held_audits(self) -> None:
        """Audit entries held while the store was halted go into the log now, in order; each
        says when the read happened."""

        def job(txn: Txn) -> int:
            rows = txn.conn.execute(
                "SELECT id, at, action, actor, target_type, target_id, detail FROM held_audits "
                "ORDER BY id"
            ).fetchall()
            for _id, at, action, actor, ttype, tid, detail in rows:
                data = dict(json.loads(detail), read_at=at, held="the log was halted")
                writes.append_event(txn, audit_kind(action), actor, data, ttype, tid)
            txn.conn.execute("DELETE FROM held_audits")
            return len(rows)

        if self.reader().execute("SELECT 1 FROM held_audits LIMIT 1").fetchone():
            n = self.writer_or_fail().call(job, essential=True)
            log.info("%d audit entries held while the log was halted were appended", n)

    # -- fonds ------------------------------------------------------------------------------

    def create_fonds(self, raw: Mapping[str, Any], actor: str = "system") -> Record:
        return fonds.create_fonds(self, raw, actor)

    def close_fonds(
        self,
        fond_code: str,
        closed_date: str,
        successor: str | None = None,
        actor: str = "system",
    ) -> Record:
        """Close a fonds (a merger): its records become read-only and its numbering stops."""
        return fonds.close_fonds(self, fond_code, closed_date, successor, actor)

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


def _ignore_commit(size: int, root: object) -> None:
    """A halted store's writer commits no log entry; nothing is sealed."""


def _read_counter(key: KeyProvider) -> int | None:
    counter = counter_of(key)
    if counter is None:
        return None
    try:
        return counter.read()
    except LuutruError as exc:
        log.warning("the TPM's monotonic counter cannot be read (%s)", exc)
        return None


def create_tables(conn: sqlite3.Connection) -> None:
    """Every table of a data folder's database: the log and projections, the search index."""
    schema.create_schema(conn)
    search.create_index(conn)
    logbooks.create_tables(conn)
