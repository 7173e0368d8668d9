"""pre-update and post-update on a temporary data folder."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from appliance import schema
from appliance.config import DB_NAME
from appliance.ledger import iter_entries
from appliance.store import Store
from firmware_hooks import update
from firmware_hooks.result import CheckStatus, ExitCode, Status
from firmware_hooks.update import list_snapshots, post_update, pre_update
from tests.conftest import incoming

from .conftest import RunHook, check, log_size


def _kinds(data_dir: Path) -> list[str]:
    from appliance.ledger import Entry

    conn = sqlite3.connect(data_dir / DB_NAME)
    try:
        return [Entry.decode(raw).kind for _, raw in iter_entries(conn)]
    finally:
        conn.close()


def test_pre_update_seals_logs_and_snapshots(run: RunHook, data_dir: Path) -> None:
    with Store.open(data_dir) as store:
        store.register_incoming(incoming())
    res = run("pre-update", pre_update)
    assert res.status is Status.OK, res.to_json()
    assert _kinds(data_dir)[-1] == "system.update.prepare"
    snaps = list_snapshots(data_dir)
    assert len(snaps) == 1
    snap = snaps[0]
    assert hashlib.sha256(snap.path.read_bytes()).hexdigest() == snap.manifest["sha256"]
    size = log_size(data_dir)
    assert snap.manifest["tree_size"] == snap.manifest["signed_size"] == size
    copy = sqlite3.connect(snap.path)
    assert copy.execute("SELECT count(*) FROM log").fetchone()[0] == size
    assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    copy.close()


def test_pre_update_refuses_while_a_write_is_in_flight(run: RunHook, data_dir: Path) -> None:
    """Another connection inside BEGIN IMMEDIATE: refused (exit 3) and nothing written."""
    size = log_size(data_dir)
    writer = sqlite3.connect(data_dir / DB_NAME, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        res = run("pre-update", lambda c: pre_update(c, wait_s=0.2))
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert res.status is Status.REFUSED and res.exit_code is ExitCode.REFUSED
    assert "write is in flight" in res.message
    assert log_size(data_dir) == size and list_snapshots(data_dir) == []
    assert run("pre-update", pre_update).status is Status.OK  # once the write is done


def test_old_snapshots_are_pruned(run: RunHook, data_dir: Path) -> None:
    names = []
    for _ in range(3):
        res = run("pre-update", lambda c: pre_update(c, keep=2))
        names.append(Path(res.details["snapshot"]).name)
    kept = [s.path.name for s in list_snapshots(data_dir)]
    assert kept == names[1:]


def test_post_update_migrates_verifies_and_logs(run: RunHook, data_dir: Path) -> None:
    run("pre-update", pre_update)
    res = run("post-update", post_update)
    assert res.status is Status.OK, res.to_json()
    assert [c.name for c in res.checks] == ["migrate", "verify", "seal"]
    assert _kinds(data_dir)[-1] == "system.update.done"


def test_post_update_refuses_a_database_newer_than_the_software(
    run: RunHook, data_dir: Path
) -> None:
    """A rollback to older software must not touch data a newer one wrote: exit 1."""
    conn = sqlite3.connect(data_dir / DB_NAME)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                 (str(schema.SCHEMA_VERSION + 1),))
    conn.commit()
    conn.close()
    res = run("post-update", post_update)
    assert res.status is Status.FAILED and res.exit_code is ExitCode.FAILED
    assert "newer" in res.message


def test_failing_migration_changes_nothing(
    run: RunHook, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A migration step that raises half-way: the transaction is rolled back whole."""

    def step(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half_done (x)")
        raise sqlite3.OperationalError("disk I/O error (simulated in the step)")

    monkeypatch.setattr(schema, "SCHEMA_VERSION", schema.SCHEMA_VERSION + 1)
    monkeypatch.setitem(update.MIGRATIONS, schema.SCHEMA_VERSION - 1, step)
    res = run("post-update", post_update)
    assert res.status is Status.FAILED
    conn = sqlite3.connect(data_dir / DB_NAME)
    assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(
        schema.SCHEMA_VERSION - 1)
    assert conn.execute(
        "SELECT count(*) FROM sqlite_master WHERE name = 'half_done'").fetchone()[0] == 0
    conn.close()


def test_migration_that_breaks_data_is_rolled_back_from_the_snapshot(
    run: RunHook, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A migration commits but damages a projection: verify fails, exit 1, and the database is
    put back from the pre-update snapshot (the damaged one kept as evidence)."""
    with Store.open(data_dir) as store:
        store.register_incoming(incoming(Subject="Về việc phòng chống bão"))
    assert run("pre-update", pre_update).status is Status.OK
    snap = list_snapshots(data_dir)[-1]

    def bad_step(conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE documents SET \"Subject\" = 'mất dấu'")

    monkeypatch.setattr(schema, "SCHEMA_VERSION", schema.SCHEMA_VERSION + 1)
    monkeypatch.setitem(update.MIGRATIONS, schema.SCHEMA_VERSION - 1, bad_step)
    res = run("post-update", post_update)
    assert res.status is Status.FAILED and res.exit_code is ExitCode.FAILED
    assert check(res, "verify").status is CheckStatus.FAIL
    assert res.details["restored_snapshot"] == snap.path.name
    evidence = data_dir / "snapshots" / res.details["evidence"]
    assert evidence.exists()
    conn = sqlite3.connect(data_dir / DB_NAME)
    subject = conn.execute('SELECT "Subject" FROM documents').fetchone()[0]
    version = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
    conn.close()
    assert subject == "Về việc phòng chống bão"
    assert version == str(schema.SCHEMA_VERSION - 1)
    monkeypatch.undo()
    from appliance.verify import verify_data_dir

    assert verify_data_dir(data_dir).ok


def test_snapshot_manifest_is_json(run: RunHook, data_dir: Path) -> None:
    run("pre-update", pre_update)
    manifest = next((data_dir / "snapshots").glob("*.manifest.json"))
    body = json.loads(manifest.read_text())
    assert set(body) >= {"at", "sha256", "tree_size", "root_hash", "schema_version"}
