"""The electronic inbox: a projection of the ``edxml.*`` log entries, never a side table.

``apply`` writes what one entry means into ``edxml_inbox`` (one row per received package) and
``edxml_outbox`` (the status messages for senders, and whether each has gone); the live path
calls it inside the writer's transaction right after appending the entry, and
``rebuild.py`` calls the same function when it replays the log, so the two cannot differ.

Entries (``type`` "edxml", ``id`` the inbox item):

- ``edxml.received``: the package stored (its SHA-256), its header, its attachments, the
  acknowledgement (status 01) prepared for the sender;
- ``edxml.verified``: a verdict and the report (JSON and HTML, stored as content), the
  revocation data used; a later check appends another;
- ``edxml.registered``: the văn bản đến it became, the status 03 prepared;
- ``edxml.returned``: the reason, the status 02 prepared;
- ``edxml.status_sent``: a status message handed to the exchange;
- ``edxml.refused``: a package refused for its structure whose sender could be read: the
  reason and the status 02 prepared (no inbox row; ``id`` is the refusal, see ``refusal``);
  It is listed in ``edxml_refused`` (the reason, the sender, the document) for the inbox page;
- ``edxml.status_received``: an addressee's status message about one of our packages, its
  verdict and what became of it (``answers``): a row of ``edxml_answers``;
- ``edxml.exported``: one of our issued documents packaged for an addressee (no inbox row);
- ``edxml.trust``: a trust root added or removed (no row; the store is ``trust``).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from ..kinds import Kind
from ..ledger import Entry

DDL = (
    """CREATE TABLE IF NOT EXISTS edxml_inbox (
        id TEXT PRIMARY KEY,
        received_at TEXT NOT NULL,
        source TEXT,
        package_sha256 TEXT NOT NULL UNIQUE,
        package_size INTEGER NOT NULL,
        organ_id TEXT, organ_name TEXT, code_number TEXT, code_notation TEXT,
        promulgation_date TEXT, type_name TEXT, subject TEXT,
        summary TEXT NOT NULL,
        attachments TEXT NOT NULL,
        verdict TEXT, misaddressed INTEGER, checked_at TEXT, report_json TEXT, report_html TEXT,
        status TEXT NOT NULL CHECK (status IN ('received', 'registered', 'returned')),
        document_id TEXT, reason TEXT, decided_by TEXT, decided_at TEXT,
        log_index INTEGER NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS edxml_inbox_received ON edxml_inbox (received_at)",
    """CREATE TABLE IF NOT EXISTS edxml_outbox (
        item_id TEXT NOT NULL,
        code TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        name TEXT NOT NULL,
        created_at TEXT NOT NULL,
        sent_at TEXT,
        sent_via TEXT,
        log_index INTEGER NOT NULL,
        PRIMARY KEY (item_id, code)
    )""",
    """CREATE TABLE IF NOT EXISTS edxml_refused (
        id TEXT PRIMARY KEY,
        refused_at TEXT NOT NULL,
        source TEXT,
        package_sha256 TEXT NOT NULL,
        package_size INTEGER NOT NULL,
        organ_id TEXT, organ_name TEXT, document_ref TEXT, code_number TEXT, code_notation TEXT,
        reason TEXT NOT NULL,
        log_index INTEGER NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS edxml_answers (
        id TEXT PRIMARY KEY,
        received_at TEXT NOT NULL,
        source TEXT,
        package_sha256 TEXT NOT NULL,
        organ_id TEXT NOT NULL, organ_name TEXT NOT NULL,
        code TEXT NOT NULL, description TEXT NOT NULL, reported_at TEXT NOT NULL,
        reference TEXT NOT NULL,
        verdict TEXT NOT NULL, reasons TEXT NOT NULL,
        document_id TEXT, delivery INTEGER,
        outcome TEXT NOT NULL,
        log_index INTEGER NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS edxml_answers_document ON edxml_answers (document_id)",
)
TABLES = ("edxml_inbox", "edxml_outbox", "edxml_refused", "edxml_answers")
ROW_KINDS = frozenset({
    Kind.EDXML_RECEIVED, Kind.EDXML_VERIFIED, Kind.EDXML_REGISTERED, Kind.EDXML_RETURNED,
    Kind.EDXML_STATUS_SENT, Kind.EDXML_REFUSED, Kind.EDXML_STATUS_RECEIVED,
})
INERT = frozenset({Kind.EDXML_EXPORTED, Kind.EDXML_TRUST})


def ensure_schema(conn: sqlite3.Connection) -> None:
    for stmt in DDL:
        conn.execute(stmt)


def _queue_status(conn: sqlite3.Connection, entry: Entry, status: dict[str, Any] | None) -> None:
    if not status:
        return
    conn.execute(
        "INSERT INTO edxml_outbox (item_id, code, sha256, name, created_at, log_index) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (entry.id, status["code"], status["sha256"], status["name"], entry.at, entry.index),
    )


def apply(conn: sqlite3.Connection, entry: Entry) -> None:
    """Project one ``edxml.*`` entry (live and in a rebuild)."""
    ensure_schema(conn)
    d = entry.data or {}
    kind = entry.kind
    if kind == Kind.EDXML_RECEIVED:
        s = d["summary"]
        conn.execute(
            "INSERT INTO edxml_inbox (id, received_at, source, package_sha256, package_size, "
            "organ_id, organ_name, code_number, code_notation, promulgation_date, type_name, "
            "subject, summary, attachments, status, log_index) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'received', ?)",
            (entry.id, entry.at, d.get("source"), d["package"]["sha256"], d["package"]["size"],
             s["From"].get("OrganId"), s["From"].get("OrganName"), s.get("CodeNumber"),
             s.get("CodeNotation"), s.get("PromulgationDate"), s.get("TypeName"),
             s.get("Subject"), _dumps(s), _dumps(d["attachments"]), entry.index),
        )
        _queue_status(conn, entry, d.get("status"))
    elif kind == Kind.EDXML_VERIFIED:
        conn.execute(
            "UPDATE edxml_inbox SET verdict = ?, misaddressed = ?, checked_at = ?, "
            "report_json = ?, report_html = ?, log_index = ? WHERE id = ?",
            (d["verdict"], int(bool(d["misaddressed"])), d["checked_at"], d["report"]["json"],
             d["report"]["html"], entry.index, entry.id),
        )
    elif kind in (Kind.EDXML_REGISTERED, Kind.EDXML_RETURNED):
        registered = kind == Kind.EDXML_REGISTERED
        conn.execute(
            "UPDATE edxml_inbox SET status = ?, document_id = ?, reason = ?, decided_by = ?, "
            "decided_at = ?, log_index = ? WHERE id = ?",
            ("registered" if registered else "returned", d.get("document_id"), d.get("reason"),
             entry.actor, entry.at, entry.index, entry.id),
        )
        _queue_status(conn, entry, d.get("status"))
    elif kind == Kind.EDXML_REFUSED:
        _refused(conn, entry, d)
        _queue_status(conn, entry, d.get("status"))
    elif kind == Kind.EDXML_STATUS_RECEIVED:
        _answer(conn, entry, d)
    elif kind == Kind.EDXML_STATUS_SENT:
        conn.execute(
            "UPDATE edxml_outbox SET sent_at = ?, sent_via = ?, log_index = ? "
            "WHERE item_id = ? AND code = ?",
            (entry.at, d.get("via"), entry.index, entry.id, d["code"]),
        )


def _refused(conn: sqlite3.Connection, entry: Entry, d: dict[str, Any]) -> None:
    s = d.get("summary") or {}
    conn.execute(
        "INSERT INTO edxml_refused (id, refused_at, source, package_sha256, package_size, "
        "organ_id, organ_name, document_ref, code_number, code_notation, reason, log_index) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (entry.id, entry.at, d.get("source"), d["package"]["sha256"], d["package"]["size"],
         (s.get("From") or {}).get("OrganId"), (s.get("From") or {}).get("OrganName"),
         s.get("DocumentId"), s.get("CodeNumber"), s.get("CodeNotation"), d["reason"],
         entry.index),
    )


def _answer(conn: sqlite3.Connection, entry: Entry, d: dict[str, Any]) -> None:
    st = d["status"]
    rf = st.get("ResponseFor") or {}
    conn.execute(
        "INSERT INTO edxml_answers (id, received_at, source, package_sha256, organ_id, "
        "organ_name, code, description, reported_at, reference, verdict, reasons, "
        "document_id, delivery, outcome, log_index) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (entry.id, entry.at, d.get("source"), d["package"]["sha256"],
         st["From"].get("OrganId", ""), st["From"].get("OrganName", ""), st["StatusCode"],
         st.get("Description", ""), d.get("reported_at") or "",
         rf.get("DocumentId") or rf.get("Code") or "", d["verdict"], _dumps(d["reasons"]),
         d.get("document_id"), d.get("delivery"), d["outcome"], entry.index),
    )


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


# -- reading -------------------------------------------------------------------------------


@dataclass(frozen=True)
class InboxItem:
    id: str
    received_at: str
    source: str | None
    package_sha256: str
    package_size: int
    summary: dict[str, Any]
    attachments: list[dict[str, Any]]
    verdict: str | None
    misaddressed: bool
    checked_at: str | None
    report_json: str | None
    report_html: str | None
    status: str
    document_id: str | None
    reason: str | None
    decided_by: str | None
    decided_at: str | None

    def to_json(self) -> dict[str, Any]:
        from .verify import LABELS, Verdict

        s = self.summary
        return {
            "id": self.id, "received_at": self.received_at, "source": self.source,
            "package_sha256": self.package_sha256, "package_size": self.package_size,
            "subject": s.get("Subject"), "code_number": s.get("CodeNumber"),
            "code_notation": s.get("CodeNotation"), "organ_id": s["From"].get("OrganId"),
            "organ_name": s["From"].get("OrganName"), "type_name": s.get("TypeName"),
            "promulgation_date": s.get("PromulgationDate"),
            "verdict": self.verdict,
            "verdict_label": LABELS[Verdict(self.verdict)] if self.verdict else None,
            "misaddressed": self.misaddressed, "checked_at": self.checked_at,
            "report_json": self.report_json, "report_html": self.report_html,
            "status": self.status, "document_id": self.document_id, "reason": self.reason,
            "decided_by": self.decided_by, "decided_at": self.decided_at,
            "attachments": self.attachments, "to": s.get("To", []),
        }


_COLS = ("id, received_at, source, package_sha256, package_size, summary, attachments, "
         "verdict, misaddressed, checked_at, report_json, report_html, status, document_id, "
         "reason, decided_by, decided_at")


def _item(row: Any) -> InboxItem:
    r = tuple(row)
    return InboxItem(
        r[0], r[1], r[2], r[3], int(r[4]), json.loads(r[5]), json.loads(r[6]), r[7],
        bool(r[8]), r[9], r[10], r[11], r[12], r[13], r[14], r[15], r[16],
    )


def has_outbox(conn: sqlite3.Connection) -> bool:
    return conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'edxml_outbox'"
    ).fetchone() is not None


def _has_table(conn: sqlite3.Connection) -> bool:
    return conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'edxml_inbox'"
    ).fetchone() is not None


def list_items(conn: sqlite3.Connection, status: str | None = None,
               limit: int = 200) -> list[InboxItem]:
    """Newest first; ``status`` one of received, registered, returned (None: all)."""
    if not _has_table(conn):
        return []
    where, params = ("WHERE status = ?", (status,)) if status else ("", ())
    rows = conn.execute(
        f"SELECT {_COLS} FROM edxml_inbox {where} ORDER BY received_at DESC, rowid DESC "
        "LIMIT ?", (*params, limit),
    ).fetchall()
    return [_item(r) for r in rows]


def get_item(conn: sqlite3.Connection, item_id: str) -> InboxItem | None:
    if not _has_table(conn):
        return None
    row = conn.execute(f"SELECT {_COLS} FROM edxml_inbox WHERE id = ?", (item_id,)).fetchone()
    return _item(row) if row else None


def by_package(conn: sqlite3.Connection, sha256: str) -> InboxItem | None:
    if not _has_table(conn):
        return None
    row = conn.execute(
        f"SELECT {_COLS} FROM edxml_inbox WHERE package_sha256 = ?", (sha256,)
    ).fetchone()
    return _item(row) if row else None


@dataclass(frozen=True)
class PendingStatus:
    sha256: str
    item_id: str
    code: str
    name: str
    created_at: str


def unsent(conn: sqlite3.Connection) -> list[PendingStatus]:
    """Status messages not yet handed to the exchange, oldest first."""
    if not _has_table(conn):
        return []
    rows = conn.execute(
        "SELECT sha256, item_id, code, name, created_at FROM edxml_outbox "
        "WHERE sent_at IS NULL ORDER BY log_index, code"
    ).fetchall()
    return [PendingStatus(*tuple(r)) for r in rows]


def statuses_of(conn: sqlite3.Connection, item_id: str) -> list[dict[str, Any]]:
    if not _has_table(conn):
        return []
    rows = conn.execute(
        "SELECT code, name, created_at, sent_at, sent_via, sha256 FROM edxml_outbox "
        "WHERE item_id = ? ORDER BY log_index", (item_id,),
    ).fetchall()
    return [dict(zip(("code", "name", "created_at", "sent_at", "sent_via", "sha256"),
                     tuple(r), strict=True)) for r in rows]


@dataclass(frozen=True)
class RefusedPackage:
    """A package refused for its structure whose sender could be read, and its 02."""

    id: str
    refused_at: str
    source: str | None
    package_sha256: str
    package_size: int
    organ_id: str | None
    organ_name: str | None
    document_ref: str | None
    code_number: str | None
    code_notation: str | None
    reason: str
    status_name: str | None  # the status 02 message
    status_sent_at: str | None  # when it was handed to the exchange (None: not yet)


def list_refused(conn: sqlite3.Connection, limit: int = 100) -> list[RefusedPackage]:
    """Newest first, with whether each one's status 02 has gone."""
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' "
                        "AND name = 'edxml_refused'").fetchone():
        return []
    rows = conn.execute(
        "SELECT r.id, r.refused_at, r.source, r.package_sha256, r.package_size, r.organ_id, "
        "r.organ_name, r.document_ref, r.code_number, r.code_notation, r.reason, o.name, "
        "o.sent_at FROM edxml_refused r LEFT JOIN edxml_outbox o "
        "ON o.item_id = r.id AND o.code = '02' ORDER BY r.log_index DESC LIMIT ?", (limit,),
    ).fetchall()
    return [RefusedPackage(*tuple(r)) for r in rows]
