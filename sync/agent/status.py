"""What the web UI and the health hook show about sync: one small read-only view.

The sync agent owns the state behind it (`<data>/sync/`); this module only reads it. Until the
appliance is enrolled there is nothing to show but that fact.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SyncStatus:
    enrolled: bool
    centre_url: str | None = None
    acknowledged_size: int = 0  # log entries the centre has accepted
    confirmed_size: int = 0  # tree size covered by the newest receipt stored in the log
    last_contact: str | None = None  # ISO 8601, +07:00
    last_error: str | None = None
    pending_entries: int = 0
    pending_content: int = 0  # content files the centre does not have yet
    quarantined: bool = False
    clock_skew_s: int | None = None  # appliance clock minus the centre's, at the last contact
    last_error_code: str | None = None  # short code of last_error (errors.py ``code``)

    def confirmed(self, entry_index: int) -> bool:
        """Whether the log entry at `entry_index` is covered by a receipt from the province."""
        return entry_index < self.confirmed_size


def sync_status(data_dir: Path, tree_size: int = 0) -> SyncStatus:
    """Read the agent's state file; an appliance that never enrolled is reported as such."""
    path = data_dir / "sync" / "state.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return SyncStatus(enrolled=False, pending_entries=tree_size)
    acknowledged = int(raw.get("acknowledged_size", 0))
    # Receipts appended after the acknowledged size are bookkeeping: nothing to send for them.
    settled = max(acknowledged, int(raw.get("settled_size", 0)))
    skew = raw.get("clock_skew_s")
    return SyncStatus(
        enrolled=bool(raw.get("centre_url")),
        centre_url=raw.get("centre_url"),
        acknowledged_size=acknowledged,
        confirmed_size=int(raw.get("confirmed_size", 0)),
        last_contact=raw.get("last_contact"),
        last_error=raw.get("last_error"),
        pending_entries=max(0, tree_size - settled),
        pending_content=int(raw.get("pending_content", 0)),
        quarantined=bool(raw.get("quarantined", False)),
        clock_skew_s=int(skew) if skew is not None else None,
        last_error_code=raw.get("last_error_code"),
    )
