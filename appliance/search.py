"""Full-text search in Vietnamese over SQLite FTS5, with or without diacritics.

The index holds a folded copy of each document's searchable text (tone marks and đ/Đ
folded, lower case), so any SQLite client can read it; queries are folded the same way.

The index is two tables, both written in the transaction that changes the document:
``document_fts`` (FTS5) and ``search_pending``, the rows written since they were last merged
into it. FTS5 writes a new segment, its structure record and its merge work at every commit
that inserts, however small — about three quarters of a durable single-document registration's
work — so single writes go to ``search_pending`` and move into ``document_fts`` in one
statement once ``MERGE_AT`` have gathered. A document's row is in exactly one of the two.
``search`` matches the pending rows with an in-memory FTS5 table of the same tokenizer, kept
per connection, so both halves answer a query by the same rules. Bulk writes (import, rebuild)
go straight to ``document_fts``.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from .classified import DOCUMENT_NOT_CLASSIFIED_SQL
from .fields import SCHEMAS
from .kinds import Kind
from .schema import TABLES, field_columns, from_row, q
from .text import fold, nfc

if TYPE_CHECKING:
    from .writer import Txn

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
OCR_TEXT_KIND = Kind.DOCUMENT_TEXT

# Prefix indexes of 1 to 6 letters: a query's last word is a prefix, and without an index FTS5
# reads the whole doclist of every term under it ("cong" *: 7 ms, not 0.07); a Vietnamese
# syllable folds to at most 7 letters.
FTS_PREFIX = "1 2 3 4 5 6"
# One row per document (rowid = documents.rid): `body` is the folded metadata (fts_body), `ocr`
# the folded OCR text of its content, so one MATCH covers both.
FTS_DDL = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS document_fts USING fts5(\n"
    f"  body, ocr, tokenize = 'unicode61 remove_diacritics 2', prefix = '{FTS_PREFIX}');"
)

INDEX_DDL = """
-- Search rows written since they were last merged into document_fts, in one statement per
-- search.MERGE_AT documents (search.py): a document's row is in exactly one of the two, and
-- search matches both. One FTS5 insert per registration would write a segment per commit.
CREATE TABLE IF NOT EXISTS search_pending (
  rid INTEGER PRIMARY KEY, body TEXT NOT NULL, ocr TEXT NOT NULL);
-- OCR text of digitised documents (capture), projected from 'document.text' log entries.
CREATE TABLE IF NOT EXISTS document_text (
  document_id TEXT PRIMARY KEY, sha256 TEXT NOT NULL, text TEXT NOT NULL,
  log_index INTEGER NOT NULL);
"""


def create_index(conn: sqlite3.Connection) -> None:
    """The search index's tables (after ``schema.create_schema``): document_fts, its pending
    half and the OCR text; older folders' indexes are migrated."""
    # Folders made before OCR text joined the search index have a one-column index and a
    # separate OCR index: drop both, and rebuild the new one from the projections.
    old_index = [r[1] for r in conn.execute("PRAGMA table_info(document_fts)")] == ["body"]
    if old_index:
        conn.execute("DROP TABLE document_fts")
        conn.execute("DROP TABLE IF EXISTS document_text_fts")
    conn.execute(FTS_DDL)
    conn.executescript(INDEX_DDL)
    if old_index:
        rebuild_index(conn)
    else:
        _reindex_prefixes(conn)



def fts_ocr(text: str | None) -> str:
    """The folded OCR text indexed for a document ('' when it has none)."""
    return fold(text) if text else ""


# The FTS5 tokenizer: search_pending's in-memory mirror must tokenize exactly as document_fts.
TOKENIZE = "unicode61 remove_diacritics 2"
# Pending rows merged into document_fts in one statement (one segment) at a time.
MERGE_AT = 256


