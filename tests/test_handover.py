"""Empty log rows (entries held as leaf hashes only) outside a hand-over: an erased entry."""

from __future__ import annotations

from pathlib import Path

from appliance import schema
from appliance.config import DB_NAME
from appliance.store import Store
from appliance.verify import verify_data_dir

from .conftest import incoming


def test_an_empty_row_no_handover_lists_is_an_erased_entry(store: Store, data_dir: Path) -> None:
    ids = [store.register_incoming(incoming(CodeNumber=str(i + 1))).record.id for i in range(3)]
    assert store.wait_sealed()
    size = store.tree_head()[0]
    victim = next(i for i, raw in store.entries() if ids[1].encode() in raw)
    conn = schema.connect(str(data_dir / DB_NAME))
    conn.execute("UPDATE log SET entry = x'' WHERE idx = ?", (victim,))
    conn.close()
    # Readers skip the row unless they ask for every index.
    assert victim not in {i for i, _ in store.entries()}
    assert [i for i, _ in store.entries(withheld=True)] == list(range(size))
    rep = verify_data_dir(data_dir)
    assert not rep.ok
    assert [f.index for f in rep.findings if f.code == "entry.erased"] == [victim]
