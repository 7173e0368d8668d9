"""Full-text search in Vietnamese over SQLite FTS5, with or without diacritics.

The index holds a folded copy of each document's searchable text (tone marks and đ/Đ
folded, lower case), so any SQLite client can read it; queries are folded the same way.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .schema import TABLES, from_row
from .text import fold, nfc

_WORD = re.compile(r"\w+", re.UNICODE)
SEARCHED_FIELDS = (
    "TypeName",
    "CodeNumber",
    "CodeNotation",
    "OrganName",
    "Subject",
    "Keyword",
    "SignerFullName",
    "ToPlaces",
    "Description",
)


def fts_body(data: Mapping[str, Any], extra_text: str = "") -> str:
    """The folded text indexed for a document (OCR text joins as ``extra_text``)."""
    parts = [str(data[f]) for f in SEARCHED_FIELDS if data.get(f)]
    if data.get("CodeNumber") and data.get("CodeNotation"):
        parts.append(f"{data['CodeNumber']}/{data['CodeNotation']}")
    if extra_text:
        parts.append(extra_text)
    return fold(" ".join(parts))


# The log entry kind that carries a document's OCR text (projected into document_text).
OCR_TEXT_KIND = "document.text"


def fts_ocr(text: str | None) -> str:
    """The folded OCR text indexed for a document ('' when it has none)."""
    return fold(text) if text else ""


def index_document(
    conn: sqlite3.Connection, rid: int, data: Mapping[str, Any], ocr_text: str | None, new: bool
) -> None:
    """(Re)write a document's search row inside the caller's transaction."""
    if not new:
        conn.execute("DELETE FROM document_fts WHERE rowid = ?", (rid,))
    conn.execute(
        "INSERT INTO document_fts (rowid, body, ocr) VALUES (?, ?, ?)",
        (rid, fts_body(data), fts_ocr(ocr_text)),
    )


def ocr_text_of(conn: sqlite3.Connection, doc_id: str) -> str | None:
    row = conn.execute("SELECT text FROM document_text WHERE document_id = ?", (doc_id,)).fetchone()
    return None if row is None else str(row[0])


def rebuild_index(conn: sqlite3.Connection) -> int:
    """Rewrite the whole search index from the projections; returns the documents indexed."""
    conn.execute("DELETE FROM document_fts")
    texts = dict(conn.execute("SELECT document_id, text FROM document_text").fetchall())
    prev = conn.row_factory
    conn.row_factory = sqlite3.Row
    try:
        rows = conn.execute(f"SELECT * FROM {TABLES['document']}").fetchall()
    finally:
        conn.row_factory = prev
    for r in rows:
        index_document(conn, int(r["rid"]), from_row("document", r), texts.get(r["id"]), True)
    return len(rows)


def match_expression(query: str) -> str | None:
    """Each chunk between spaces becomes a phrase of its folded words; the last is a prefix."""
    phrases = []
    for chunk in nfc(query).split():
        words = _WORD.findall(fold(chunk))
        if words:
            phrases.append('"' + " ".join(words) + '"')
    if not phrases:
        return None
    phrases[-1] += " *"
    return " AND ".join(phrases)


@dataclass(frozen=True)
class Filters:
    year: int | None = None
    type_name: str | None = None  # a TT 05 typeName code or a type name
    direction: str | None = None
    fond: str | None = None
    file_code: str | None = None
    include_classified: bool = True


@dataclass(frozen=True)
class Hit:
    id: str
    data: dict[str, Any]


def search(
    conn: sqlite3.Connection,
    query: str,
    filters: Filters | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[Hit]:
    """Newest first. An empty query lists the documents that match the filters."""
    filters = filters or Filters()
    where: list[str] = []
    args: list[Any] = []
    expr = match_expression(query)
    # Walking the index newest first and stopping at `limit` is fastest (about 1 ms at 200,000
    # documents). A year is a band of rids (documents are registered in time order, so a
    # year's rids are close together): the walk is limited to that band. With a fonds or a
    # hồ sơ most matches are filtered out, and collecting the matches first then probing the
    # few documents is faster.
    narrow = filters.fond or filters.file_code
    drive_from_index = expr is not None and not narrow
    if drive_from_index:
        where.append("document_fts MATCH ?")
        args.append(expr)
        if filters.year is not None:
            band = conn.execute(
                f'SELECT min(rid), max(rid) FROM {TABLES["document"]} WHERE "Year" = ?',
                (filters.year,),
            ).fetchone()
            if band[0] is None:
                return []
            where.append("f.rowid BETWEEN ? AND ?")
            args.extend(band)
    elif expr is not None:
        where.append("d.rid IN (SELECT rowid FROM document_fts WHERE document_fts MATCH ?)")
        args.append(expr)
    if filters.year is not None:
        where.append('d."Year" = ?')
        args.append(filters.year)
    if filters.type_name:
        where.append('(d."TypeCode" = ? OR d."TypeName" = ?)')
        args.extend([filters.type_name, nfc(filters.type_name)])
    if filters.direction:
        where.append('d."Direction" = ?')
        args.append(filters.direction)
    if filters.fond:
        where.append('d."FondCode" = ?')
        args.append(filters.fond)
    if filters.file_code:
        where.append(
            '(d."FileCode" = ? OR d.id IN (SELECT "DocumentId" FROM memberships '
            'WHERE "FileCode" = ?))'
        )
        args.extend([filters.file_code, filters.file_code])
    if not filters.include_classified:
        where.append("coalesce(d.\"Mode\", '01') <> '03'")
    if drive_from_index:
        sql = (
            f"SELECT d.* FROM document_fts f JOIN {TABLES['document']} d ON d.rid = f.rowid"
            " WHERE " + " AND ".join(where) + " ORDER BY f.rowid DESC LIMIT ? OFFSET ?"
        )
    else:
        sql = f"SELECT d.* FROM {TABLES['document']} d"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY d.rid DESC LIMIT ? OFFSET ?"
    args.extend([limit, offset])
    prev = conn.row_factory
    conn.row_factory = sqlite3.Row
    try:
        rows = conn.execute(sql, args).fetchall()
    finally:
        conn.row_factory = prev
    return [Hit(r["id"], from_row("document", r)) for r in rows]
