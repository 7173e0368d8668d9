"""The centre's storage on SQLite: the embedded default (tests, a small province).

One writer connection behind a lock (BEGIN IMMEDIATE … COMMIT, WAL, synchronous=FULL) and a
read connection per thread. The queries are ``sql_storage``'s; this module holds the schema,
the connections, the dialect (lists as JSON, FTS5 search over the folded text) and compaction.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import StorageError
from .dialect import Dialect
from .sql_links import SQLITE_SCHEMA as LINKS_SCHEMA
from .sql_ltv import SQLITE_SCHEMA as LTV_SCHEMA
from .sql_storage import SqlTx, SqlView

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS appliances (
  id TEXT PRIMARY KEY, org_id TEXT NOT NULL, org_name TEXT NOT NULL, origin TEXT NOT NULL,
  public_key_pem TEXT NOT NULL, backing TEXT NOT NULL, alg INTEGER NOT NULL,
  enrolled_at TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'active',
  accepted_size INTEGER NOT NULL DEFAULT 0, accepted_root BLOB NOT NULL DEFAULT x'',
  frontier BLOB NOT NULL DEFAULT x'80', last_seq INTEGER NOT NULL DEFAULT 0,
  last_contact TEXT, claimed_size INTEGER NOT NULL DEFAULT 0, claimed_at TEXT,
  withheld INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS tokens (
  token_id BLOB PRIMARY KEY, secret BLOB NOT NULL, org_id TEXT NOT NULL,
  created_at TEXT NOT NULL, expires_at TEXT NOT NULL, used_by TEXT, used_at TEXT);
CREATE TABLE IF NOT EXISTS entries (
  appliance_id TEXT NOT NULL, idx INTEGER NOT NULL, leaf BLOB NOT NULL, entry BLOB,
  PRIMARY KEY (appliance_id, idx)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS superseded_entries (
  appliance_id TEXT NOT NULL, idx INTEGER NOT NULL, leaf BLOB NOT NULL, entry BLOB,
  superseded_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints (
  appliance_id TEXT NOT NULL, tree_size INTEGER NOT NULL, root BLOB NOT NULL, cose BLOB NOT NULL,
  frontier BLOB NOT NULL, accepted_at TEXT NOT NULL, receipt BLOB NOT NULL,
  superseded_at TEXT,
  PRIMARY KEY (appliance_id, tree_size, root));
CREATE TABLE IF NOT EXISTS responses (
  appliance_id TEXT NOT NULL, digest BLOB NOT NULL, response BLOB NOT NULL, at TEXT NOT NULL,
  PRIMARY KEY (appliance_id, digest)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS nonces (
  appliance_id TEXT NOT NULL, nonce BLOB NOT NULL, at TEXT NOT NULL,
  PRIMARY KEY (appliance_id, nonce)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS content_refs (
  appliance_id TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL,
  first_idx INTEGER NOT NULL, PRIMARY KEY (appliance_id, sha256)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS content_refs_sha ON content_refs (sha256);
CREATE TABLE IF NOT EXISTS blobs (
  sha256 TEXT PRIMARY KEY, size INTEGER NOT NULL, stored_at TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS documents (
  rid INTEGER PRIMARY KEY, appliance_id TEXT NOT NULL, org_id TEXT NOT NULL,
  doc_id TEXT NOT NULL, version INTEGER NOT NULL, log_index INTEGER NOT NULL,
  direction TEXT, type_name TEXT, code_number TEXT, code_notation TEXT, organ_name TEXT,
  subject TEXT, issued_date TEXT, arrival_date TEXT, arrival_number INTEGER, year INTEGER,
  file_code TEXT, folded TEXT NOT NULL, data_json TEXT NOT NULL,
  UNIQUE (appliance_id, doc_id));
CREATE INDEX IF NOT EXISTS documents_org ON documents (org_id, year);
CREATE VIRTUAL TABLE IF NOT EXISTS documents_fts USING fts5(
  folded, content='documents', content_rowid='rid', tokenize='unicode61 remove_diacritics 2');
CREATE TRIGGER IF NOT EXISTS documents_ai AFTER INSERT ON documents BEGIN
  INSERT INTO documents_fts (rowid, folded) VALUES (new.rid, new.folded); END;
CREATE TRIGGER IF NOT EXISTS documents_ad AFTER DELETE ON documents BEGIN
  INSERT INTO documents_fts (documents_fts, rowid, folded) VALUES ('delete', old.rid, old.folded);
  END;
CREATE TRIGGER IF NOT EXISTS documents_au AFTER UPDATE OF folded ON documents BEGIN
  INSERT INTO documents_fts (documents_fts, rowid, folded) VALUES ('delete', old.rid, old.folded);
  INSERT INTO documents_fts (rowid, folded) VALUES (new.rid, new.folded); END;
CREATE TABLE IF NOT EXISTS parked (
  appliance_id TEXT NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL,
  digest BLOB NOT NULL, raw BLOB NOT NULL, parked_at TEXT NOT NULL,
  PRIMARY KEY (appliance_id, digest)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS anomalies (
  appliance_id TEXT NOT NULL, kind TEXT NOT NULL, detail TEXT NOT NULL,
  first_at TEXT NOT NULL, last_at TEXT NOT NULL, count INTEGER NOT NULL,
  PRIMARY KEY (appliance_id, kind)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alerts (
  id INTEGER PRIMARY KEY, appliance_id TEXT NOT NULL, kind TEXT NOT NULL, detail TEXT NOT NULL,
  raised_at TEXT NOT NULL, cleared_at TEXT, cleared_by TEXT);
CREATE TABLE IF NOT EXISTS appliance_keys (
  key_id TEXT PRIMARY KEY, appliance_id TEXT NOT NULL, public_key_pem TEXT NOT NULL,
  backing TEXT NOT NULL, alg INTEGER NOT NULL, from_size INTEGER NOT NULL,
  added_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS appliance_keys_app ON appliance_keys (appliance_id, from_size);
CREATE TABLE IF NOT EXISTS replacements (
  token_id BLOB PRIMARY KEY, appliance_id TEXT NOT NULL, created_at TEXT NOT NULL,
  new_key_id TEXT, started_at TEXT, completed_at TEXT, handover_size INTEGER) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS forks (
  id INTEGER PRIMARY KEY, appliance_id TEXT NOT NULL, detected_at TEXT NOT NULL,
  accepted_size INTEGER NOT NULL, accepted_checkpoint BLOB NOT NULL,
  claimed_size INTEGER NOT NULL, claimed_checkpoint BLOB NOT NULL, diverge_index INTEGER,
  request BLOB NOT NULL, reason TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cat_fonds (
  appliance_id TEXT NOT NULL, fond_code TEXT NOT NULL, version INTEGER NOT NULL,
  data_json TEXT NOT NULL, log_index INTEGER NOT NULL,
  PRIMARY KEY (appliance_id, fond_code)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cat_files (
  appliance_id TEXT NOT NULL, file_code TEXT NOT NULL, file_id TEXT NOT NULL,
  version INTEGER NOT NULL, data_json TEXT NOT NULL, log_index INTEGER NOT NULL,
  PRIMARY KEY (appliance_id, file_code)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cat_releases (
  appliance_id TEXT NOT NULL, file_code TEXT NOT NULL, basis TEXT NOT NULL,
  record_type TEXT NOT NULL, record_id TEXT NOT NULL, version INTEGER NOT NULL,
  at TEXT NOT NULL, log_index INTEGER NOT NULL,
  PRIMARY KEY (appliance_id, file_code, basis, record_type, record_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS cat_releases_record ON cat_releases (appliance_id, record_id);
CREATE TABLE IF NOT EXISTS cat_withheld (
  appliance_id TEXT NOT NULL, record_type TEXT NOT NULL, record_key TEXT NOT NULL,
  reason TEXT NOT NULL, by_user TEXT NOT NULL, at TEXT NOT NULL,
  PRIMARY KEY (appliance_id, record_type, record_key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS catalogue (
  rid INTEGER PRIMARY KEY, oai_id TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,
  appliance_id TEXT NOT NULL, org_id TEXT NOT NULL, fond_code TEXT NOT NULL,
  file_code TEXT NOT NULL, doc_id TEXT, year INTEGER, type_code TEXT, title TEXT NOT NULL,
  folded TEXT NOT NULL, meta_json TEXT NOT NULL, datestamp TEXT NOT NULL,
  deleted INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS catalogue_stamp ON catalogue (datestamp, rid);
CREATE INDEX IF NOT EXISTS catalogue_set ON catalogue (fond_code, datestamp, rid);
CREATE INDEX IF NOT EXISTS catalogue_file ON catalogue (appliance_id, file_code);
CREATE INDEX IF NOT EXISTS catalogue_browse ON catalogue (kind, deleted, fond_code, year);
CREATE VIRTUAL TABLE IF NOT EXISTS catalogue_fts USING fts5(
  folded, content='catalogue', content_rowid='rid', tokenize='unicode61 remove_diacritics 2');
CREATE TRIGGER IF NOT EXISTS catalogue_ai AFTER INSERT ON catalogue BEGIN
  INSERT INTO catalogue_fts (rowid, folded) VALUES (new.rid, new.folded); END;
CREATE TRIGGER IF NOT EXISTS catalogue_ad AFTER DELETE ON catalogue BEGIN
  INSERT INTO catalogue_fts (catalogue_fts, rowid, folded) VALUES ('delete', old.rid, old.folded);
  END;
CREATE TRIGGER IF NOT EXISTS catalogue_au AFTER UPDATE OF folded ON catalogue BEGIN
  INSERT INTO catalogue_fts (catalogue_fts, rowid, folded) VALUES ('delete', old.rid, old.folded);
  INSERT INTO catalogue_fts (rowid, folded) VALUES (new.rid, new.folded); END;
CREATE TABLE IF NOT EXISTS readers (
  username TEXT PRIMARY KEY, full_name TEXT NOT NULL, identity_no TEXT,
  pw_hash BLOB NOT NULL, created_at TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS reader_sessions (
  token_hash BLOB PRIMARY KEY, username TEXT NOT NULL, expires_at TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS reader_requests (
  id TEXT PRIMARY KEY, username TEXT NOT NULL, oai_id TEXT NOT NULL, form TEXT NOT NULL,
  purpose TEXT NOT NULL, status TEXT NOT NULL, created_at TEXT NOT NULL, decided_by TEXT,
  decided_at TEXT, note TEXT, copy_sha256 TEXT, copy_pdf BLOB);
CREATE INDEX IF NOT EXISTS reader_requests_user ON reader_requests (username, created_at);
CREATE INDEX IF NOT EXISTS reader_requests_status ON reader_requests (status, created_at);
"""

