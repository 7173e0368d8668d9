"""The durable capture queue: batches, their spooled pages, and background jobs (OCR, signing).

It lives in ``<data>/capture/`` beside the record store, in its own SQLite file: nothing here
is a record (the records and their content are in the sealed log); this is the work still to
do and its progress, and it survives a restart. A page is acknowledged only once its file is
fsynced in the spool.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from ..fsutil import private_dirs, private_file, write_atomic
from .errors import BatchNotFound, DiskFull
from .separator import Target

QUEUE_DIR = "capture"
DB_NAME = "queue.db"

DDL = """
CREATE TABLE IF NOT EXISTS batches (
  id TEXT PRIMARY KEY, source TEXT NOT NULL, target TEXT NOT NULL, metadata TEXT NOT NULL,
  actor TEXT NOT NULL, state TEXT NOT NULL, step TEXT NOT NULL DEFAULT '',
  pages_scanned INTEGER NOT NULL DEFAULT 0, pages_kept INTEGER NOT NULL DEFAULT 0,
  blank_dropped INTEGER NOT NULL DEFAULT 0, separators INTEGER NOT NULL DEFAULT 0,
  documents TEXT NOT NULL DEFAULT '[]', notes TEXT NOT NULL DEFAULT '[]', error TEXT,
  created REAL NOT NULL, updated REAL NOT NULL, origin_sha256 TEXT);
CREATE UNIQUE INDEX IF NOT EXISTS batches_origin ON batches (origin_sha256)
  WHERE origin_sha256 IS NOT NULL;
CREATE TABLE IF NOT EXISTS jobs (
  id INTEGER PRIMARY KEY, batch_id TEXT, document_id TEXT NOT NULL, kind TEXT NOT NULL,
  input_sha256 TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
  not_before REAL NOT NULL DEFAULT 0, error TEXT, output_sha256 TEXT,
  created REAL NOT NULL, updated REAL NOT NULL, UNIQUE (document_id, kind, input_sha256));
"""


class BatchState(StrEnum):
    SCANNING = "scanning"
    INTERRUPTED = "interrupted"  # the scanner stopped; pages kept, resumable
    PROCESSING = "processing"
    FILED = "filed"  # records exist and are sealed; background jobs may follow
    REJECTED = "rejected"  # an input was refused; its pages stay in the spool


class JobKind(StrEnum):
    OCR = "ocr"
    SIGN = "sign"


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"  # gave up after the last attempt; `retry_failed` puts it back


@dataclass(frozen=True)
class Job:
    id: int
    batch_id: str | None
    document_id: str
    kind: JobKind
    input_sha256: str
    state: JobState
    attempts: int
    error: str | None
    output_sha256: str | None
    profile: str | None = None


@dataclass(frozen=True)
class BatchStatus:
    """A batch's progress as the web UI and `luutru scan` show it."""

    id: str
    source: str
    target: Target
    state: BatchState
    step: str
    pages_scanned: int
    pages_kept: int
    blank_dropped: int
    separators: int
    documents: list[str]
    notes: list[str]
    error: str | None
    jobs: list[Job]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "target": {"file_code": self.target.file_code, "document_id": self.target.document_id},
            "state": self.state.value,
            "step": self.step,
            "pages_scanned": self.pages_scanned,
            "pages_kept": self.pages_kept,
            "blank_dropped": self.blank_dropped,
            "separators": self.separators,
            "documents": self.documents,
            "notes": self.notes,
            "error": self.error,
            "jobs": [
                {
                    "kind": j.kind.value,
                    "document_id": j.document_id,
                    "state": j.state.value,
                    "attempts": j.attempts,
                    "error": j.error,
                }
                for j in self.jobs
            ],
        }


@contextlib.contextmanager
def _full_is_disk_full(what: str) -> Iterator[None]:
    try:
        yield
    except sqlite3.OperationalError as exc:
        if "full" in str(exc) or "disk I/O error" in str(exc):
            raise DiskFull(
                f"the disk is full (or failing) while {what}; free space and resume the batch"
            ) from exc
        raise


