"""The health checks: database, ledger head, disk, TPM, sync age, clock. Each returns a Check
and never raises; the health hook, first-boot and the provisioning self-test share them."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance import merkle, schema
from appliance.clock import TZ
from appliance.config import ApplianceConfig
from appliance.errors import LuutruError
from appliance.ledger import Entry, latest_checkpoint, node_source

from .result import Check, CheckStatus

PASS, WARN, FAIL = CheckStatus.PASS, CheckStatus.WARN, CheckStatus.FAIL
SKIPPED = CheckStatus.SKIPPED
MiB = 1 << 20
GiB = 1 << 30
RUN_DIR = "run"
EARLIEST_PLAUSIBLE = dt.datetime(2025, 1, 1, tzinfo=TZ)


@dataclass(frozen=True)
class Limits:
    """Thresholds of the health checks (a province may tune them by flags)."""

    disk_fail_bytes: int = 256 * MiB  # below this a scan batch may not fit: unhealthy
    disk_warn_bytes: int = 2 * GiB
    disk_warn_ratio: float = 0.05
    unsealed_fail_s: float = 120.0  # entries left unsigned this long: the key is not sealing
    sync_warn_s: float = 7 * 86400.0  # no contact with the centre for a week
    clock_ahead_s: float = 86400.0  # a checkpoint signed this far in the future: clock went back


@dataclass(frozen=True)
class LedgerHead:
    tree_size: int
    signed_size: int
    root_hash: str


def _age_s(when: str, now: dt.datetime) -> float:
    return (now - dt.datetime.fromisoformat(when)).total_seconds()


def check_database(conn: sqlite3.Connection, deep: bool = False) -> tuple[Check, int]:
    """The database opens, has the schema this software knows, and (deep) passes quick_check."""
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        size_row = conn.execute("SELECT max(idx) FROM log").fetchone()
        size = 0 if size_row[0] is None else int(size_row[0]) + 1
        version = int(row[0]) if row else 0
        detail: dict[str, Any] = {"schema_version": version, "tree_size": size}
        if deep:
            problems = [r[0] for r in conn.execute("PRAGMA quick_check").fetchall()]
            if problems != ["ok"]:
                return Check("database", FAIL, f"quick_check: {'; '.join(problems[:5])}"), size
            detail["quick_check"] = "ok"
    except sqlite3.Error as exc:
        return Check("database", FAIL, f"the database cannot be read: {exc}"), 0
    if version > schema.SCHEMA_VERSION:
        return Check(
            "database", FAIL,
            f"schema {version} is newer than this software knows ({schema.SCHEMA_VERSION})",
            detail,
        ), size
    if version < schema.SCHEMA_VERSION:
        return Check(
            "database", WARN, f"schema {version} is older than {schema.SCHEMA_VERSION}: run "
            "`luutru hook post-update`", detail,
        ), size
    return Check("database", PASS, f"{size} log entries", detail), size


def check_ledger(
    conn: sqlite3.Connection, public_key_pem: bytes, now: dt.datetime, limits: Limits
) -> tuple[Check, LedgerHead | None]:
    """The newest checkpoint verifies, its root is the log's, and nothing waits unsigned long."""
    from appliance.checkpoint import verify_checkpoint
    from appliance.keys.verify import load_public_key

    try:
        conn.execute("BEGIN")  # one snapshot: size, checkpoint and nodes agree
        try:
            row = conn.execute("SELECT max(idx) FROM log").fetchone()
            size = 0 if row[0] is None else int(row[0]) + 1
            cp = latest_checkpoint(conn)
            if cp is None:
                if size == 0:
                    return Check("ledger", PASS, "the log is empty"), LedgerHead(0, 0, "")
                return Check("ledger", FAIL, f"{size} entries and no signed checkpoint"), None
            signed_size, root, signed_at, cose = cp
            verified = verify_checkpoint(cose, load_public_key(public_key_pem))
            if verified.tree_size != signed_size or verified.root_hash != root:
                return Check("ledger", FAIL, "the stored checkpoint differs from its signature"), (
                    None
                )
            if signed_size > size:
                return Check(
                    "ledger", FAIL, f"checkpoint covers {signed_size} entries but the log has "
                    f"{size}: entries were removed",
                ), None
            recomputed = merkle.root_hash(node_source(conn), signed_size)
            if recomputed != root:
                return Check(
                    "ledger", FAIL,
                    f"the log's root at size {signed_size} is not the signed one: the log changed",
                ), None
            first_unsigned = None
            if size > signed_size:
                raw = conn.execute("SELECT entry FROM log WHERE idx = ?", (signed_size,)).fetchone()
                first_unsigned = Entry.decode(bytes(raw[0]), strict=False).at
        finally:
            conn.execute("COMMIT")
    except (LuutruError, sqlite3.Error, ValueError) as exc:
        return Check("ledger", FAIL, f"the ledger head does not verify: {exc}"), None
    head = LedgerHead(size, signed_size, root.hex())
    detail: dict[str, Any] = {
        "tree_size": size, "signed_size": signed_size, "root_hash": root.hex(),
        "signed_at": signed_at,
    }
    if first_unsigned is not None:
        waiting = _age_s(first_unsigned, now)
        detail["unsigned"] = size - signed_size
        detail["unsigned_for_s"] = round(waiting, 1)
        if waiting > limits.unsealed_fail_s:
            return Check(
                "ledger", FAIL, f"{size - signed_size} entries unsigned for {waiting:.0f} s: the "
                "device key is not sealing", detail,
            ), head
    return Check("ledger", PASS, f"checkpoint {signed_size}/{size} verifies", detail), head


