"""Read-only queries the pages need beyond Store.get/find: the home lists, the Danh mục hồ sơ,
a hồ sơ's contents, the number an outgoing draft would get, duplicate checks."""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from appliance import fileplan, numbering, schema, writes
from appliance.classified import DOCUMENT_NOT_CLASSIFIED_SQL, FILE_NOT_CLASSIFIED_SQL
from appliance.identifiers import format_number
from appliance.store import Store, Txn

log = logging.getLogger(__name__)

PERMANENT = "01"
# Retention codes of at least 05 years (Điều 31.3: such files must be transferred).
TRANSFERABLE = ("01", "02", "03", "04", "05", "06")
NOT_CLASSIFIED = DOCUMENT_NOT_CLASSIFIED_SQL
FILE_NOT_CLASSIFIED = FILE_NOT_CLASSIFIED_SQL


@dataclass(frozen=True)
class Doc:
    id: str
    data: dict[str, Any]
    version: int = 1
    log_index: int = 0


def _m(row: sqlite3.Row) -> Mapping[str, Any]:
    return row  # type: ignore[return-value]  # sqlite3.Row reads by name like a mapping


def _rows(conn: sqlite3.Connection, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
    prev = conn.row_factory
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.row_factory = prev


def _docs(conn: sqlite3.Connection, where: str, args: tuple[Any, ...], order: str,
          limit: int = 200) -> list[Doc]:
    rows = _rows(conn, f"SELECT * FROM documents WHERE {where} ORDER BY {order} LIMIT {limit}",
                 args)
    return [Doc(r["id"], schema.from_row("document", _m(r)), r["version"], r["log_index"])
            for r in rows]


def _cls(include_classified: bool) -> str:
    return "1" if include_classified else NOT_CLASSIFIED


def todays_registrations(conn: sqlite3.Connection, today: dt.date,
                         include_classified: bool) -> list[Doc]:
    day = today.isoformat()
    return _docs(
        conn,
        f'"Year" = ? AND (("Direction" = \'incoming\' AND "ArrivalDate" = ?) OR '
        f'("Direction" = \'outgoing\' AND "IssuedDate" = ?)) AND {_cls(include_classified)}',
        (today.year, day, day),
        "rid DESC",
    )


def due_for_reply(conn: sqlite3.Connection, today: dt.date, include_classified: bool,
                  ahead_days: int = 7) -> list[Doc]:
    """Incoming documents not yet handled whose Hạn trả lời / thời hạn giải quyết falls in the
    next ``ahead_days`` — or has passed, however long ago: overdue ones stay until done."""
    hi = (today + dt.timedelta(days=ahead_days)).isoformat()
    return _docs(
        conn,
        f'"DueDate" <= ? AND "Direction" = \'incoming\' AND "CancelledDate" IS NULL AND '
        f'coalesce(json_extract("Handling", \'$.status\'), \'\') <> \'done\' AND '
        f'{_cls(include_classified)}',
        (hi,),
        '"DueDate", rid',
        200,
    )


@dataclass(frozen=True)
class TransferDue:
    file_code: str
    title: str
    stage: str
    rule: str
    due: dt.date
    overdue: bool


def files_due_for_transfer(store: Store, today: dt.date,
                           notice_days: int = 30) -> list[TransferDue]:
    """Hồ sơ falling due, from the archive's due-date engine (appliance.archive.due) when it
    is there; else closed hồ sơ kept ≥ 05 years fall due 01 year after the work ended
    (NĐ 30 Điều 30.2), reported 30 days ahead (Phụ lục VI, III.5.b)."""
    try:
        from appliance.archive import due as archive_due
    except ImportError:
        archive_due = None  # type: ignore[assignment]
    if archive_due is not None:
        try:
            items = archive_due.files_due(store, today)
        except sqlite3.Error:
            log.exception("the archive's due-date engine failed; using the Decree 30 rule")
        else:
            return [
                TransferDue(i.file_code, i.title, archive_due.STAGE_LABELS[i.stage],
                            i.rule_label, i.deadline, i.deadline < today)
                for i in items
            ]
    conn = store.reader()
    marks = ",".join("?" for _ in TRANSFERABLE)
    rows = conn.execute(
        f'SELECT "FileCode", "Title", "EndDate" FROM files WHERE "Status" = \'closed\' '
        f'AND "EndDate" IS NOT NULL AND "Maintenance" IN ({marks}) ORDER BY "EndDate"',
        TRANSFERABLE,
    ).fetchall()
    out = []
    horizon = today + dt.timedelta(days=notice_days)
    for code, title, end in rows:
        end_d = dt.date.fromisoformat(end)
        try:
            due = end_d.replace(year=end_d.year + 1)
        except ValueError:  # 29 February
            due = end_d.replace(year=end_d.year + 1, day=28)
        if due <= horizon:
            out.append(TransferDue(code, title, "Nộp lưu vào lưu trữ hiện hành",
                                   "Điều 30.2 Nghị định 30/2020", due, due < today))
    return out


def danh_muc(conn: sqlite3.Connection, year: int,
             include_classified: bool) -> list[dict[str, Any]]:
    """The year's Danh mục hồ sơ, by heading then số và ký hiệu."""
    cls = "1" if include_classified else FILE_NOT_CLASSIFIED
    rows = _rows(
        conn,
        f'SELECT * FROM files WHERE "FileCatalog" = ? AND {cls} '
        'ORDER BY coalesce("Heading", \'\'), "FileNotation"',
        (year,),
    )
    return [schema.from_row("file", _m(r)) for r in rows]


def file_years(conn: sqlite3.Connection) -> list[int]:
    return [int(r[0]) for r in conn.execute(
        'SELECT DISTINCT "FileCatalog" FROM files ORDER BY 1 DESC').fetchall()]


def file_contents(conn: sqlite3.Connection, file_code: str, include_classified: bool) -> list[Doc]:
    """Documents in a hồ sơ (its own and those added by membership), by ordinal."""
    cls = _cls(include_classified).replace('"Mode"', 'd."Mode"')
    rows = _rows(
        conn,
        'SELECT d.*, d."DocOrdinal" AS ord FROM documents d WHERE d."FileCode" = ? '
        f"AND {cls} UNION ALL "
        'SELECT d.*, m."DocOrdinal" AS ord FROM memberships m JOIN documents d '
        f'ON d.id = m."DocumentId" WHERE m."FileCode" = ? AND {cls} ORDER BY ord',
        (file_code, file_code),
    )
    out = []
    for r in rows:
        data = schema.from_row("document", _m(r))
        data["DocOrdinal"] = r["ord"]
        out.append(Doc(r["id"], data, r["version"], r["log_index"]))
    return out


def open_files(conn: sqlite3.Connection, include_classified: bool,
               direction: str | None = None, year: int | None = None) -> list[tuple[str, str]]:
    """Open hồ sơ for a picker: those of ``year`` first (a document's own year), then the
    rest; none is chosen for the user."""
    cls = "1" if include_classified else FILE_NOT_CLASSIFIED
    rows = [(r[0], r[1], r[2]) for r in conn.execute(
        f'SELECT "FileCode", "Title", "FileCatalog" FROM files WHERE "Status" = \'open\' '
        f'AND {cls} ORDER BY "FileCatalog" DESC, "FileNotation"').fetchall()]
    if year is not None:
        rows.sort(key=lambda r: r[2] != year)
    return [(code, title) for code, title, _ in rows]


def files_holding(conn: sqlite3.Connection, doc_id: str, own: str | None
                  ) -> list[dict[str, Any]]:
    """The hồ sơ a document is in: its own first, then those it was added to as well; each
    with whether it is still open (only then can the document be taken out)."""
    rows = conn.execute(
        'SELECT f."FileCode", f."Title", f."Status", f."FileCode" = ? FROM files f '
        'WHERE f."FileCode" = ? OR f."FileCode" IN '
        '(SELECT "FileCode" FROM memberships WHERE "DocumentId" = ?) '
        'ORDER BY f."FileCode" = ? DESC, f."FileCode"', (own, own, doc_id, own)).fetchall()
    return [{"code": r[0], "title": r[1], "open": r[2] == "open", "own": bool(r[3])}
            for r in rows]


def recent_outgoing(conn: sqlite3.Connection, include_classified: bool,
                    limit: int = 200) -> list[tuple[str, str]]:
    """Issued văn bản đi, newest first, as (id, "số/ký hiệu — trích yếu"): the answer a
    handler links to the văn bản đến it answers."""
    cls = "1" if include_classified else NOT_CLASSIFIED
    rows = conn.execute(
        'SELECT id, "CodeNumber", "CodeNotation", "Subject" FROM documents '
        f'WHERE "Direction" = \'outgoing\' AND "Status" = \'issued\' AND {cls} '
        'ORDER BY rid DESC LIMIT ?', (limit,)).fetchall()
    return [(r[0], f"{r[1]}/{r[2]} — {r[3]}"[:160]) for r in rows]


def preview_number(store: Store, data: Mapping[str, Any], when: dt.date) -> str:
    """The số, ký hiệu a draft would get if issued now (a later issue may take it first)."""
    conn = store.reader()
    series = numbering.series_for(
        "outgoing", data, store.codes, store.config.numbering.own_series_types
    )
    row = conn.execute(
        "SELECT last FROM number_counters WHERE fond = ? AND series = ? AND year = ?",
        (data.get("FondCode"), series, when.year),
    ).fetchone()
    n = 1 if row is None else int(row[0]) + 1
    return f"{format_number(n)}/{data.get('CodeNotation', '')}"


def duplicates(store: Store, data: Mapping[str, Any]) -> list[str]:
    """Spec §2.10 warnings, computed before registering so the clerk can stop."""
    # duplicate_warnings only reads txn.conn; a reader connection serves.
    txn = Txn(store.reader(), None, None)  # type: ignore[arg-type]
    try:
        return writes.duplicate_warnings(txn.conn, data, None)
    except sqlite3.Error:
        return []


def plan_context(store: Store, year: int, files: list[dict[str, Any]]) -> dict[str, Any]:
    """What the Danh mục page shows beyond its hồ sơ: the year's structure, the rows in its
    order, the approval and whether the list changed since."""
    with store.snapshot() as conn:
        st = fileplan.structure(conn, year)
        ap = fileplan.approval(conn, year)
        changed = fileplan.changed_since(conn, year, ap)
    return {"structure": st, "approval": ap, "changed": changed,
            "arranged": fileplan.arrange(files, st)}