class SqliteDialect(Dialect[sqlite3.Connection]):
    """SQLite: lists travel as one JSON parameter, search is FTS5, purges overwrite pages."""

    def rows(self, conn: sqlite3.Connection, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        return conn.execute(sql, tuple(args)).fetchall()

    def run(self, conn: sqlite3.Connection, sql: str, args: Sequence[Any] = ()) -> int:
        return conn.execute(sql, tuple(args)).rowcount

    def run_many(self, conn: sqlite3.Connection, sql: str, rows: Sequence[Sequence[Any]]
                 ) -> None:
        conn.executemany(sql, rows)

    def among(self, column: str, values: Sequence[Any]) -> tuple[str, Any]:
        return f"{column} IN (SELECT value FROM json_each(?))", json.dumps(list(values))

    def text_match(self, folded_query: str, table: str = "documents"
                   ) -> tuple[str, Any] | None:
        words = folded_query.split()
        if not words:
            return None
        match = " AND ".join('"' + w.replace('"', "") + '"' for w in words)
        return (
            f"rid IN (SELECT rowid FROM {table}_fts WHERE {table}_fts MATCH ?)",
            match if folded_query.endswith(" ") else match + " *",
        )

    def search(self, conn: sqlite3.Connection, sql: str, args: Sequence[Any]) -> list[Any]:
        try:
            return self.rows(conn, sql, args)
        except sqlite3.OperationalError as exc:
            raise StorageError(f"search query cannot be run: {exc}") from exc

    def purging(self, conn: sqlite3.Connection) -> None:
        # Freed pages are overwritten, not left for a file reader to find (compact() then
        # empties the write-ahead log and rewrites the file).
        conn.execute("PRAGMA secure_delete = ON")


SQLITE = SqliteDialect()


class SqliteStorage:
    """CentreStorage on one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._wconn = self._connect()
        self._wconn.executescript(SCHEMA + LTV_SCHEMA + LINKS_SCHEMA)
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 30000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")  # a receipt is sent only after a durable commit
        conn.execute("PRAGMA cache_size = -32000")
        return conn

    @contextmanager
    def transaction(self) -> Iterator[SqlTx[sqlite3.Connection]]:
        with self._lock:
            conn = self._wconn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield SqlTx(conn, SQLITE)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextmanager
    def view(self) -> Iterator[SqlView[sqlite3.Connection]]:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            conn.execute("PRAGMA query_only = ON")
            self._local.conn = conn
            with self._lock:
                self._readers.append(conn)
        conn.execute("BEGIN")
        try:
            yield SqlView(conn, SQLITE)
        finally:
            conn.execute("COMMIT")

    def compact(self) -> None:
        """Rewrite the database so that deleted rows survive nowhere (free pages, WAL)."""
        with self._lock:
            conn = self._wconn
            conn.execute("INSERT INTO documents_fts (documents_fts) VALUES ('optimize')")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.execute("VACUUM")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        with self._lock:
            for c in self._readers:
                c.close()
            self._readers.clear()
            self._wconn.close()
