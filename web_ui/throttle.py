"""Sign-in throttling per username and per client address, with exponential back-off.

Kept in memory: an attacker cannot restart the service, and writing every failed attempt
to the sealed database would let anyone wear the SD card out from the LAN.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from .errors import ThrottledError


@dataclass
class _State:
    failures: int = 0
    blocked_until: float = 0.0
    last: float = 0.0


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

    def _state(self, key: str) -> _State:
        st = self._states.get(key)
        now = self._now()
        if st is None or now - st.last > self.forget_after:
            st = _State(last=now)
            self._states[key] = st
        return st

    def check(self, *keys: str) -> None:
        """Raise ThrottledError while any of ``keys`` must still wait."""
        now = self._now()
        wait = max((self._state(k).blocked_until - now for k in keys), default=0.0)
        if wait > 0:
            secs = math.ceil(wait)
            raise ThrottledError(
                f"Đăng nhập sai quá nhiều lần. Vui lòng thử lại sau {secs} giây "
                f"(too many failed sign-ins; try again in {secs} s)",
                secs,
            )

    def failure(self, *keys: str) -> None:
        now = self._now()
        for k in keys:
            st = self._state(k)
            st.failures += 1
            st.last = now
            over = st.failures - self.free
            if over > 0:
                st.blocked_until = now + min(self.cap, self.base * 2 ** (over - 1))
        if len(self._states) > 10_000:  # bound memory against address sprays
            cutoff = now - self.forget_after
            for k in [k for k, s in self._states.items() if s.last < cutoff]:
                del self._states[k]

    def success(self, *keys: str) -> None:
        for k in keys:
            self._states.pop(k, None)
