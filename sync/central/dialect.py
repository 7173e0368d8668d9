"""What differs between the SQL engines behind the centre's one set of queries.

``sql_storage`` writes every query once, with ``?`` placeholders and the SQL both engines
speak (``ON CONFLICT … DO NOTHING / DO UPDATE … excluded.``, ``RETURNING``, blobs passed as
parameters, never as literals). A ``Dialect`` runs those queries on its engine's connection
and spells the few things that have no common form: a membership test against a list, the
row lock a transaction takes, bulk loading, the full-text match and its errors, and the
preparation a purge needs. Each backend module holds its own dialect beside its schema,
connection handling and compaction.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

C = TypeVar("C")  # the engine's connection type


class Dialect(ABC, Generic[C]):
    """One engine's way to run the shared queries on a connection of type ``C``."""

    # Appended to the reads of rows a transaction goes on to change (the appliance's row,
    # an enrolment token), so that writers touching the same row queue behind each other.
    row_lock: str = ""

    @abstractmethod
    def rows(self, conn: C, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        """Every row a statement returns (a SELECT, or a write with RETURNING)."""

    @abstractmethod
    def run(self, conn: C, sql: str, args: Sequence[Any] = ()) -> int:
        """Run a statement that returns no rows; the number of rows it changed."""

    @abstractmethod
    def run_many(self, conn: C, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement once per row of arguments."""

    def load(self, conn: C, table: str, cols: Sequence[str], rows: Sequence[Sequence[Any]]
             ) -> None:
        """Insert many rows into ``table`` (its engine's fastest way; no conflict allowed)."""
        marks = ", ".join("?" for _ in cols)
        self.run_many(conn, f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})", rows)

    @abstractmethod
    def among(self, column: str, values: Sequence[Any]) -> tuple[str, Any]:
        """A condition that ``column`` is one of ``values`` (ints or strings), with the one
        argument its single placeholder takes."""

    @abstractmethod
    def text_match(self, folded_query: str, table: str = "documents"
                   ) -> tuple[str, Any] | None:
        """A condition on ``table`` (documents, catalogue: each with ``rid``, ``folded`` and
        its word index) that its folded text holds every word of the query,
        the last one as a prefix unless a space ends the query, with its one argument; None
        when the query holds no word."""

    @abstractmethod
    def search(self, conn: C, sql: str, args: Sequence[Any]) -> list[Any]:
        """``rows`` for a search; a query the engine cannot run is a StorageError and leaves
        the connection's transaction usable."""

    def purging(self, conn: C) -> None:
        """Prepare the connection for deletes that must leave no readable trace."""
