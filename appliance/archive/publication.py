"""What the agency releases to the province's public catalogue, version by version.

The province publishes only what the archive marks publishable: a hồ sơ transferred to the
historical archive (``archive.transfer``) or explicitly opened by the head of the agency
(``archive.publish``). Either entry lists the exact (id, version) of the hồ sơ and of every
document in it that is not classified (a classified one would make the entry name it, and
it never leaves the box anyway). The centre publishes a document only at the version listed
here, so a later version it never saw (a document made mật afterwards travels as a leaf hash
only) cannot be published in its place.

For the same reason, while a release is active a listed record may not be made restricted or
classified, moved into another hồ sơ, nor its hồ sơ restricted: ``writes.check_released``
refuses, and the head withdraws the publication first (``archive.unpublish``, which names
the hồ sơ, still public at that moment, so it travels).
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

from .. import classified, writes
from ..errors import ConflictError, ValidationError
from ..kinds import Kind
from ..ledger import Entry
from ..text import nfc
from ..writer import Txn

if TYPE_CHECKING:
    from ..store import Store

DDL = """
CREATE TABLE IF NOT EXISTS publication_items (
  file_code TEXT NOT NULL, basis TEXT NOT NULL CHECK (basis IN ('transfer', 'open')),
  record_type TEXT NOT NULL, record_id TEXT NOT NULL, version INTEGER NOT NULL,
  log_index INTEGER NOT NULL, PRIMARY KEY (file_code, basis, record_type, record_id));
CREATE INDEX IF NOT EXISTS publication_items_record ON publication_items (record_id);
"""


def ensure_schema(conn: sqlite3.Connection) -> None:
    for stmt in DDL.split(";"):
        if stmt.strip():
            conn.execute(stmt)


def release_items(conn: sqlite3.Connection, file_code: str) -> dict[str, Any]:
    """The hồ sơ's (id, version) and those of its documents that are not classified."""
    f = conn.execute('SELECT id, version, "Rights" FROM files WHERE "FileCode" = ?',
                     (file_code,)).fetchone()
    if f is None:
        raise ValidationError(f"không có hồ sơ {file_code}", "FileCode")
    docs = conn.execute(
        'SELECT id, version FROM documents WHERE ("FileCode" = ? OR id IN (SELECT '
        '"DocumentId" FROM memberships WHERE "FileCode" = ?)) AND coalesce("Status", \'\') '
        "NOT IN ('recalled', 'destroyed') ORDER BY id",
        (file_code, file_code),
    ).fetchall()
    items = [[str(i), int(v)] for i, v in docs
             if not classified.document_is_classified(conn, {}, str(i), projected=True)]
    return {"file": [str(f[0]), int(f[1])], "items": items}


def project(conn: sqlite3.Connection, entry: Entry) -> None:
    """Write a transfer's or publication's items, or drop them on withdrawal (live, rebuild)."""
    ensure_schema(conn)
    data = entry.data or {}
    code = str(data["FileCode"])
    if entry.kind == Kind.ARCHIVE_UNPUBLISH:
        conn.execute("DELETE FROM publication_items WHERE file_code = ?", (code,))
        return
    if "items" not in data:  # a transfer recorded before releases listed their versions
        return
    basis = "transfer" if entry.kind == Kind.ARCHIVE_TRANSFER else "open"
    conn.execute("DELETE FROM publication_items WHERE file_code = ? AND basis = ?",
                 (code, basis))
    rows = [(code, basis, "file", data["file"][0], data["file"][1], entry.index)]
    rows += [(code, basis, "document", i, v, entry.index) for i, v in data["items"]]
    conn.executemany(
        "INSERT OR REPLACE INTO publication_items (file_code, basis, record_type, record_id, "
        "version, log_index) VALUES (?, ?, ?, ?, ?, ?)", rows)


def publish(store: Store, file_code: str, ref: str, actor: str = "system") -> dict[str, Any]:
    """Open a public hồ sơ (Rights 01) for the province's catalogue, at its current versions."""
    ref = nfc(ref)
    if not ref:
        raise ValidationError("Cần số văn bản quyết định công bố", "ref")

    def job(txn: Txn) -> dict[str, Any]:
        rec = writes.current(txn, "file", FileCode=file_code)
        if (rec.data.get("Rights") or "01") != "01":
            raise ConflictError(f"hồ sơ {file_code} không thuộc chế độ sử dụng công khai")
        data = {"FileCode": file_code, "ref": ref[:200], **release_items(txn.conn, file_code)}
        entry = writes.append_event(txn, Kind.ARCHIVE_PUBLISH, actor, data, "file", rec.id)
        project(txn.conn, entry)
        return data

    return store.writer_or_fail().call(job)


def unpublish(store: Store, file_code: str, reason: str, actor: str = "system") -> None:
    """Withdraw a hồ sơ from the province's catalogue (whatever released it)."""
    reason = nfc(reason)
    if not reason:
        raise ValidationError("Cần ghi lý do rút khỏi mục lục công bố", "reason")

    def job(txn: Txn) -> None:
        rec = writes.current(txn, "file", FileCode=file_code)
        entry = writes.append_event(txn, Kind.ARCHIVE_UNPUBLISH, actor,
                                    {"FileCode": file_code, "reason": reason[:500]},
                                    "file", rec.id)
        project(txn.conn, entry)

    store.writer_or_fail().call(job)


def released(conn: sqlite3.Connection) -> list[str]:
    """Mã hồ sơ with an active release (transfer or publication)."""
    try:
        return [str(r[0]) for r in conn.execute(
            "SELECT DISTINCT file_code FROM publication_items ORDER BY 1")]
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise
