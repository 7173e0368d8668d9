"""The one retry policy: capped exponential backoff with equal jitter, and whether an error is
worth retrying at all (each error class says so: ``retryable``; STYLE.md rule 5).

Every background loop (the sync agent, a replacement's downloads, the capture worker, the web
UI's history index) waits by ``backoff``; a loop that gives up on an error that no retry can
mend asks ``retryable``.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def backoff(attempt: int, cap: float, base: float = 5.0, rnd: random.Random | None = None,
            jitter: bool = True) -> float:
    """The wait before try ``attempt`` + 1: d = min(cap, base·2^(attempt-1)), drawn from
    [d/2, d) (equal jitter, so that boxes that failed together do not retry together), or d
    itself without jitter."""
    d = min(cap, base * (2.0 ** max(0, attempt - 1)))
    if not jitter:
        return float(d)
    return float(d / 2 + (rnd or random).uniform(0, d / 2))


def retryable(exc: BaseException) -> bool:
    """Whether trying again can help (the error's own word; unknown errors: no)."""
    return bool(getattr(exc, "retryable", False))


async def retry(
    op: Callable[[], Awaitable[T]],
    *,
    attempts: int,
    base: float,
    cap: float,
    should_retry: Callable[[BaseException], bool] = retryable,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """``op()``, tried up to ``attempts`` times while its error is retryable; the last error
    (or the first one that is not retryable) is raised."""
    for attempt in range(1, attempts + 1):
        try:
            return await op()
        except Exception as exc:
            if attempt == attempts or not should_retry(exc):
                raise
            await sleep(backoff(attempt, cap, base))
    raise AssertionError("unreachable")
