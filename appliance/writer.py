"""The one writer: the write connection, and a thread that commits queued jobs in groups.

A job is a function run inside a SAVEPOINT of a shared ``BEGIN IMMEDIATE`` transaction; jobs
queued together commit together (group commit), and each caller's future resolves only after
COMMIT has returned, i.e. after the WAL is fsynced. A failing job rolls back to its savepoint
and fails alone.

A job is *essential* when it keeps the box lawful (an audit entry of a view, a receipt):
the guard lets it through when the disk is nearly full, and a commit that fails because the
disk is full is tried once more after ``on_full`` has released the reserve (diskspace.py);
any other job fails with ``DiskFullError``.

``call`` skips the queue when the connection is free: the caller's own thread runs the job in
its own transaction, exactly as the writer thread would run a lone job, and returns after the
COMMIT. Handing a job to another thread and waiting for its future costs ~60 µs (two thread
wake-ups and the GIL) — a quarter of a durable commit — and buys nothing when nothing else is
waiting. Under contention the lock is taken and the job joins the queue's next group.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .clock import Clock
from .diskspace import is_disk_full
from .errors import DiskFullError, StoreClosedError
from .ledger import Ledger

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_GROUP = 256


@dataclass
class Txn:
    """What a job sees: the connection inside the open transaction, the ledger and the clock."""

    conn: sqlite3.Connection
    ledger: Ledger
    clock: Clock
    # When a job sets this to a list, new documents' search rows are collected here and
    # written by one statement (search.flush_search_rows) instead of one insert each.
    search_rows: list[tuple[int, str]] | None = None


@dataclass
class _Job(Generic[T]):
    fn: Callable[[Txn], T]
    future: Future[T]
    essential: bool = False


_STOP = object()


class Writer:
    def __init__(
        self,
        conn: sqlite3.Connection,
        clock: Clock,
        on_commit: Callable[[int, Callable[[], bytes]], None],
        guard: Callable[[bool], None] | None = None,
        on_full: Callable[[], bool] | None = None,
        free_bytes: Callable[[], int] | None = None,
    ) -> None:
        self._conn = conn
        self._ledger = Ledger(conn)
        self._clock = clock
        self._on_commit = on_commit
        self._guard = guard  # guard(essential): raise to refuse a job before it runs
        self._on_full = on_full  # release room on disk; True if some was released
        self._free_bytes = free_bytes
        self._queue: queue.Queue[Any] = queue.Queue()
        # Held by whichever thread has a transaction open on the connection.
        self._lock = threading.Lock()
        self._data_version: int | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="luutru-writer", daemon=True)
        self._thread.start()

    @property
    def tree(self) -> tuple[int, bytes]:
        state = self._ledger.state
        return state.size, state.root()

    def submit(
        self, fn: Callable[[Txn], T], *, guarded: bool = True, essential: bool = False
    ) -> Future[T]:
        """Queue a job. Unguarded jobs (checkpoints, sessions) skip the guard and count as
        essential."""
        if self._closed:
            raise StoreClosedError("the store is closed")
        if guarded and self._guard is not None:
            self._guard(essential)  # e.g. refuse writes while the device key cannot seal them
        fut: Future[T] = Future()
        self._queue.put(_Job(fn, fut, essential or not guarded))
        return fut

    def call(self, fn: Callable[[Txn], T], *, essential: bool = False) -> T:
        """Run a job and return its result once its transaction is durable."""
        if not self._closed and self._queue.empty() and self._lock.acquire(blocking=False):
            try:
                if self._closed:
                    raise StoreClosedError("the store is closed")
                if self._guard is not None:
                    self._guard(essential)
                return self._run_alone(fn, essential)
            finally:
                self._lock.release()
        return self.submit(fn, essential=essential).result()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._queue.put(_STOP)
            self._thread.join()

    def _run(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            if first is _STOP:
                break
            jobs: list[_Job[Any]] = [first]
            while len(jobs) < MAX_GROUP:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stop = True
                    break
                jobs.append(nxt)
            with self._lock:
                self._commit_group(jobs)
        with self._lock:
            self._conn.close()

    def _begin(self) -> None:
        """Open the write transaction, catching up with entries another process appended."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        # Another process (a CLI import beside `serve`) may have appended since our last
        # commit. data_version changes only when another connection has committed.
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        if version == self._data_version:
            return
        row = conn.execute("SELECT max(idx) FROM log").fetchone()
        size = 0 if row[0] is None else int(row[0]) + 1
        if size != self._ledger.state.size:
            self._ledger.reload()
        self._data_version = version

    def _run_alone(self, fn: Callable[[Txn], T], essential: bool = False) -> T:
        """One job in its own transaction (no savepoint: its failure rolls back everything).
        An essential job the full disk refused is tried once more after ``on_full``."""
        try:
            return self._transaction(fn)
        except Exception as exc:
            if not is_disk_full(exc):
                raise
            if essential and self._on_full is not None and self._on_full():
                try:
                    return self._transaction(fn)
                except Exception as again:
                    if not is_disk_full(again):
                        raise
                    raise self._disk_full() from again
            raise self._disk_full() from exc

    def _disk_full(self) -> DiskFullError:
        return DiskFullError(self._free_bytes() if self._free_bytes is not None else 0)

    def _transaction(self, fn: Callable[[Txn], T]) -> T:
        conn = self._conn
        before = self._ledger.state
        try:
            self._begin()
            before = self._ledger.state
            result = fn(Txn(conn, self._ledger, self._clock))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self._ledger.state = before
            raise
        if self._ledger.state.size != before.size:
            # The root is computed by whoever needs it (the sealer signs the newest head only).
            self._on_commit(self._ledger.state.size, self._ledger.state.root)
        return result

    def _commit_group(self, jobs: list[_Job[Any]]) -> None:
        conn = self._conn
        if len(jobs) == 1:
            self._commit_one(jobs[0])
            return
        try:
            self._begin()
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            for job in jobs:
                job.future.set_exception(exc)
            return
        before = self._ledger.state
        txn = Txn(conn, self._ledger, self._clock)
        outcomes: list[tuple[_Job[Any], Any, BaseException | None]] = []
        for job in jobs:
            if not job.future.set_running_or_notify_cancel():
                continue
            saved = self._ledger.state
            conn.execute("SAVEPOINT job")
            try:
                result = job.fn(txn)
            except BaseException as exc:  # the job's own failure; the group goes on
                conn.execute("ROLLBACK TO job")
                conn.execute("RELEASE job")
                self._ledger.state = saved
                outcomes.append((job, None, exc))
            else:
                conn.execute("RELEASE job")
                outcomes.append((job, result, None))
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:  # disk full, I/O error: nothing of the group is kept
            log.error("commit failed: %s", exc)
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self._ledger.state = before
            if is_disk_full(exc):
                self._one_by_one([job for job, _, _ in outcomes])
                return
            for job, _, _ in outcomes:
                job.future.set_exception(exc)
            return
        for job, result, error in outcomes:
            if error is not None:
                job.future.set_exception(error)
            else:
                job.future.set_result(result)
        if self._ledger.state.size != before.size:
            self._on_commit(self._ledger.state.size, self._ledger.state.root)

    def _commit_one(self, job: _Job[Any]) -> None:
        """A lone job needs no savepoint: its failure rolls back the whole transaction."""
        if not job.future.set_running_or_notify_cancel():
            return
        self._settle(job)

    def _settle(self, job: _Job[Any]) -> None:
        try:
            result = self._run_alone(job.fn, job.essential)
        except BaseException as exc:
            job.future.set_exception(exc)
            return
        job.future.set_result(result)

    def _one_by_one(self, jobs: list[_Job[Any]]) -> None:
        """A group the full disk refused: essential jobs go again, each alone (after the
        reserve is released), the others are refused."""
        for job in jobs:
            if job.essential:
                self._settle(job)
            else:
                job.future.set_exception(self._disk_full())