def index_document(
    conn: sqlite3.Connection, rid: int, data: Mapping[str, Any], ocr_text: str | None, new: bool
) -> None:
    """(Re)write a document's search row inside the caller's transaction."""
    if not new and not conn.execute(
        "SELECT 1 FROM search_pending WHERE rid = ?", (rid,)
    ).fetchone():
        conn.execute("DELETE FROM document_fts WHERE rowid = ?", (rid,))
    conn.execute(
        "INSERT OR REPLACE INTO search_pending (rid, body, ocr) VALUES (?, ?, ?)",
        (rid, fts_body(data), fts_ocr(ocr_text)),
    )
    if conn.execute("SELECT count(*) FROM search_pending").fetchone()[0] >= MERGE_AT:
        merge_pending(conn)


def merge_pending(conn: sqlite3.Connection) -> int:
    """Move every pending search row into document_fts (one segment); returns how many."""
    moved = conn.execute(
        "INSERT INTO document_fts (rowid, body, ocr) SELECT rid, body, ocr FROM search_pending"
    ).rowcount
    conn.execute("DELETE FROM search_pending")
    return int(moved)


def _has_pending_table(conn: sqlite3.Connection) -> bool:
    """Folders made before search_pending get it when a store opens them (create_schema);
    a read-only look (verify) may come first."""
    return (
        conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'search_pending'"
        ).fetchone()
        is not None
    )


def indexed_rows(conn: sqlite3.Connection) -> Iterator[tuple[int, str, str | None]]:
    """Every search row, (rid, body, ocr): document_fts's, then the pending ones."""
    sql = "SELECT rowid, body, ocr FROM document_fts"
    if _has_pending_table(conn):
        sql += " UNION ALL SELECT rid, body, ocr FROM search_pending"
    return cast(Iterator[tuple[int, str, "str | None"]], conn.execute(sql))


def optimize_index(conn: sqlite3.Connection) -> None:
    """Merge the search index's segments into one (inside the caller's transaction). A query
    looks each term up in every segment; after a bulk import there are several. About 1.2 s
    for 200,000 documents, and queries then cost 10–25 % less."""
    conn.execute("INSERT INTO document_fts (document_fts) VALUES ('optimize')")


def clear_index(conn: sqlite3.Connection) -> None:
    """Empty the search index (both halves), inside the caller's transaction."""
    conn.execute("DELETE FROM document_fts")
    conn.execute("DELETE FROM search_pending")


def ocr_text_of(conn: sqlite3.Connection, doc_id: str) -> str | None:
    row = conn.execute("SELECT text FROM document_text WHERE document_id = ?", (doc_id,)).fetchone()
    return None if row is None else str(row[0])


def rebuild_index(conn: sqlite3.Connection, chunk: int = 5000) -> int:
    """Rewrite the whole search index from the projections; returns the documents indexed."""
    clear_index(conn)
    texts = dict(conn.execute("SELECT document_id, text FROM document_text").fetchall())
    total, last = 0, -1
    prev = conn.row_factory
    conn.row_factory = sqlite3.Row
    try:
        while True:
            rows = conn.execute(
                f"SELECT * FROM {TABLES['document']} WHERE rid > ? ORDER BY rid LIMIT ?",
                (last, chunk),
            ).fetchall()
            if not rows:
                break
            batch = [
                (int(r["rid"]), fts_body(from_row("document", r)), fts_ocr(texts.get(r["id"])))
                for r in rows
            ]
            # One statement per chunk: FTS5 writes a segment at each later statement.
            conn.execute(
                "INSERT INTO document_fts (rowid, body, ocr) "
                "SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?)",
                (json.dumps(batch, ensure_ascii=False),),
            )
            last = int(rows[-1]["rid"])
            total += len(rows)
    finally:
        conn.row_factory = prev
    return total


