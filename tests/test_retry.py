"""The one retry policy (appliance/retry.py): capped exponential backoff with equal jitter,
an error's own word on whether to retry, and retry() that stops at the first error no retry
can mend."""

from __future__ import annotations

import random

import pytest

from appliance.errors import KeyUnavailableError, ValidationError
from appliance.retry import backoff, retry, retryable


def test_backoff_doubles_from_5_s_with_equal_jitter_up_to_the_cap() -> None:
    """Attempt n waits in [d/2, d) with d = min(cap, 5·2^(n-1)); without jitter, d."""
    rnd = random.Random(7)
    for attempt, d in ((1, 5.0), (2, 10.0), (3, 20.0), (8, 600.0), (30, 600.0)):
        waits = {backoff(attempt, cap=600, rnd=rnd) for _ in range(50)}
        assert all(d / 2 <= w < d for w in waits), (attempt, sorted(waits)[:3])
        assert len(waits) > 40  # jittered, not one value
        assert backoff(attempt, cap=600, jitter=False) == d
    assert backoff(0, cap=600, jitter=False) == 5.0


def test_an_error_says_whether_a_retry_can_help() -> None:
    """retryable reads the error's class attribute; unknown errors are not retried."""
    assert retryable(KeyUnavailableError("TPM busy")) is True
    assert retryable(ValidationError("bad date")) is False
    assert retryable(RuntimeError("bug")) is False


@pytest.mark.asyncio
async def test_retry_tries_again_only_while_the_error_is_retryable() -> None:
    """A retryable failure is tried again after the backoff until it succeeds or attempts
    run out; a non-retryable one is raised at once."""
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)

    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise KeyUnavailableError("TPM busy")
        return "signed"

    assert await retry(flaky, attempts=5, base=1, cap=10, sleep=sleep) == "signed"
    assert calls == 3 and len(slept) == 2 and 0.5 <= slept[0] < 1 and 1 <= slept[1] < 2

    async def always() -> str:
        raise KeyUnavailableError("TPM gone")

    with pytest.raises(KeyUnavailableError, match="TPM gone"):
        await retry(always, attempts=3, base=1, cap=10, sleep=sleep)
    assert len(slept) == 4

    async def refused() -> str:
        raise ValidationError("bad date")

    with pytest.raises(ValidationError, match="bad date"):
        await retry(refused, attempts=3, base=1, cap=10, sleep=sleep)
    assert len(slept) == 4
