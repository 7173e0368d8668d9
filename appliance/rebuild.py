"""Rebuild every projection from the log alone (a replacement box restored from the centre).

Every change is a log entry carrying the full new version of what it changes, and the tables
the UI reads are projections of the log written in the same transaction by the live code
paths. ``rebuild_projections`` empties those tables and replays the log into them, entry kind
by entry kind, as the live path wrote them:

- record entries (``RECORD_KINDS``: a record's full new version) → fonds, files, documents,
  memberships (rids follow each record's first visible version, as live inserts did), and
  the content table from each document version's ``Content`` list (first log index wins);
- ``document.text`` → document_text (the latest text of each document);
- ``codelists.load`` → codelist_versions (the entry names the version and its SHA-256; the
  body is not in the log and comes from ``codelist_body`` or the bundled lists);
- ``archive.*`` → the archive's tables, through ``archive.state``'s own writers;
- ``edxml.*`` → the electronic inbox and its status messages, through ``edxml.inbox.apply``
  (the function the live path calls);
- postal sendings, uses of kept copies, the Danh mục's headings and approvals, the agency's
  identifiers and units → their tables, through the live paths' own projectors (logbooks.py);
- then the search index from the documents and their OCR text (a bulk write: straight into
  document_fts, nothing left pending), and the Decree 30 number counters from the numbers
  the documents hold.

An empty log row is an entry held as its leaf hash only (a classified record's entry that never
left the old appliance): it is skipped and counted. A kind with no replay rule that is not
known to project nothing (``INERT_KINDS``, ``INERT_PREFIXES``) stops the rebuild, so a kind
added later without a rule is noticed.

The rules (which kinds are replayed, which project nothing, the tables rewritten) are in
``rebuild_rules.py``; the pass over the log is ``replay.Replay``; this module empties the
tables, runs the pass, then writes the search index and the number counters.
"""

from __future__ import annotations

import sqlite3

from .numbering import observe_number
from .rebuild_rules import (
    ARCHIVE_TABLES,
    CORE_TABLES,
    EDXML_TABLES,
    CodelistSource,
    RebuildError,
    RebuildReport,
)
from .replay import Replay
from .search import drop_index_rows, write_index

FTS_CHUNK = 5000  # search rows written per statement (each a segment FTS5 merges later)

# The number counters as the live path leaves them: next_number and observe_number only ever
# raise a counter to a number a document then holds, so each counter is the highest number its
# (fonds, series, year) holds. verify._check_counters checks exactly this.
_COUNTERS_SQL = (
    "INSERT INTO number_counters (fond, series, year, last) "
    'SELECT "FondCode", "Series", "Year", max(CASE WHEN "Direction" = \'incoming\' '
    'THEN "ArrivalNumber" ELSE CAST("CodeNumber" AS INTEGER) END) AS n FROM documents '
    'WHERE "Series" IS NOT NULL AND "Year" IS NOT NULL GROUP BY 1, 2, 3 HAVING n IS NOT NULL'
)


def _table_exists(conn: sqlite3.Connection, name: str) -> bool:
    return (
        conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
        ).fetchone()
        is not None
    )


def _empty(conn: sqlite3.Connection) -> None:
    for table in CORE_TABLES:
        if table == "document_fts":
            drop_index_rows(conn)
        else:
            conn.execute(f"DELETE FROM {table}")
    for table in (*ARCHIVE_TABLES, *EDXML_TABLES):
        if _table_exists(conn, table):
            conn.execute(f"DELETE FROM {table}")


def bundled_codelists(sha256: str) -> bytes | None:
    """The code lists shipped with the software, when they are the version asked for."""
    from .codelists import load_bundled

    raw, lists = load_bundled()
    return raw if lists.sha256 == sha256 else None


def rebuild_projections(
    conn: sqlite3.Connection,
    *,
    codelist_body: CodelistSource | None = None,
    allow_unknown: bool = False,
    allow_missing_codelists: bool = False,
) -> RebuildReport:
    """Empty and rewrite every projection from ``log``, inside the caller's open transaction.

    ``codelist_body(sha256)`` returns a code-list body the log names by its SHA-256 (the log
    does not hold bodies); the bundled lists are tried when it gives nothing. A code-list
    version found nowhere raises, unless ``allow_missing_codelists`` (then it is reported).
    An unknown entry kind raises UnknownKindError, unless ``allow_unknown`` (then it is
    reported, and projected as a record version if it is one).
    """
    if not conn.in_transaction:
        raise RebuildError("rebuild_projections runs inside the caller's open transaction")

    def body_of(sha: str) -> bytes | None:
        found = codelist_body(sha) if codelist_body is not None else None
        return found if found is not None else bundled_codelists(sha)

    report = RebuildReport()
    _empty(conn)
    replay = Replay(conn, report, body_of, allow_unknown, allow_missing_codelists)
    replay.run()
    write_index(conn, FTS_CHUNK)
    conn.execute(_COUNTERS_SQL)
    # Numbers taken by classified documents, which may be withheld: counters never go below.
    for (fond, series, year), n in replay.numbers_used.items():
        observe_number(conn, fond, series, year, n)
    tables = list(CORE_TABLES)
    tables += [t for t in (*ARCHIVE_TABLES, *EDXML_TABLES) if _table_exists(conn, t)]
    report.tables = {
        t: int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in tables
    }
    return report