def check_tail(conn: sqlite3.Connection, data_dir: Path, pem: bytes) -> Check:
    """The log is not behind the anchors kept outside it, and the device key is the one that
    sealed it (appliance/preflight.py): a failure here means the box has stopped writing
    until the technician repairs it. A warning: restarting the services cannot mend it."""
    from appliance.preflight import check_key
    from appliance.preflight import check_tail as tail_faults

    try:
        conn.execute("BEGIN")
        try:
            faults = tail_faults(conn, data_dir, None)
            key = check_key(conn, pem.decode())
        finally:
            conn.execute("COMMIT")
    except (LuutruError, sqlite3.Error, ValueError) as exc:
        return Check("tail", WARN, f"the log's anchors cannot be checked: {exc}")
    if key is not None:
        faults.insert(0, key)
    if faults:
        return Check("tail", WARN, " ".join(f"{f.english} To repair: {f.recovery}" for f in faults),
                     {"faults": [f.code for f in faults]})
    return Check("tail", PASS, "the log is not behind any anchor; the device key sealed it")


def check_disk(data_dir: Path, limits: Limits) -> Check:
    """Free space on the data disk, and that it still takes a durable write (not read-only)."""
    try:
        usage = shutil.disk_usage(data_dir)
    except OSError as exc:
        return Check("disk", FAIL, f"cannot read the disk usage: {exc}")
    detail: dict[str, Any] = {
        "free_bytes": usage.free, "total_bytes": usage.total,
        "free_ratio": round(usage.free / usage.total, 4) if usage.total else 0.0,
    }
    probe = data_dir / RUN_DIR / ".disk-probe"
    try:
        probe.parent.mkdir(exist_ok=True)
        payload = os.urandom(64)
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, payload)
            os.fsync(fd)
        finally:
            os.close(fd)
        if probe.read_bytes() != payload:
            return Check("disk", FAIL, "the disk returned other bytes than were written", detail)
        probe.unlink()
    except OSError as exc:
        return Check("disk", FAIL, f"the data disk refuses writes ({exc.strerror})", detail)
    errors = _fs_errors(data_dir)
    if errors:
        detail["fs_errors"] = errors
        return Check("disk", WARN, f"the file system logged {errors} errors (check the disk)",
                     detail)
    free_mb = usage.free // MiB
    if usage.free < limits.disk_fail_bytes:
        return Check("disk", FAIL, f"only {free_mb} MiB free: new records may not fit", detail)
    if usage.free < limits.disk_warn_bytes or detail["free_ratio"] < limits.disk_warn_ratio:
        return Check("disk", WARN, f"{free_mb} MiB free: the disk is filling up", detail)
    return Check("disk", PASS, f"{free_mb} MiB free", detail)


