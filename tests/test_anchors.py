"""Anchors of the log's tail outside the database: the mirrored checkpoint is written after
each checkpoint, and a log that falls behind it, or was rolled back and written again, is a
fault at start-up and a finding in verify."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from appliance import anchors
from appliance.checkpoint import verify_checkpoint
from appliance.config import DB_NAME
from appliance.errors import HaltedError
from appliance.keys.loader import open_key
from appliance.keys.verify import load_public_key
from appliance.store import Store
from appliance.verify import verify_data_dir

from .conftest import incoming


def _register(store: Store, n: int, start: int = 1) -> None:
    for i in range(start, start + n):
        store.register_incoming(incoming(CodeNumber=str(i)))
    assert store.wait_sealed()


def test_each_checkpoint_is_mirrored_with_the_counters(store: Store) -> None:
    _register(store, 5)
    a = anchors.read_anchor(store.data_dir, anchors.CHECKPOINT)
    assert a is not None
    size, root = store.tree_head()
    assert (a.tree_size, a.root_hash) == (size, root)
    cp = verify_checkpoint(a.checkpoint, load_public_key(store.key.public_key_pem()))  # type: ignore[union-attr]
    assert (cp.tree_size, cp.root_hash) == (size, root)
    assert [c[1:] for c in a.counters] == [("den", 2025, 5)]
    assert a.tpm_counter is None  # a software key has no hardware counter


def test_an_anchor_file_round_trips_and_damage_is_named(tmp_path: Path) -> None:
    a = anchors.Anchor(anchors.CHECKPOINT, 7, b"\1" * 32, b"cose", "2025-09-15T09:30:00+07:00",
                       (("000.21.08.H49", "den", 2025, 4),), 12)
    assert anchors.save_anchor(tmp_path, a)
    assert anchors.read_anchor(tmp_path, anchors.CHECKPOINT) == a
    smaller = anchors.Anchor(anchors.CHECKPOINT, 6, b"\2" * 32, b"cose", "x")
    assert not anchors.save_anchor(tmp_path, smaller)  # a smaller one never replaces it
    assert anchors.save_anchor(tmp_path, smaller, force=True)
    path = anchors.anchor_path(tmp_path, anchors.CHECKPOINT)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(anchors.AnchorError):
        anchors.read_anchor(tmp_path, anchors.CHECKPOINT)
    assert anchors.read_anchors(tmp_path)[1]


def test_a_log_behind_its_anchor_halts_and_is_a_finding(
    data_dir: Path, open_store: Callable[..., Store], tmp_path: Path
) -> None:
    """An older copy of the database put back (the anchor beside it is the newer one)."""
    s = open_store()
    _register(s, 3)
    s.close()
    old = tmp_path / "old.db"
    shutil.copy2(data_dir / DB_NAME, old)
    s = open_store()
    _register(s, 4, start=4)
    s.close()
    shutil.copy2(old, data_dir / DB_NAME)
    with pytest.raises(HaltedError) as err:
        Store.open(data_dir)
    fault = err.value.faults[0]
    assert fault.code == "log.behind_anchor"  # type: ignore[attr-defined]
    assert "--tail-from-centre" in fault.recovery  # type: ignore[attr-defined]
    rep = verify_data_dir(data_dir)
    assert not rep.ok and {f.code for f in rep.findings} == {"log.behind_anchor"}
    halted = Store.open(data_dir, halted_ok=True)
    try:
        assert halted.is_halted and halted.key is None
        with pytest.raises(HaltedError):
            halted.register_incoming(incoming(CodeNumber="99"))
        # numbering stopped: nothing was written, no number given again
        assert halted.tree_head()[0] == 3 + 2  # codelists + fonds + 3 documents
    finally:
        halted.close()


def test_a_log_rolled_back_and_written_again_is_found(
    data_dir: Path, open_store: Callable[..., Store], tmp_path: Path
) -> None:
    """An older copy put back and then written on by something that did not check (an
    older version of luutru): the log passes the anchor's size with other entries."""
    s = open_store()
    _register(s, 2)
    s.close()
    shutil.copy2(data_dir / DB_NAME, tmp_path / "old.db")
    s = open_store()
    _register(s, 3, start=3)
    s.close()
    kept = anchors.read_anchor(data_dir, anchors.CHECKPOINT)
    assert kept is not None
    shutil.copy2(tmp_path / "old.db", data_dir / DB_NAME)
    key = open_key(data_dir, s.config.key)
    unchecked = Store(data_dir, s.config, key, s.clock)  # the constructor runs no check
    _register(unchecked, 4, start=50)
    unchecked.close()
    anchors.save_anchor(data_dir, kept, force=True)
    assert "log.anchor_mismatch" in {f.code for f in verify_data_dir(data_dir).findings}
    with pytest.raises(HaltedError) as err:
        Store.open(data_dir)
    assert err.value.faults[0].code == "log.anchor_mismatch"  # type: ignore[attr-defined]


def test_a_forged_anchor_fails_its_signature_in_verify(store: Store) -> None:
    _register(store, 2)
    a = anchors.read_anchor(store.data_dir, anchors.CHECKPOINT)
    assert a is not None
    forged = anchors.Anchor(a.source, a.tree_size + 5, a.root_hash, a.checkpoint, a.signed_at)
    anchors.save_anchor(store.data_dir, forged, force=True)
    codes = {f.code for f in verify_data_dir(store.data_dir).findings}
    assert "anchor.signature" in codes


def test_tail_problems_on_shapes(store: Store) -> None:
    _register(store, 3)
    size, root = store.tree_head()
    cp = store.latest_checkpoint()
    assert cp is not None
    ahead = anchors.Anchor(anchors.CENTRE, size + 2, b"\0" * 32, cp[3], cp[2])
    same = anchors.Anchor(anchors.CHECKPOINT, size, root, cp[3], cp[2])
    other = anchors.Anchor(anchors.CHECKPOINT, size - 1, b"\7" * 32, cp[3], cp[2])
    conn = store.reader()
    got = anchors.tail_problems(conn, [ahead, same, other], (4, 5), acked=[])
    assert [p.code for p in got] == ["log.behind_centre", "log.anchor_mismatch",
                                     "log.behind_counter"]
    assert anchors.tail_problems(conn, [ahead], (5, 5), acked=[ahead.ident]) == []
