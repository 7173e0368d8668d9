"""The one writer: a call runs on the caller's thread when the connection is free, or joins the
queue's next group; either way each job commits alone or fails alone, and the ledger's right
edge always matches the log."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from appliance import merkle, writes
from appliance.errors import StoreClosedError
from appliance.store import Store
from appliance.writer import Txn


class Refused(Exception):
    pass


def _job(store: Store, i: int, fail: bool) -> Callable[[Txn], int]:
    def job(txn: Txn) -> int:
        entry = writes.append_event(txn, "audit.view", "tester", {"n": i}, "document", str(i))
        if fail:
            raise Refused(i)  # after writing: the entry must not survive
        return entry.index

    return job


def test_calls_from_many_threads_commit_or_fail_alone(store: Store) -> None:
    """Threads calling and submitting at once: inline and grouped commits interleave, every
    failed job leaves nothing, and the tree head is the log's."""
    w = store.writer_or_fail()
    start = w.tree[0]

    def run(i: int) -> int | None:
        job = _job(store, i, fail=i % 7 == 3)
        try:
            if i % 3 == 0:
                return w.submit(job).result()
            return w.call(job)
        except Refused:
            return None

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(run, range(300)))
    ok = [r for r in results if r is not None]
    assert len(ok) == 300 - sum(1 for i in range(300) if i % 7 == 3)
    assert sorted(ok) == list(range(start, start + len(ok)))  # no gap, no duplicate
    size, root = w.tree
    leaves = [merkle.leaf_hash(raw) for _, raw in store.entries()]
    assert size == len(leaves) == start + len(ok)
    assert root == merkle.root_hash(merkle.list_source(leaves), size)
    assert store.tree_head() == (size, root)


def test_a_lone_call_runs_on_the_callers_thread(store: Store) -> None:
    w = store.writer_or_fail()
    names: list[str] = []
    w.call(lambda txn: names.append(threading.current_thread().name))
    assert names == [threading.current_thread().name]
    with pytest.raises(Refused):
        w.call(_job(store, 1, fail=True))
    assert w.call(_job(store, 2, fail=False)) == w.tree[0] - 1


def test_calls_after_close_are_refused(store: Store) -> None:
    w = store.writer_or_fail()
    store.close()
    with pytest.raises(StoreClosedError):
        w.call(lambda txn: None)
    with pytest.raises(StoreClosedError):
        w.submit(lambda txn: None)


def test_a_call_meeting_a_busy_connection_joins_the_queue(store: Store) -> None:
    """While one caller's job runs on its own thread, another caller's job waits its turn on
    the writer thread; both commit, in that order."""
    w = store.writer_or_fail()
    inside, release, queued = threading.Event(), threading.Event(), threading.Event()
    ran: dict[str, tuple[str, object]] = {}
    submit = w.submit

    def spy(fn: Callable[[Txn], object], **kw: bool) -> Future[object]:
        fut = submit(fn, **kw)
        queued.set()
        return fut

    w.submit = spy  # type: ignore[method-assign,assignment]

    def slow(txn: Txn) -> None:
        inside.set()
        assert release.wait(10)
        ran["slow"] = (threading.current_thread().name, _job(store, 1, False)(txn))

    def quick(txn: Txn) -> None:
        ran["quick"] = (threading.current_thread().name, _job(store, 2, False)(txn))

    a = threading.Thread(target=w.call, args=(slow,), name="caller-a")
    a.start()
    assert inside.wait(10)
    with ThreadPoolExecutor(1, thread_name_prefix="caller-b") as pool:
        b = pool.submit(w.call, quick)
        assert queued.wait(10)  # the connection was busy: the job went to the queue
        release.set()
        b.result(10)
    a.join(10)
    assert ran["slow"][0] == "caller-a" and ran["quick"][0] == "luutru-writer"
    slow_index, quick_index = ran["slow"][1], ran["quick"][1]
    assert isinstance(slow_index, int) and quick_index == slow_index + 1
