"""Sealing the log from a hook: open the store (which signs any tail a crash left unsigned),
wait for the sealer, close it (which signs whatever is pending)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from appliance import schema, writes
from appliance.clock import Clock
from appliance.config import DB_NAME
from appliance.ledger import latest_checkpoint
from appliance.store import Store

from .errors import HookError

SEAL_TIMEOUT_S = 60.0


def _signed_before(data_dir: Path) -> tuple[int, bytes, str, bytes] | None:
    conn = schema.connect(str(data_dir / DB_NAME), readonly=True)
    try:
        return latest_checkpoint(conn)
    finally:
        conn.close()


def seal(
    data_dir: Path, clock: Clock, event: tuple[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Sign a checkpoint over the whole log (optionally after appending one system event)."""
    # Read what was signed before opening the store: opening it starts the sealer, which may
    # already have signed the tail by the time we could ask the store.
    before = _signed_before(data_dir)
    with Store.open(data_dir, clock=clock) as store:
        index = None
        if event is not None:
            kind, data = event
            index = store.writer_or_fail().call(
                lambda txn: writes.append_event(txn, kind, "luutru hook", data).index
            )
        if not store.wait_sealed(SEAL_TIMEOUT_S):
            err = store.sealer.error if store.sealer is not None else None
            raise HookError(f"the device key did not seal the log in {SEAL_TIMEOUT_S:g} s"
                            + (f": {err}" if err else ""))
        size, root = store.tree_head()
        cp = store.latest_checkpoint()
    out: dict[str, Any] = {
        "tree_size": size,
        "root_hash": root.hex(),
        "signed_size": cp[0] if cp else 0,
        "signed_at": cp[2] if cp else None,
        "newly_signed": (cp[0] if cp else 0) - (before[0] if before else 0),
    }
    if index is not None:
        out["event_index"] = index
    return out