class _PendingMirror:
    """An in-memory FTS5 copy of one connection's view of search_pending.

    It is brought up to date when the connection's view may have changed: another connection
    committed (``PRAGMA data_version``) or this one wrote (``total_changes``)."""

    def __init__(self) -> None:
        self.db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        self.db.execute(f"CREATE VIRTUAL TABLE m USING fts5(body, ocr, tokenize = '{TOKENIZE}')")
        self.rows: dict[int, tuple[str, str]] = {}
        self.seen: tuple[int, int] | None = None
        self.lock = threading.Lock()

    def refresh(self, conn: sqlite3.Connection) -> None:
        seen = (int(conn.execute("PRAGMA data_version").fetchone()[0]), conn.total_changes)
        if seen == self.seen:
            return
        now = {
            int(r): (str(b), str(o or ""))
            for r, b, o in conn.execute("SELECT rid, body, ocr FROM search_pending")
        }
        db = self.db
        db.execute("BEGIN")
        for rid in self.rows.keys() - now.keys():
            db.execute("DELETE FROM m WHERE rowid = ?", (rid,))
        for rid, (body, ocr) in now.items():
            old = self.rows.get(rid)
            if old != (body, ocr):
                if old is not None:
                    db.execute("DELETE FROM m WHERE rowid = ?", (rid,))
                db.execute("INSERT INTO m (rowid, body, ocr) VALUES (?, ?, ?)", (rid, body, ocr))
        db.execute("COMMIT")
        self.rows = now
        self.seen = seen

    def match(self, expr: str) -> list[int]:
        if not self.rows:
            return []
        return [int(r) for (r,) in self.db.execute("SELECT rowid FROM m WHERE m MATCH ?", (expr,))]


def pending_matches(conn: sqlite3.Connection, expr: str) -> list[int]:
    """The rids of pending search rows that match an FTS5 expression, as document_fts would."""
    mirror = getattr(conn, "search_cache", None)
    keep = hasattr(conn, "search_cache")
    if not isinstance(mirror, _PendingMirror):
        if not _has_pending_table(conn) or not conn.execute(
            "SELECT 1 FROM search_pending LIMIT 1"
        ).fetchone():
            return []
        mirror = _PendingMirror()
        if keep:  # a schema.Connection: the mirror lives as long as the connection
            conn.search_cache = mirror  # type: ignore[attr-defined]
    with mirror.lock:
        mirror.refresh(conn)
        return mirror.match(expr)


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


def _filter_clauses(filters: Filters) -> tuple[list[str], list[Any]]:
    """WHERE clauses (over documents ``d``) and their arguments for the filters."""
    where: list[str] = []
    args: list[Any] = []
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
        where.append(DOCUMENT_NOT_CLASSIFIED_SQL.replace('"Mode"', 'd."Mode"'))
    return where, args


def search(
    conn: sqlite3.Connection,
    query: str,
    filters: Filters | None = None,
    limit: int = 50,
    offset: int = 0,
    fields: Sequence[str] | None = None,
) -> list[Hit]:
    """Newest first. An empty query lists the documents that match the filters. With
    ``fields``, each hit's data holds only those fields (a list page reads a few columns, not
    the whole record)."""
    # One snapshot for the pending rows and the index: a merge committed in between would
    # otherwise show a document in both halves, or in neither.
    own = not conn.in_transaction
    if own:
        conn.execute("BEGIN")
    try:
        return _search(conn, query, filters or Filters(), limit, offset, fields)
    finally:
        if own:
            conn.execute("COMMIT")


def _year_band_sql(docs: str) -> str:
    """The lowest and highest rid of a year's documents. Asked per direction, each min and max
    is one step down the ("Year", "Direction") index (asked for the year alone, SQLite reads
    every index entry of the year: 1.2 ms instead of 6 µs at 200,000 documents)."""
    parts = []
    for cond in ("\"Direction\" = 'incoming'", "\"Direction\" = 'outgoing'",
                 "\"Direction\" IS NULL"):
        where = f'"Year" = ?1 AND {cond}'
        parts.append(
            f"SELECT (SELECT min(rid) FROM {docs} WHERE {where}) AS a, "
            f"(SELECT max(rid) FROM {docs} WHERE {where}) AS b"
        )
    return "SELECT min(a), max(b) FROM (" + " UNION ALL ".join(parts) + ")"


