"""The ``health`` hook: database, ledger head, disk, TPM, sync age and clock, for the watchdog.

The watchdog is fed (sd_notify WATCHDOG=1) unless a check FAILS: a stale uplink or a software
key degrades the status but must never make systemd restart or reboot a working appliance.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from appliance.datadir import PUBLIC_KEY_NAME
from appliance.sdnotify import notify

from . import checks
from .result import Check, CheckStatus, HookResult, Status, overall
from .runner import HookConfig, provisioned_config, read_only


@dataclass(frozen=True)
class HealthOptions:
    deep: bool = False  # PRAGMA quick_check (reads the whole database)
    limits: checks.Limits = field(default_factory=checks.Limits)


def health(config: HookConfig, options: HealthOptions | None = None) -> HookResult:
    opts = options or HealthOptions()
    app = provisioned_config(config.data_dir)
    now = config.clock.now()
    out: list[Check] = []
    conn = read_only(config.data_dir)
    try:
        db, size = checks.check_database(conn, opts.deep)
        out.append(db)
        pem = (config.data_dir / PUBLIC_KEY_NAME).read_bytes()
        ledger, head = checks.check_ledger(conn, pem, now, opts.limits)
        out.append(ledger)
        out.append(checks.check_tail(conn, config.data_dir, pem))
    finally:
        conn.close()
    out.append(checks.check_disk(config.data_dir, opts.limits))
    out.append(checks.check_tpm(app))
    out.append(checks.check_sync(config.data_dir, size, now, opts.limits))
    out.append(checks.check_clock(now, ledger.detail.get("signed_at"), opts.limits))
    status = overall(out)
    failed = [c.name for c in out if c.status is CheckStatus.FAIL]
    warned = [c.name for c in out if c.status is CheckStatus.WARN]
    if failed:
        message = f"unhealthy: {', '.join(failed)}"
    elif warned:
        message = f"needs attention: {', '.join(warned)}"
    else:
        message = "healthy"
    details: dict[str, Any] = {"org_id": app.org_id, "key_backing": app.key.backing.value}
    if head is not None:
        details.update(tree_size=head.tree_size, signed_size=head.signed_size)
    return HookResult("health", status, message, checks=out, details=details)


def feeds_watchdog(result: HookResult) -> bool:
    """Everything but a failure feeds the watchdog (an unprovisioned box waits for a person)."""
    return result.status is not Status.FAILED


def notify_result(result: HookResult, first: bool) -> bool:
    status_line = f"STATUS={result.status.value}: {result.message}"[:200]
    parts = [status_line]
    if first:
        parts.insert(0, "READY=1")
    if feeds_watchdog(result):
        parts.append("WATCHDOG=1")
    return notify("\n".join(parts))


def watch(
    run_once: Callable[[], HookResult],
    interval_s: float,
    emit: Callable[[HookResult], None],
    iterations: int | None = None,
) -> HookResult:
    """Run the health hook every ``interval_s`` seconds; tell systemd after each run."""
    result: HookResult | None = None
    n = 0
    while iterations is None or n < iterations:
        started = time.monotonic()
        result = run_once()
        notify_result(result, first=n == 0)
        emit(result)
        n += 1
        if iterations is not None and n >= iterations:
            break
        time.sleep(max(0.0, interval_s - (time.monotonic() - started)))
    assert result is not None
    return result
