"""Password-guess throttling per username and per client address, with exponential back-off.

Every attempt is RESERVED before its password is checked: the reservation counts as a failure
until the check succeeds. Otherwise a burst of requests that all arrive before the first
argon2id verification ends would all be checked (each failure is only known after its slow
hash), and a burst of 50 guesses would get 50 verifications. With reservations, however many
arrive at once, at most ``free`` + 1 are verified before the back-off starts. The cost is that
a few people signing in from one address in the same fraction of a second may be asked to
wait a second; their successes then release the address at once.

On the appliance the counts are kept in memory (``MemoryCounts``): one process serves, an
attacker cannot restart it, and writing every failed attempt to the SD card would let anyone
wear it out from the LAN. A centre runs ``--workers N`` processes on one port, and counts kept
per process would give an attacker N times the guesses: there they are kept in a small SQLite
file in the centre's folder (``SharedCounts``), each reservation one immediate transaction,
so that every worker sees every attempt. A reservation whose process died before its check
ended (``PENDING_TTL``) stops counting as pending, so a crash cannot lock an account out.
"""

from __future__ import annotations

import math
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import astuple, dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol

from .errors import ThrottledError

PENDING_TTL = 120.0  # s: longer than any password check; a reservation older is abandoned
MAX_KEYS = 10_000  # bound the counts against address sprays


@dataclass
class _State:
    failures: int = 0
    pending: int = 0  # reserved attempts whose check has not finished
    blocked_until: float = 0.0
    last: float = 0.0


class Counts(Protocol):
    """Where the states live: ``session(keys)`` yields the states of ``keys`` held (a key
    absent has none) for one atomic change; what the dict holds at the end is kept, a key
    taken out of it is forgotten."""

    def session(self, keys: Iterable[str]) -> AbstractContextManager[dict[str, _State]]: ...

    def prune(self, cutoff: float) -> None: ...


class MemoryCounts:
    """The states in this process's memory (the appliance: one process)."""

    def __init__(self) -> None:
        self._states: dict[str, _State] = {}
        self._lock = threading.Lock()  # the dashboard reserves from worker threads

    @contextmanager
    def session(self, keys: Iterable[str]) -> Iterator[dict[str, _State]]:
        wanted = tuple(keys)
        with self._lock:
            view = {k: self._states[k] for k in wanted if k in self._states}
            yield view
            for k in wanted:
                if k in view:
                    self._states[k] = view[k]
                else:
                    self._states.pop(k, None)

    def prune(self, cutoff: float) -> None:
        with self._lock:
            if len(self._states) > MAX_KEYS:
                for k in [k for k, s in self._states.items() if s.last < cutoff and not s.pending]:
                    del self._states[k]


