"""The centre's storage on SQLite: the embedded default (tests, a small province).

One writer connection behind a lock (BEGIN IMMEDIATE … COMMIT, WAL, synchronous=FULL) and a
read connection per thread. Province-wide search uses FTS5 over the folded text.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from appliance import cbor

from ..errors import StorageError
from .storage import (
    Alert,
    Anomaly,
    AnomalyKind,
    ApplianceCounts,
    ApplianceRecord,
    ApplianceStatus,
    CheckpointRecord,
    ContentRef,
    DocumentRow,
    EntryRow,
    ForkEvidence,
    KeyRecord,
    ParkedBatch,
    ReplacementRecord,
    TokenRecord,
)

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
"""

_NO_APP = ""  # anomalies of requests whose key is unknown are filed under this id


def _frontier_bytes(frontier: Sequence[bytes]) -> bytes:
    return cbor.dumps_text_keyed(list(frontier))


def _frontier(raw: bytes) -> tuple[bytes, ...]:
    value = cbor.loads(bytes(raw))
    return tuple(bytes(h) for h in value)


class _Conn:
    """Reads shared by the writer's transaction and the read views."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.c = conn

    def _one(self, sql: str, args: Sequence[Any] = ()) -> Any:
        return self.c.execute(sql, tuple(args)).fetchone()

    def appliance(self, appliance_id: str) -> ApplianceRecord | None:
        row = self._one("SELECT * FROM appliances WHERE id = ?", (appliance_id,))
        return None if row is None else _appliance(row)

    def appliances(self) -> list[ApplianceRecord]:
        rows = self.c.execute("SELECT * FROM appliances ORDER BY org_id, id").fetchall()
        return [_appliance(r) for r in rows]

    def appliance_for_key(self, key_id: str) -> ApplianceRecord | None:
        row = self._one(
            "SELECT * FROM appliances WHERE id = ? UNION ALL SELECT a.* FROM appliance_keys k "
            "JOIN appliances a ON a.id = k.appliance_id WHERE k.key_id = ? LIMIT 1",
            (key_id, key_id),
        )
        return None if row is None else _appliance(row)

    def keys(self, appliance_id: str) -> list[KeyRecord]:
        rows = self.c.execute(
            "SELECT appliance_id, key_id, public_key_pem, backing, alg, from_size, added_at "
            "FROM appliance_keys WHERE appliance_id = ? ORDER BY from_size",
            (appliance_id,),
        ).fetchall()
        return [KeyRecord(r[0], r[1], r[2], r[3], int(r[4]), int(r[5]), r[6]) for r in rows]

    def _replacement(self, where: str, arg: Any) -> ReplacementRecord | None:
        row = self._one(
            "SELECT token_id, appliance_id, created_at, new_key_id, started_at, completed_at, "
            f"handover_size FROM replacements WHERE {where} = ?",
            (arg,),
        )
        if row is None:
            return None
        return ReplacementRecord(bytes(row[0]), *tuple(row)[1:])

    def replacement(self, token_id: bytes) -> ReplacementRecord | None:
        return self._replacement("token_id", token_id)

    def replacement_for_key(self, key_id: str) -> ReplacementRecord | None:
        return self._replacement("new_key_id", key_id)

    def token(self, token_id: bytes) -> TokenRecord | None:
        row = self._one(
            "SELECT token_id, secret, org_id, created_at, expires_at, used_by, used_at "
            "FROM tokens WHERE token_id = ?",
            (token_id,),
        )
        if row is None:
            return None
        return TokenRecord(bytes(row[0]), bytes(row[1]), *tuple(row)[2:])

    def _checkpoint(self, row: Any) -> CheckpointRecord | None:
        if row is None:
            return None
        return CheckpointRecord(
            row[0], int(row[1]), bytes(row[2]), bytes(row[3]), _frontier(row[4]), row[5],
            bytes(row[6]),
        )

    _CP = (
        "SELECT appliance_id, tree_size, root, cose, frontier, accepted_at, receipt "
        "FROM checkpoints WHERE superseded_at IS NULL AND appliance_id = ? "
    )

    def checkpoint(self, appliance_id: str, tree_size: int) -> CheckpointRecord | None:
        return self._checkpoint(
            self._one(self._CP + "AND tree_size = ?", (appliance_id, tree_size))
        )

    def checkpoint_at_or_below(
        self, appliance_id: str, tree_size: int
    ) -> CheckpointRecord | None:
        return self._checkpoint(
            self._one(
                self._CP + "AND tree_size <= ? ORDER BY tree_size DESC LIMIT 1",
                (appliance_id, tree_size),
            )
        )

    def leaves(self, appliance_id: str, start: int, end: int) -> list[bytes]:
        rows = self.c.execute(
            "SELECT leaf FROM entries WHERE appliance_id = ? AND idx >= ? AND idx < ? "
            "ORDER BY idx",
            (appliance_id, start, end),
        ).fetchall()
        return [bytes(r[0]) for r in rows]

    def entries(self, appliance_id: str, start: int, end: int) -> list[EntryRow]:
        rows = self.c.execute(
            "SELECT idx, leaf, entry FROM entries WHERE appliance_id = ? AND idx >= ? "
            "AND idx < ? ORDER BY idx",
            (appliance_id, start, end),
        ).fetchall()
        return [
            EntryRow(int(r[0]), bytes(r[1]), None if r[2] is None else bytes(r[2])) for r in rows
        ]

    def response_for(self, appliance_id: str, digest: bytes) -> bytes | None:
        row = self._one(
            "SELECT response FROM responses WHERE appliance_id = ? AND digest = ?",
            (appliance_id, digest),
        )
        return None if row is None else bytes(row[0])

    def nonce_seen(self, appliance_id: str, nonce: bytes) -> bool:
        return (
            self._one(
                "SELECT 1 FROM nonces WHERE appliance_id = ? AND nonce = ?", (appliance_id, nonce)
            )
            is not None
        )

    def content_expected(self, appliance_id: str, sha256: str) -> ContentRef | None:
        row = self._one(
            "SELECT sha256, size, first_idx FROM content_refs WHERE appliance_id = ? "
            "AND sha256 = ?",
            (appliance_id, sha256),
        )
        return None if row is None else ContentRef(row[0], int(row[1]), int(row[2]))

    def blob_recorded(self, sha256: str) -> bool:
        return self._one("SELECT 1 FROM blobs WHERE sha256 = ?", (sha256,)) is not None

    def missing_content(self, appliance_id: str, limit: int) -> tuple[list[ContentRef], int]:
        base = (
            "FROM content_refs r WHERE r.appliance_id = ? AND NOT EXISTS "
            "(SELECT 1 FROM blobs b WHERE b.sha256 = r.sha256)"
        )
        rows = self.c.execute(
            f"SELECT r.sha256, r.size, r.first_idx {base} ORDER BY r.first_idx, r.sha256 "
            "LIMIT ?",
            (appliance_id, limit),
        ).fetchall()
        count = int(self._one(f"SELECT count(*) {base}", (appliance_id,))[0])
        return [ContentRef(r[0], int(r[1]), int(r[2])) for r in rows], count

    def parked(self, appliance_id: str) -> list[ParkedBatch]:
        rows = self.c.execute(
            'SELECT appliance_id, start, "end", digest, raw, parked_at FROM parked '
            "WHERE appliance_id = ? ORDER BY start, parked_at",
            (appliance_id,),
        ).fetchall()
        return [
            ParkedBatch(r[0], int(r[1]), int(r[2]), bytes(r[3]), bytes(r[4]), r[5]) for r in rows
        ]

    def anomalies(self, appliance_id: str | None = None) -> list[Anomaly]:
        sql = "SELECT appliance_id, kind, detail, first_at, last_at, count FROM anomalies"
        args: tuple[Any, ...] = ()
        if appliance_id is not None:
            sql += " WHERE appliance_id = ?"
            args = (appliance_id,)
        rows = self.c.execute(sql + " ORDER BY last_at DESC", args).fetchall()
        return [
            Anomaly(r[0] or None, AnomalyKind(r[1]), r[2], r[3], r[4], int(r[5])) for r in rows
        ]

    def alerts(self, open_only: bool = True) -> list[Alert]:
        sql = "SELECT id, appliance_id, kind, detail, raised_at, cleared_at, cleared_by FROM alerts"
        if open_only:
            sql += " WHERE cleared_at IS NULL"
        rows = self.c.execute(sql + " ORDER BY raised_at DESC, id DESC").fetchall()
        return [Alert(int(r[0]), *tuple(r)[1:]) for r in rows]

    def forks(self, appliance_id: str) -> list[ForkEvidence]:
        rows = self.c.execute(
            "SELECT appliance_id, detected_at, accepted_size, accepted_checkpoint, claimed_size, "
            "claimed_checkpoint, diverge_index, request, reason FROM forks "
            "WHERE appliance_id = ? ORDER BY id",
            (appliance_id,),
        ).fetchall()
        return [
            ForkEvidence(
                r[0], r[1], int(r[2]), bytes(r[3]), int(r[4]), bytes(r[5]),
                None if r[6] is None else int(r[6]), bytes(r[7]), r[8],
            )
            for r in rows
        ]

    def counts(self, appliance_id: str) -> ApplianceCounts:
        entries = self._one(
            "SELECT count(*) FROM entries WHERE appliance_id = ?", (appliance_id,)
        )[0]
        docs = self._one(
            "SELECT count(*) FROM documents WHERE appliance_id = ?", (appliance_id,)
        )[0]
        expected = self._one(
            "SELECT count(*) FROM content_refs WHERE appliance_id = ?", (appliance_id,)
        )[0]
        _, missing = self.missing_content(appliance_id, 0)
        return ApplianceCounts(int(entries), int(docs), int(expected), missing)

    def all_counts(self) -> dict[str, ApplianceCounts]:
        out: dict[str, list[int]] = {}
        for k, sql in enumerate((
            "SELECT appliance_id, count(*) FROM entries GROUP BY 1",
            "SELECT appliance_id, count(*) FROM documents GROUP BY 1",
            "SELECT appliance_id, count(*) FROM content_refs GROUP BY 1",
            "SELECT r.appliance_id, count(*) FROM content_refs r WHERE NOT EXISTS "
            "(SELECT 1 FROM blobs b WHERE b.sha256 = r.sha256) GROUP BY 1",
        )):
            for app, n in self.c.execute(sql):
                out.setdefault(app, [0, 0, 0, 0])[k] = int(n)
        return {app: ApplianceCounts(*v) for app, v in out.items()}

    def search_documents(
        self, folded_query: str, org_id: str | None = None, limit: int = 50
    ) -> list[DocumentRow]:
        words = [w for w in folded_query.split() if w]
        args: list[Any] = []
        where = []
        if words:
            match = " AND ".join('"' + w.replace('"', "") + '"' for w in words)
            where.append("d.rid IN (SELECT rowid FROM documents_fts WHERE documents_fts MATCH ?)")
            args.append(match + " *" if not folded_query.endswith(" ") else match)
        if org_id:
            where.append("d.org_id = ?")
            args.append(org_id)
        sql = "SELECT " + ", ".join("d." + c for c in _DOC_COLS) + " FROM documents d"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY d.org_id, d.year DESC, d.log_index DESC LIMIT ?"
        args.append(limit)
        try:
            rows = self.c.execute(sql, args).fetchall()
        except sqlite3.OperationalError as exc:
            raise StorageError(f"search query cannot be run: {exc}") from exc
        return [DocumentRow(*r) for r in rows]


_DOC_COLS = (
    "appliance_id", "org_id", "doc_id", "version", "log_index", "direction", "type_name",
    "code_number", "code_notation", "organ_name", "subject", "issued_date", "arrival_date",
    "arrival_number", "year", "file_code", "folded", "data_json",
)


def _appliance(row: Any) -> ApplianceRecord:
    return ApplianceRecord(
        id=row["id"],
        org_id=row["org_id"],
        org_name=row["org_name"],
        origin=row["origin"],
        public_key_pem=row["public_key_pem"],
        backing=row["backing"],
        alg=int(row["alg"]),
        enrolled_at=row["enrolled_at"],
        status=ApplianceStatus(row["status"]),
        accepted_size=int(row["accepted_size"]),
        accepted_root=bytes(row["accepted_root"]),
        frontier=_frontier(row["frontier"]),
        last_seq=int(row["last_seq"]),
        last_contact=row["last_contact"],
        claimed_size=int(row["claimed_size"]),
        claimed_at=row["claimed_at"],
        withheld=int(row["withheld"]),
    )


class _Tx(_Conn):
    def add_token(self, token: TokenRecord) -> None:
        self.c.execute(
            "INSERT INTO tokens (token_id, secret, org_id, created_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (token.token_id, token.secret, token.org_id, token.created_at, token.expires_at),
        )

    def use_token(self, token_id: bytes, appliance_id: str, at: str) -> None:
        self.c.execute(
            "UPDATE tokens SET used_by = ?, used_at = ? WHERE token_id = ?",
            (appliance_id, at, token_id),
        )

    def add_appliance(self, rec: ApplianceRecord) -> None:
        self.c.execute(
            "INSERT INTO appliances (id, org_id, org_name, origin, public_key_pem, backing, alg, "
            "enrolled_at, status, accepted_size, accepted_root, frontier) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                rec.id, rec.org_id, rec.org_name, rec.origin, rec.public_key_pem, rec.backing,
                rec.alg, rec.enrolled_at, rec.status.value, rec.accepted_size, rec.accepted_root,
                _frontier_bytes(rec.frontier),
            ),
        )

    def add_replacement(self, rec: ReplacementRecord) -> None:
        self.c.execute(
            "INSERT INTO replacements (token_id, appliance_id, created_at) VALUES (?, ?, ?)",
            (rec.token_id, rec.appliance_id, rec.created_at),
        )

    def start_replacement(self, token_id: bytes, new_key_id: str, at: str) -> None:
        self.c.execute(
            "UPDATE replacements SET new_key_id = ?, started_at = ? WHERE token_id = ?",
            (new_key_id, at, token_id),
        )

    def complete_replacement(self, token_id: bytes, size: int, at: str) -> None:
        self.c.execute(
            "UPDATE replacements SET completed_at = ?, handover_size = ? WHERE token_id = ?",
            (at, size, token_id),
        )

    def rekey(self, rec: KeyRecord) -> None:
        self.c.execute(
            "INSERT INTO appliance_keys (key_id, appliance_id, public_key_pem, backing, alg, "
            "from_size, added_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (rec.key_id, rec.appliance_id, rec.public_key_pem, rec.backing, rec.alg,
             rec.from_size, rec.added_at),
        )
        self.c.execute(
            "UPDATE appliances SET public_key_pem = ?, backing = ?, alg = ?, last_seq = 0 "
            "WHERE id = ?",
            (rec.public_key_pem, rec.backing, rec.alg, rec.appliance_id),
        )

    def set_accepted(
        self, appliance_id: str, size: int, root: bytes, frontier: Sequence[bytes], withheld: int
    ) -> None:
        self.c.execute(
            "UPDATE appliances SET accepted_size = ?, accepted_root = ?, frontier = ?, "
            "withheld = ? WHERE id = ?",
            (size, root, _frontier_bytes(frontier), withheld, appliance_id),
        )

    def set_seq(self, appliance_id: str, seq: int) -> None:
        self.c.execute("UPDATE appliances SET last_seq = ? WHERE id = ?", (seq, appliance_id))

    def touch(self, appliance_id: str, at: str) -> None:
        self.c.execute("UPDATE appliances SET last_contact = ? WHERE id = ?", (at, appliance_id))

    def set_claim(self, appliance_id: str, size: int, at: str) -> None:
        self.c.execute(
            "UPDATE appliances SET claimed_size = ?, claimed_at = ? WHERE id = ?",
            (size, at, appliance_id),
        )

    def set_status(self, appliance_id: str, status: ApplianceStatus) -> None:
        self.c.execute(
            "UPDATE appliances SET status = ? WHERE id = ?", (status.value, appliance_id)
        )

    def add_nonce(self, appliance_id: str, nonce: bytes, at: str) -> None:
        self.c.execute(
            "INSERT OR IGNORE INTO nonces (appliance_id, nonce, at) VALUES (?, ?, ?)",
            (appliance_id, nonce, at),
        )

    def remember_response(
        self, appliance_id: str, digest: bytes, response: bytes, at: str
    ) -> None:
        self.c.execute(
            "INSERT OR REPLACE INTO responses (appliance_id, digest, response, at) "
            "VALUES (?, ?, ?, ?)",
            (appliance_id, digest, response, at),
        )

    def add_entries(self, appliance_id: str, rows: Sequence[EntryRow]) -> None:
        self.c.executemany(
            "INSERT INTO entries (appliance_id, idx, leaf, entry) VALUES (?, ?, ?, ?)",
            [(appliance_id, r.index, r.leaf_hash, r.entry) for r in rows],
        )

    def add_checkpoint(self, rec: CheckpointRecord) -> None:
        self.c.execute(
            "INSERT OR IGNORE INTO checkpoints (appliance_id, tree_size, root, cose, frontier, "
            "accepted_at, receipt) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                rec.appliance_id, rec.tree_size, rec.root_hash, rec.cose,
                _frontier_bytes(rec.frontier), rec.accepted_at, rec.receipt,
            ),
        )

    def add_content_refs(self, appliance_id: str, refs: Sequence[ContentRef]) -> None:
        self.c.executemany(
            "INSERT INTO content_refs (appliance_id, sha256, size, first_idx) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (appliance_id, sha256) DO UPDATE SET size = excluded.size "
            "WHERE content_refs.size < 0 AND excluded.size >= 0",
            [(appliance_id, r.sha256, r.size, r.first_index) for r in refs],
        )

    def record_blob(self, sha256: str, size: int, at: str) -> None:
        self.c.execute(
            "INSERT OR IGNORE INTO blobs (sha256, size, stored_at) VALUES (?, ?, ?)",
            (sha256, size, at),
        )

    def upsert_documents(self, rows: Sequence[DocumentRow]) -> None:
        cols = ", ".join(_DOC_COLS)
        marks = ", ".join("?" for _ in _DOC_COLS)
        updates = ", ".join(f"{c} = excluded.{c}" for c in _DOC_COLS[2:])
        self.c.executemany(
            f"INSERT INTO documents ({cols}) VALUES ({marks}) "
            f"ON CONFLICT (appliance_id, doc_id) DO UPDATE SET {updates} "
            "WHERE excluded.version >= documents.version",
            [tuple(getattr(r, c) for c in _DOC_COLS) for r in rows],
        )

    def record_anomaly(
        self, appliance_id: str | None, kind: AnomalyKind, detail: str, at: str
    ) -> None:
        self.c.execute(
            "INSERT INTO anomalies (appliance_id, kind, detail, first_at, last_at, count) "
            "VALUES (?, ?, ?, ?, ?, 1) ON CONFLICT (appliance_id, kind) DO UPDATE SET "
            "detail = excluded.detail, last_at = excluded.last_at, count = count + 1",
            (appliance_id or _NO_APP, kind.value, detail, at, at),
        )

    def raise_alert(self, appliance_id: str, kind: str, detail: str, at: str) -> int:
        cur = self.c.execute(
            "INSERT INTO alerts (appliance_id, kind, detail, raised_at) VALUES (?, ?, ?, ?)",
            (appliance_id, kind, detail, at),
        )
        return int(cur.lastrowid or 0)

    def clear_alerts(self, appliance_id: str, by: str, at: str) -> int:
        cur = self.c.execute(
            "UPDATE alerts SET cleared_at = ?, cleared_by = ? WHERE appliance_id = ? "
            "AND cleared_at IS NULL",
            (at, by, appliance_id),
        )
        return cur.rowcount

    def add_fork(self, ev: ForkEvidence) -> None:
        self.c.execute(
            "INSERT INTO forks (appliance_id, detected_at, accepted_size, accepted_checkpoint, "
            "claimed_size, claimed_checkpoint, diverge_index, request, reason) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                ev.appliance_id, ev.detected_at, ev.accepted_size, ev.accepted_checkpoint,
                ev.claimed_size, ev.claimed_checkpoint, ev.diverge_index, ev.request, ev.reason,
            ),
        )

    def park(self, batch: ParkedBatch) -> None:
        self.c.execute(
            'INSERT OR IGNORE INTO parked (appliance_id, start, "end", digest, raw, parked_at) '
            "VALUES (?, ?, ?, ?, ?, ?)",
            (batch.appliance_id, batch.start, batch.end, batch.digest, batch.raw,
             batch.parked_at),
        )

    def unpark(self, appliance_id: str, digest: bytes) -> None:
        self.c.execute(
            "DELETE FROM parked WHERE appliance_id = ? AND digest = ?", (appliance_id, digest)
        )

    def truncate(self, appliance_id: str, size: int, at: str) -> tuple[int, list[str]]:
        self.c.execute(
            "INSERT INTO superseded_entries (appliance_id, idx, leaf, entry, superseded_at) "
            "SELECT appliance_id, idx, leaf, entry, ? FROM entries WHERE appliance_id = ? "
            "AND idx >= ?",
            (at, appliance_id, size),
        )
        moved = self.c.execute(
            "DELETE FROM entries WHERE appliance_id = ? AND idx >= ?", (appliance_id, size)
        ).rowcount
        self.c.execute(
            "UPDATE checkpoints SET superseded_at = ? WHERE appliance_id = ? AND tree_size > ? "
            "AND superseded_at IS NULL",
            (at, appliance_id, size),
        )
        docs = [
            r[0]
            for r in self.c.execute(
                "SELECT doc_id FROM documents WHERE appliance_id = ? AND log_index >= ?",
                (appliance_id, size),
            )
        ]
        self.c.execute(
            "DELETE FROM documents WHERE appliance_id = ? AND log_index >= ?",
            (appliance_id, size),
        )
        self.c.execute(
            "DELETE FROM content_refs WHERE appliance_id = ? AND first_idx >= ?",
            (appliance_id, size),
        )
        return moved, docs

    def withhold_entries(
        self, appliance_id: str, indices: Sequence[int], doc_ids: Sequence[str],
        content: Sequence[str],
    ) -> tuple[int, list[str]]:
        # Freed pages are overwritten, not left for a file reader to find (compact() then
        # empties the write-ahead log and rewrites the file).
        self.c.execute("PRAGMA secure_delete = ON")
        self.c.executemany(
            "UPDATE entries SET entry = NULL WHERE appliance_id = ? AND idx = ?",
            [(appliance_id, i) for i in indices],
        )
        self.c.executemany(
            "UPDATE superseded_entries SET entry = NULL WHERE appliance_id = ? AND idx = ?",
            [(appliance_id, i) for i in indices],
        )
        docs = 0
        for d in doc_ids:
            docs += self.c.execute(
                "DELETE FROM documents WHERE appliance_id = ? AND doc_id = ?", (appliance_id, d)
            ).rowcount
        gone: list[str] = []
        for sha in content:
            self.c.execute(
                "DELETE FROM content_refs WHERE appliance_id = ? AND sha256 = ?",
                (appliance_id, sha),
            )
            if self._one("SELECT 1 FROM content_refs WHERE sha256 = ?", (sha,)) is None:
                self.c.execute("DELETE FROM blobs WHERE sha256 = ?", (sha,))
                gone.append(sha)
        # Requests kept whole (parked batches, fork evidence) may carry the same entries.
        self.c.execute("DELETE FROM parked WHERE appliance_id = ?", (appliance_id,))
        self.c.execute(
            "UPDATE forks SET request = x'' WHERE appliance_id = ?", (appliance_id,)
        )
        self.c.execute(
            "UPDATE appliances SET withheld = withheld + ? WHERE id = ?",
            (len(indices), appliance_id),
        )
        return docs, gone


class SqliteStorage:
    """CentreStorage on one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._wconn = self._connect()
        self._wconn.executescript(SCHEMA)
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout = 30000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")  # a receipt is sent only after a durable commit
        conn.execute("PRAGMA cache_size = -32000")
        return conn

    @contextmanager
    def transaction(self) -> Iterator[_Tx]:
        with self._lock:
            conn = self._wconn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield _Tx(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextmanager
    def view(self) -> Iterator[_Conn]:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            conn.execute("PRAGMA query_only = ON")
            self._local.conn = conn
            with self._lock:
                self._readers.append(conn)
        conn.execute("BEGIN")
        try:
            yield _Conn(conn)
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
