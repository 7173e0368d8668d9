"""The ledger's stored Merkle nodes: leaves and levels from 4 up; levels 1–3 are recomputed.

Roots and proofs read through ``node_source`` must equal those of the whole tree built in
memory from the log, for every size, in folders written with and without the middle levels.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from appliance import merkle
from appliance.errors import EncodingError
from appliance.ledger import UNSTORED_LEVELS, node_source
from appliance.store import Store
from appliance.verify import verify_data_dir


def _leaves(store: Store) -> list[bytes]:
    return [merkle.leaf_hash(raw) for _, raw in store.entries()]


def _check_against_memory(store: Store) -> None:
    leaves = _leaves(store)
    full = merkle.list_source(leaves)
    stored = node_source(store.reader())
    n = len(leaves)
    for size in range(1, n + 1):
        assert store.root_at(size) == merkle.root_hash(full, size)
    for size in (1, 2, 3, 8, 15, 16, 17, 31, 32, 33, n - 1, n):
        for index in {0, 1, size // 2, size - 2, size - 1} - {-1}:
            if 0 <= index < size:
                assert store.inclusion_proof(index, size) == merkle.inclusion_proof(
                    full, index, size
                )
        for old in {1, 2, size // 3, size - 1}:
            if 1 <= old <= size:
                assert store.consistency_proof(old, size) == merkle.consistency_proof(
                    full, old, size
                )
    size, root = store.tree_head()
    assert (size, root) == (n, merkle.root_hash(full, n))
    assert stored(5, 0) == full(5, 0)  # a stored level
    assert stored(2, 3) == full(2, 3)  # a recomputed one


def _append(store: Store, count: int) -> None:
    for i in range(count):
        store.audit("view", "tester", "document", f"doc-{i}")


def test_appends_store_leaves_and_upper_levels_only(store: Store) -> None:
    _append(store, 70)
    conn = store.reader()
    levels = dict(conn.execute("SELECT level, count(*) FROM merkle_nodes GROUP BY level"))
    n = len(_leaves(store))
    assert levels[0] == n
    assert not set(levels) & set(UNSTORED_LEVELS)
    assert levels[4] == n // 16 and levels[5] == n // 32 and levels[6] == n // 64
    _check_against_memory(store)


def test_folders_holding_every_level_keep_working(
    data_dir: Path, open_store: Callable[..., Store]
) -> None:
    """A folder written before (or restored from a copy) holds levels 1–3 as well: appends
    after it, proofs across both parts and verify all agree."""
    s = open_store()
    _append(s, 21)
    s.close()
    conn = sqlite3.connect(data_dir / "luutru.db", isolation_level=None)
    leaves = [merkle.leaf_hash(bytes(r[0])) for r in conn.execute("SELECT entry FROM log")]
    full = merkle.list_source(leaves)
    for level in UNSTORED_LEVELS:
        for idx in range(len(leaves) >> level):
            conn.execute(
                "INSERT INTO merkle_nodes (level, idx, hash) VALUES (?, ?, ?)",
                (level, idx, full(level, idx)),
            )
    conn.close()
    s = open_store()
    _append(s, 30)
    _check_against_memory(s)
    s.close()
    assert verify_data_dir(data_dir).ok


def test_a_missing_leaf_is_named(store: Store) -> None:
    _append(store, 10)
    store.close()
    conn = sqlite3.connect(store.db_path, isolation_level=None)
    conn.execute("DELETE FROM merkle_nodes WHERE level = 0 AND idx = 5")
    conn.close()
    ro = Store.open(store.data_dir, readonly=True)
    try:
        with pytest.raises(EncodingError, match=r"\(0, 5\) is missing"):
            ro.root_at(8)
        assert ro.root_at(4) == merkle.root_hash(merkle.list_source(_leaves(ro)), 4)
    finally:
        ro.close()