class SharedCounts:
    """The states in a SQLite file every worker process of a centre opens; each session is
    one immediate transaction (the file's write lock), so workers count as one. Times are
    wall-clock seconds, the one clock the processes share."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        with self._conn() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS throttle (key TEXT PRIMARY KEY, failures INTEGER, "
                "pending INTEGER, blocked_until REAL, last REAL)"
            )
            conn.execute("CREATE INDEX IF NOT EXISTS throttle_last ON throttle (last)")

    @contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection]:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=10)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")  # counts, not records
            self.path.chmod(0o600)
            self._local.conn = conn
        yield conn

    @contextmanager
    def session(self, keys: Iterable[str]) -> Iterator[dict[str, _State]]:
        wanted = tuple(keys)
        with self._conn() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                marks = ", ".join("?" * len(wanted))
                view = {
                    str(k): _State(int(f), int(p), float(b), float(la))
                    for k, f, p, b, la in conn.execute(
                        "SELECT key, failures, pending, blocked_until, last FROM throttle "
                        f"WHERE key IN ({marks})", wanted)
                } if wanted else {}
                yield view
                for k in wanted:
                    if k in view:
                        conn.execute("INSERT OR REPLACE INTO throttle VALUES (?, ?, ?, ?, ?)",
                                     (k, *astuple(view[k])))
                    else:
                        conn.execute("DELETE FROM throttle WHERE key = ?", (k,))
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def prune(self, cutoff: float) -> None:
        with self._conn() as conn:
            conn.execute("DELETE FROM throttle WHERE last < ? AND (pending = 0 OR last < ?)",
                         (cutoff, cutoff - PENDING_TTL))


class Attempt:
    """One reserved attempt; it stays a failure unless ``succeeded`` is called. As a context
    manager it is a failure when the block is left any other way (wrong password, error,
    cancelled request)."""

    def __init__(self, throttle: Throttle, keys: tuple[str, ...]) -> None:
        self._throttle = throttle
        self._keys = keys
        self._done = False

    def succeeded(self, clear: Iterable[str] = ()) -> None:
        """The password was right: release the reservation and forget the ``clear`` keys'
        failures (the account's, not the address's: an office shares one address)."""
        self._resolve(failed=False, clear=frozenset(clear))

    def failed(self) -> None:
        self._resolve(failed=True, clear=frozenset())

    def _resolve(self, failed: bool, clear: frozenset[str]) -> None:
        if not self._done:
            self._done = True
            self._throttle._resolve(self._keys, failed, clear)

    def __enter__(self) -> Attempt:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.failed()  # no-op after succeeded()


class Throttle:
    """``free`` failures are allowed; then each failure doubles the wait, up to ``cap`` s."""

    def __init__(
        self,
        free: int = 3,
        base: float = 1.0,
        cap: float = 900.0,
        forget_after: float = 3600.0,
        now: Callable[[], float] = time.monotonic,
        counts: Counts | None = None,
    ) -> None:
        self.free = free
        self.base = base
        self.cap = cap
        self.forget_after = forget_after
        self._now = now
        self._counts: Counts = counts if counts is not None else MemoryCounts()

    @classmethod
    def shared(cls, path: Path) -> Throttle:
        """A throttle every process that opens ``path`` shares (a centre's workers)."""
        return cls(now=time.time, counts=SharedCounts(path))

    def _backoff(self, over: int) -> float:
        return float(min(self.cap, self.base * 2 ** (over - 1)))

    def _state(self, states: dict[str, _State], key: str, now: float) -> _State:
        st = states.get(key)
        if st is not None and st.pending and now - st.last > PENDING_TTL:
            st.pending = 0  # its process died before the check ended
        if st is None or (not st.pending and now - st.last > self.forget_after):
            st = _State(last=now)
            states[key] = st
        return st

    def _wait(self, st: _State, now: float) -> float:
        if st.blocked_until > now:
            return st.blocked_until - now
        over = st.failures + st.pending - self.free
        if st.pending and over > 0:
            # Were the attempts in flight all wrong, this one would have to wait at least this.
            return self._backoff(over)
        return 0.0

    def reserve(self, *keys: str) -> Attempt:
        """Count an attempt against every key, or raise ThrottledError while any must wait."""
        with self._counts.session(keys) as states_of:
            now = self._now()
            states = [self._state(states_of, k, now) for k in keys]
            wait = max((self._wait(st, now) for st in states), default=0.0)
            if wait > 0:
                secs = max(1, math.ceil(wait))
                raise ThrottledError(
                    f"Nhập sai mật khẩu quá nhiều lần. Vui lòng thử lại sau {secs} giây "
                    f"(too many wrong passwords; try again in {secs} s)",
                    secs,
                )
            for st in states:
                st.pending += 1
                st.last = now
            return Attempt(self, keys)

    def _resolve(self, keys: tuple[str, ...], failed: bool, clear: frozenset[str]) -> None:
        with self._counts.session(keys) as states:
            now = self._now()
            for k in keys:
                st = self._state(states, k, now)
                st.pending = max(0, st.pending - 1)
                if failed:
                    st.failures += 1
                    st.last = now
                    over = st.failures - self.free
                    if over > 0:
                        st.blocked_until = max(st.blocked_until, now + self._backoff(over))
                elif k in clear:
                    st.failures, st.blocked_until = 0, 0.0
                    if not st.pending:
                        del states[k]
        self._counts.prune(now - self.forget_after)

    def success(self, *keys: str) -> None:
        """Forget the failures of ``keys`` (an operator lifting a wait; tests)."""
        with self._counts.session(keys) as states:
            for k in keys:
                st = states.get(k)
                if st is not None:
                    st.failures, st.blocked_until = 0, 0.0
