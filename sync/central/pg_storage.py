"""The centre's storage on PostgreSQL: several stateless intake workers, one database.

Chosen with ``luutru central init --db postgresql://…``. Each transaction runs at READ
COMMITTED on its own pooled connection; the first read of an appliance inside a transaction
is ``SELECT … FOR UPDATE`` on its row, so every batch, status and refusal of one appliance is
applied in order by whichever worker takes it, and two workers can never accept conflicting
checkpoints (the second waits, then sees the first one's commit). Views are REPEATABLE READ
READ ONLY: a consistent snapshot for as long as they are open.

Schema changes are a versioned list of SQL steps (``pg_schema.MIGRATIONS``), each applied
once in a transaction under an advisory lock and recorded in ``schema_migrations``.

Province-wide search uses a generated ``tsvector`` ('simple' configuration) over the folded
text split on non-alphanumerics (the same words SQLite's unicode61 tokenizer sees), with a
GIN index; the last word of a query is a prefix, as on SQLite.
"""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from appliance import cbor

from ..errors import StorageError
from .pg_schema import migrate
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
    safe_url,
)

_NO_APP = ""  # anomalies of requests whose key is unknown are filed under this id
_WORD = re.compile(r"[^\W_]+")


def _frontier_bytes(frontier: Sequence[bytes]) -> bytes:
    return cbor.dumps_text_keyed(list(frontier))


def _frontier(raw: bytes) -> tuple[bytes, ...]:
    return tuple(bytes(h) for h in cbor.loads(bytes(raw)))


_APP_COLS = (
    "id, org_id, org_name, origin, public_key_pem, backing, alg, enrolled_at, status, "
    "accepted_size, accepted_root, frontier, last_seq, last_contact, claimed_size, claimed_at, "
    "withheld"
)

_DOC_COLS = (
    "appliance_id", "org_id", "doc_id", "version", "log_index", "direction", "type_name",
    "code_number", "code_notation", "organ_name", "subject", "issued_date", "arrival_date",
    "arrival_number", "year", "file_code", "folded", "data_json",
)


def _appliance(r: Sequence[Any]) -> ApplianceRecord:
    return ApplianceRecord(
        id=r[0], org_id=r[1], org_name=r[2], origin=r[3], public_key_pem=r[4], backing=r[5],
        alg=int(r[6]), enrolled_at=r[7], status=ApplianceStatus(r[8]),
        accepted_size=int(r[9]), accepted_root=bytes(r[10]), frontier=_frontier(r[11]),
        last_seq=int(r[12]), last_contact=r[13], claimed_size=int(r[14]), claimed_at=r[15],
        withheld=int(r[16]),
    )


def ts_query(folded_query: str) -> str | None:
    """A tsquery for the folded words of a query: all must occur, the last one as a prefix
    (unless the query ends with a space), words holding punctuation as phrases."""
    parts = []
    for w in folded_query.split():
        toks = _WORD.findall(w)
        if toks:
            parts.append(toks)
    if not parts:
        return None
    prefix = not folded_query.endswith(" ")
    out = []
    for k, toks in enumerate(parts):
        quoted = ["'" + t.replace("'", "") + "'" for t in toks]
        if prefix and k == len(parts) - 1:
            quoted[-1] += ":*"
        out.append("(" + " <-> ".join(quoted) + ")" if len(quoted) > 1 else quoted[0])
    return " & ".join(out)


