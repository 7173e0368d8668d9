"""Writing inside the one writer's transaction: the primitives every change is built from, and
the one rule of what may still change.

Every change appends one log entry, the full new version of a record (``put``) or an event
about records (``append_event``), and updates the projections in the same transaction. What
may change is decided in one place (``check_writable``): a record of a closed fonds, a record
that is frozen, recalled or destroyed (or whose hồ sơ or fonds is), refuses every change; a hồ
sơ takes new documents only while it and its fonds are open (``place_in_file``).

The functions take the writer's ``Txn``; what they need of an opened data folder (code lists,
identity, content store, the writer) comes as a ``WriteContext``, which ``Store`` is. Modules
that write (documents, the archive, capture) import this module, never ``store``.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from . import classified, numbering, schema
from . import clock as clockmod
from .codelists import CodeLists
from .config import ApplianceConfig
from .content import ContentStore
from .errors import (
    ConflictError,
    FrozenError,
    NotFoundError,
    ReadOnlyError,
    RefusedRowError,
    ValidationError,
)
from .kinds import Kind
from .ledger import Entry
from .results import Record
from .search import fts_body, index_document, ocr_text_of
from .writer import Txn, Writer


class WriteContext(Protocol):
    """What a write needs of an opened data folder (``Store`` is one)."""

    codes: CodeLists
    config: ApplianceConfig
    content: ContentStore
    clock: clockmod.Clock

    def writer_or_fail(self) -> Writer: ...


# -- appending ---------------------------------------------------------------------------


def put(
    txn: Txn,
    record_type: str,
    kind: str,
    actor: str,
    data: dict[str, Any],
    record_id: str | None = None,
    expect_version: int | None = None,
    note: str | None = None,
) -> Record:
    """Append the full new version of a record and project it, inside the caller's job;
    ``note`` is why (a correction's reason)."""
    table = schema.TABLES[record_type]
    if record_id is None:
        record_id = new_id()
        version = 1
    else:
        row = txn.conn.execute(
            f"SELECT version FROM {table} WHERE id = ?", (record_id,)
        ).fetchone()
        current_version = 0 if row is None else int(row[0])
        if expect_version is not None and current_version != expect_version:
            raise ConflictError(
                f"{record_type} {record_id} is at version {current_version}, not {expect_version}"
            )
        version = current_version + 1
    # Whether the document's number was already withheld (mật, or in a mật hồ sơ) before
    # this version: read before the projection row changes.
    before = (
        record_type == "document"
        and version > 1
        and classified.document_is_classified(txn.conn, {}, record_id, projected=True)
    )
    check_released(txn.conn, record_type, record_id, data)
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
    entry = _append(txn, kind, actor, record_type, record_id, data, version, refs, note)
    used = _number_withheld(txn, kind, record_type, record_id, data, before)
    if used is not None:
        _append(txn, numbering.NUMBER_USED_KIND, actor, None, None, used)
    return Record(record_type, record_id, version, entry.index, data)


def append_event(
    txn: Txn,
    kind: str,
    actor: str,
    data: dict[str, Any] | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    refs: Sequence[bytes] = (),
    note: str | None = None,
) -> Entry:
    """Append an entry that changes no projection (views, prints, receipts, audits)."""
    return _append(txn, kind, actor, target_type, target_id, data, refs=tuple(refs), note=note)


def _append(
    txn: Txn,
    kind: str,
    actor: str,
    record_type: str | None,
    record_id: str | None,
    data: dict[str, Any] | None,
    version: int | None = None,
    refs: tuple[bytes, ...] = (),
    note: str | None = None,
) -> Entry:
    """Append one entry stamped with the writer's clock (Asia/Ho_Chi_Minh, +07:00)."""
    now = clockmod.iso(txn.clock.now())
    return txn.ledger.append(
        Entry(-1, str(kind), now, actor, record_type, record_id, version, data, refs, note)
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
        keys = ("Direction", "ArrivalNumber", "CodeNumber", "Series", "Year", "FondCode")
        row = txn.conn.execute(
            f"SELECT {', '.join(schema.q(k) for k in keys)} FROM documents WHERE id = ?",
            (data.get("DocumentId"),),
        ).fetchone()
        return None if row is None else numbering.number_taken(dict(zip(keys, row, strict=True)))
    if record_type != "document" or (before and kind not in numbering.NUMBERING_KINDS):
        return None
    if kind not in numbering.NUMBERING_KINDS and kind != Kind.DOCUMENT_UPDATE:
        return None
    if not classified.document_is_classified(txn.conn, data, record_id):
        return None
    return numbering.number_taken(data)


def new_id() -> str:
    """A random (version 4) UUID as text: what str(uuid.uuid4()) gives, in a third of the time."""
    b = bytearray(os.urandom(16))
    b[6] = b[6] & 0x0F | 0x40
    b[8] = b[8] & 0x3F | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# -- reading inside the transaction ----------------------------------------------------------


def record_of(record_type: str, row: Mapping[str, Any]) -> Record:
    return Record(
        record_type,
        row["id"],
        int(row["version"]),
        int(row["log_index"]),
        schema.from_row(record_type, row),
    )


def current(txn: Txn, record_type: str, **where: Any) -> Record:
    """The current version of the one record matching ``where``, inside the transaction."""
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
    return record_of(record_type, row)


def fonds_state(conn: sqlite3.Connection, own_org: str, code: str | None) -> dict[str, Any]:
    """The fonds a new record goes to: ``code``, else the one open fonds (the agency's own
    when several are open)."""
    if code is None:
        rows = conn.execute(
            'SELECT "FondCode", "Status" FROM fonds WHERE "Status" = \'open\' ORDER BY rid'
        ).fetchall()
        own = [r for r in rows if r[0] == own_org]
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


def file_fonds(conn: sqlite3.Connection, file_code: Any) -> str | None:
    """The fonds of hồ sơ ``file_code``: a document filed into it belongs there too."""
    if not file_code:
        return None
    row = conn.execute('SELECT "FondCode" FROM files WHERE "FileCode" = ?', (file_code,)).fetchone()
    return None if row is None or row[0] is None else str(row[0])


# -- the one rule of what may still change ---------------------------------------------------

HOLD_LABELS = {"freeze": "đã bị phong tỏa", "recall": "đã bị thu hồi", "destroyed": "đã bị hủy"}


def holds_on(
    conn: sqlite3.Connection, targets: list[tuple[str, str]]
) -> list[tuple[str, str, str, str | None]]:
    """Active holds (type, id, kind, reason) on any of ``targets`` (archive_holds, written by
    the archive; a folder that never used the archive has no such table and no hold)."""
    if not targets:
        return []
    clause = " OR ".join("(target_type = ? AND target_id = ?)" for _ in targets)
    params = tuple(v for t in targets for v in t)
    try:
        found = conn.execute(
            f"SELECT target_type, target_id, kind, reason FROM archive_holds WHERE {clause}",
            params,
        ).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise
    return [(str(a), str(b), str(c), d) for a, b, c, d in found]


def require_open_fonds(conn: sqlite3.Connection, fond_code: str | None, what: str) -> None:
    """Refuse ``what`` when the fonds ``fond_code`` is closed (a merger made it read-only)."""
    if not fond_code:
        return
    row = conn.execute('SELECT "Status" FROM fonds WHERE "FondCode" = ?', (fond_code,)).fetchone()
    if row is not None and row[0] != "open":
        raise ReadOnlyError(f"fonds {fond_code} is closed: {what}")


def check_writable(conn: sqlite3.Connection, rec: Record) -> None:
    """Refuse any change to ``rec`` when its fonds is closed, or when it, its hồ sơ (its own
    or one it is filed in) or its fonds is frozen, recalled or destroyed (spec §2.10)."""
    data = rec.data
    require_open_fonds(conn, data.get("FondCode"), "its records are read-only")
    if rec.type == "document" and data.get("Status") == "recalled":
        raise FrozenError(f"document {rec.id} has been recalled (thu hồi) and cannot change")
    targets = [(rec.type, rec.id)]
    if data.get("FileCode"):
        targets.append(("file", str(data["FileCode"])))
    if data.get("FondCode"):
        targets.append(("fonds", str(data["FondCode"])))
    if rec.type == "document":
        for (code,) in conn.execute(
            'SELECT "FileCode" FROM memberships WHERE "DocumentId" = ?', (rec.id,)
        ):
            targets.append(("file", str(code)))
    found = holds_on(conn, targets)
    if found:
        t, i, kind, reason = found[0]
        what = "this record" if (t, i) == (rec.type, rec.id) else f"{t} {i}"
        why = f" ({reason})" if reason else ""
        raise FrozenError(f"{what} {HOLD_LABELS.get(kind, kind)}{why}: no edits are allowed")


def check_correctable(conn: sqlite3.Connection, rec: Record) -> None:
    """What a person may still correct: as ``check_writable``, and neither a cancelled
    registration nor a document of a closed hồ sơ (its own, or one it is filed in)."""
    check_writable(conn, rec)
    if rec.data.get("CancelledDate"):
        raise ConflictError(f"{rec.type} {rec.id} was cancelled (huỷ) and cannot change")
    if rec.type != "document":
        return
    codes = [rec.data["FileCode"]] if rec.data.get("FileCode") else []
    codes += [str(r[0]) for r in conn.execute(
        'SELECT "FileCode" FROM memberships WHERE "DocumentId" = ?', (rec.id,))]
    for code in codes:
        row = conn.execute('SELECT "Status" FROM files WHERE "FileCode" = ?', (code,)).fetchone()
        if row is not None and row[0] == "closed":
            raise ReadOnlyError(f"hồ sơ {code} is closed: its documents cannot change")


_RESTRICTING = ("02", "03")


def check_released(conn: sqlite3.Connection, record_type: str, record_id: str,
                   data: Mapping[str, Any]) -> None:
    """Refuse to restrict, classify or move a record that an active release lists (a hồ sơ
    transferred or published for the province's catalogue, archive/publication.py), or to file
    a listed document into a restricted hồ sơ: the centre would go on publishing the version
    it holds. The head withdraws the publication first."""
    if record_type not in ("document", "file", "membership"):
        return
    target = data.get("DocumentId") if record_type == "membership" else record_id
    hit = _release_of(conn, str(target))
    if hit is None:
        return
    if record_type == "membership":
        row = conn.execute('SELECT "Rights" FROM files WHERE "FileCode" = ?',
                           (data.get("FileCode"),)).fetchone()
        bad = row is not None and row[0] in _RESTRICTING
    else:
        key = "Rights" if record_type == "file" else "Mode"
        row = conn.execute(
            f'SELECT {schema.q(key)}, "FileCode" FROM {schema.TABLES[record_type]} WHERE id = ?',
            (record_id,)).fetchone()
        old_level, old_code = (row[0], row[1]) if row else (None, None)
        new_level = data.get(key)
        bad = (new_level in _RESTRICTING and new_level != old_level) or (
            record_type == "document" and row is not None and data.get("FileCode") != old_code)
    if bad:
        _refuse_released(hit[0])


def check_stays_listed(conn: sqlite3.Connection, document_id: str, file_code: str) -> None:
    """Refuse to take a document out of a hồ sơ whose active release lists it (the centre
    would go on publishing it as a member)."""
    hit = _release_of(conn, document_id, file_code)
    if hit is not None:
        _refuse_released(hit[0])


def _release_of(conn: sqlite3.Connection, record_id: str,
                file_code: str | None = None) -> tuple[str] | None:
    sql = "SELECT file_code FROM publication_items WHERE record_id = ?"
    args: tuple[str, ...] = (record_id,)
    if file_code is not None:
        sql, args = sql + " AND file_code = ?", (record_id, file_code)
    try:
        row = conn.execute(sql + " LIMIT 1", args).fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return None
        raise
    return None if row is None else (str(row[0]),)


def _refuse_released(file_code: str) -> None:
    raise ConflictError(
        f"hồ sơ {file_code} đang được công bố ở mục lục của tỉnh: rút công bố trước khi hạn "
        "chế hoặc chuyển tài liệu của nó (withdraw the publication first)")


def place_in_file(txn: Txn, data: dict[str, Any], legacy: bool = False) -> None:
    """File a document into ``data["FileCode"]`` (if any): the hồ sơ must exist and take new
    documents (open, its fonds open, not frozen); the next ordinal when none is given. A
    legacy register's rows may go into hồ sơ closed long ago."""
    code = data.get("FileCode")
    if not code:
        return
    txn.conn.row_factory = sqlite3.Row
    try:
        row = txn.conn.execute("SELECT * FROM files WHERE \"FileCode\" = ?", (code,)).fetchone()
    finally:
        txn.conn.row_factory = None
    if row is None:
        raise NotFoundError(f"hồ sơ {code} does not exist")
    if not legacy:
        file = record_of("file", row)
        if file.data.get("Status") == "closed":
            raise ReadOnlyError(f"hồ sơ {code} is closed: it takes no new documents")
        check_writable(txn.conn, file)
    if "DocOrdinal" not in data:
        n = txn.conn.execute(
            'SELECT max(m) FROM (SELECT max("DocOrdinal") AS m FROM documents '
            'WHERE "FileCode" = ? UNION ALL SELECT max("DocOrdinal") FROM memberships '
            'WHERE "FileCode" = ?)',
            (code, code),
        ).fetchone()[0]
        data["DocOrdinal"] = (n or 0) + 1


def duplicate_warnings(
    conn: sqlite3.Connection, data: Mapping[str, Any], own_id: str | None
) -> list[str]:
    """Spec §2.10: warn when (số, ký hiệu, cơ quan ban hành) repeats within a year."""
    if not (data.get("CodeNumber") and data.get("CodeNotation") and data.get("OrganName")):
        return []
    year = (data.get("IssuedDate") or "")[:4]
    rows = conn.execute(
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
