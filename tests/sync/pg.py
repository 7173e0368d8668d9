"""A throwaway PostgreSQL cluster for the centre's tests (io-recipes §8).

Debian's server binaries (``/usr/lib/postgresql/15/bin``) refuse to run as root, so initdb and
pg_ctl run as the ``postgres`` user (``runuser``) in a temp folder it can traverse, with the
socket in that folder and a free loopback port; fsync off for speed. One cluster per test
session, one fresh database per test.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_BIN = Path(os.environ.get("LUUTRU_PG_BIN", "/usr/lib/postgresql/15/bin"))


def missing_reason() -> str | None:
    """Why a cluster cannot be started here, or None."""
    for tool in ("initdb", "pg_ctl", "postgres"):
        if not (PG_BIN / tool).exists():
            return f"PostgreSQL server binaries not found ({PG_BIN / tool}); install postgresql-15"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "no `postgres` system user to run initdb as (install postgresql-15)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "runuser is missing (util-linux); needed to run initdb as postgres"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgCluster:
    """initdb + pg_ctl start; ``url(db)`` for a DSN; ``new_database()`` for a fresh one."""

    def __init__(self, max_connections: int = 200, durable: bool = False) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="luutru-pg-", dir="/tmp"))
        self.port = _free_port()
        self.max_connections = max_connections
        self.durable = durable  # fsync and synchronous commit on (benchmarks), off for tests
        self._names = itertools.count(1)

    def _as_postgres(self, *args: str) -> None:
        cmd = [str(a) for a in args]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self) -> PgCluster:
        os.chmod(self.dir, 0o755)
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self._as_postgres(
            str(PG_BIN / "initdb"), "-D", str(self.dir / "data"), "-U", "test", "--auth=trust",
            "-E", "UTF8", "--locale=C.UTF-8", "--no-sync", "-N",
        )
        speed = (
            "-c shared_buffers=256MB -c max_wal_size=4GB"
            if self.durable
            else "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c shared_buffers=64MB"
        )
        opts = (
            f"-k {self.dir} -p {self.port} -c listen_addresses=127.0.0.1 {speed} "
            f"-c max_connections={self.max_connections}"
        )
        self._as_postgres(
            str(PG_BIN / "pg_ctl"), "-D", str(self.dir / "data"), "-l", str(self.dir / "log"),
            "-w", "-o", opts, "start",
        )
        return self

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://test@127.0.0.1:{self.port}/{db}"

    def new_database(self, prefix: str = "t") -> str:
        import psycopg

        name = f"{prefix}_{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"'.encode())
        return self.url(name)

    def stop(self) -> None:
        try:
            self._as_postgres(
                str(PG_BIN / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "immediate", "-w",
                "stop",
            )
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    cluster = PgCluster().start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_url(pg_cluster: PgCluster) -> str:
    """A fresh, empty database of the session's cluster."""
    return pg_cluster.new_database()