class _Conn:
    """Reads, shared by transactions and views."""

    _lock_rows = False  # a transaction locks the appliance's row on reading it

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.c = conn

    def _one(self, sql: str, args: Sequence[Any] = ()) -> Any:
        return self.c.execute(sql.encode(), tuple(args)).fetchone()

    def _all(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        return self.c.execute(sql.encode(), tuple(args)).fetchall()

    def appliance(self, appliance_id: str) -> ApplianceRecord | None:
        lock = " FOR UPDATE" if self._lock_rows else ""
        row = self._one(f"SELECT {_APP_COLS} FROM appliances WHERE id = %s{lock}", (appliance_id,))
        return None if row is None else _appliance(row)

    def appliances(self) -> list[ApplianceRecord]:
        return [
            _appliance(r)
            for r in self._all(f"SELECT {_APP_COLS} FROM appliances ORDER BY org_id, id")
        ]

    def appliance_for_key(self, key_id: str) -> ApplianceRecord | None:
        lock = " FOR UPDATE" if self._lock_rows else ""
        row = self._one(
            f"SELECT {_APP_COLS} FROM appliances WHERE id = (SELECT coalesce(("
            "SELECT appliance_id FROM appliance_keys WHERE key_id = %s), %s))" + lock,
            (key_id, key_id),
        )
        return None if row is None else _appliance(row)

    def keys(self, appliance_id: str) -> list[KeyRecord]:
        rows = self._all(
            "SELECT appliance_id, key_id, public_key_pem, backing, alg, from_size, added_at "
            "FROM appliance_keys WHERE appliance_id = %s ORDER BY from_size",
            (appliance_id,),
        )
        return [KeyRecord(r[0], r[1], r[2], r[3], int(r[4]), int(r[5]), r[6]) for r in rows]

    def _replacement(self, where: str, arg: Any) -> ReplacementRecord | None:
        row = self._one(
            "SELECT token_id, appliance_id, created_at, new_key_id, started_at, completed_at, "
            f"handover_size FROM replacements WHERE {where} = %s",
            (arg,),
        )
        if row is None:
            return None
        size = None if row[6] is None else int(row[6])
        return ReplacementRecord(bytes(row[0]), row[1], row[2], row[3], row[4], row[5], size)

    def replacement(self, token_id: bytes) -> ReplacementRecord | None:
        return self._replacement("token_id", token_id)

    def replacement_for_key(self, key_id: str) -> ReplacementRecord | None:
        return self._replacement("new_key_id", key_id)

    def token(self, token_id: bytes) -> TokenRecord | None:
        lock = " FOR UPDATE" if self._lock_rows else ""
        row = self._one(
            "SELECT token_id, secret, org_id, created_at, expires_at, used_by, used_at "
            f"FROM tokens WHERE token_id = %s{lock}",
            (token_id,),
        )
        if row is None:
            return None
        return TokenRecord(bytes(row[0]), bytes(row[1]), *tuple(row)[2:])

    _CP = (
        "SELECT appliance_id, tree_size, root, cose, frontier, accepted_at, receipt "
        "FROM checkpoints WHERE superseded_at IS NULL AND appliance_id = %s "
    )

    @staticmethod
    def _checkpoint(row: Any) -> CheckpointRecord | None:
        if row is None:
            return None
        return CheckpointRecord(
            row[0], int(row[1]), bytes(row[2]), bytes(row[3]), _frontier(row[4]), row[5],
            bytes(row[6]),
        )

    def checkpoint(self, appliance_id: str, tree_size: int) -> CheckpointRecord | None:
        return self._checkpoint(
            self._one(self._CP + "AND tree_size = %s LIMIT 1", (appliance_id, tree_size))
        )

    def checkpoint_at_or_below(
        self, appliance_id: str, tree_size: int
    ) -> CheckpointRecord | None:
        return self._checkpoint(
            self._one(
                self._CP + "AND tree_size <= %s ORDER BY tree_size DESC LIMIT 1",
                (appliance_id, tree_size),
            )
        )

    def leaves(self, appliance_id: str, start: int, end: int) -> list[bytes]:
        rows = self._all(
            "SELECT leaf FROM entries WHERE appliance_id = %s AND idx >= %s AND idx < %s "
            "ORDER BY idx",
            (appliance_id, start, end),
        )
        return [bytes(r[0]) for r in rows]

    def entries(self, appliance_id: str, start: int, end: int) -> list[EntryRow]:
        rows = self._all(
            "SELECT idx, leaf, entry FROM entries WHERE appliance_id = %s AND idx >= %s "
            "AND idx < %s ORDER BY idx",
            (appliance_id, start, min(end, 1 << 62)),
        )
        return [
            EntryRow(int(r[0]), bytes(r[1]), None if r[2] is None else bytes(r[2])) for r in rows
        ]

    def response_for(self, appliance_id: str, digest: bytes) -> bytes | None:
        row = self._one(
            "SELECT response FROM responses WHERE appliance_id = %s AND digest = %s",
            (appliance_id, digest),
        )
        return None if row is None else bytes(row[0])

    def nonce_seen(self, appliance_id: str, nonce: bytes) -> bool:
        return (
            self._one(
                "SELECT 1 FROM nonces WHERE appliance_id = %s AND nonce = %s",
                (appliance_id, nonce),
            )
            is not None
        )

    def content_expected(self, appliance_id: str, sha256: str) -> ContentRef | None:
        row = self._one(
            "SELECT sha256, size, first_idx FROM content_refs WHERE appliance_id = %s "
            "AND sha256 = %s",
            (appliance_id, sha256),
        )
        return None if row is None else ContentRef(row[0], int(row[1]), int(row[2]))

    def blob_recorded(self, sha256: str) -> bool:
        return self._one("SELECT 1 FROM blobs WHERE sha256 = %s", (sha256,)) is not None

    _MISSING = (
        "FROM content_refs r WHERE r.appliance_id = %s AND NOT EXISTS "
        "(SELECT 1 FROM blobs b WHERE b.sha256 = r.sha256)"
    )

    def missing_content(self, appliance_id: str, limit: int) -> tuple[list[ContentRef], int]:
        rows = (
            self._all(
                f"SELECT r.sha256, r.size, r.first_idx {self._MISSING} "
                "ORDER BY r.first_idx, r.sha256 LIMIT %s",
                (appliance_id, limit),
            )
            if limit > 0
            else []
        )
        count = int(self._one(f"SELECT count(*) {self._MISSING}", (appliance_id,))[0])
        return [ContentRef(r[0], int(r[1]), int(r[2])) for r in rows], count

    def parked(self, appliance_id: str) -> list[ParkedBatch]:
        rows = self._all(
            'SELECT appliance_id, start, "end", digest, raw, parked_at FROM parked '
            "WHERE appliance_id = %s ORDER BY start, parked_at",
            (appliance_id,),
        )
        return [
            ParkedBatch(r[0], int(r[1]), int(r[2]), bytes(r[3]), bytes(r[4]), r[5]) for r in rows
        ]

    def anomalies(self, appliance_id: str | None = None) -> list[Anomaly]:
        sql = "SELECT appliance_id, kind, detail, first_at, last_at, count FROM anomalies"
        args: tuple[Any, ...] = ()
        if appliance_id is not None:
            sql += " WHERE appliance_id = %s"
            args = (appliance_id,)
        rows = self._all(sql + " ORDER BY last_at DESC", args)
        return [
            Anomaly(r[0] or None, AnomalyKind(r[1]), r[2], r[3], r[4], int(r[5])) for r in rows
        ]

    def alerts(self, open_only: bool = True) -> list[Alert]:
        sql = "SELECT id, appliance_id, kind, detail, raised_at, cleared_at, cleared_by FROM alerts"
        if open_only:
            sql += " WHERE cleared_at IS NULL"
        rows = self._all(sql + " ORDER BY raised_at DESC, id DESC")
        return [Alert(int(r[0]), *tuple(r)[1:]) for r in rows]

    def forks(self, appliance_id: str) -> list[ForkEvidence]:
        rows = self._all(
            "SELECT appliance_id, detected_at, accepted_size, accepted_checkpoint, claimed_size, "
            "claimed_checkpoint, diverge_index, request, reason FROM forks "
            "WHERE appliance_id = %s ORDER BY id",
            (appliance_id,),
        )
        return [
            ForkEvidence(
                r[0], r[1], int(r[2]), bytes(r[3]), int(r[4]), bytes(r[5]),
                None if r[6] is None else int(r[6]), bytes(r[7]), r[8],
            )
            for r in rows
        ]

    def counts(self, appliance_id: str) -> ApplianceCounts:
        got = self.all_counts(appliance_id)
        return got.get(appliance_id, ApplianceCounts(0, 0, 0, 0))

    def all_counts(self, appliance_id: str | None = None) -> dict[str, ApplianceCounts]:
        """Counts of every appliance (or one) in four grouped scans, for the report."""
        where, args = ("WHERE appliance_id = %s", (appliance_id,)) if appliance_id else ("", ())
        out: dict[str, list[int]] = {}

        def add(sql: str, k: int) -> None:
            for app, n in self._all(sql, args):
                out.setdefault(app, [0, 0, 0, 0])[k] = int(n)

        add(f"SELECT appliance_id, count(*) FROM entries {where} GROUP BY 1", 0)
        add(f"SELECT appliance_id, count(*) FROM documents {where} GROUP BY 1", 1)
        add(f"SELECT appliance_id, count(*) FROM content_refs {where} GROUP BY 1", 2)
        add(
            "SELECT r.appliance_id, count(*) FROM content_refs r "
            + where.replace("appliance_id", "r.appliance_id")
            + (" AND " if where else " WHERE ")
            + "NOT EXISTS (SELECT 1 FROM blobs b WHERE b.sha256 = r.sha256) GROUP BY 1",
            3,
        )
        return {k: ApplianceCounts(*v) for k, v in out.items()}

    def search_documents(
        self, folded_query: str, org_id: str | None = None, limit: int = 50
    ) -> list[DocumentRow]:
        where = []
        args: list[Any] = []
        q = ts_query(folded_query)
        if q is not None:
            where.append("words @@ to_tsquery('simple', %s)")
            args.append(q)
        if org_id:
            where.append("org_id = %s")
            args.append(org_id)
        sql = "SELECT " + ", ".join(_DOC_COLS) + " FROM documents"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY org_id, year DESC NULLS LAST, log_index DESC LIMIT %s"
        args.append(limit)
        try:
            with self.c.transaction():  # a savepoint: a bad query leaves the view usable
                rows = self._all(sql, args)
        except psycopg.errors.SyntaxError as exc:
            raise StorageError(f"search query cannot be run: {exc}") from exc
        return [DocumentRow(*r) for r in rows]


class _Tx(_Conn):
    _lock_rows = True

    def add_token(self, token: TokenRecord) -> None:
        self.c.execute(
            "INSERT INTO tokens (token_id, secret, org_id, created_at, expires_at) "
            "VALUES (%s, %s, %s, %s, %s)",
            (token.token_id, token.secret, token.org_id, token.created_at, token.expires_at),
        )

    def use_token(self, token_id: bytes, appliance_id: str, at: str) -> None:
        self.c.execute(
            "UPDATE tokens SET used_by = %s, used_at = %s WHERE token_id = %s",
            (appliance_id, at, token_id),
        )

    def add_appliance(self, rec: ApplianceRecord) -> None:
        self.c.execute(
            "INSERT INTO appliances (id, org_id, org_name, origin, public_key_pem, backing, alg, "
            "enrolled_at, status, accepted_size, accepted_root, frontier) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                rec.id, rec.org_id, rec.org_name, rec.origin, rec.public_key_pem, rec.backing,
                rec.alg, rec.enrolled_at, rec.status.value, rec.accepted_size, rec.accepted_root,
                _frontier_bytes(rec.frontier),
            ),
        )

    def add_replacement(self, rec: ReplacementRecord) -> None:
        self.c.execute(
            "INSERT INTO replacements (token_id, appliance_id, created_at) VALUES (%s, %s, %s)",
            (rec.token_id, rec.appliance_id, rec.created_at),
        )

    def start_replacement(self, token_id: bytes, new_key_id: str, at: str) -> None:
        self.c.execute(
            "UPDATE replacements SET new_key_id = %s, started_at = %s WHERE token_id = %s",
            (new_key_id, at, token_id),
        )

    def complete_replacement(self, token_id: bytes, size: int, at: str) -> None:
        self.c.execute(
            "UPDATE replacements SET completed_at = %s, handover_size = %s WHERE token_id = %s",
            (at, size, token_id),
        )

    def rekey(self, rec: KeyRecord) -> None:
        self.c.execute(
            "INSERT INTO appliance_keys (key_id, appliance_id, public_key_pem, backing, alg, "
            "from_size, added_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (rec.key_id, rec.appliance_id, rec.public_key_pem, rec.backing, rec.alg,
             rec.from_size, rec.added_at),
        )
        self.c.execute(
            "UPDATE appliances SET public_key_pem = %s, backing = %s, alg = %s, last_seq = 0 "
            "WHERE id = %s",
            (rec.public_key_pem, rec.backing, rec.alg, rec.appliance_id),
        )

    def set_accepted(
        self, appliance_id: str, size: int, root: bytes, frontier: Sequence[bytes], withheld: int
    ) -> None:
        self.c.execute(
            "UPDATE appliances SET accepted_size = %s, accepted_root = %s, frontier = %s, "
            "withheld = %s WHERE id = %s",
            (size, root, _frontier_bytes(frontier), withheld, appliance_id),
        )

    def set_seq(self, appliance_id: str, seq: int) -> None:
        self.c.execute("UPDATE appliances SET last_seq = %s WHERE id = %s", (seq, appliance_id))

    def touch(self, appliance_id: str, at: str) -> None:
        self.c.execute(
            "UPDATE appliances SET last_contact = %s WHERE id = %s", (at, appliance_id)
        )

    def set_claim(self, appliance_id: str, size: int, at: str) -> None:
        self.c.execute(
            "UPDATE appliances SET claimed_size = %s, claimed_at = %s WHERE id = %s",
            (size, at, appliance_id),
        )

    def set_status(self, appliance_id: str, status: ApplianceStatus) -> None:
        self.c.execute(
            "UPDATE appliances SET status = %s WHERE id = %s", (status.value, appliance_id)
        )

    def add_nonce(self, appliance_id: str, nonce: bytes, at: str) -> None:
        self.c.execute(
            "INSERT INTO nonces (appliance_id, nonce, at) VALUES (%s, %s, %s) "
            "ON CONFLICT DO NOTHING",
            (appliance_id, nonce, at),
        )

    def remember_response(
        self, appliance_id: str, digest: bytes, response: bytes, at: str
    ) -> None:
        self.c.execute(
            "INSERT INTO responses (appliance_id, digest, response, at) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (appliance_id, digest) DO UPDATE SET response = excluded.response, "
            "at = excluded.at",
            (appliance_id, digest, response, at),
        )

    def add_entries(self, appliance_id: str, rows: Sequence[EntryRow]) -> None:
        if not rows:
            return
        with self.c.cursor() as cur, cur.copy(
            "COPY entries (appliance_id, idx, leaf, entry) FROM STDIN"
        ) as copy:
            for r in rows:
                copy.write_row((appliance_id, r.index, r.leaf_hash, r.entry))

    def add_checkpoint(self, rec: CheckpointRecord) -> None:
        self.c.execute(
            "INSERT INTO checkpoints (appliance_id, tree_size, root, cose, frontier, "
            "accepted_at, receipt) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (
                rec.appliance_id, rec.tree_size, rec.root_hash, rec.cose,
                _frontier_bytes(rec.frontier), rec.accepted_at, rec.receipt,
            ),
        )

    def add_content_refs(self, appliance_id: str, refs: Sequence[ContentRef]) -> None:
        if not refs:
            return
        with self.c.cursor() as cur:
            cur.executemany(
                "INSERT INTO content_refs (appliance_id, sha256, size, first_idx) "
                "VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (appliance_id, sha256) DO UPDATE SET size = excluded.size "
                "WHERE content_refs.size < 0 AND excluded.size >= 0",
                [(appliance_id, r.sha256, r.size, r.first_index) for r in refs],
            )

    def record_blob(self, sha256: str, size: int, at: str) -> None:
        self.c.execute(
            "INSERT INTO blobs (sha256, size, stored_at) VALUES (%s, %s, %s) "
            "ON CONFLICT DO NOTHING",
            (sha256, size, at),
        )

    def upsert_documents(self, rows: Sequence[DocumentRow]) -> None:
        if not rows:
            return
        cols = ", ".join(_DOC_COLS)
        marks = ", ".join("%s" for _ in _DOC_COLS)
        updates = ", ".join(f"{c} = excluded.{c}" for c in _DOC_COLS[2:])
        # One statement cannot touch a row twice: keep the newest version of each document.
        newest: dict[str, DocumentRow] = {}
        for r in rows:
            old = newest.get(r.doc_id)
            if old is None or r.version >= old.version:
                newest[r.doc_id] = r
        with self.c.cursor() as cur:
            cur.executemany(
                f"INSERT INTO documents ({cols}) VALUES ({marks}) "
                f"ON CONFLICT (appliance_id, doc_id) DO UPDATE SET {updates} "
                "WHERE excluded.version >= documents.version",
                [tuple(getattr(r, c) for c in _DOC_COLS) for r in newest.values()],
            )

    def record_anomaly(
        self, appliance_id: str | None, kind: AnomalyKind, detail: str, at: str
    ) -> None:
        self.c.execute(
            "INSERT INTO anomalies (appliance_id, kind, detail, first_at, last_at, count) "
            "VALUES (%s, %s, %s, %s, %s, 1) ON CONFLICT (appliance_id, kind) DO UPDATE SET "
            "detail = excluded.detail, last_at = excluded.last_at, "
            "count = anomalies.count + 1",
            (appliance_id or _NO_APP, kind.value, detail, at, at),
        )

    def raise_alert(self, appliance_id: str, kind: str, detail: str, at: str) -> int:
        row = self._one(
            "INSERT INTO alerts (appliance_id, kind, detail, raised_at) VALUES (%s, %s, %s, %s) "
            "RETURNING id",
            (appliance_id, kind, detail, at),
        )
        return int(row[0])

    def clear_alerts(self, appliance_id: str, by: str, at: str) -> int:
        cur = self.c.execute(
            "UPDATE alerts SET cleared_at = %s, cleared_by = %s WHERE appliance_id = %s "
            "AND cleared_at IS NULL",
            (at, by, appliance_id),
        )
        return cur.rowcount

    def add_fork(self, ev: ForkEvidence) -> None:
        self.c.execute(
            "INSERT INTO forks (appliance_id, detected_at, accepted_size, accepted_checkpoint, "
            "claimed_size, claimed_checkpoint, diverge_index, request, reason) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                ev.appliance_id, ev.detected_at, ev.accepted_size, ev.accepted_checkpoint,
                ev.claimed_size, ev.claimed_checkpoint, ev.diverge_index, ev.request, ev.reason,
            ),
        )

    def park(self, batch: ParkedBatch) -> None:
        self.c.execute(
            'INSERT INTO parked (appliance_id, start, "end", digest, raw, parked_at) '
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (batch.appliance_id, batch.start, batch.end, batch.digest, batch.raw,
             batch.parked_at),
        )

    def unpark(self, appliance_id: str, digest: bytes) -> None:
        self.c.execute(
            "DELETE FROM parked WHERE appliance_id = %s AND digest = %s", (appliance_id, digest)
        )

    def truncate(self, appliance_id: str, size: int, at: str) -> tuple[int, list[str]]:
        self.c.execute(
            "INSERT INTO superseded_entries (appliance_id, idx, leaf, entry, superseded_at) "
            "SELECT appliance_id, idx, leaf, entry, %s FROM entries WHERE appliance_id = %s "
            "AND idx >= %s",
            (at, appliance_id, size),
        )
        moved = self.c.execute(
            "DELETE FROM entries WHERE appliance_id = %s AND idx >= %s", (appliance_id, size)
        ).rowcount
        self.c.execute(
            "UPDATE checkpoints SET superseded_at = %s WHERE appliance_id = %s "
            "AND tree_size > %s AND superseded_at IS NULL",
            (at, appliance_id, size),
        )
        docs = [
            r[0]
            for r in self._all(
                "DELETE FROM documents WHERE appliance_id = %s AND log_index >= %s "
                "RETURNING doc_id",
                (appliance_id, size),
            )
        ]
        self.c.execute(
            "DELETE FROM content_refs WHERE appliance_id = %s AND first_idx >= %s",
            (appliance_id, size),
        )
        return moved, docs

    def withhold_entries(
        self, appliance_id: str, indices: Sequence[int], doc_ids: Sequence[str],
        content: Sequence[str],
    ) -> tuple[int, list[str]]:
        idx = list(indices)
        self.c.execute(
            "UPDATE entries SET entry = NULL WHERE appliance_id = %s AND idx = ANY(%s)",
            (appliance_id, idx),
        )
        self.c.execute(
            "UPDATE superseded_entries SET entry = NULL WHERE appliance_id = %s "
            "AND idx = ANY(%s)",
            (appliance_id, idx),
        )
        docs = self.c.execute(
            "DELETE FROM documents WHERE appliance_id = %s AND doc_id = ANY(%s)",
            (appliance_id, list(doc_ids)),
        ).rowcount
        self.c.execute(
            "DELETE FROM content_refs WHERE appliance_id = %s AND sha256 = ANY(%s)",
            (appliance_id, list(content)),
        )
        gone = [r[0] for r in self._all(
            "DELETE FROM blobs b WHERE b.sha256 = ANY(%s) AND NOT EXISTS "
            "(SELECT 1 FROM content_refs r WHERE r.sha256 = b.sha256) RETURNING b.sha256",
            (list(content),),
        )]
        self.c.execute("DELETE FROM parked WHERE appliance_id = %s", (appliance_id,))
        self.c.execute(
            "UPDATE forks SET request = ''::bytea WHERE appliance_id = %s", (appliance_id,)
        )
        self.c.execute(
            "UPDATE appliances SET withheld = withheld + %s WHERE id = %s",
            (len(idx), appliance_id),
        )
        return docs, gone


