"""The shutdown hook: every committed entry ends under a signed checkpoint."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from appliance.config import DB_NAME
from appliance.store import Store
from firmware_hooks.result import Status
from firmware_hooks.shutdown import shutdown
from tests.conftest import incoming

from .conftest import RunHook, check, log_size


def test_shutdown_signs_what_is_pending_and_folds_the_wal(run: RunHook, data_dir: Path) -> None:
    with Store.open(data_dir) as store:
        store.register_incoming(incoming())
        store.wait_sealed()
    conn = sqlite3.connect(data_dir / DB_NAME)
    conn.execute("DELETE FROM checkpoints WHERE tree_size = (SELECT max(tree_size) FROM "
                 "checkpoints)")
    conn.commit()
    conn.close()
    res = run("shutdown", shutdown)
    assert res.status is Status.OK
    assert check(res, "seal").detail["signed_size"] == log_size(data_dir)
    assert check(res, "wal").detail["busy"] == 0
    wal = Path(f"{data_dir / DB_NAME}-wal")
    assert not wal.exists() or wal.stat().st_size == 0
