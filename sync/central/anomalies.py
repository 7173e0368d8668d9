"""What the centre notes about appliances: anomalies (counted, per kind), forks (evidence
kept, the appliance quarantined, an alert raised) and appliances that came back behind what
the centre accepted from them (an alert: they lost their tail and can heal from the centre's
copy). Intake, enrolment, uploads and replacement all note through here."""

from __future__ import annotations

import logging

from .. import wire
from ..errors import ForkError
from .centre import Centre
from .storage import AnomalyKind, ApplianceRecord, ApplianceStatus, CentreTx, ForkEvidence

log = logging.getLogger(__name__)


def note(centre: Centre, app_id: str | None, kind: AnomalyKind, detail: str) -> None:
    """Count an anomaly of ``kind`` for the appliance (None: a key the centre does not know)."""
    with centre.storage.transaction() as tx:
        tx.record_anomaly(app_id, kind, detail, centre.now())


def record_fork(
    centre: Centre, req: wire.SignedRequest, app: ApplianceRecord, exc: ForkError, online: bool
) -> None:
    """A fork: keep both checkpoints and the whole request as evidence, quarantine the
    appliance, raise an alert (``luutru central clear`` lifts it)."""
    now = centre.now()
    with centre.storage.transaction() as tx:
        fresh = tx.appliance(app.id)
        assert fresh is not None
        if online and req.seq > fresh.last_seq:
            tx.set_seq(app.id, req.seq)
        tx.touch(app.id, now)
        accepted_cp = exc.conflicting_checkpoint
        if accepted_cp is None:
            rec = tx.checkpoint(app.id, fresh.accepted_size)
            accepted_cp = rec.cose if rec else b""
        tx.add_fork(
            ForkEvidence(
                appliance_id=app.id,
                detected_at=now,
                accepted_size=fresh.accepted_size,
                accepted_checkpoint=accepted_cp,
                claimed_size=exc.claimed_size,
                claimed_checkpoint=exc.claimed_checkpoint,
                diverge_index=exc.diverge_index,
                request=req.raw,
                reason=str(exc),
            )
        )
        tx.set_status(app.id, ApplianceStatus.QUARANTINED)
        tx.raise_alert(
            app.id,
            "fork",
            f"{fresh.org_name} ({fresh.org_id}): {exc}. Appliance quarantined; both "
            "checkpoints kept as evidence.",
            now,
        )
        tx.record_anomaly(app.id, AnomalyKind.FORK, str(exc), now)
    log.warning("fork detected for appliance %s: %s", app.id, exc)


BEHIND_ALERT = "behind"


def note_behind(tx: CentreTx, app: ApplianceRecord, detail: str, now: str) -> None:
    """An appliance came back behind what the centre accepted from it (its write-ahead log
    lost, an older copy of its disk put back): an alert, once while it stays open, and an
    anomaly counted each time. Its log heals from the centre's copy (`luutru restore
    --tail-from-centre` on the box)."""
    tx.record_anomaly(app.id, AnomalyKind.BEHIND, detail, now)
    if any(a.appliance_id == app.id and a.kind == BEHIND_ALERT for a in tx.alerts()):
        return
    tx.raise_alert(
        app.id,
        BEHIND_ALERT,
        f"{app.org_name} ({app.org_id}): {detail}. The centre holds "
        f"{app.accepted_size} entries of its log; on the box, `luutru restore "
        "--tail-from-centre` brings them back.",
        now,
    )
    log.warning("appliance %s came back behind the centre: %s", app.id, detail)