class PgStorage:
    """CentreStorage on PostgreSQL, safe to share between threads and between processes."""

    def __init__(self, url: str, max_connections: int = 16, connect_timeout: int = 10) -> None:
        self.url = url
        self._timeout = connect_timeout
        self._idle: queue.LifoQueue[psycopg.Connection[Any]] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(max_connections)
        self._all_conns: list[psycopg.Connection[Any]] = []
        self._guard = threading.Lock()
        self._closed = False
        conn = self._connect()
        try:
            migrate(conn)
        except psycopg.Error as exc:
            conn.close()
            raise StorageError(
                f"cannot prepare the centre schema in {safe_url(url)}: {exc}"
            ) from exc
        self._idle.put(conn)

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            conn = psycopg.connect(
                self.url, autocommit=True, connect_timeout=self._timeout,
                application_name="luutru-centre",
            )
        except psycopg.Error as exc:
            raise StorageError(f"cannot connect to {safe_url(self.url)}: {exc}") from exc
        with self._guard:
            self._all_conns.append(conn)
        return conn

    @contextmanager
    def _borrow(self) -> Iterator[psycopg.Connection[Any]]:
        if self._closed:
            raise StorageError("the centre storage is closed")
        self._slots.acquire()
        conn: psycopg.Connection[Any] | None = None
        try:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = self._connect()
            yield conn
        finally:
            if conn is not None:
                if conn.closed or conn.broken or conn.info.transaction_status != 0:
                    self._discard(conn)
                else:
                    self._idle.put(conn)
            self._slots.release()

    def _discard(self, conn: psycopg.Connection[Any]) -> None:
        with self._guard:
            if conn in self._all_conns:
                self._all_conns.remove(conn)
        conn.close()

    @contextmanager
    def transaction(self) -> Iterator[_Tx]:
        with self._borrow() as conn, conn.transaction():
            yield _Tx(conn)

    @contextmanager
    def view(self) -> Iterator[_Conn]:
        with self._borrow() as conn:
            conn.execute(b"BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                yield _Conn(conn)
            finally:
                try:
                    conn.execute(b"ROLLBACK")
                except psycopg.Error:
                    conn.close()  # broken: _borrow drops it; the caller's error stands

    def compact(self) -> None:
        """Rewrite the tables a purge changed so that the old row versions are gone (VACUUM
        FULL; the server's own WAL segments age out as the server recycles them)."""
        with self._borrow() as conn:
            for table in ("entries", "superseded_entries", "documents", "content_refs",
                          "blobs", "parked", "forks"):
                conn.execute(f"VACUUM FULL {table}".encode())

    def close(self) -> None:
        self._closed = True
        with self._guard:
            conns, self._all_conns = self._all_conns, []
        for c in conns:
            c.close()

