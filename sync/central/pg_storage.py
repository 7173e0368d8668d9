"""The centre's storage on PostgreSQL: several stateless intake workers, one database.

Chosen with ``luutru central init --db postgresql://…``. Each transaction runs at READ
COMMITTED on its own pooled connection; the first read of an appliance inside a transaction
is ``SELECT … FOR UPDATE`` on its row, so every batch, status and refusal of one appliance is
applied in order by whichever worker takes it, and two workers can never accept conflicting
checkpoints (the second waits, then sees the first one's commit). Views are REPEATABLE READ
READ ONLY: a consistent snapshot for as long as they are open.

Schema changes are a versioned list of SQL steps (``pg_schema.MIGRATIONS``), each applied
once in a transaction under an advisory lock and recorded in ``schema_migrations``.

The queries are ``sql_storage``'s; this module holds the connection pool, the dialect and
compaction. Province-wide search uses a generated ``tsvector`` ('simple' configuration) over
the folded text split on non-alphanumerics (the same words SQLite's unicode61 tokenizer sees),
with a GIN index; the last word of a query is a prefix, as on SQLite.
"""

from __future__ import annotations

import functools
import queue
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from ..errors import StorageError
from .dialect import Dialect
from .pg_schema import migrate
from .sql_storage import SqlTx, SqlView
from .storage import safe_url

_WORD = re.compile(r"[^\W_]+")


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


@functools.lru_cache(maxsize=512)
def _pg_sql(sql: str) -> bytes:
    """The shared ``?`` placeholders as psycopg's ``%s`` (bytes: a query built at run time)."""
    return sql.replace("%", "%%").replace("?", "%s").encode()


class PgDialect(Dialect[psycopg.Connection[Any]]):
    """PostgreSQL: row locks, lists as arrays, COPY for entries, tsvector search."""

    row_lock = " FOR UPDATE"

    def rows(self, conn: psycopg.Connection[Any], sql: str, args: Sequence[Any] = ()
             ) -> list[Any]:
        return conn.execute(_pg_sql(sql), tuple(args)).fetchall()

    def run(self, conn: psycopg.Connection[Any], sql: str, args: Sequence[Any] = ()) -> int:
        return conn.execute(_pg_sql(sql), tuple(args)).rowcount

    def run_many(self, conn: psycopg.Connection[Any], sql: str, rows: Sequence[Sequence[Any]]
                 ) -> None:
        with conn.cursor() as cur:
            cur.executemany(_pg_sql(sql), rows)

    def load(self, conn: psycopg.Connection[Any], table: str, cols: Sequence[str],
             rows: Sequence[Sequence[Any]]) -> None:
        with conn.cursor() as cur, cur.copy(
            f"COPY {table} ({', '.join(cols)}) FROM STDIN".encode()
        ) as copy:
            for r in rows:
                copy.write_row(r)

    def among(self, column: str, values: Sequence[Any]) -> tuple[str, Any]:
        return f"{column} = ANY(?)", list(values)

    def text_match(self, folded_query: str, table: str = "documents"
                   ) -> tuple[str, Any] | None:
        q = ts_query(folded_query)
        return None if q is None else ("words @@ to_tsquery('simple', ?)", q)

    def search(self, conn: psycopg.Connection[Any], sql: str, args: Sequence[Any]
               ) -> list[Any]:
        try:
            with conn.transaction():  # a savepoint: a bad query leaves the view usable
                return self.rows(conn, sql, args)
        except psycopg.errors.SyntaxError as exc:
            raise StorageError(f"search query cannot be run: {exc}") from exc


POSTGRES = PgDialect()


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
    def transaction(self) -> Iterator[SqlTx[psycopg.Connection[Any]]]:
        with self._borrow() as conn, conn.transaction():
            yield SqlTx(conn, POSTGRES)

    @contextmanager
    def view(self) -> Iterator[SqlView[psycopg.Connection[Any]]]:
        with self._borrow() as conn:
            conn.execute(b"BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                yield SqlView(conn, POSTGRES)
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

