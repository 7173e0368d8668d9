"""The hooks' write lock (firmware_hooks/dblock.py): a hook holds SQLite's write lock or is
refused, and while it holds it no writer starts; a held lock loses no write."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from appliance.config import DB_NAME
from appliance.store import Store
from firmware_hooks.dblock import wal_checkpoint, write_lock
from firmware_hooks.errors import RefusedError, WriteInFlightError
from tests.conftest import incoming


def test_the_lock_is_refused_while_a_write_is_in_flight(data_dir: Path) -> None:
    """Another connection in BEGIN IMMEDIATE: WriteInFlightError (a refusal, retryable)."""
    other = sqlite3.connect(data_dir / DB_NAME, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        start = time.monotonic()
        with pytest.raises(WriteInFlightError, match=r"a write is in flight .* 0\.2 s"), \
                write_lock(data_dir / DB_NAME, wait_s=0.2):
            pass
        assert time.monotonic() - start < 5
        assert issubclass(WriteInFlightError, RefusedError) and WriteInFlightError.retryable
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_a_held_lock_makes_writers_wait_and_they_carry_on(
    data_dir: Path, open_store: Callable[..., Store]
) -> None:
    """While the hook holds the lock a registration waits; released, it completes."""
    store = open_store()
    done = threading.Event()
    with write_lock(data_dir / DB_NAME) as conn:
        assert conn.in_transaction
        before = conn.execute("SELECT count(*) FROM documents").fetchone()[0]
        t = threading.Thread(target=lambda: (store.register_incoming(incoming()), done.set()))
        t.start()
        assert not done.wait(0.5)  # blocked behind the hook
        assert conn.execute("SELECT count(*) FROM documents").fetchone()[0] == before
    t.join(15)
    assert done.is_set() and store.count("document") == before + 1


def test_the_lock_is_released_even_when_the_hook_fails(data_dir: Path) -> None:
    """An exception inside the block rolls back and frees the lock for the next one."""
    with pytest.raises(RuntimeError, match="hook failed"), write_lock(data_dir / DB_NAME) as c:
        c.execute("CREATE TABLE hook_scratch (x)")
        raise RuntimeError("hook failed")
    with write_lock(data_dir / DB_NAME, wait_s=0.1) as c:
        assert c.execute(
            "SELECT count(*) FROM sqlite_master WHERE name = 'hook_scratch'").fetchone()[0] == 0


def test_wal_checkpoint_empties_the_write_ahead_log(
    data_dir: Path, open_store: Callable[..., Store]
) -> None:
    """With the store open and a registration in the WAL, a checkpoint copies every frame
    into the database and truncates the WAL to nothing."""
    store = open_store()
    store.register_incoming(incoming())
    assert store.wait_sealed()
    wal = data_dir / (DB_NAME + "-wal")
    assert wal.stat().st_size > 0
    out = wal_checkpoint(data_dir / DB_NAME)
    assert out["busy"] == 0 and out["wal_frames"] == out["checkpointed"]
    assert wal.stat().st_size == 0
    assert store.count("document") == 1
