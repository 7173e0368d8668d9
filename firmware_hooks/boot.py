"""The ``first-boot`` hook: the first thing run at every boot, before the appliance serves.

It recovers from whatever the last power cut left: SQLite replays or discards the WAL on the
first open, ``quick_check`` proves the database sound, temp files of interrupted writes from
before this boot are removed (a file only becomes reachable after the commit naming it, so
these were never part of a record), the tail of entries committed but not yet signed is
sealed, and the ledger head is verified. A box that is not provisioned yet exits 5.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from appliance import schema
from appliance.config import DB_NAME
from appliance.datadir import PUBLIC_KEY_NAME
from appliance.fsutil import write_atomic

from . import checks
from .result import Check, CheckStatus, HookResult, Status, overall
from .runner import HookConfig, provisioned_config, read_only
from .sealing import seal

BOOT_RECORD = "run/boot.json"


def boot_time() -> float:
    """When this boot began (seconds since the epoch), from /proc/stat."""
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except OSError:
        pass
    return time.time() - time.monotonic()


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def stale_temp_files(data_dir: Path, before: float) -> list[Path]:
    """Temp files of interrupted atomic writes, last touched before ``before``."""
    found = []
    candidates = list((data_dir / "content" / "tmp").glob("*"))
    for folder, dirs, files in os.walk(data_dir):
        if Path(folder) == data_dir / "content":
            dirs[:] = [d for d in dirs if d != "sha256"]  # millions of blobs: never walked
        candidates.extend(Path(folder) / f for f in files if f.startswith(".tmp-"))
    for path in candidates:
        try:
            if path.is_file() and path.stat().st_mtime < before:
                found.append(path)
        except OSError:
            continue
    return sorted(set(found))


def check_integrity(db_path: Path) -> Check:
    """Open for writing (SQLite recovers the WAL here) and run quick_check."""
    try:
        conn = schema.connect(str(db_path))
        try:
            problems = [r[0] for r in conn.execute("PRAGMA quick_check").fetchall()]
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        problems = [str(exc)]
    if problems != ["ok"]:
        return Check("database", CheckStatus.FAIL,
                     f"quick_check after recovery: {'; '.join(problems[:5])}")
    return Check("database", CheckStatus.PASS, "recovered and quick_check ok")


def first_boot(config: HookConfig) -> HookResult:
    data_dir = config.data_dir
    app = provisioned_config(data_dir)
    out = [check_integrity(data_dir / DB_NAME)]
    details: dict[str, Any] = {"org_id": app.org_id, "boot_id": boot_id()}
    if out[0].status is CheckStatus.FAIL:
        return HookResult("first-boot", Status.FAILED, out[0].reason, checks=out, details=details)
    removed = []
    for path in stale_temp_files(data_dir, boot_time()):
        path.unlink(missing_ok=True)
        removed.append(str(path.relative_to(data_dir)))
    out.append(Check("temp-files", CheckStatus.PASS, f"{len(removed)} left by interrupted writes "
                     "removed", {"removed": removed} if removed else {}))
    sealed = seal(data_dir, config.clock)
    out.append(Check("seal", CheckStatus.PASS,
                     f"{sealed['newly_signed']} entries left unsigned were sealed", sealed))
    conn = read_only(data_dir)
    try:
        ledger, _ = checks.check_ledger(
            conn, (data_dir / PUBLIC_KEY_NAME).read_bytes(), config.clock.now(), checks.Limits()
        )
    finally:
        conn.close()
    out.append(ledger)
    status = overall(out)
    result = HookResult(
        "first-boot", status, "ready" if status is Status.OK else "not ready: see checks",
        checks=out, details=details,
    )
    record = {"boot_id": details["boot_id"], "at": config.now(), "status": status.value}
    write_atomic(data_dir / BOOT_RECORD, json.dumps(record).encode(), mode=0o640)
    return result
