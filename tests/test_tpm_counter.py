"""The TPM's NV monotonic counter anchors the log's tail in hardware: it advances with each
stored checkpoint, and a copy of the whole data folder put back (database and anchor files
alike, as a restored disk image would) is noticed, because the chip cannot be put back."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from appliance import anchors
from appliance.clock import SystemClock
from appliance.config import DB_NAME
from appliance.datadir import init_data_dir
from appliance.errors import HaltedError
from appliance.keys.base import counter_of
from appliance.keys.loader import open_key
from appliance.store import Store
from appliance.verify import verify_data_dir

from .conftest import ORG_ID, ORG_NAME, incoming
from .swtpm import Swtpm, swtpm, swtpm_factory

__all__ = ["swtpm", "swtpm_factory"]  # fixtures used by name below


def _tpm_folder(tmp_path: Path, tpm: Swtpm) -> Path:
    d = tmp_path / "appliance"
    init_data_dir(d, ORG_ID, ORG_NAME, "tpm", key_options={"tcti": tpm.tcti})
    return d


def _db_counter(data_dir: Path) -> int | None:
    import sqlite3

    conn = sqlite3.connect(f"file:{data_dir / DB_NAME}?mode=ro", uri=True)
    try:
        return anchors.db_counter(conn)
    finally:
        conn.close()


def _chip(data_dir: Path) -> int:
    from appliance.config import load_config

    key = open_key(data_dir, load_config(data_dir).key)
    try:
        counter = counter_of(key)
        assert counter is not None
        return counter.read()
    finally:
        key.close()


def test_the_counter_advances_with_each_checkpoint(tmp_path: Path, swtpm: Swtpm) -> None:
    d = _tpm_folder(tmp_path, swtpm)
    with Store.open(d) as s:
        start = _db_counter(d)
        assert start is not None
        for i in range(5):
            s.register_incoming(incoming(CodeNumber=str(i + 1)))
            assert s.wait_sealed()
        n_checkpoints = s.reader().execute("SELECT count(*) FROM checkpoints").fetchone()[0]
    after = _db_counter(d)
    assert after is not None and after > start
    assert _chip(d) == after  # the chip is exactly where the database expects it
    a = anchors.read_anchor(d, anchors.CHECKPOINT)
    assert a is not None and a.tpm_counter == after
    assert n_checkpoints >= after - start


def test_a_disk_image_put_back_is_noticed_by_the_chip(tmp_path: Path, swtpm: Swtpm) -> None:
    d = _tpm_folder(tmp_path, swtpm)
    with Store.open(d) as s:
        s.register_incoming(incoming(CodeNumber="1"))
        assert s.wait_sealed()
    image = tmp_path / "image"
    shutil.copytree(d, image)  # everything: database, WAL, anchors, keys
    with Store.open(d) as s:
        for i in range(2, 5):
            s.register_incoming(incoming(CodeNumber=str(i)))
            assert s.wait_sealed()
    shutil.rmtree(d)
    shutil.copytree(image, d)
    with pytest.raises(HaltedError) as err:
        Store.open(d, clock=SystemClock())
    codes = [f.code for f in err.value.faults]  # type: ignore[attr-defined]
    assert codes == ["log.behind_counter"]  # its own anchors agree with the old database
    rep = verify_data_dir(d, counter=True)
    assert "log.behind_counter" in {f.code for f in rep.findings}
    assert verify_data_dir(d).ok  # a copy checked elsewhere (no chip) is whole in itself


def test_a_crash_before_the_chip_advanced_is_caught_up(tmp_path: Path, swtpm: Swtpm) -> None:
    """The database stores the checkpoint first; a crash before the chip advanced leaves the
    chip behind, never ahead: the next opening brings it up, and nothing is halted."""
    d = _tpm_folder(tmp_path, swtpm)
    with Store.open(d) as s:
        s.register_incoming(incoming(CodeNumber="1"))
        assert s.wait_sealed()
    expected = _db_counter(d)
    assert expected is not None
    import sqlite3

    conn = sqlite3.connect(d / DB_NAME)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'tpm_counter'", (str(expected + 2),))
    conn.commit()
    conn.close()
    with Store.open(d) as s:
        assert not s.is_halted
    assert _chip(d) >= expected + 2
