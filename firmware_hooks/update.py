"""The ``pre-update`` and ``post-update`` hooks around a software update.

pre-update: refuse while a write is in flight (dblock.py), log the update and seal a
checkpoint over everything, then snapshot the database with SQLite's online backup API while
holding the write lock, so the snapshot is exactly the sealed log. post-update: migrate the
schema inside one transaction, verify the log and projections; if either fails the update must
be rolled back (exit 1), and a migration that committed is undone from the snapshot first so
the old software finds the database it knew.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from appliance import schema
from appliance.config import CONFIG_NAME, DB_NAME
from appliance.fsutil import durable_dirs, fsync_dir, write_atomic
from appliance.kinds import Kind

from .dblock import DEFAULT_WAIT_S, wal_checkpoint, write_lock
from .errors import HookError, RefusedError
from .result import Check, CheckStatus, HookResult, Status
from .runner import HookConfig, provisioned_config
from .sealing import seal

SNAPSHOT_DIR = "snapshots"
MANIFEST_SUFFIX = ".manifest.json"
SPACE_MARGIN = 64 << 20


def software_version() -> str:
    try:
        return version("luutru")
    except PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True)
class Snapshot:
    path: Path
    manifest: dict[str, Any]


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _stamp(at: str) -> str:
    """2025-07-01T09:30:15.120+07:00 -> 20250701T093015120 (sorts as time does)."""
    return at.replace(":", "").replace("-", "").replace(".", "")[:18]


def list_snapshots(data_dir: Path) -> list[Snapshot]:
    """Snapshots with a manifest, oldest first."""
    out = []
    for manifest in sorted((data_dir / SNAPSHOT_DIR).glob("*" + MANIFEST_SUFFIX)):
        try:
            meta = json.loads(manifest.read_text("utf-8"))
        except (OSError, ValueError):
            continue
        db = manifest.with_name(manifest.name.removesuffix(MANIFEST_SUFFIX) + ".sqlite")
        if db.is_file():
            out.append(Snapshot(db, meta))
    return sorted(out, key=lambda s: str(s.manifest.get("at", "")))


def snapshot(data_dir: Path, at: str, wait_s: float, reason: str) -> Snapshot:
    """Copy the database with the online backup API while holding the write lock."""
    db_path = data_dir / DB_NAME
    folder = data_dir / SNAPSHOT_DIR
    durable_dirs(folder, 0o750)  # the snapshot a failed update goes back to
    need = sum(p.stat().st_size for p in (db_path, Path(f"{db_path}-wal")) if p.exists())
    free = shutil.disk_usage(folder).free
    if free < need + SPACE_MARGIN:
        raise RefusedError(
            f"not enough free space for a snapshot: {need >> 20} MiB needed, {free >> 20} MiB "
            "free; nothing was changed"
        )
    name = f"{reason}-{_stamp(at)}"
    n = 1
    while (folder / f"{name}.sqlite").exists():
        n += 1
        name = f"{reason}-{_stamp(at)}-{n}"
    final = folder / f"{name}.sqlite"
    tmp = folder / f".tmp-{name}.sqlite"
    with write_lock(db_path, wait_s) as locked:
        tree = locked.execute("SELECT max(idx) FROM log").fetchone()[0]
        cp = locked.execute(
            "SELECT tree_size, root_hash FROM checkpoints ORDER BY tree_size DESC LIMIT 1"
        ).fetchone()
        version_row = locked.execute(
            "SELECT value FROM meta WHERE key = 'schema_version'"
        ).fetchone()
        src = schema.connect(str(db_path), readonly=True)
        dest = sqlite3.connect(str(tmp))
        try:
            src.backup(dest)
            dest.execute("PRAGMA journal_mode = DELETE")
        finally:
            dest.close()
            src.close()
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    os.replace(tmp, final)
    fsync_dir(folder)
    manifest = {
        "at": at,
        "reason": reason,
        "software_version": software_version(),
        "schema_version": int(version_row[0]) if version_row else 0,
        "tree_size": 0 if tree is None else int(tree) + 1,
        "signed_size": int(cp[0]) if cp else 0,
        "root_hash": bytes(cp[1]).hex() if cp else "",
        "sha256": _sha256(final),
        "size": final.stat().st_size,
    }
    config = data_dir / CONFIG_NAME
    shutil.copy2(config, folder / f"{name}.{CONFIG_NAME}")
    write_atomic(folder / f"{name}{MANIFEST_SUFFIX}",
                 json.dumps(manifest, ensure_ascii=False, indent=1).encode(), mode=0o640)
    return Snapshot(final, manifest)


def prune(data_dir: Path, keep: int) -> list[str]:
    removed = []
    for snap in list_snapshots(data_dir)[:-keep] if keep > 0 else []:
        for p in (snap.path, snap.path.with_name(f"{snap.path.stem}{MANIFEST_SUFFIX}"),
                  snap.path.with_name(f"{snap.path.stem}.{CONFIG_NAME}")):
            p.unlink(missing_ok=True)
        removed.append(snap.path.name)
    return removed


def pre_update(config: HookConfig, wait_s: float = DEFAULT_WAIT_S, keep: int = 2) -> HookResult:
    data_dir = config.data_dir
    provisioned_config(data_dir)
    # Nothing changes before we know no write is in flight.
    with write_lock(data_dir / DB_NAME, wait_s):
        pass
    at = config.now()
    sealed = seal(data_dir, config.clock,
                  (Kind.SYSTEM_UPDATE_PREPARE, {"software_version": software_version(), "at": at}))
    snap = snapshot(data_dir, at, wait_s, "pre-update")
    wal = wal_checkpoint(data_dir / DB_NAME)
    pruned = prune(data_dir, keep)
    checks = [
        Check("seal", CheckStatus.PASS, f"checkpoint at {sealed['signed_size']}", sealed),
        Check("snapshot", CheckStatus.PASS, snap.path.name, snap.manifest),
    ]
    return HookResult(
        "pre-update", Status.OK, f"ready for the update: snapshot {snap.path.name}",
        checks=checks,
        details={"snapshot": str(snap.path), "wal_checkpoint": wal, "pruned": pruned},
    )


# -- post-update -------------------------------------------------------------------------------

Migration = Callable[[sqlite3.Connection], None]
# from schema version N to N+1; a step runs inside the migration's one transaction.
MIGRATIONS: dict[int, Migration] = {}


def split_sql(script: str) -> list[str]:
    """Statements of a DDL script (executescript would COMMIT the open transaction)."""
    out, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip().strip(";").strip():
                out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out


def _schema_statements() -> list[str]:
    from appliance.fields import SCHEMAS

    stmts = split_sql(schema.BASE_DDL)
    stmts += [schema.projection_ddl(t) for t in SCHEMAS]
    stmts += split_sql(schema.INDEX_DDL)
    return stmts


def _shape(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    return [(str(r[0]), str(r[1] or "")) for r in
            conn.execute("SELECT name, sql FROM sqlite_master ORDER BY name")]


def migrate(db_path: Path, wait_s: float) -> dict[str, Any]:
    """Bring the schema to this software's version in one transaction; refuse a newer one."""
    with write_lock(db_path, wait_s) as conn:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        current = int(row[0]) if row else 0
        if current > schema.SCHEMA_VERSION:
            raise HookError(
                f"the database has schema {current}, newer than this software's "
                f"{schema.SCHEMA_VERSION}: this software is older than the data"
            )
        before = _shape(conn)
        steps = []
        for v in range(current, schema.SCHEMA_VERSION):
            step = MIGRATIONS.get(v)
            if step is not None:
                step(conn)
                steps.append(f"{v}->{v + 1}")
        for stmt in _schema_statements():
            conn.execute(stmt)
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (str(schema.SCHEMA_VERSION),),
        )
        changed = _shape(conn) != before or current != schema.SCHEMA_VERSION
        conn.execute("COMMIT")
    return {"from": current, "to": schema.SCHEMA_VERSION, "steps": steps, "changed": changed}


