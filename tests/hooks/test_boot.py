"""The first-boot hook: recovery after a power cut, on a temporary data folder."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path

from appliance.config import DB_NAME
from appliance.store import Store
from firmware_hooks.boot import BOOT_RECORD, boot_time, first_boot
from firmware_hooks.result import CheckStatus, ExitCode, Status
from firmware_hooks.runner import HookConfig, run_hook
from tests.conftest import incoming

from .conftest import RunHook, check, log_size


def test_unprovisioned_box_exits_5(tmp_path: Path) -> None:
    res = run_hook("first-boot", HookConfig(tmp_path / "none", entry_points=False), first_boot)
    assert res.status is Status.UNPROVISIONED and res.exit_code is ExitCode.UNPROVISIONED
    assert "luutru provision" in res.message


def test_clean_folder_is_ready(run: RunHook, data_dir: Path) -> None:
    res = run("first-boot", first_boot)
    assert res.status is Status.OK, res.to_json()
    assert json.loads((data_dir / BOOT_RECORD).read_text())["status"] == "ok"


def test_unsigned_tail_is_sealed(run: RunHook, data_dir: Path) -> None:
    """Entries committed just before the power went, with no checkpoint yet, get one."""
    with Store.open(data_dir) as store:
        for n in range(3):
            store.register_incoming(incoming(CodeNumber=str(100 + n)))
        store.wait_sealed()
    size = log_size(data_dir)
    conn = sqlite3.connect(data_dir / DB_NAME)
    conn.execute("DELETE FROM checkpoints WHERE tree_size > 2")  # as if the sealer never ran
    conn.commit()
    conn.close()
    res = run("first-boot", first_boot)
    assert res.status is Status.OK, res.to_json()
    seal = check(res, "seal")
    assert seal.detail["signed_size"] == size and seal.detail["newly_signed"] == size - 2


def test_stale_temp_files_go_and_current_ones_stay(run: RunHook, data_dir: Path) -> None:
    """Temp files older than this boot are debris; one written since may be a live write."""
    tmp_dir = data_dir / "content" / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    old_blob = tmp_dir / "in-abc123"
    old_cfg = data_dir / ".tmp-xyz.json"
    live = tmp_dir / "in-live"
    for p in (old_blob, old_cfg, live):
        p.write_bytes(b"partial")
    before_boot = boot_time() - 60
    for p in (old_blob, old_cfg):
        os.utime(p, (before_boot, before_boot))
    res = run("first-boot", first_boot)
    assert not old_blob.exists() and not old_cfg.exists()
    assert live.exists()
    assert sorted(check(res, "temp-files").detail["removed"]) == [
        ".tmp-xyz.json", "content/tmp/in-abc123"]


def test_damaged_database_fails_and_changes_nothing(run: RunHook, data_dir: Path) -> None:
    """Pages overwritten on disk: quick_check fails, the hook fails, nothing is sealed."""
    with Store.open(data_dir) as store:
        for n in range(40):
            store.register_incoming(incoming(CodeNumber=str(n + 1), Subject="x" * 400))
        store.wait_sealed()
    conn = sqlite3.connect(data_dir / DB_NAME)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page = conn.execute("PRAGMA page_size").fetchone()[0]
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.close()
    with (data_dir / DB_NAME).open("r+b") as fh:
        for n in range(2, pages, 2):  # every other page after the first two: b-tree damage
            fh.seek(n * page + 8)
            fh.write(os.urandom(64))
    time.sleep(0)
    res = run("first-boot", first_boot)
    assert res.status is Status.FAILED and res.exit_code is ExitCode.FAILED
    assert check(res, "database").status is CheckStatus.FAIL
    assert [c.name for c in res.checks] == ["database"]
