"""Password-guess throttling per username and per client address, with exponential back-off.

Every attempt is RESERVED before its password is checked: the reservation counts as a failure
until the check succeeds. Otherwise a burst of requests that all arrive before the first
argon2id verification ends would all be checked (each failure is only known after its slow
hash), and a burst of 50 guesses would get 50 verifications. With reservations, however many
arrive at once, at most ``free`` + 1 are verified before the back-off starts. The cost is that
a few people signing in from one address in the same fraction of a second may be asked to
wait a second; their successes then release the address at once.

Kept in memory: an attacker cannot restart the service, and writing every failed attempt
to the sealed database would let anyone wear the SD card out from the LAN. Each process of
a centre with ``--workers N`` keeps its own counts.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType

from .errors import ThrottledError


@dataclass
class _State:
    failures: int = 0
    pending: int = 0  # reserved attempts whose check has not finished
    blocked_until: float = 0.0
    last: float = 0.0


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
    ) -> None:
        self.free = free
        self.base = base
        self.cap = cap
        self.forget_after = forget_after
        self._now = now
        self._states: dict[str, _State] = {}
        self._lock = threading.Lock()  # the dashboard reserves from worker threads

    def _backoff(self, over: int) -> float:
        return float(min(self.cap, self.base * 2 ** (over - 1)))

    def _state(self, key: str, now: float) -> _State:
        st = self._states.get(key)
        if st is None or (not st.pending and now - st.last > self.forget_after):
            st = _State(last=now)
            self._states[key] = st
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
        with self._lock:
            now = self._now()
            states = [self._state(k, now) for k in keys]
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
        with self._lock:
            now = self._now()
            for k in keys:
                st = self._state(k, now)
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
                        del self._states[k]
            if len(self._states) > 10_000:  # bound memory against address sprays
                cutoff = now - self.forget_after
                for k in [k for k, s in self._states.items() if s.last < cutoff and not s.pending]:
                    del self._states[k]

    def success(self, *keys: str) -> None:
        """Forget the failures of ``keys`` (an operator lifting a wait; tests)."""
        with self._lock:
            for k in keys:
                st = self._states.get(k)
                if st is not None:
                    st.failures, st.blocked_until = 0, 0.0
