"""Taking a log over from a copy (appliance/replace.py): entries are written only if each
hashes to its leaf and names its own index, classified ones as empty rows, the tree is
rebuilt exactly as the ledger stores it, and the signed checkpoint must match it."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance import cbor, merkle, schema
from appliance.keys.software import SoftwareKey
from appliance.keys.verify import load_public_key
from appliance.replace import CopyError, LogImporter, adopt_checkpoint
from appliance.store import Store, create_tables
from tests.conftest import incoming


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    """An empty database of a new box."""
    conn = schema.connect(str(tmp_path / "new.db"))
    create_tables(conn)
    yield conn
    conn.close()


@pytest.fixture
def source(store: Store) -> Store:
    """A log of a few records, sealed."""
    for i in range(6):
        doc = store.register_incoming(incoming(CodeNumber=str(10 + i))).record
    scan = store.content.put_bytes(b"scan of the last one")
    store.attach_content(doc.id, [{"sha256": scan.sha256, "size": scan.size, "name": "a.pdf"}])
    store.register_incoming(incoming(CodeNumber="99", Mode="03"))
    assert store.wait_sealed()
    return store


def _copy(store: Store) -> list[tuple[bytes, bytes]]:
    """(leaf hash, entry) for every entry, as the centre hands them out."""
    return [(merkle.leaf_hash(raw), raw) for _, raw in store.entries()]


def doc_id(store: Store) -> str:
    """The record whose scan the source log references."""
    return store.find("document", CodeNumber="15")[0].id


def _nodes(conn: sqlite3.Connection) -> set[tuple[int, int, bytes]]:
    return {(r[0], r[1], bytes(r[2])) for r in conn.execute(
        "SELECT level, idx, hash FROM merkle_nodes")}


def test_a_whole_copy_rebuilds_the_same_log_and_tree(
    source: Store, fresh: sqlite3.Connection
) -> None:
    """Same entries, same stored Merkle nodes (leaves and levels 4+), same root; the signed
    checkpoint is adopted; content references are collected in log order."""
    imp = LogImporter(fresh)
    for leaf, raw in _copy(source):
        imp.add(leaf, raw)
    imp.flush()
    size, root = source.tree_head()
    assert imp.size == size and imp.root() == root and imp.withheld == []
    assert list(imp.refs) == [c["sha256"] for c in source.get("document", doc_id(source))
                              .data["Content"]]
    assert [bytes(r[0]) for r in fresh.execute("SELECT entry FROM log ORDER BY idx")] == [
        raw for _, raw in source.entries()]
    assert _nodes(fresh) == _nodes(source.reader())
    latest = source.latest_checkpoint()
    assert latest is not None and latest[0] == size
    assert source.key is not None
    cp = adopt_checkpoint(fresh, latest[3], load_public_key(source.key.public_key_pem()),
                          source.config.origin, imp.size, imp.root())
    assert (cp.tree_size, cp.root_hash) == (size, root)
    assert fresh.execute("SELECT count(*) FROM checkpoints").fetchone()[0] == 1


def test_withheld_entries_become_empty_rows_with_the_same_root(
    source: Store, fresh: sqlite3.Connection
) -> None:
    """A classified entry given as its leaf only: an empty row, listed, root unchanged."""
    copy = _copy(source)
    secret = [i for i, (_, raw) in enumerate(copy) if cbor.loads(raw).get("data", {}).get(
        "Mode") == "03"]
    assert secret
    imp = LogImporter(fresh)
    for i, (leaf, raw) in enumerate(copy):
        imp.add(leaf, None if i in secret else raw)
    imp.flush()
    assert imp.withheld == secret and imp.root() == source.tree_head()[1]
    rows = fresh.execute("SELECT idx FROM log WHERE entry = x''").fetchall()
    assert [r[0] for r in rows] == secret


@pytest.mark.parametrize("where", ["entry", "leaf"])
def test_a_flipped_bit_in_an_entry_or_its_leaf_is_refused(
    source: Store, fresh: sqlite3.Connection, where: str
) -> None:
    """Any flipped bit in entry 3 (or its leaf hash) stops the copy at entry 3."""
    copy = _copy(source)
    leaf, raw = copy[3]
    target = bytearray(raw if where == "entry" else leaf)
    for i in range(0, len(target) * 8, 7):
        b = bytearray(target)
        b[i // 8] ^= 1 << (i % 8)
        imp = LogImporter(fresh)
        for leaf_i, raw_i in copy[:3]:
            imp.add(leaf_i, raw_i)
        bad = (leaf, bytes(b)) if where == "entry" else (bytes(b), raw)
        with pytest.raises(CopyError, match="entry 3 does not hash to its leaf"):
            imp.add(*bad)


def test_entries_out_of_order_or_malformed_are_refused(
    source: Store, fresh: sqlite3.Connection
) -> None:
    """A genuine entry at the wrong place, bytes that are not an entry, a short leaf."""
    copy = _copy(source)
    imp = LogImporter(fresh)
    imp.add(*copy[0])
    with pytest.raises(CopyError, match="entry 1 says it is entry 2"):
        imp.add(*copy[2])
    junk = cbor.dumps({"not": "an entry"})
    with pytest.raises(CopyError, match="entry 1 is not a valid entry"):
        imp.add(merkle.leaf_hash(junk), junk)
    with pytest.raises(CopyError, match="leaf hash is not 32 bytes"):
        imp.add(b"\x00" * 31, None)
    assert imp.size == 1


def test_a_database_that_already_holds_a_log_is_refused(source: Store) -> None:
    """A log is only ever taken over into an empty database."""
    conn = schema.connect(source.db_path)
    try:
        with pytest.raises(CopyError, match="already holds a log"):
            LogImporter(conn)
    finally:
        conn.close()


def test_a_checkpoint_that_does_not_match_the_copy_is_refused(
    source: Store, fresh: sqlite3.Connection, tmp_path: Path
) -> None:
    """Another key, another origin, a shorter copy or a changed root: CopyError, not kept."""
    copy = _copy(source)
    imp = LogImporter(fresh)
    for leaf, raw in copy:
        imp.add(leaf, raw)
    latest = source.latest_checkpoint()
    assert latest is not None and source.key is not None
    cose = latest[3]
    pub = load_public_key(source.key.public_key_pem())
    other = load_public_key(SoftwareKey.create(tmp_path / "other").public_key_pem())
    origin, size, root = source.config.origin, imp.size, imp.root()
    cases = [
        ((cose, other, origin, size, root), "does not verify with its key"),
        ((cose, pub, "luutru/other/box", size, root), "the checkpoint is for"),
        ((cose, pub, origin, size - 1, root), "does not hash to the signed checkpoint"),
        ((cose, pub, origin, size, bytes(32)), "does not hash to the signed checkpoint"),
        ((b"\x00" + cose[1:], pub, origin, size, root), "does not verify with its key"),
    ]
    for args, match in cases:
        with pytest.raises(CopyError, match=match):
            adopt_checkpoint(fresh, *args)
    assert fresh.execute("SELECT count(*) FROM checkpoints").fetchone()[0] == 0
