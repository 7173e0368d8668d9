"""The centre's queries, written once for SQLite and PostgreSQL.

``SqlView`` (reads) and ``SqlTx`` (reads and writes) implement ``CentreView`` and ``CentreTx``
over one connection of either engine; a ``Dialect`` runs the statements and spells what
differs (``dialect.py``). The backends (``sqlite_storage``, ``pg_storage``) own the schema,
the connections and the transactions, and hand out these objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic

from appliance import cbor

from .dialect import C, Dialect
from .sql_catalogue import CatalogueQueries, CatalogueWrites
from .sql_links import NOT_LINKED, SqlLinksTx, SqlLinksView
from .sql_ltv import SqlLtvTx, SqlLtvView
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

_NO_APP = ""  # anomalies of requests whose key is unknown are filed under this id
_MAX_INDEX = 1 << 62  # range ends beyond it are clamped: both engines store 64-bit integers

_APP_COLS = (
    "id, org_id, org_name, origin, public_key_pem, backing, alg, enrolled_at, status, "
    "accepted_size, accepted_root, frontier, last_seq, last_contact, claimed_size, claimed_at, "
    "withheld"
)

DOC_COLS = (
    "appliance_id", "org_id", "doc_id", "version", "log_index", "direction", "type_name",
    "code_number", "code_notation", "organ_name", "subject", "issued_date", "arrival_date",
    "arrival_number", "year", "file_code", "folded", "data_json",
)

_CHECKPOINT = (
    "SELECT appliance_id, tree_size, root, cose, frontier, accepted_at, receipt "
    "FROM checkpoints WHERE superseded_at IS NULL AND appliance_id = ? "
)

_NOT_STORED = (
    "NOT EXISTS (SELECT 1 FROM blobs b WHERE b.sha256 = r.sha256) AND " + NOT_LINKED
)

# What ``all_counts`` counts, in ApplianceCounts order: (table, condition).
_COUNTED = (
    ("entries", ""),
    ("documents", ""),
    ("content_refs", ""),
    ("content_refs r", _NOT_STORED),
)


def _frontier_bytes(frontier: Sequence[bytes]) -> bytes:
    return cbor.dumps_text_keyed(list(frontier))


def _frontier(raw: bytes) -> tuple[bytes, ...]:
    return tuple(bytes(h) for h in cbor.loads(bytes(raw)))


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _opt_bytes(value: Any) -> bytes | None:
    return None if value is None else bytes(value)


def _appliance(r: Sequence[Any]) -> ApplianceRecord:
    return ApplianceRecord(
        id=r[0], org_id=r[1], org_name=r[2], origin=r[3], public_key_pem=r[4], backing=r[5],
        alg=int(r[6]), enrolled_at=r[7], status=ApplianceStatus(r[8]),
        accepted_size=int(r[9]), accepted_root=bytes(r[10]), frontier=_frontier(r[11]),
        last_seq=int(r[12]), last_contact=r[13], claimed_size=int(r[14]), claimed_at=r[15],
        withheld=int(r[16]),
    )


def _checkpoint(r: Sequence[Any] | None) -> CheckpointRecord | None:
    if r is None:
        return None
    return CheckpointRecord(
        r[0], int(r[1]), bytes(r[2]), bytes(r[3]), _frontier(r[4]), r[5], bytes(r[6])
    )


def _content_ref(r: Sequence[Any]) -> ContentRef:
    return ContentRef(r[0], int(r[1]), int(r[2]))


class SqlView(SqlLtvView[C], SqlLinksView[C], CatalogueQueries, Generic[C]):
    """``CentreView`` on one connection: a transaction's, or a read-only snapshot's."""

    _locks_rows = False  # a transaction locks the rows it reads in order to change them
    c: C
    d: Dialect[C]

    def __init__(self, conn: C, dialect: Dialect[C]) -> None:
        self.c = conn
        self.d = dialect

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        return self.d.rows(self.c, sql, args)

    def _one(self, sql: str, args: Sequence[Any] = ()) -> Any:
        rows = self.d.rows(self.c, sql, args)
        return rows[0] if rows else None

    def _run(self, sql: str, args: Sequence[Any] = ()) -> int:
        return self.d.run(self.c, sql, args)

    @property
    def _row_lock(self) -> str:
        return self.d.row_lock if self._locks_rows else ""

    def appliance(self, appliance_id: str) -> ApplianceRecord | None:
        row = self._one(f"SELECT {_APP_COLS} FROM appliances WHERE id = ?{self._row_lock}",
                        (appliance_id,))
        return None if row is None else _appliance(row)

    def appliances(self) -> list[ApplianceRecord]:
        return [_appliance(r)
                for r in self._rows(f"SELECT {_APP_COLS} FROM appliances ORDER BY org_id, id")]

    def appliance_for_key(self, key_id: str) -> ApplianceRecord | None:
        # A hand-over key names the log it took over, even if it was enrolled on its own too.
        row = self._one(
            f"SELECT {_APP_COLS} FROM appliances WHERE id = (SELECT coalesce(("
            f"SELECT appliance_id FROM appliance_keys WHERE key_id = ?), ?)){self._row_lock}",
            (key_id, key_id),
        )
        return None if row is None else _appliance(row)

    def keys(self, appliance_id: str) -> list[KeyRecord]:
        rows = self._rows(
            "SELECT appliance_id, key_id, public_key_pem, backing, alg, from_size, added_at "
            "FROM appliance_keys WHERE appliance_id = ? ORDER BY from_size",
            (appliance_id,),
        )
        return [KeyRecord(r[0], r[1], r[2], r[3], int(r[4]), int(r[5]), r[6]) for r in rows]

    def _replacement(self, where: str, arg: Any) -> ReplacementRecord | None:
        r = self._one(
            "SELECT token_id, appliance_id, created_at, new_key_id, started_at, completed_at, "
            f"handover_size FROM replacements WHERE {where} = ?",
            (arg,),
        )
        if r is None:
            return None
        return ReplacementRecord(bytes(r[0]), r[1], r[2], r[3], r[4], r[5], _opt_int(r[6]))

    def replacement(self, token_id: bytes) -> ReplacementRecord | None:
        return self._replacement("token_id", token_id)

    def replacement_for_key(self, key_id: str) -> ReplacementRecord | None:
        return self._replacement("new_key_id", key_id)

    def token(self, token_id: bytes) -> TokenRecord | None:
        r = self._one(
            "SELECT token_id, secret, org_id, created_at, expires_at, used_by, used_at "
            f"FROM tokens WHERE token_id = ?{self._row_lock}",
            (token_id,),
        )
        if r is None:
            return None
        return TokenRecord(bytes(r[0]), bytes(r[1]), r[2], r[3], r[4], r[5], r[6])

    def checkpoint(self, appliance_id: str, tree_size: int) -> CheckpointRecord | None:
        return _checkpoint(
            self._one(_CHECKPOINT + "AND tree_size = ? LIMIT 1", (appliance_id, tree_size))
        )

    def checkpoint_at_or_below(
        self, appliance_id: str, tree_size: int
    ) -> CheckpointRecord | None:
        return _checkpoint(
            self._one(
                _CHECKPOINT + "AND tree_size <= ? ORDER BY tree_size DESC LIMIT 1",
                (appliance_id, min(tree_size, _MAX_INDEX)),
            )
        )

    def leaves(self, appliance_id: str, start: int, end: int) -> list[bytes]:
        rows = self._rows(
            "SELECT leaf FROM entries WHERE appliance_id = ? AND idx >= ? AND idx < ? "
            "ORDER BY idx",
            (appliance_id, start, min(end, _MAX_INDEX)),
        )
        return [bytes(r[0]) for r in rows]

    def entries(self, appliance_id: str, start: int, end: int) -> list[EntryRow]:
        rows = self._rows(
            "SELECT idx, leaf, entry FROM entries WHERE appliance_id = ? AND idx >= ? "
            "AND idx < ? ORDER BY idx",
            (appliance_id, start, min(end, _MAX_INDEX)),
        )
        return [EntryRow(int(r[0]), bytes(r[1]), _opt_bytes(r[2])) for r in rows]

    def response_for(self, appliance_id: str, digest: bytes) -> bytes | None:
        row = self._one(
            "SELECT response FROM responses WHERE appliance_id = ? AND digest = ?",
            (appliance_id, digest),
        )
        return None if row is None else bytes(row[0])

    def nonce_seen(self, appliance_id: str, nonce: bytes) -> bool:
        row = self._one(
            "SELECT 1 FROM nonces WHERE appliance_id = ? AND nonce = ?", (appliance_id, nonce)
        )
        return row is not None

    def content_expected(self, appliance_id: str, sha256: str) -> ContentRef | None:
        row = self._one(
            "SELECT sha256, size, first_idx FROM content_refs WHERE appliance_id = ? "
            "AND sha256 = ?",
            (appliance_id, sha256),
        )
        return None if row is None else _content_ref(row)

    def blob_recorded(self, sha256: str) -> bool:
        return self._one("SELECT 1 FROM blobs WHERE sha256 = ?", (sha256,)) is not None

    def missing_content(self, appliance_id: str, limit: int) -> tuple[list[ContentRef], int]:
        missing = f"FROM content_refs r WHERE r.appliance_id = ? AND {_NOT_STORED}"
        rows = (
            self._rows(
                f"SELECT r.sha256, r.size, r.first_idx {missing} "
                "ORDER BY r.first_idx, r.sha256 LIMIT ?",
                (appliance_id, limit),
            )
            if limit > 0
            else []
        )
        count = int(self._one(f"SELECT count(*) {missing}", (appliance_id,))[0])
        return [_content_ref(r) for r in rows], count

    def parked(self, appliance_id: str) -> list[ParkedBatch]:
        rows = self._rows(
            'SELECT appliance_id, start, "end", digest, raw, parked_at FROM parked '
            "WHERE appliance_id = ? ORDER BY start, parked_at",
            (appliance_id,),
        )
        return [
            ParkedBatch(r[0], int(r[1]), int(r[2]), bytes(r[3]), bytes(r[4]), r[5]) for r in rows
        ]

    def anomalies(self, appliance_id: str | None = None) -> list[Anomaly]:
        sql = "SELECT appliance_id, kind, detail, first_at, last_at, count FROM anomalies"
        args: tuple[Any, ...] = ()
        if appliance_id is not None:
            sql += " WHERE appliance_id = ?"
            args = (appliance_id,)
        rows = self._rows(sql + " ORDER BY last_at DESC", args)
        return [
            Anomaly(r[0] or None, AnomalyKind(r[1]), r[2], r[3], r[4], int(r[5])) for r in rows
        ]

    def alerts(self, open_only: bool = True) -> list[Alert]:
        sql = "SELECT id, appliance_id, kind, detail, raised_at, cleared_at, cleared_by FROM alerts"
        if open_only:
            sql += " WHERE cleared_at IS NULL"
        rows = self._rows(sql + " ORDER BY raised_at DESC, id DESC")
        return [Alert(int(r[0]), r[1], r[2], r[3], r[4], r[5], r[6]) for r in rows]

    def forks(self, appliance_id: str) -> list[ForkEvidence]:
        rows = self._rows(
            "SELECT appliance_id, detected_at, accepted_size, accepted_checkpoint, claimed_size, "
            "claimed_checkpoint, diverge_index, request, reason FROM forks "
            "WHERE appliance_id = ? ORDER BY id",
            (appliance_id,),
        )
        return [
            ForkEvidence(
                r[0], r[1], int(r[2]), bytes(r[3]), int(r[4]), bytes(r[5]), _opt_int(r[6]),
                bytes(r[7]), r[8],
            )
            for r in rows
        ]

    def counts(self, appliance_id: str) -> ApplianceCounts:
        got = self.all_counts(appliance_id)
        return got.get(appliance_id, ApplianceCounts(0, 0, 0, 0))

    def all_counts(self, appliance_id: str | None = None) -> dict[str, ApplianceCounts]:
        """Counts of every appliance holding anything (or of one), in four grouped scans."""
        out: dict[str, list[int]] = {}
        args = () if appliance_id is None else (appliance_id,)
        for k, (table, condition) in enumerate(_COUNTED):
            conds = [c for c in (condition, "appliance_id = ?" if args else "") if c]
            where = " WHERE " + " AND ".join(conds) if conds else ""
            for app, n in self._rows(
                f"SELECT appliance_id, count(*) FROM {table}{where} GROUP BY 1", args
            ):
                out.setdefault(app, [0, 0, 0, 0])[k] = int(n)
        return {app: ApplianceCounts(*v) for app, v in out.items()}

    def search_documents(
        self, folded_query: str, org_id: str | None = None, limit: int = 50
    ) -> list[DocumentRow]:
        where: list[str] = []
        args: list[Any] = []
        match = self.d.text_match(folded_query)
        if match is not None:
            where.append(match[0])
            args.append(match[1])
        if org_id:
            where.append("org_id = ?")
            args.append(org_id)
        sql = "SELECT " + ", ".join(DOC_COLS) + " FROM documents"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY org_id, year DESC NULLS LAST, log_index DESC LIMIT ?"
        args.append(limit)
        return [DocumentRow(*r) for r in self.d.search(self.c, sql, args)]


class SqlTx(SqlView[C], SqlLtvTx[C], SqlLinksTx[C], CatalogueWrites):
    """``CentreTx``: the same reads, locking the rows they will change, and the writes."""

    _locks_rows = True

    def add_token(self, token: TokenRecord) -> None:
        self._run(
            "INSERT INTO tokens (token_id, secret, org_id, created_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (token.token_id, token.secret, token.org_id, token.created_at, token.expires_at),
        )

    def use_token(self, token_id: bytes, appliance_id: str, at: str) -> None:
        self._run(
            "UPDATE tokens SET used_by = ?, used_at = ? WHERE token_id = ?",
            (appliance_id, at, token_id),
        )

    def add_appliance(self, rec: ApplianceRecord) -> None:
        self._run(
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
        self._run(
            "INSERT INTO replacements (token_id, appliance_id, created_at) VALUES (?, ?, ?)",
            (rec.token_id, rec.appliance_id, rec.created_at),
        )

    def start_replacement(self, token_id: bytes, new_key_id: str, at: str) -> None:
        self._run(
            "UPDATE replacements SET new_key_id = ?, started_at = ? WHERE token_id = ?",
            (new_key_id, at, token_id),
        )

    def complete_replacement(self, token_id: bytes, size: int, at: str) -> None:
        self._run(
            "UPDATE replacements SET completed_at = ?, handover_size = ? WHERE token_id = ?",
            (at, size, token_id),
        )

    def rekey(self, rec: KeyRecord) -> None:
        self._run(
            "INSERT INTO appliance_keys (key_id, appliance_id, public_key_pem, backing, alg, "
            "from_size, added_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (rec.key_id, rec.appliance_id, rec.public_key_pem, rec.backing, rec.alg,
             rec.from_size, rec.added_at),
        )
        self._run(
            "UPDATE appliances SET public_key_pem = ?, backing = ?, alg = ?, last_seq = 0 "
            "WHERE id = ?",
            (rec.public_key_pem, rec.backing, rec.alg, rec.appliance_id),
        )

    def set_accepted(
        self, appliance_id: str, size: int, root: bytes, frontier: Sequence[bytes], withheld: int
    ) -> None:
        self._set(appliance_id, accepted_size=size, accepted_root=root,
                  frontier=_frontier_bytes(frontier), withheld=withheld)

    def _set(self, appliance_id: str, **values: Any) -> None:
        cols = ", ".join(f"{c} = ?" for c in values)
        self._run(f"UPDATE appliances SET {cols} WHERE id = ?", (*values.values(), appliance_id))

    def set_seq(self, appliance_id: str, seq: int) -> None:
        self._set(appliance_id, last_seq=seq)

    def touch(self, appliance_id: str, at: str) -> None:
        self._set(appliance_id, last_contact=at)

    def set_claim(self, appliance_id: str, size: int, at: str) -> None:
        self._set(appliance_id, claimed_size=size, claimed_at=at)

    def set_status(self, appliance_id: str, status: ApplianceStatus) -> None:
        self._set(appliance_id, status=status.value)

    def add_nonce(self, appliance_id: str, nonce: bytes, at: str) -> None:
        self._run(
            "INSERT INTO nonces (appliance_id, nonce, at) VALUES (?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (appliance_id, nonce, at),
        )

    def remember_response(
        self, appliance_id: str, digest: bytes, response: bytes, at: str
    ) -> None:
        self._run(
            "INSERT INTO responses (appliance_id, digest, response, at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (appliance_id, digest) DO UPDATE SET response = excluded.response, "
            "at = excluded.at",
            (appliance_id, digest, response, at),
        )

    def add_entries(self, appliance_id: str, rows: Sequence[EntryRow]) -> None:
        if rows:
            self.d.load(
                self.c, "entries", ("appliance_id", "idx", "leaf", "entry"),
                [(appliance_id, r.index, r.leaf_hash, r.entry) for r in rows],
            )

    def add_checkpoint(self, rec: CheckpointRecord) -> None:
        self._run(
            "INSERT INTO checkpoints (appliance_id, tree_size, root, cose, frontier, "
            "accepted_at, receipt) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (
                rec.appliance_id, rec.tree_size, rec.root_hash, rec.cose,
                _frontier_bytes(rec.frontier), rec.accepted_at, rec.receipt,
            ),
        )

    def add_content_refs(self, appliance_id: str, refs: Sequence[ContentRef]) -> None:
        if refs:
            self.d.run_many(
                self.c,
                "INSERT INTO content_refs (appliance_id, sha256, size, first_idx) "
                "VALUES (?, ?, ?, ?) "
                "ON CONFLICT (appliance_id, sha256) DO UPDATE SET size = excluded.size "
                "WHERE content_refs.size < 0 AND excluded.size >= 0",
                [(appliance_id, r.sha256, r.size, r.first_index) for r in refs],
            )

    def record_blob(self, sha256: str, size: int, at: str) -> None:
        self._run(
            "INSERT INTO blobs (sha256, size, stored_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            (sha256, size, at),
        )

    def upsert_documents(self, rows: Sequence[DocumentRow]) -> None:
        # Only the newest version of each document is written (the last of equal ones), as
        # writing them in order would leave it; one statement may not touch a row twice.
        newest: dict[tuple[str, str], DocumentRow] = {}
        for r in rows:
            old = newest.get((r.appliance_id, r.doc_id))
            if old is None or r.version >= old.version:
                newest[(r.appliance_id, r.doc_id)] = r
        if not newest:
            return
        updates = ", ".join(f"{c} = excluded.{c}" for c in DOC_COLS[2:])
        self.d.run_many(
            self.c,
            f"INSERT INTO documents ({', '.join(DOC_COLS)}) "
            f"VALUES ({', '.join('?' for _ in DOC_COLS)}) "
            f"ON CONFLICT (appliance_id, doc_id) DO UPDATE SET {updates} "
            "WHERE excluded.version >= documents.version",
            [tuple(getattr(r, c) for c in DOC_COLS) for r in newest.values()],
        )

    def record_anomaly(
        self, appliance_id: str | None, kind: AnomalyKind, detail: str, at: str
    ) -> None:
        self._run(
            "INSERT INTO anomalies (appliance_id, kind, detail, first_at, last_at, count) "
            "VALUES (?, ?, ?, ?, ?, 1) ON CONFLICT (appliance_id, kind) DO UPDATE SET "
            "detail = excluded.detail, last_at = excluded.last_at, count = anomalies.count + 1",
            (appliance_id or _NO_APP, kind.value, detail, at, at),
        )

    def raise_alert(self, appliance_id: str, kind: str, detail: str, at: str) -> int:
        row = self._one(
            "INSERT INTO alerts (appliance_id, kind, detail, raised_at) VALUES (?, ?, ?, ?) "
            "RETURNING id",
            (appliance_id, kind, detail, at),
        )
        return int(row[0])

    def clear_alerts(self, appliance_id: str, by: str, at: str) -> int:
        return self._run(
            "UPDATE alerts SET cleared_at = ?, cleared_by = ? WHERE appliance_id = ? "
            "AND cleared_at IS NULL",
            (at, by, appliance_id),
        )

    def add_fork(self, ev: ForkEvidence) -> None:
        self._run(
            "INSERT INTO forks (appliance_id, detected_at, accepted_size, accepted_checkpoint, "
            "claimed_size, claimed_checkpoint, diverge_index, request, reason) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                ev.appliance_id, ev.detected_at, ev.accepted_size, ev.accepted_checkpoint,
                ev.claimed_size, ev.claimed_checkpoint, ev.diverge_index, ev.request, ev.reason,
            ),
        )

    def park(self, batch: ParkedBatch) -> None:
        self._run(
            'INSERT INTO parked (appliance_id, start, "end", digest, raw, parked_at) '
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (batch.appliance_id, batch.start, batch.end, batch.digest, batch.raw,
             batch.parked_at),
        )

    def unpark(self, appliance_id: str, digest: bytes) -> None:
        self._run(
            "DELETE FROM parked WHERE appliance_id = ? AND digest = ?", (appliance_id, digest)
        )

    def truncate(self, appliance_id: str, size: int, at: str) -> tuple[int, list[str]]:
        self._run(
            "INSERT INTO superseded_entries (appliance_id, idx, leaf, entry, superseded_at) "
            "SELECT appliance_id, idx, leaf, entry, ? FROM entries WHERE appliance_id = ? "
            "AND idx >= ?",
            (at, appliance_id, size),
        )
        moved = self._run(
            "DELETE FROM entries WHERE appliance_id = ? AND idx >= ?", (appliance_id, size)
        )
        self._run(
            "UPDATE checkpoints SET superseded_at = ? WHERE appliance_id = ? AND tree_size > ? "
            "AND superseded_at IS NULL",
            (at, appliance_id, size),
        )
        docs = self._rows(
            "DELETE FROM documents WHERE appliance_id = ? AND log_index >= ? RETURNING doc_id",
            (appliance_id, size),
        )
        for table in ("content_refs", "content_links"):
            self._run(
                f"DELETE FROM {table} WHERE appliance_id = ? AND first_idx >= ?",
                (appliance_id, size),
            )
        return moved, [r[0] for r in docs]

    def withhold_entries(
        self, appliance_id: str, indices: Sequence[int], doc_ids: Sequence[str],
        content: Sequence[str],
    ) -> tuple[int, list[str]]:
        self.d.purging(self.c)
        for table in ("entries", "superseded_entries"):
            cond, arg = self.d.among("idx", indices)
            self._run(f"UPDATE {table} SET entry = NULL WHERE appliance_id = ? AND {cond}",
                      (appliance_id, arg))
        cond, arg = self.d.among("doc_id", doc_ids)
        docs = self._run(f"DELETE FROM documents WHERE appliance_id = ? AND {cond}",
                         (appliance_id, arg))
        cond, arg = self.d.among("sha256", content)
        for table in ("content_refs", "content_links"):
            self._run(f"DELETE FROM {table} WHERE appliance_id = ? AND {cond}",
                      (appliance_id, arg))
        kept = {r[0] for r in self._rows(f"SELECT DISTINCT sha256 FROM content_refs WHERE {cond}",
                                         (arg,))}
        # Every hash no one references any more, recorded or not: a file the blob store took
        # without its row (a crash between the two) must go as well.
        gone = [sha for sha in dict.fromkeys(content) if sha not in kept]
        cond, arg = self.d.among("sha256", gone)
        self._run(f"DELETE FROM blobs WHERE {cond}", (arg,))
        # Requests kept whole (parked batches, fork evidence) may carry the same entries.
        self._run("DELETE FROM parked WHERE appliance_id = ?", (appliance_id,))
        self._run("UPDATE forks SET request = ? WHERE appliance_id = ?", (b"", appliance_id))
        self._run("UPDATE appliances SET withheld = withheld + ? WHERE id = ?",
                  (len(indices), appliance_id))
        return docs, gone