def _fs_errors(path: Path) -> int:
    """ext4's error counter for the file system holding ``path`` (0 when not ext4)."""
    try:
        dev = os.stat(path).st_dev
        name = Path(f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}").resolve().name
        return int(Path(f"/sys/fs/ext4/{name}/errors_count").read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


def check_tpm(config: ApplianceConfig) -> Check:
    """The TPM answers and is the one the device key was made in (not cleared, not swapped)."""
    from appliance.keys.base import Backing

    if config.key.backing is not Backing.TPM:
        return Check("tpm", SKIPPED, "software device key: there is no TPM to check")
    from appliance.keys import tpm

    tcti = str(config.key.options.get("tcti", tpm.DEFAULT_TCTI))
    try:
        with tpm.tpm_context(tcti) as ectx:
            ectx.get_random(8)
            name = tpm.srk_name(ectx)
    except LuutruError as exc:
        return Check("tpm", FAIL, str(exc), {"tcti": tcti})
    except Exception as exc:  # a TSS error after connecting
        return Check("tpm", FAIL, f"the TPM answers but fails: {exc}", {"tcti": tcti})
    expected = config.key.options.get("srk_name")
    if expected and name.hex() != expected:
        return Check(
            "tpm", FAIL, "this TPM is not the one the device key was made in (cleared or swapped)",
            {"tcti": tcti},
        )
    return Check("tpm", PASS, "the TPM answers and holds the device key's storage key",
                 {"tcti": tcti})


def check_sync(data_dir: Path, tree_size: int, now: dt.datetime, limits: Limits) -> Check:
    """How long since the centre was last reached, and how much waits to be sent."""
    from sync.agent.status import sync_status

    try:
        st = sync_status(data_dir, tree_size)
    except (OSError, ValueError) as exc:
        return Check("sync", WARN, f"the sync state cannot be read: {exc}")
    if not st.enrolled:
        return Check("sync", SKIPPED, "not enrolled at a provincial centre",
                     {"pending_entries": st.pending_entries})
    detail: dict[str, Any] = {
        "centre_url": st.centre_url, "last_contact": st.last_contact,
        "pending_entries": st.pending_entries, "pending_content": st.pending_content,
        "confirmed_size": st.confirmed_size,
    }
    if st.last_error:
        detail["last_error"] = st.last_error
    if st.quarantined:
        return Check("sync", WARN, "the centre has quarantined this appliance", detail)
    if st.last_contact is None:
        return Check("sync", WARN, "the centre has never been reached", detail)
    age = _age_s(st.last_contact, now)
    detail["age_s"] = round(age)
    if age > limits.sync_warn_s:
        return Check("sync", WARN, f"no contact with the centre for {age / 86400:.1f} days", detail)
    return Check("sync", PASS, f"last contact {age / 3600:.1f} h ago", detail)


def check_clock(now: dt.datetime, latest_signed_at: str | None, limits: Limits) -> Check:
    """The clock is plausible: not before 2025, not behind the newest signed checkpoint."""
    detail: dict[str, Any] = {"now": now.isoformat(timespec="seconds")}
    if now < EARLIEST_PLAUSIBLE:
        return Check("clock", WARN, "the clock is before 2025 (dead RTC battery?)", detail)
    if latest_signed_at:
        ahead = -_age_s(latest_signed_at, now)
        if ahead > limits.clock_ahead_s:
            detail["checkpoint_ahead_s"] = round(ahead)
            return Check("clock", WARN, "the newest checkpoint is dated in the future: the clock "
                         "went backwards", detail)
    return Check("clock", PASS, "plausible", detail)
