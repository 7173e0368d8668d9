"""The record store: the library every CLI command and HTTP handler calls.

Writes run as jobs on the one writer: each validates, appends one log entry carrying the full
new version, and updates the projections in the same transaction. Reads use a connection per
thread. The sealer signs checkpoints over whatever the writer committed.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from . import classified, documents, merkle, numbering, records, schema
from . import clock as clockmod
from .codelists import CodeLists, load_bundled
from .config import DB_NAME, ApplianceConfig, load_config
from .content import ContentStore
from .errors import (
    ConflictError,
    NotFoundError,
    ReadOnlyError,
    RefusedRowError,
    ValidationError,
)
from .identifiers import FileCode, validate_organ_id
from .keys.base import KeyProvider
from .keys.loader import open_key
from .kinds import Kind
from .ledger import Entry, iter_entries, latest_checkpoint, node_source
from .results import Record, WriteResult
from .sealer import Sealer
from .search import fts_body, index_document, ocr_text_of
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
        schema.create_schema(conn)
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

    def get(self, record_type: str, record_id: str) -> Record:
        row = (
            self.reader()
            .execute(f"SELECT * FROM {schema.TABLES[record_type]} WHERE id = ?", (record_id,))
            .fetchone()
        )
        if row is None:
            raise NotFoundError(f"no {record_type} with id {record_id}")
        return _record(record_type, row)

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
        return [_record(record_type, r) for r in rows]

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

    def put(
        self,
        txn: Txn,
        record_type: str,
        kind: str,
        actor: str,
        data: dict[str, Any],
        record_id: str | None = None,
        expect_version: int | None = None,
    ) -> Record:
        """Append the full new version of a record and project it, inside the caller's job."""
        table = schema.TABLES[record_type]
        if record_id is None:
            record_id = _new_id()
            version = 1
        else:
            row = txn.conn.execute(
                f"SELECT version FROM {table} WHERE id = ?", (record_id,)
            ).fetchone()
            current = 0 if row is None else int(row[0])
            if expect_version is not None and current != expect_version:
                raise ConflictError(
                    f"{record_type} {record_id} is at version {current}, not {expect_version}"
                )
            version = current + 1
        # Whether the document's number was already withheld (mật, or in a mật hồ sơ) before
        # this version: read before the projection row changes.
        before = (
            record_type == "document"
            and version > 1
            and classified.document_is_classified(txn.conn, {}, record_id, projected=True)
        )
        # The projection row goes first: when the database refuses it (a CHECK or UNIQUE rule)
        # nothing of this change has been written, so a batch can carry on without a savepoint.
        index = txn.ledger.state.size
        params = (record_id, version, index, *schema.row_values(record_type, data))
        try:
            if version == 1:
                rid = int(txn.conn.execute(schema.insert_sql(record_type), params).lastrowid or 0)
            else:
                rid = txn.conn.execute(schema.upsert_sql(record_type), params).fetchone()[0]
        except sqlite3.IntegrityError as exc:
            raise RefusedRowError(f"{record_type} refused by the database: {exc}") from exc
        if record_type == "document":
            if txn.search_rows is not None and version == 1:
                txn.search_rows.append((rid, fts_body(data)))
            else:
                ocr = None if version == 1 else ocr_text_of(txn.conn, record_id)
                index_document(txn.conn, rid, data, ocr, new=version == 1)
            for c in data.get("Content") or ():
                txn.conn.execute(
                    "INSERT OR IGNORE INTO content (sha256, size, mime, first_log_index) "
                    "VALUES (?, ?, ?, ?)",
                    (c["sha256"], c["size"], c["mime"], index),
                )
        refs = tuple(bytes.fromhex(c["sha256"]) for c in data.get("Content") or ())
        entry = _append(txn, kind, actor, record_type, record_id, data, version, refs)
        used = _number_withheld(txn, kind, record_type, record_id, data, before)
        if used is not None:
            _append(txn, numbering.NUMBER_USED_KIND, actor, None, None, used)
        return Record(record_type, record_id, version, entry.index, data)

    def append_event(
        self,
        txn: Txn,
        kind: str,
        actor: str,
        data: dict[str, Any] | None = None,
        target_type: str | None = None,
        target_id: str | None = None,
        refs: Sequence[bytes] = (),
    ) -> Entry:
        """Append an entry that changes no projection (views, prints, receipts, audits)."""
        return _append(txn, kind, actor, target_type, target_id, data, refs=tuple(refs))

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
            lambda txn: self.append_event(
                txn, f"audit.{action}", actor, detail, target_type, target_id
            )
        )
        return entry.index

    # -- fonds ------------------------------------------------------------------------------

    def fonds_state(self, conn: sqlite3.Connection, code: str | None) -> dict[str, Any]:
        if code is None:
            rows = conn.execute(
                'SELECT "FondCode", "Status" FROM fonds WHERE "Status" = \'open\' ORDER BY rid'
            ).fetchall()
            own = [r for r in rows if r[0] == self.config.org_id]
            if not rows:
                raise ReadOnlyError("no fonds is open: every fonds here is closed")
            if own or len(rows) == 1:
                return {"FondCode": (own or rows)[0][0], "Status": "open"}
            raise ValidationError(
                "FondCode is required: there is not exactly one open fonds", "FondCode"
            )
        row = conn.execute(
            'SELECT "FondCode", "Status" FROM fonds WHERE "FondCode" = ?', (code,)
        ).fetchone()
        if row is None:
            raise NotFoundError(f"fonds {code} does not exist")
        return {"FondCode": row[0], "Status": row[1]}

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
            return self.put(txn, "fonds", "fonds.create", actor, data)

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
            rec = self.current(txn, "fonds", FondCode=fond_code)
            if rec.data.get("Status") == "closed":
                raise ConflictError(f"fonds {fond_code} is already closed")
            data = dict(rec.data, Status="closed", ClosedDate=when)
            if successor:
                data["SuccessorFondCode"] = successor
            return self.put(txn, "fonds", "fonds.close", actor, data, rec.id, rec.version)

        return self.writer_or_fail().call(job)

    def current(self, txn: Txn, record_type: str, **where: Any) -> Record:
        clauses = " AND ".join(f"{schema.q(k)} = ?" for k in where)
        txn.conn.row_factory = sqlite3.Row
        try:
            row = txn.conn.execute(
                f"SELECT * FROM {schema.TABLES[record_type]} WHERE {clauses}", tuple(where.values())
            ).fetchone()
        finally:
            txn.conn.row_factory = None
        if row is None:
            desc = ", ".join(f"{k}={v}" for k, v in where.items())
            raise NotFoundError(f"no {record_type} with {desc}")
        return _record(record_type, row)

    # -- hồ sơ ------------------------------------------------------------------------------

    def prepare_file(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        return prepare_file(self.codes, self.config, raw)

    def insert_file(self, txn: Txn, data: dict[str, Any], actor: str, legacy: bool) -> Record:
        fonds = self.fonds_state(txn.conn, data["FondCode"])
        if fonds["Status"] != "open" and not legacy:
            raise ReadOnlyError(f"fonds {data['FondCode']} is closed; no new hồ sơ can be opened")
        if txn.conn.execute(
            'SELECT 1 FROM files WHERE "FileCode" = ?', (data["FileCode"],)
        ).fetchone():
            raise ConflictError(f"hồ sơ {data['FileCode']} already exists")
        return self.put(txn, "file", "file.open", actor, data)

    def open_file(self, raw: Mapping[str, Any], actor: str = "system") -> Record:
        data = self.prepare_file(raw)
        return self.writer_or_fail().call(
            lambda txn: self.insert_file(txn, data, actor, legacy=False)
        )

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

    def _check_fonds_open(self, txn: Txn, fond_code: str | None) -> None:
        if fond_code and self.fonds_state(txn.conn, fond_code)["Status"] != "open":
            raise ReadOnlyError(f"fonds {fond_code} is closed: its records are read-only")

    def check_editable(self, txn: Txn, rec: Record) -> None:
        """Closed fonds, and frozen, recalled or destroyed records (spec §2.10), refuse edits."""
        from .archive.state import check_editable

        self._check_fonds_open(txn, rec.data.get("FondCode"))
        check_editable(txn.conn, rec.type, rec.id, rec.data)

    # -- documents (the writes live in documents.py) -----------------------------------------

    def prepare_document(self, direction: str, raw: Mapping[str, Any]) -> dict[str, Any]:
        return prepare_document(self.codes, direction, raw)

    def place_in_file(self, txn: Txn, data: dict[str, Any]) -> None:
        code = data.get("FileCode")
        if not code:
            return
        row = txn.conn.execute(
            'SELECT "Status" FROM files WHERE "FileCode" = ?', (code,)
        ).fetchone()
        if row is None:
            raise NotFoundError(f"hồ sơ {code} does not exist")
        if "DocOrdinal" not in data:
            n = txn.conn.execute(
                'SELECT max(m) FROM (SELECT max("DocOrdinal") AS m FROM documents '
                'WHERE "FileCode" = ? UNION ALL SELECT max("DocOrdinal") FROM memberships '
                'WHERE "FileCode" = ?)',
                (code, code),
            ).fetchone()[0]
            data["DocOrdinal"] = (n or 0) + 1

    def duplicate_warnings(
        self, txn: Txn, data: Mapping[str, Any], own_id: str | None
    ) -> list[str]:
        """Spec §2.10: warn when (số, ký hiệu, cơ quan ban hành) repeats within a year."""
        if not (data.get("CodeNumber") and data.get("CodeNotation") and data.get("OrganName")):
            return []
        year = (data.get("IssuedDate") or "")[:4]
        rows = txn.conn.execute(
            'SELECT id, "Direction", "ArrivalNumber", "Year", "IssuedDate" FROM documents '
            'WHERE "CodeNumber" = ? AND "CodeNotation" = ? AND "OrganName" = ?',
            (data["CodeNumber"], data["CodeNotation"], data["OrganName"]),
        ).fetchall()
        out = []
        for rid, direction, arrival, y, issued in rows:
            if rid == own_id or (year and issued and issued[:4] != year):
                continue
            where = f"số đến {arrival}/{y}" if direction == "incoming" else "văn bản đi"
            out.append(
                f"Trùng số, ký hiệu và cơ quan ban hành với {where} "
                f"({data['CodeNumber']}/{data['CodeNotation']}, id {rid})"
            )
        return out

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
    ) -> Record:
        """Change a document's descriptive fields; numbers, direction and series are fixed."""
        return documents.update_document(self, doc_id, changes, actor, expect_version)

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
            entry = self.append_event(
                txn,
                "codelists.load",
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


def prepare_file(
    codes: CodeLists, config: ApplianceConfig, raw: Mapping[str, Any]
) -> dict[str, Any]:
    """Validate and complete a hồ sơ (outside the writer)."""
    data = records.normalise("file", raw, codes)
    if "Title" not in data:
        raise ValidationError("Title (Tiêu đề hồ sơ) is required", "Title")
    if "FileCode" in data:
        code = FileCode.parse(data["FileCode"])
    else:
        organ = data.get("OrganId") or data.get("FondCode") or config.org_id
        if "FileCatalog" not in data or "FileNotation" not in data:
            raise ValidationError(
                "FileCatalog (year) and FileNotation (e.g. 01.VP) are required", "FileNotation"
            )
        code = FileCode.build(organ, data["FileCatalog"], data["FileNotation"])
    data.update(
        FileCode=str(code),
        OrganId=code.organ_id,
        FileCatalog=code.year,
        FileNotation=code.notation,
    )
    data.setdefault("FondCode", code.organ_id)
    data.setdefault("Status", "open")
    data.setdefault("Language", "01")
    if "Maintenance" not in data:
        raise ValidationError("Maintenance (Thời hạn bảo quản) is required", "Maintenance")
    return data


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


def flush_search_rows(txn: Txn) -> None:
    """Write the collected search rows in one statement.

    SQLite's FTS5 writes its pending terms to disk at the start of every later statement of
    the transaction, so inserting rows one by one between other writes makes a segment per
    document; one INSERT … SELECT makes one segment for the whole batch.
    """
    if txn.search_rows:
        txn.conn.execute(
            "INSERT INTO document_fts (rowid, body, ocr) "
            "SELECT value ->> 0, value ->> 1, '' FROM json_each(?)",
            (json.dumps(txn.search_rows, ensure_ascii=False),),
        )
    txn.search_rows = None


def _append(
    txn: Txn,
    kind: str,
    actor: str,
    record_type: str | None,
    record_id: str | None,
    data: dict[str, Any] | None,
    version: int | None = None,
    refs: tuple[bytes, ...] = (),
) -> Entry:
    """Append one entry stamped with the writer's clock (Asia/Ho_Chi_Minh, +07:00)."""
    now = clockmod.iso(txn.clock.now())
    return txn.ledger.append(
        Entry(-1, kind, now, actor, record_type, record_id, version, data, refs)
    )


def _number_withheld(
    txn: Txn, kind: str, record_type: str, record_id: str, data: dict[str, Any], before: bool
) -> dict[str, Any] | None:
    """The ``numbering.used`` data for a number that this change withholds from the centre: a
    withheld document taking a number, or a numbered document becoming withheld (made mật,
    moved into a mật hồ sơ, or filed in one as well). None when nothing is withheld anew."""
    if record_type == "membership":
        if not classified.file_is_classified(txn.conn, data.get("FileCode")):
            return None
        row = txn.conn.execute(
            'SELECT "Direction", "ArrivalNumber", "CodeNumber", "Series", "Year", "FondCode" '
            "FROM documents WHERE id = ?", (data.get("DocumentId"),)
        ).fetchone()
        if row is None:
            return None
        keys = ("Direction", "ArrivalNumber", "CodeNumber", "Series", "Year", "FondCode")
        return numbering.number_taken(dict(zip(keys, row, strict=True)))
    if record_type != "document" or (before and kind not in numbering.NUMBERING_KINDS):
        return None
    if kind not in numbering.NUMBERING_KINDS and kind != Kind.DOCUMENT_UPDATE:
        return None
    if not classified.document_is_classified(txn.conn, data, record_id):
        return None
    return numbering.number_taken(data)


def _new_id() -> str:
    """A random (version 4) UUID as text: what str(uuid.uuid4()) gives, in a third of the time."""
    b = bytearray(os.urandom(16))
    b[6] = b[6] & 0x0F | 0x40
    b[8] = b[8] & 0x3F | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _record(record_type: str, row: Mapping[str, Any]) -> Record:
    return Record(
        record_type,
        row["id"],
        int(row["version"]),
        int(row["log_index"]),
        schema.from_row(record_type, row),
    )
