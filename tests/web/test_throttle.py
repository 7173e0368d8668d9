"""The shared sign-in throttle: an attempt is reserved (counted) before its password check."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from web_ui.errors import ThrottledError
from web_ui.throttle import Throttle

from .conftest import FakeTime

KEYS = ("user:vanthu", "ip:10.0.0.9")


def test_reservations_count_before_their_checks_finish() -> None:
    """Four attempts in flight use up the free ones and the first back-off: a fifth waits."""
    t = Throttle(now=FakeTime())
    held = [t.reserve(*KEYS) for _ in range(4)]
    with pytest.raises(ThrottledError):
        t.reserve(*KEYS)
    for r in held:
        r.failed()
    with pytest.raises(ThrottledError) as exc:
        t.reserve(*KEYS)
    assert exc.value.retry_after == 1


def test_a_success_releases_its_reservation_and_clears_the_named_keys() -> None:
    """A right password leaves no trace on the address (an office shares one) and clears the
    user's record."""
    clock = FakeTime()
    t = Throttle(now=clock)
    for _ in range(3):
        t.reserve(*KEYS).failed()
    t.reserve(*KEYS).succeeded(clear=KEYS[:1])
    # the address still has its 3 failures, no more: one more attempt is free of waiting
    t.reserve("user:other", KEYS[1]).failed()
    with pytest.raises(ThrottledError):
        t.reserve("user:third", KEYS[1])
    r = t.reserve(KEYS[0], "ip:10.0.0.10")
    r.succeeded(clear=())


def test_an_attempt_that_never_finishes_counts_as_a_failure() -> None:
    """A check that raised (not AuthError) leaves its reservation counted: fail closed."""
    t = Throttle(now=FakeTime())
    for _ in range(4):
        with pytest.raises(RuntimeError), t.reserve(*KEYS):
            raise RuntimeError("the database went away")
    with pytest.raises(ThrottledError):
        t.reserve(*KEYS)


def test_a_released_reservation_does_not_extend_an_earlier_wait() -> None:
    """Back-off after the 4th failure is 1 s; a success on another name from the same address
    after it ends must not leave the address waiting."""
    clock = FakeTime()
    t = Throttle(now=clock)
    for _ in range(5):
        clock.t += 10
        t.reserve("user:a", KEYS[1]).failed()
    clock.t += 100
    t.reserve("user:b", KEYS[1]).succeeded(clear=("user:b",))
    t.reserve("user:c", KEYS[1]).failed()  # would raise if the success had left a wait


def test_threads_racing_reserve_at_most_the_allowed_attempts() -> None:
    t = Throttle(now=FakeTime())
    got: list[int] = []
    barrier = threading.Barrier(64)

    def worker() -> None:
        barrier.wait()
        try:
            t.reserve(*KEYS)
        except ThrottledError:
            return
        got.append(1)

    threads = [threading.Thread(target=worker) for _ in range(64)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(got) == 4


def _worker_guesses(path: str, n: int) -> list[str]:
    """One worker process of a centre: ``n`` wrong guesses, each reserved then failed."""
    t = Throttle.shared(Path(path))
    out = []
    for _ in range(n):
        try:
            t.reserve(*KEYS).failed()
            out.append("checked")
        except ThrottledError:
            out.append("refused")
    return out


def test_worker_processes_share_one_count(tmp_path: Path) -> None:
    """Two processes on one counts file (a centre's --workers 2): the free guesses and the
    back-off are the whole centre's, not each process's."""
    import multiprocessing

    path = str(tmp_path / "throttle.db")
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        first = pool.apply(_worker_guesses, (path, 3))
        second = pool.apply(_worker_guesses, (path, 3))
    assert first == ["checked"] * 3
    # The fourth guess of the centre is checked (the back-off starts after it), the rest wait.
    assert second == ["checked", "refused", "refused"]


def test_a_reservation_of_a_dead_process_stops_counting(tmp_path: Path) -> None:
    """A worker killed during a password check leaves its reservation: after PENDING_TTL it
    no longer holds the account back."""
    from web_ui import throttle

    clock = FakeTime()
    path = tmp_path / "throttle.db"
    dead = Throttle(now=clock, counts=throttle.SharedCounts(path))
    for _ in range(4):
        dead.reserve(*KEYS)  # never resolved: the process is gone
    alive = Throttle(now=clock, counts=throttle.SharedCounts(path))
    with pytest.raises(ThrottledError):
        alive.reserve(*KEYS)
    clock.t += throttle.PENDING_TTL + 1
    alive.reserve(*KEYS).succeeded(clear=KEYS)
