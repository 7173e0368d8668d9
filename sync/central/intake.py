"""Centre intake: verify a signed request, check the batch against the appliance's history,
store it, project it, and answer with a receipt.

Every function here returns the centre's *signed* answer (an HTTP status and the response
bytes) and never raises for a bad request: a refusal is an answer too, and it is counted
(``anomalies.py``). Order of checks: envelope, enrolled key, signature, replay (online only),
then the batch itself (``batchcheck.py``: checkpoint, entries, classified-record rule, forks,
consistency proof, root). The decision is one database transaction; where each missing file's
upload stands is read from the blob folder after it.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from appliance.checkpoint import Checkpoint, verify_checkpoint
from appliance.errors import EncodingError, SignatureError
from appliance.keys.verify import PublicKey, key_id, load_public_key

from .. import wire
from ..errors import (
    AuthError,
    BatchError,
    ForkError,
    QuarantinedError,
    ReplayError,
    SyncError,
    UnknownKeyError,
    WireError,
)
from . import catalogue
from .anomalies import note, note_behind, record_fork
from .batchcheck import Disposition, check_batch
from .centre import Centre
from .links import check_containers
from .ltv_job import undelivered
from .storage import (
    AnomalyKind,
    ApplianceRecord,
    ApplianceStatus,
    CentreTx,
    CentreView,
    CheckpointRecord,
    ContentRef,
    ParkedBatch,
)

log = logging.getLogger(__name__)


class Transport(StrEnum):
    """How a request reached the centre: sequence numbers and nonces bind online ones only."""

    HTTP = "http"
    USB = "usb"
    PARKED = "parked"


HTTP_STATUS = {
    "unknown_key": 403,
    "bad_signature": 403,
    "enrolment": 403,
    "replay": 409,
    "fork": 409,
    "quarantined": 423,
    "classified": 422,
    "bad_batch": 422,
    "malformed": 400,
}

_ANOMALY = {
    "unknown_key": AnomalyKind.UNKNOWN_KEY,
    "bad_signature": AnomalyKind.BAD_SIGNATURE,
    "malformed": AnomalyKind.MALFORMED,
    "classified": AnomalyKind.CLASSIFIED,
    "bad_batch": AnomalyKind.BAD_BATCH,
    "quarantined": AnomalyKind.QUARANTINED_REQUEST,
    "fork": AnomalyKind.FORK,
    "enrolment": AnomalyKind.ENROLMENT,
}


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    outcome: wire.Outcome
    code: str = ""
    # The signed response, and the content it lists as missing whose upload state (read from
    # the blob folder, after the database transaction) is still to be added to it.
    response: wire.Response | None = None
    pending: tuple[ContentRef, ...] = ()


def _skew_seconds(request_time: str, now: dt.datetime) -> float | None:
    try:
        t = dt.datetime.fromisoformat(request_time)
    except ValueError:
        return None
    if t.tzinfo is None:
        return None
    return (t - now).total_seconds()


# -- the intake -----------------------------------------------------------------------------


def _remembered(answer: Answer) -> bool:
    """Accepted and duplicate batches are answered the same way again if they come again."""
    return answer.outcome in (wire.Outcome.ACCEPTED, wire.Outcome.DUPLICATE)


class Intake:
    """Handles batches and status requests for one opened centre (thread-safe via storage)."""

    def __init__(self, centre: Centre) -> None:
        self.c = centre

    # answers ---------------------------------------------------------------------------

    def _answer(
        self,
        digest: bytes,
        outcome: wire.Outcome,
        app: ApplianceRecord | None = None,
        tx: CentreView | None = None,
        *,
        receipt: bytes | None = None,
        code: str = "",
        message: str = "",
        retryable: bool = False,
        last_seq: int = 0,
        extra: dict[str, Any] | None = None,
    ) -> Answer:
        missing: list[str] = []
        refs: list[ContentRef] = []
        count = 0
        size, root = 0, b""
        if app is not None:
            size, root = app.accepted_size, app.accepted_root
            if tx is not None:
                refs, count = tx.missing_content(app.id, self.c.config.missing_listed)
                missing = [r.sha256 for r in refs]
                upgrades = undelivered(self.c, app.id, tx)  # versions the centre made (ltv_job)
                if upgrades:
                    extra = {**(extra or {}), "upgrades": upgrades}
        resp = wire.Response(
            request=digest,
            outcome=outcome,
            centre_time=self.c.now(),
            accepted_size=size,
            accepted_root=root,
            receipt=receipt,
            missing=tuple(missing),
            missing_count=count,
            last_seq=last_seq,
            code=code,
            message=message,
            retryable=retryable,
            extra=extra or {},
        )
        status = 200
        if outcome is wire.Outcome.PARKED:
            status = 202
        elif outcome in (wire.Outcome.REFUSED, wire.Outcome.QUARANTINED):
            status = HTTP_STATUS.get(code, 400)
        return Answer(status, self.c.sign_response(resp), outcome, code, resp,
                      tuple(refs) if missing else ())

    def with_upload_state(self, answer: Answer) -> Answer:
        """Add where each missing file's upload stands (absent: 0; a second lane [start, end)
        for files that may go up in two, sync/central/uploads.py), so that the appliance needs
        no HEAD: read from the blob folder once the database transaction is over."""
        if not answer.pending or answer.response is None:
            return answer
        missing = [r.sha256 for r in answer.pending]
        offsets = {sha: n for sha in missing if (n := self.c.blobs.partial_size(sha))}
        held = self.c.blobs.lanes(missing)
        lanes = {r.sha256: list(held.get(r.sha256, ())) for r in answer.pending if r.size >= 0}
        resp = replace(answer.response,
                       extra={**answer.response.extra, "offsets": offsets, "lanes": lanes})
        return replace(answer, body=self.c.sign_response(resp), response=resp, pending=())

    def refuse(self, digest: bytes, exc: SyncError, app: ApplianceRecord | None = None) -> Answer:
        outcome = (
            wire.Outcome.QUARANTINED
            if isinstance(exc, (QuarantinedError, ForkError))
            else wire.Outcome.REFUSED
        )
        last_seq = exc.last_seq if isinstance(exc, ReplayError) else 0
        return self._answer(
            digest,
            outcome,
            app,
            None,
            code=exc.code,
            message=str(exc),
            retryable=exc.retryable,
            last_seq=last_seq,
        )

    # entry point -------------------------------------------------------------------------

    def handle(self, raw: bytes, transport: Transport = Transport.HTTP) -> Answer:
        """Verify and process one signed batch or status request; always returns an answer."""
        digest = wire.sha256(raw)
        try:
            req = wire.parse_request(raw)
        except WireError as exc:
            note(self.c, None, AnomalyKind.MALFORMED, str(exc))
            return self.refuse(digest, exc)
        if req.type not in (wire.RequestType.BATCH, wire.RequestType.STATUS):
            return self.refuse(digest, WireError(f"a {req.type.value} request does not go here"))
        try:
            app, _ = self.authenticate(req)
        except SyncError as exc:
            return self.refuse(digest, exc)
        answer = self._process(req, app, transport)
        if answer.outcome in (wire.Outcome.ACCEPTED, wire.Outcome.DUPLICATE):
            self.drain_parked(app.id)
        return answer

    def authenticate(self, req: wire.SignedRequest) -> tuple[ApplianceRecord, PublicKey]:
        """The enrolled appliance that signed ``req``; refusals are counted."""
        with self.c.storage.view() as v:
            app = v.appliance_for_key(req.device.hex())
        if app is None:
            note(self.c, None, AnomalyKind.UNKNOWN_KEY,
                 f"request signed by unknown key {req.device.hex()}")
            raise UnknownKeyError(f"key {req.device.hex()} is not enrolled at this centre")
        pub = load_public_key(app.public_key_pem)
        try:
            if key_id(pub) != req.device:
                raise AuthError(
                    f"key {req.device.hex()} was retired when appliance {app.id} was replaced "
                    "(a hand-over gave its log to a new box)"
                )
            wire.verify_request(req, pub)
        except AuthError as exc:
            note(self.c, app.id, AnomalyKind.BAD_SIGNATURE, str(exc))
            raise
        return app, pub

    def _bookkeep(
        self, tx: CentreTx, req: wire.SignedRequest, app: ApplianceRecord, transport: Transport
    ) -> dict[str, Any]:
        """Replay rules (online only), last contact and clock skew; returns response extras."""
        now = self.c.now()
        if transport is Transport.HTTP:
            if tx.nonce_seen(app.id, req.nonce):
                raise ReplayError("this request's nonce was used before (a replay)", app.last_seq)
            if req.seq <= app.last_seq:
                raise ReplayError(
                    f"sequence number {req.seq} is not above {app.last_seq} (a replay, or the "
                    "appliance was restored from a backup)",
                    app.last_seq,
                )
            tx.set_seq(app.id, req.seq)
            tx.add_nonce(app.id, req.nonce, now)
        tx.touch(app.id, now)
        extra: dict[str, Any] = {}
        skew = _skew_seconds(req.time, self.c.clock.now())
        if skew is not None:
            extra["clock_skew_s"] = int(skew)
            if abs(skew) > self.c.config.skew_tolerance_s:
                tx.record_anomaly(
                    app.id,
                    AnomalyKind.CLOCK_SKEW,
                    f"appliance clock is {skew:+.0f} s off the centre's (request time {req.time})",
                    now,
                )
        return extra

    def _process(
        self, req: wire.SignedRequest, app: ApplianceRecord, transport: Transport
    ) -> Answer:
        try:
            decided = self._decide(req, app, transport)
            if req.type is wire.RequestType.BATCH:
                # Versions inside files the centre already holds are checked now (after the
                # transaction, like every read of the blob folder); the rest on arrival.
                check_containers(self.c, self._containers(app.id))
            answer = self.with_upload_state(decided)
            if answer is not decided and _remembered(answer):
                # Remembered as sent, so that the same request again is answered byte for
                # byte; a crash before this only means a repeat is checked again (idempotent).
                with self.c.storage.transaction() as tx:
                    tx.remember_response(app.id, req.digest, answer.body, self.c.now())
            return answer
        except ForkError as exc:
            record_fork(self.c, req, app, exc, transport == Transport.HTTP)
            with self.c.storage.view() as v:
                current = v.appliance(app.id)
            return self.refuse(req.digest, exc, current)
        except SyncError as exc:
            self._refused_bookkeeping(req, app, exc, transport)
            with self.c.storage.view() as v:
                current = v.appliance(app.id)
            return self.refuse(req.digest, exc, current)

    def _containers(self, app_id: str) -> list[str]:
        with self.c.storage.view() as v:
            return v.unchecked_containers(app_id)

    def _decide(
        self, req: wire.SignedRequest, app: ApplianceRecord, transport: Transport
    ) -> Answer:
        """The request's effect and answer, in one transaction (a refusal rolls it back)."""
        with self.c.storage.transaction() as tx:
            fresh = tx.appliance(app.id)
            assert fresh is not None
            stored = tx.response_for(app.id, req.digest)
            if stored is not None:
                if transport is Transport.HTTP:
                    tx.record_anomaly(
                        app.id,
                        AnomalyKind.REPLAY,
                        "a signed request arrived again byte for byte; answered as before",
                        self.c.now(),
                    )
                outcome = wire.verify_response(stored, self.c.public_key, None).outcome
                return Answer(200, stored, outcome)
            extra = self._bookkeep(tx, req, fresh, transport)
            if fresh.status is ApplianceStatus.QUARANTINED:
                raise QuarantinedError(
                    "this appliance is quarantined after a fork in its log; a technician "
                    "must clear it at the centre (`luutru central clear`)"
                )
            online = transport is Transport.HTTP
            if req.type is wire.RequestType.STATUS:
                return self._status(tx, req, fresh, extra, online)
            answer = self._batch(tx, req, fresh, extra, online)
            if _remembered(answer) and not answer.pending:
                tx.remember_response(app.id, req.digest, answer.body, self.c.now())
            return answer

    def _refused_bookkeeping(
        self, req: wire.SignedRequest, app: ApplianceRecord, exc: SyncError, transport: Transport
    ) -> None:
        now = self.c.now()
        with self.c.storage.transaction() as tx:
            tx.touch(app.id, now)
            if isinstance(exc, ReplayError):
                if "sequence" in str(exc):
                    # Its sequence went back: its disk (state.json with it) is an older copy.
                    tx.record_anomaly(app.id, AnomalyKind.SEQUENCE_REGRESSED, str(exc), now)
                    fresh = tx.appliance(app.id)
                    if fresh is not None:
                        note_behind(tx, fresh, f"its request sequence went back to {req.seq} "
                                    f"(the centre has seen {fresh.last_seq}): an older copy of "
                                    "its disk was put back", now)
                    return
                tx.record_anomaly(app.id, AnomalyKind.REPLAY, str(exc), now)
                return
            if transport is Transport.HTTP:
                fresh = tx.appliance(app.id)
                if fresh is not None and req.seq > fresh.last_seq:
                    tx.set_seq(app.id, req.seq)
                tx.add_nonce(app.id, req.nonce, now)
            kind = _ANOMALY.get(exc.code, AnomalyKind.BAD_BATCH)
            tx.record_anomaly(app.id, kind, str(exc), now)

    # status ----------------------------------------------------------------------------

    def _status(
        self, tx: CentreTx, req: wire.SignedRequest, app: ApplianceRecord, extra: dict[str, Any],
        online: bool = False,
    ) -> Answer:
        pub = load_public_key(app.public_key_pem)
        self._note_claim(tx, app, req.body.get("head"), pub, online)
        cp = tx.checkpoint(app.id, app.accepted_size)
        return self._answer(
            req.digest,
            wire.Outcome.STATUS,
            app,
            tx,
            receipt=cp.receipt if cp else None,
            last_seq=req.seq,
            extra=extra,
        )

    def _note_claim(
        self, tx: CentreTx, app: ApplianceRecord, head: Any, pub: PublicKey, online: bool = False
    ) -> Checkpoint | None:
        """The appliance's newest checkpoint (``head``), checked against what the centre holds.
        Online, a head below the accepted size means the box lost its tail; a USB or parked
        batch may simply be older than one already applied."""
        if not isinstance(head, bytes):
            return None
        try:
            cp = verify_checkpoint(head, pub)
        except (SignatureError, EncodingError) as exc:
            raise BatchError(f"the appliance's head checkpoint does not verify: {exc}") from exc
        known = tx.checkpoint(app.id, cp.tree_size)
        if known is not None and known.root_hash != cp.root_hash:
            raise ForkError(
                f"the appliance now signs a different root for tree size {cp.tree_size}",
                claimed_size=cp.tree_size,
                claimed_checkpoint=head,
                conflicting_checkpoint=known.cose,
            )
        if cp.tree_size < app.accepted_size:
            if not online:
                return cp
            note_behind(tx, app, f"its newest checkpoint covers {cp.tree_size} entries, the "
                        f"centre accepted {app.accepted_size} from it: it lost the tail of its "
                        "log", self.c.now())
            return cp  # its earlier, larger claim stands
        tx.set_claim(app.id, cp.tree_size, self.c.now())
        return cp

    # batches ---------------------------------------------------------------------------

    def _batch(
        self, tx: CentreTx, req: wire.SignedRequest, app: ApplianceRecord, extra: dict[str, Any],
        online: bool = False,
    ) -> Answer:
        batch = wire.Batch.from_body(req.body)
        pub = load_public_key(app.public_key_pem)
        if self._note_claim(tx, app, req.body.get("head"), pub, online) is None:
            tx.set_claim(app.id, max(batch.end, app.claimed_size), self.c.now())
        verdict = check_batch(tx, app, batch, pub)
        cp = verdict.checkpoint
        if verdict.disposition is Disposition.PARK:
            tx.park(
                ParkedBatch(app.id, batch.start, batch.end, req.digest, req.raw, self.c.now())
            )
            return self._answer(
                req.digest,
                wire.Outcome.PARKED,
                app,
                tx,
                code="gap",
                message=f"the centre holds {app.accepted_size} entries; send from there (this "
                "batch is kept until the gap is filled)",
                retryable=True,
                last_seq=req.seq,
                extra=extra,
            )
        assert verdict.seen is not None
        if verdict.known is not None:
            receipt = verdict.known.receipt
        else:
            receipt = wire.sign_receipt(
                wire.Receipt(
                    appliance=req.device,
                    origin=cp.origin,
                    tree_size=cp.tree_size,
                    root_hash=cp.root_hash,
                    checkpoint=batch.checkpoint,
                    witness=self.c.origin,
                    accepted_at=self.c.now(),
                ),
                self.c.key,
            )
            tx.add_checkpoint(
                CheckpointRecord(
                    app.id, batch.end, verdict.root, batch.checkpoint, verdict.frontier,
                    self.c.now(), receipt,
                )
            )
        if verdict.disposition is Disposition.DUPLICATE:
            return self._answer(
                req.digest,
                wire.Outcome.DUPLICATE,
                app,
                tx,
                receipt=receipt,
                last_seq=req.seq,
                extra=extra,
            )
        accepted = app.accepted_size
        seen = verdict.seen
        new_rows = seen.rows[accepted - batch.start:]
        tx.add_entries(app.id, new_rows)
        tx.add_content_refs(app.id, [r for r in seen.refs if r.first_index >= accepted])
        tx.add_content_links(app.id, [x for x in seen.links if x.first_index >= accepted])
        tx.upsert_documents([d for d in seen.docs if d.log_index >= accepted])
        catalogue.on_entries(tx, app, [e for e in seen.entries if e.index >= accepted],
                             self.c.now())
        withheld = app.withheld + sum(1 for r in new_rows if r.entry is None)
        tx.set_accepted(app.id, batch.end, verdict.root, verdict.frontier, withheld)
        updated = tx.appliance(app.id)
        return self._answer(
            req.digest,
            wire.Outcome.ACCEPTED,
            updated,
            tx,
            receipt=receipt,
            last_seq=req.seq,
            extra=extra,
        )

    # parked batches -----------------------------------------------------------------------

    def drain_parked(self, app_id: str) -> int:
        """Apply parked batches that now start within the accepted size; returns how many."""
        applied = 0
        for _ in range(10_000):
            with self.c.storage.view() as v:
                app = v.appliance(app_id)
                parked = v.parked(app_id)
            if app is None or app.status is ApplianceStatus.QUARANTINED:
                return applied
            ready = [p for p in parked if p.start <= app.accepted_size]
            if not ready:
                return applied
            p = ready[0]
            with self.c.storage.transaction() as tx:
                tx.unpark(app_id, p.digest)
            if p.end > app.accepted_size:
                req = wire.parse_request(p.raw)
                self._process(req, app, Transport.PARKED)
                applied += 1
        return applied


    def status_answer(self, app_id: str) -> bytes:
        """A signed status for an appliance, unprompted (written back to a USB stick)."""
        with self.c.storage.view() as v:
            app = v.appliance(app_id)
            if app is None:
                raise UnknownKeyError(f"appliance {app_id} is not enrolled")
            cp = v.checkpoint(app.id, app.accepted_size)
            outcome = (
                wire.Outcome.QUARANTINED
                if app.status is ApplianceStatus.QUARANTINED
                else wire.Outcome.STATUS
            )
            answer = self._answer(
                wire.sha256(b"usb-status\x00" + bytes.fromhex(app_id)),
                outcome,
                app,
                v,
                receipt=cp.receipt if cp else None,
                code="quarantined" if outcome is wire.Outcome.QUARANTINED else "",
            )
        return self.with_upload_state(answer).body