_DOCUMENT_FIELDS = frozenset(f.name for f in SCHEMAS["document"])


def _columns(fields: Sequence[str] | None) -> str:
    if fields is None:
        return "d.*"
    if unknown := [f for f in fields if f not in _DOCUMENT_FIELDS]:
        raise ValueError(f"not a document field: {', '.join(unknown)}")
    return ", ".join(["d.rid", "d.id", *(f'd."{f}"' for f in fields)])


def _search(
    conn: sqlite3.Connection,
    query: str,
    filters: Filters,
    limit: int,
    offset: int,
    fields: Sequence[str] | None,
) -> list[Hit]:
    cols = _columns(fields)
    fwhere, fargs = _filter_clauses(filters)
    expr = match_expression(query)
    pending = [] if expr is None else pending_matches(conn, expr)
    docs = TABLES["document"]
    # Walking the index newest first and stopping at `limit` is fastest (about 1 ms at 200,000
    # documents). A year is a band of rids (documents are registered in time order, so a
    # year's rids are close together): the walk is limited to that band. With a fonds or a
    # hồ sơ most matches are filtered out, and collecting the matches first then probing the
    # few documents is faster.
    narrow = filters.fond or filters.file_code
    queries: list[tuple[str, list[Any]]] = []
    if expr is not None and not narrow:
        where = ["document_fts MATCH ?"]
        args: list[Any] = [expr]
        if filters.year is not None:
            band = conn.execute(_year_band_sql(docs), (filters.year,)).fetchone()
            if band[0] is None:
                return []
            where.append("f.rowid BETWEEN ? AND ?")
            args.extend(band)
        queries.append(
            (
                f"SELECT {cols} FROM document_fts f JOIN {docs} d ON d.rid = f.rowid WHERE "
                + " AND ".join(where + fwhere)
                + " ORDER BY f.rowid DESC",
                args + fargs,
            )
        )
        if pending:  # the pending rows that match, through the same filters
            queries.append(
                (
                    f"SELECT {cols} FROM {docs} d WHERE "
                    + " AND ".join(["d.rid IN (SELECT value FROM json_each(?))", *fwhere])
                    + " ORDER BY d.rid DESC",
                    [json.dumps(pending), *fargs],
                )
            )
    else:
        where = list(fwhere)
        args = list(fargs)
        if expr is not None:
            where.insert(0, "d.rid IN (SELECT rowid FROM document_fts WHERE document_fts MATCH ?)")
            args.insert(0, expr)
            if pending:
                where[0] = f"({where[0]} OR d.rid IN (SELECT value FROM json_each(?)))"
                args.insert(1, json.dumps(pending))
        sql = f"SELECT {cols} FROM {docs} d"
        if where:
            sql += " WHERE " + " AND ".join(where)
        queries.append((sql + " ORDER BY d.rid DESC", args))
    prev = conn.row_factory
    conn.row_factory = sqlite3.Row
    try:
        if len(queries) == 1:
            sql, args = queries[0]
            rows = conn.execute(sql + " LIMIT ? OFFSET ?", (*args, limit, offset)).fetchall()
        else:
            # Each side gives its newest offset + limit; the page is cut from the merge.
            rows = [
                r
                for sql, args in queries
                for r in conn.execute(sql + " LIMIT ?", (*args, offset + limit)).fetchall()
            ]
            rows.sort(key=lambda r: -int(r["rid"]))
            rows = rows[offset : offset + limit]
    finally:
        conn.row_factory = prev
    return [Hit(r["id"], from_row("document", r)) for r in rows]


