"""Opening the centre's storage by its URL: which backend, where."""

from __future__ import annotations

from pathlib import Path

from ..errors import StorageError
from .storage import CentreStorage


def open_storage(url: str, base: Path) -> CentreStorage:
    """Open storage by URL: ``sqlite:PATH`` (relative to ``base``) or ``postgresql://…``."""
    if url.startswith("sqlite:"):
        from .sqlite_storage import SqliteStorage

        path = Path(url[len("sqlite:") :].removeprefix("//"))
        return SqliteStorage(path if path.is_absolute() else base / path)
    if url.startswith(("postgresql:", "postgres:")):
        from .pg_storage import PgStorage  # psycopg is loaded by a PostgreSQL centre only

        return PgStorage(url)
    raise StorageError(f"unknown database URL {url!r}; use sqlite:PATH or postgresql://…")