def _disk_error(exc: OSError, what: str) -> DiskFull | None:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return DiskFull(f"the disk is full while {what}; free space and resume the batch")
    return None


class Queue:
    """The capture queue of one data folder. Thread-safe: one connection per call."""

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / QUEUE_DIR
        private_dirs(self.root)
        self.path = self.root / DB_NAME
        private_file(self.path)
        with self._conn() as conn:
            conn.executescript(DDL)
            for table in ("batches", "jobs"):  # added with the archival profiles
                cols = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
                if "profile" not in cols:
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN profile TEXT")

    def _conn(self) -> _Closing:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        with _full_is_disk_full("opening the capture queue"):
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.row_factory = sqlite3.Row
        return _Closing(conn)

    # -- batches ----------------------------------------------------------------------------

    def spool_dir(self, batch_id: str) -> Path:
        return self.root / "batches" / batch_id

    def new_batch(
        self,
        source: str,
        target: Target,
        metadata: dict[str, Any] | None = None,
        actor: str = "capture",
        origin_sha256: str | None = None,
        profile: str | None = None,
    ) -> str:
        batch_id = uuid.uuid4().hex
        now = time.time()
        target_json = json.dumps({"file_code": target.file_code, "document_id": target.document_id})
        with self._conn() as conn, _full_is_disk_full("starting a batch"):
            conn.execute(
                "INSERT INTO batches (id, source, target, metadata, actor, state, created, "
                "updated, origin_sha256, profile) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    batch_id,
                    source,
                    target_json,
                    json.dumps(metadata or {}, ensure_ascii=False),
                    actor,
                    BatchState.SCANNING.value,
                    now,
                    now,
                    origin_sha256,
                    profile,
                ),
            )
        try:
            private_dirs(self.spool_dir(batch_id))  # the pages' only copy: durable
        except OSError as exc:
            raise (_disk_error(exc, "starting a batch") or exc) from exc
        return batch_id

    def add_page(self, batch_id: str, name: str, data: bytes) -> int:
        """Keep one received file durably; returns how many the batch now has."""
        row = self._row(batch_id)
        n = int(row["pages_scanned"]) + 1
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in Path(name).name)[-80:]
        try:
            write_atomic(self.spool_dir(batch_id) / f"{n:05d}-{safe}", data, mode=0o600)
        except OSError as exc:
            full = _disk_error(exc, f"keeping page {n}")
            if full is not None:
                with contextlib.suppress(DiskFull):
                    self.update(batch_id, error=str(full))
                raise DiskFull(
                    f"the disk is full: page {n} could not be kept; pages 1–{n - 1} of batch "
                    f"{batch_id} are safe. Free space, then resume the batch."
                ) from exc
            raise
        self.update(batch_id, pages_scanned=n)
        return n

    def spooled(self, batch_id: str) -> Iterator[tuple[str, bytes]]:
        """The batch's files in the order they were received."""
        folder = self.spool_dir(batch_id)
        for path in sorted(p for p in folder.iterdir() if not p.name.startswith(".tmp")):
            yield path.name.split("-", 1)[1], path.read_bytes()

    def drop_spool(self, batch_id: str) -> None:
        shutil.rmtree(self.spool_dir(batch_id), ignore_errors=True)

    def update(self, batch_id: str, **fields: Any) -> None:
        if not fields:
            return
        for key in ("documents", "notes"):
            if key in fields:
                fields[key] = json.dumps(fields[key], ensure_ascii=False)
        for key, value in list(fields.items()):
            if isinstance(value, BatchState):
                fields[key] = value.value
        sets = ", ".join(f"{k} = ?" for k in fields)
        with self._conn() as conn, _full_is_disk_full("recording the batch's progress"):
            conn.execute(
                f"UPDATE batches SET {sets}, updated = ? WHERE id = ?",
                (*fields.values(), time.time(), batch_id),
            )

    def _row(self, batch_id: str) -> sqlite3.Row:
        with self._conn() as conn:
            row = conn.execute("SELECT * FROM batches WHERE id = ?", (batch_id,)).fetchone()
        if row is None:
            raise BatchNotFound(f"no capture batch {batch_id}")
        return row  # type: ignore[no-any-return]

    def created(self, batch_id: str) -> float:
        return float(self._row(batch_id)["created"])

    def profile(self, batch_id: str) -> str | None:
        """The archival profile the batch asked for (None: the office's default)."""
        value = self._row(batch_id)["profile"]
        return None if value is None else str(value)

    def discard(self, batch_id: str) -> None:
        """Forget a batch that will not be filed (a refused upload) and delete its spool."""
        self.drop_spool(batch_id)
        with self._conn() as conn:
            conn.execute("DELETE FROM batches WHERE id = ? AND state != ?", (batch_id, "filed"))

    def batch_by_origin(self, sha256: str) -> str | None:
        with self._conn() as conn:
            row = conn.execute(
                "SELECT id FROM batches WHERE origin_sha256 = ?", (sha256,)
            ).fetchone()
        return None if row is None else str(row["id"])

    def metadata(self, batch_id: str) -> tuple[Target, dict[str, Any], str, str]:
        row = self._row(batch_id)
        t = json.loads(row["target"])
        return (
            Target(t.get("file_code"), t.get("document_id")),
            json.loads(row["metadata"]),
            str(row["actor"]),
            str(row["source"]),
        )

    def status(self, batch_id: str) -> BatchStatus:
        row = self._row(batch_id)
        return self._status(row, self.jobs(batch_id))

    def batches(self, states: tuple[BatchState, ...] = (), limit: int = 50) -> list[BatchStatus]:
        sql = "SELECT * FROM batches"
        args: list[Any] = []
        if states:
            sql += f" WHERE state IN ({', '.join('?' * len(states))})"
            args.extend(s.value for s in states)
        sql += " ORDER BY created DESC LIMIT ?"
        args.append(limit)
        with self._conn() as conn:
            rows = conn.execute(sql, args).fetchall()
        return [self._status(r, self.jobs(str(r["id"]))) for r in rows]

    def _status(self, row: sqlite3.Row, jobs: list[Job]) -> BatchStatus:
        t = json.loads(row["target"])
        return BatchStatus(
            id=row["id"],
            source=row["source"],
            target=Target(t.get("file_code"), t.get("document_id")),
            state=BatchState(row["state"]),
            step=row["step"],
            pages_scanned=row["pages_scanned"],
            pages_kept=row["pages_kept"],
            blank_dropped=row["blank_dropped"],
            separators=row["separators"],
            documents=json.loads(row["documents"]),
            notes=json.loads(row["notes"]),
            error=row["error"],
            jobs=jobs,
        )

    # -- jobs -------------------------------------------------------------------------------

    def enqueue(
        self,
        kind: JobKind,
        document_id: str,
        input_sha256: str,
        batch_id: str | None = None,
        profile: str | None = None,
    ) -> None:
        now = time.time()
        with self._conn() as conn, _full_is_disk_full("queueing OCR"):
            conn.execute(
                "INSERT OR IGNORE INTO jobs (batch_id, document_id, kind, input_sha256, state, "
                "created, updated, profile) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (batch_id, document_id, kind.value, input_sha256, JobState.QUEUED.value, now, now,
                 profile),
            )

    def unfinished_documents(self, since: float = 0.0) -> set[str]:
        """Documents with an OCR or signing job not yet done (queued, running or waiting to
        retry), created after ``since``: their content is not final yet."""
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT DISTINCT document_id FROM jobs WHERE state IN (?, ?) AND created >= ?",
                (JobState.QUEUED.value, JobState.RUNNING.value, since),
            ).fetchall()
        return {str(r[0]) for r in rows}

    def jobs(self, batch_id: str | None = None, document_id: str | None = None) -> list[Job]:
        sql, args = "SELECT * FROM jobs WHERE 1", []
        if batch_id is not None:
            sql += " AND batch_id = ?"
            args.append(batch_id)
        if document_id is not None:
            sql += " AND document_id = ?"
            args.append(document_id)
        with self._conn() as conn:
            rows = conn.execute(sql + " ORDER BY id", args).fetchall()
        return [_job(r) for r in rows]

    def claim(self, now: float | None = None) -> Job | None:
        """Take the oldest due job and mark it running (one worker per data folder)."""
        now = time.time() if now is None else now
        with self._conn() as conn:
            conn.execute("BEGIN IMMEDIATE")
            row = conn.execute(
                "SELECT * FROM jobs WHERE state = ? AND not_before <= ? ORDER BY id LIMIT 1",
                (JobState.QUEUED.value, now),
            ).fetchone()
            if row is None:
                conn.execute("COMMIT")
                return None
            conn.execute(
                "UPDATE jobs SET state = ?, attempts = attempts + 1, updated = ? WHERE id = ?",
                (JobState.RUNNING.value, now, row["id"]),
            )
            conn.execute("COMMIT")
        job = _job(row)
        return Job(**{**job.__dict__, "state": JobState.RUNNING, "attempts": job.attempts + 1})

    def finish(self, job_id: int, output_sha256: str | None) -> None:
        with self._conn() as conn:
            conn.execute(
                "UPDATE jobs SET state = ?, output_sha256 = ?, error = NULL, updated = ? "
                "WHERE id = ?",
                (JobState.DONE.value, output_sha256, time.time(), job_id),
            )

    def fail(self, job_id: int, error: str, retry_in: float | None) -> None:
        """Record a failure; the job runs again after ``retry_in`` seconds, or stays failed."""
        state = JobState.FAILED if retry_in is None else JobState.QUEUED
        nb = 0.0 if retry_in is None else time.time() + retry_in
        with self._conn() as conn:
            conn.execute(
                "UPDATE jobs SET state = ?, error = ?, not_before = ?, updated = ? WHERE id = ?",
                (state.value, error[:2000], nb, time.time(), job_id),
            )

    def give_back(self, job_id: int, error: str, retry_in: float) -> None:
        """The job could not run for a reason that is not its own (a full disk, a halted
        store): queue it again after ``retry_in`` seconds without using up an attempt."""
        with self._conn() as conn:
            conn.execute(
                "UPDATE jobs SET state = ?, attempts = max(0, attempts - 1), error = ?, "
                "not_before = ?, updated = ? WHERE id = ?",
                (JobState.QUEUED.value, error[:2000], time.time() + retry_in, time.time(),
                 job_id),
            )

    def recover(self) -> int:
        """After a restart, jobs left running (the process died in them) are queued again."""
        with self._conn() as conn:
            cur = conn.execute(
                "UPDATE jobs SET state = ?, error = coalesce(error, 'interrupted by a restart') "
                "WHERE state = ?",
                (JobState.QUEUED.value, JobState.RUNNING.value),
            )
            return cur.rowcount

    def retry_failed(self) -> int:
        with self._conn() as conn:
            cur = conn.execute(
                "UPDATE jobs SET state = ?, attempts = 0, not_before = 0 WHERE state = ?",
                (JobState.QUEUED.value, JobState.FAILED.value),
            )
            return cur.rowcount

    def make_due(self) -> None:
        """Run every waiting job now (an operator's "retry now"; tests)."""
        with self._conn() as conn:
            conn.execute(
                "UPDATE jobs SET not_before = 0 WHERE state = ?", (JobState.QUEUED.value,)
            )

    def pending(self) -> int:
        with self._conn() as conn:
            return int(
                conn.execute(
                    "SELECT count(*) FROM jobs WHERE state IN (?, ?)",
                    (JobState.QUEUED.value, JobState.RUNNING.value),
                ).fetchone()[0]
            )


def _job(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"],
        batch_id=row["batch_id"],
        document_id=row["document_id"],
        kind=JobKind(row["kind"]),
        input_sha256=row["input_sha256"],
        state=JobState(row["state"]),
        attempts=row["attempts"],
        error=row["error"],
        output_sha256=row["output_sha256"],
        profile=row["profile"],
    )


class _Closing:
    """A connection that closes at the end of a with-block (sqlite3's own only commits)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._c = conn

    def __enter__(self) -> sqlite3.Connection:
        return self._c

    def __exit__(self, *exc: object) -> None:
        self._c.close()


def queue_exists(data_dir: Path) -> bool:
    return os.path.exists(data_dir / QUEUE_DIR / DB_NAME)
