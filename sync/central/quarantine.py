"""Clearing a quarantined appliance (a technician's decision, made at the centre).

The centre keeps what it accepted up to the last checkpoint before the fork; the entries it
had beyond that point move to the superseded evidence (never deleted), the fork evidence
stays, and the appliance may sync again from the common prefix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from appliance import cbor, merkle
from appliance.ledger import Entry

from ..errors import SyncError
from . import catalogue
from .batchcheck import document_row
from .centre import Centre
from .storage import ApplianceStatus, DocumentRow

PAGE = 5000


@dataclass(frozen=True)
class ClearResult:
    appliance_id: str
    kept_size: int
    superseded: int
    alerts_cleared: int

    def to_json(self) -> dict[str, object]:
        return dict(self.__dict__)


def clear_quarantine(centre: Centre, appliance_id: str, by: str) -> ClearResult:
    """Un-quarantine ``appliance_id``, rolling its accepted log back to before the fork."""
    now = centre.now()
    with centre.storage.transaction() as tx:
        app = tx.appliance(appliance_id)
        if app is None:
            raise SyncError(f"no appliance {appliance_id} is enrolled here")
        if app.status is not ApplianceStatus.QUARANTINED:
            raise SyncError(f"appliance {appliance_id} is not quarantined")
        forks = tx.forks(appliance_id)
        diverge = forks[-1].diverge_index if forks else None
        limit = app.accepted_size if diverge is None and not forks else (diverge or 0)
        cp = tx.checkpoint_at_or_below(appliance_id, min(limit, app.accepted_size))
        keep = cp.tree_size if cp else 0
        frontier = list(cp.frontier) if cp else []
        moved, doc_ids = tx.truncate(appliance_id, keep, now)
        withheld = 0
        latest: dict[str, DocumentRow] = {}
        wanted = set(doc_ids)
        for start in range(0, keep, PAGE):
            for row in tx.entries(appliance_id, start, min(keep, start + PAGE)):
                if row.entry is None:
                    withheld += 1
                    continue
                if not wanted:
                    continue
                m = cbor.loads(row.entry)
                if m.get("type") == "document" and m.get("id") in wanted:
                    e = Entry.from_map(m)
                    if isinstance(e.data, dict):
                        latest[str(e.id)] = document_row(app, e, e.data)
        tx.upsert_documents(list(latest.values()))
        tx.set_accepted(appliance_id, keep, merkle.frontier_root(frontier), frontier, withheld)
        tx.set_status(appliance_id, ApplianceStatus.ACTIVE)
        after = tx.appliance(appliance_id)
        assert after is not None
        catalogue.reproject(tx, after, now)  # what the rolled-back entries released goes
        cleared = tx.clear_alerts(appliance_id, by, now)
        tx.raise_alert(
            appliance_id,
            "cleared",
            json.dumps({"by": by, "kept_size": keep, "superseded": moved}, ensure_ascii=False),
            now,
        )
        tx.clear_alerts(appliance_id, by, now)
    return ClearResult(appliance_id, keep, moved, cleared)
