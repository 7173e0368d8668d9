"""The signature upgrade's queries (table ``ltv``), for both engines; mixed into ``SqlView``
and ``SqlTx`` (``sql_storage``) so that the storage seam stays one object."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic

from .dialect import C, Dialect
from .storage import ContentRef, LtvRow, LtvState

LTV_COLS = (
    "appliance_id, sha256, state, updated_at, doc_id, source_sha256, previous_sha256, "
    "current_sha256, level, attempts, last_error, next_try_at, timestamp_at, renew_by"
)
SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS ltv (
  appliance_id TEXT NOT NULL, sha256 TEXT NOT NULL, state TEXT NOT NULL,
  updated_at TEXT NOT NULL, doc_id TEXT, source_sha256 TEXT, previous_sha256 TEXT,
  current_sha256 TEXT, level TEXT, attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT,
  next_try_at TEXT, timestamp_at TEXT, renew_by TEXT,
  PRIMARY KEY (appliance_id, sha256)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ltv_state ON ltv (state, next_try_at);
"""
PG_SCHEMA = """
CREATE TABLE ltv (
  appliance_id TEXT NOT NULL, sha256 TEXT NOT NULL, state TEXT NOT NULL,
  updated_at TEXT NOT NULL, doc_id TEXT, source_sha256 TEXT, previous_sha256 TEXT,
  current_sha256 TEXT, level TEXT, attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT,
  next_try_at TEXT, timestamp_at TEXT, renew_by TEXT,
  PRIMARY KEY (appliance_id, sha256));
CREATE INDEX ltv_state ON ltv (state, next_try_at);
"""


def _row(r: Sequence[Any]) -> LtvRow:
    return LtvRow(
        appliance_id=r[0], sha256=r[1], state=LtvState(r[2]), updated_at=r[3], doc_id=r[4],
        source_sha256=r[5], previous_sha256=r[6], current_sha256=r[7], level=r[8],
        attempts=int(r[9]), last_error=r[10], next_try_at=r[11], timestamp_at=r[12],
        renew_by=r[13],
    )


class SqlLtvView(Generic[C]):
    """The reads of ``CentreView`` about the signature upgrade."""

    c: C
    d: Dialect[C]

    def ltv_candidates(self, limit: int) -> list[tuple[str, ContentRef]]:
        rows = self.d.rows(
            self.c,
            "SELECT r.appliance_id, r.sha256, r.size, r.first_idx FROM content_refs r "
            "JOIN blobs b ON b.sha256 = r.sha256 WHERE NOT EXISTS (SELECT 1 FROM ltv l "
            "WHERE l.appliance_id = r.appliance_id AND l.sha256 = r.sha256) "
            "ORDER BY r.appliance_id, r.first_idx LIMIT ?",
            (limit,),
        )
        return [(r[0], ContentRef(r[1], int(r[2]), int(r[3]))) for r in rows]

    def ltv_due(self, now: str, limit: int) -> list[LtvRow]:
        rows = self.d.rows(
            self.c,
            f"SELECT {LTV_COLS} FROM ltv WHERE (state IN (?, ?) AND "
            "(next_try_at IS NULL OR next_try_at <= ?)) OR (state = ? AND renew_by <= ?) "
            "ORDER BY coalesce(next_try_at, renew_by, ''), appliance_id, sha256 LIMIT ?",
            (LtvState.PENDING.value, LtvState.RETRY.value, now, LtvState.UPGRADED.value, now,
             limit),
        )
        return [_row(r) for r in rows]

    def ltv_rows(self, appliance_id: str | None = None) -> list[LtvRow]:
        where, args = ("WHERE appliance_id = ?", (appliance_id,)) if appliance_id else ("", ())
        rows = self.d.rows(
            self.c, f"SELECT {LTV_COLS} FROM ltv {where} ORDER BY appliance_id, updated_at", args
        )
        return [_row(r) for r in rows]

    def ltv_row(self, appliance_id: str, sha256: str) -> LtvRow | None:
        rows = self.d.rows(
            self.c,
            f"SELECT {LTV_COLS} FROM ltv WHERE appliance_id = ? AND sha256 = ?",
            (appliance_id, sha256),
        )
        return _row(rows[0]) if rows else None

    def ltv_undelivered(self, appliance_id: str, limit: int) -> list[LtvRow]:
        rows = self.d.rows(
            self.c,
            f"SELECT {LTV_COLS} FROM ltv l WHERE l.appliance_id = ? AND l.state = ? AND NOT "
            "EXISTS (SELECT 1 FROM content_refs r WHERE r.appliance_id = l.appliance_id AND "
            "r.sha256 = l.current_sha256) ORDER BY l.updated_at, l.sha256 LIMIT ?",
            (appliance_id, LtvState.UPGRADED.value, limit),
        )
        return [_row(r) for r in rows]


class SqlLtvTx(SqlLtvView[C]):
    """The write of ``CentreTx`` about the signature upgrade."""

    def put_ltv(self, row: LtvRow) -> None:
        self.d.run(
            self.c,
            f"INSERT INTO ltv ({LTV_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (appliance_id, sha256) DO UPDATE SET state = excluded.state, "
            "updated_at = excluded.updated_at, doc_id = excluded.doc_id, "
            "source_sha256 = excluded.source_sha256, previous_sha256 = excluded.previous_sha256, "
            "current_sha256 = excluded.current_sha256, level = excluded.level, "
            "attempts = excluded.attempts, last_error = excluded.last_error, "
            "next_try_at = excluded.next_try_at, timestamp_at = excluded.timestamp_at, "
            "renew_by = excluded.renew_by",
            (
                row.appliance_id, row.sha256, row.state.value, row.updated_at, row.doc_id,
                row.source_sha256, row.previous_sha256, row.current_sha256, row.level,
                row.attempts, row.last_error, row.next_try_at, row.timestamp_at, row.renew_by,
            ),
        )
