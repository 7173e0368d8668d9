"""Per-client rate limits of the public catalogue: a token bucket per (client, kind of route).

In memory, per process (as the sign-in throttle): the catalogue is public and read-only, so a
limit that resets with a restart is enough to keep one client from starving the others.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Rate:
    per_second: float  # sustained requests per second
    burst: int  # requests allowed at once


class Buckets:
    """Token buckets keyed by client and route kind; old keys are swept as they pile up."""

    def __init__(self, rates: dict[str, Rate], clock: Callable[[], float] = time.monotonic,
                 max_keys: int = 100_000) -> None:
        self.rates = rates
        self._clock = clock
        self._max = max_keys
        self._state: dict[tuple[str, str], tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, kind: str, client: str) -> float:
        """0 if the request may go on, else the seconds until it may (Retry-After)."""
        rate = self.rates[kind]
        now = self._clock()
        with self._lock:
            tokens, last = self._state.get((kind, client), (float(rate.burst), now))
            tokens = min(float(rate.burst), tokens + (now - last) * rate.per_second)
            if tokens >= 1.0:
                self._state[(kind, client)] = (tokens - 1.0, now)
                if len(self._state) > self._max:
                    self._sweep(now)
                return 0.0
            self._state[(kind, client)] = (tokens, now)
            return (1.0 - tokens) / rate.per_second

    def _sweep(self, now: float) -> None:
        full = [k for k, (t, last) in self._state.items()
                if t + (now - last) * self.rates[k[0]].per_second >= self.rates[k[0]].burst]
        for k in full:
            del self._state[k]