def _put_back(data_dir: Path, snap: Snapshot, at: str) -> str:
    """Replace the database by the snapshot; the migrated one is kept beside it as evidence."""
    db_path = data_dir / DB_NAME
    if _sha256(snap.path) != snap.manifest.get("sha256"):
        raise HookError(f"snapshot {snap.path.name} is damaged; the database was left as it is")
    with write_lock(db_path, DEFAULT_WAIT_S):
        pass
    evidence = data_dir / SNAPSHOT_DIR / f"failed-update-{_stamp(at)}.sqlite"
    wal_checkpoint(db_path)
    shutil.copy2(db_path, evidence)
    tmp = data_dir / f".tmp-restore-{DB_NAME}"
    shutil.copy2(snap.path, tmp)
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    for suffix in ("-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    os.replace(tmp, db_path)
    fsync_dir(data_dir)
    return evidence.name


def post_update(
    config: HookConfig, wait_s: float = DEFAULT_WAIT_S, full: bool = False
) -> HookResult:
    from appliance.verify import verify_data_dir

    data_dir = config.data_dir
    provisioned_config(data_dir)
    snaps = list_snapshots(data_dir)
    latest = snaps[-1] if snaps else None
    migration = migrate(data_dir / DB_NAME, wait_s)
    out = [Check("migrate", CheckStatus.PASS,
                 f"schema {migration['from']} -> {migration['to']}", migration)]
    report = verify_data_dir(data_dir, check_content=full)
    problems = [f.message for f in report.findings if f.severity.value == "error"]
    if report.ok:
        out.append(Check("verify", CheckStatus.PASS,
                         f"{report.entries} entries, {report.checkpoints} checkpoints intact"))
    else:
        out.append(Check("verify", CheckStatus.FAIL, "; ".join(problems[:5]),
                         {"findings": len(report.findings)}))
        details: dict[str, Any] = {"rollback": True}
        if migration["changed"] and latest is not None:
            if latest.manifest.get("tree_size") == report.tree_size:
                details["restored_snapshot"] = latest.path.name
                details["evidence"] = _put_back(data_dir, latest, config.now())
            else:
                details["not_restored"] = (
                    f"snapshot {latest.path.name} is at {latest.manifest.get('tree_size')} "
                    f"entries, the log at {report.tree_size}: restore it by hand"
                )
        return HookResult("post-update", Status.FAILED,
                          "the data does not verify after the update: roll it back",
                          checks=out, details=details)
    sealed = seal(data_dir, config.clock, (Kind.SYSTEM_UPDATE_DONE, {
        "software_version": software_version(), "schema": migration,
    }))
    out.append(Check("seal", CheckStatus.PASS, f"checkpoint at {sealed['signed_size']}", sealed))
    return HookResult("post-update", Status.OK, "the update is good: keep it", checks=out,
                      details={"software_version": software_version()})