def flush_search_rows(txn: Txn) -> None:
    """Write the collected search rows in one statement.

    SQLite's FTS5 writes its pending terms to disk at the start of every later statement of
    the transaction, so inserting rows one by one between other writes makes a segment per
    document; one INSERT … SELECT makes one segment for the whole batch.
    """
    if txn.search_rows:
        txn.conn.execute(
            "INSERT INTO document_fts (rowid, body, ocr) "
            "SELECT value ->> 0, value ->> 1, '' FROM json_each(?)",
            (json.dumps(txn.search_rows, ensure_ascii=False),),
        )
    txn.search_rows = None


def _reindex_prefixes(conn: sqlite3.Connection) -> None:
    """Folders made when the search index kept prefixes of 1 to 3 letters get FTS_DDL's index,
    its rows copied over in one transaction (6.6 s at 200,000 documents, once): FTS5 cannot add
    a prefix index to a table."""
    row = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'document_fts'"
    ).fetchone()
    if row is None or f"prefix = '{FTS_PREFIX}'" in str(row[0]):
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("ALTER TABLE document_fts RENAME TO document_fts_old")
        conn.execute(FTS_DDL)
        conn.execute(
            "INSERT INTO document_fts (rowid, body, ocr) "
            "SELECT rowid, body, ocr FROM document_fts_old"
        )
        conn.execute("DROP TABLE document_fts_old")
        conn.execute("INSERT INTO document_fts (document_fts) VALUES ('optimize')")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def drop_index_rows(conn: sqlite3.Connection) -> None:
    """Drop and create the index anew with its own stored definition (whatever its layout):
    deleting a large FTS5 table row by row is slow and holds every deleted term in memory."""
    if conn.execute("SELECT 1 FROM document_fts LIMIT 1").fetchone() is None:
        return
    (ddl,) = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'document_fts'"
    ).fetchone()
    conn.execute("DROP TABLE document_fts")
    conn.execute(ddl)


def _fts_columns(conn: sqlite3.Connection) -> list[str]:
    return [str(r[1]) for r in conn.execute("PRAGMA table_info(document_fts)")]


def write_index(conn: sqlite3.Connection, chunk: int = 5000) -> int:
    """Index every document (rowid = rid, folded metadata, folded OCR text) in few statements,
    straight into document_fts (a bulk write, as rebuild_index, but in bounded chunks of
    ``chunk`` documents): what a rebuild of every projection from the log ends with."""
    if _fts_columns(conn) != ["body", "ocr"]:
        return rebuild_index(conn)  # the index was laid out anew: its own rebuild knows it
    drop_index_rows(conn)
    clear_index(conn)  # every half of the index search.py keeps (document_fts now empty)
    cols = ", ".join(f"d.{q(n)}" for n in field_columns("document"))
    sql = (
        f"SELECT d.rid, {cols}, t.text FROM documents d "
        "LEFT JOIN document_text t ON t.document_id = d.id "
        "WHERE d.rid > ? ORDER BY d.rid LIMIT ?"
    )
    names = field_columns("document")
    last, total = 0, 0
    prev = conn.row_factory
    conn.row_factory = None
    try:
        while True:
            rows = conn.execute(sql, (last, chunk)).fetchall()
            if not rows:
                break
            batch = []
            for r in rows:
                data = from_row("document", dict(zip(names, r[1:-1], strict=True)))
                batch.append((int(r[0]), fts_body(data), fts_ocr(r[-1])))
            # One INSERT … SELECT per chunk, as flush_search_rows: FTS5 writes its
            # pending terms at every later statement, so row-by-row inserts make a segment each.
            conn.execute(
                "INSERT INTO document_fts (rowid, body, ocr) "
                "SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?)",
                (json.dumps(batch, ensure_ascii=False),),
            )
            last = int(rows[-1][0])
            total += len(rows)
    finally:
        conn.row_factory = prev
    return total
