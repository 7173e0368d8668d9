"""Centre intake: verify a signed request, check the batch against the appliance's history,
store it, project it, and answer with a receipt.

Every function here returns the centre's *signed* answer (an HTTP status and the response
bytes) and never raises for a bad request: a refusal is an answer too, and it is counted.
Order of checks for a batch: envelope, enrolled key, signature, replay (online only), then the
batch itself: the checkpoint's signature and origin, each entry's encoding and index, the
classified-record rule, the overlap with what the centre already holds, the RFC 9162
consistency proof from the centre's copy, and the recomputed root.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from appliance import cbor, merkle
from appliance.checkpoint import Checkpoint, verify_checkpoint
from appliance.classified import carries_classified
from appliance.errors import EncodingError, ProofError, SignatureError
from appliance.keys.verify import PublicKey, key_id, load_public_key
from appliance.ledger import Entry
from appliance.search import fts_body

from .. import wire
from ..errors import (
    AuthError,
    BatchError,
    ClassifiedError,
    ForkError,
    QuarantinedError,
    ReplayError,
    SyncError,
    UnknownKeyError,
    WireError,
)
from .centre import Centre
from .storage import (
    AnomalyKind,
    ApplianceRecord,
    ApplianceStatus,
    CentreTx,
    CentreView,
    CheckpointRecord,
    ContentRef,
    DocumentRow,
    EntryRow,
    ForkEvidence,
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


@dataclass(frozen=True)
class Examined:
    leaves: list[bytes]
    rows: list[EntryRow]
    docs: list[DocumentRow]
    refs: list[ContentRef]


# -- pure checks ----------------------------------------------------------------------------


def examine(app: ApplianceRecord, batch: wire.Batch) -> Examined:
    """Decode every full entry of ``batch``: index, encoding, classification, projections."""
    leaves: list[bytes] = []
    rows: list[EntryRow] = []
    docs: list[DocumentRow] = []
    refs: list[ContentRef] = []
    for k, item in enumerate(batch.items):
        idx = batch.start + k
        if isinstance(item, wire.Withheld):
            leaves.append(item.leaf_hash)
            rows.append(EntryRow(idx, item.leaf_hash, None))
            continue
        h = merkle.leaf_hash(item)
        leaves.append(h)
        rows.append(EntryRow(idx, h, item))
        try:
            m = cbor.loads(item)
            if cbor.dumps_text_keyed(m) != item:
                cbor.loads_deterministic(item)
            entry = Entry.from_map(m)
        except EncodingError as exc:
            raise BatchError(f"entry {idx} is not a deterministic log entry: {exc}") from exc
        if entry.index != idx:
            raise BatchError(f"entry at position {idx} says it is entry {entry.index}")
        data = entry.data if isinstance(entry.data, dict) else None
        if carries_classified(entry.data):
            raise ClassifiedError(
                f"entry {idx} ({entry.kind}) carries a classified (mật) record's fields; "
                "classified records never leave the appliance: only its leaf hash may be sent"
            )
        sizes: dict[str, int] = {}
        if data is not None and isinstance(data.get("Content"), list):
            for c in data["Content"]:
                if isinstance(c, dict) and isinstance(c.get("size"), int):
                    sizes[str(c.get("sha256"))] = int(c["size"])
        for r in entry.refs:
            refs.append(ContentRef(r.hex(), sizes.get(r.hex(), -1), idx))
        if entry.type == "document" and entry.id and data is not None:
            docs.append(_document_row(app, entry, data))
    return Examined(leaves, rows, docs, refs)


def _document_row(app: ApplianceRecord, entry: Entry, data: dict[str, Any]) -> DocumentRow:
    def s(name: str) -> str | None:
        v = data.get(name)
        return None if v is None else str(v)

    def i(name: str) -> int | None:
        v = data.get(name)
        return v if isinstance(v, int) and not isinstance(v, bool) else None

    return DocumentRow(
        appliance_id=app.id,
        org_id=app.org_id,
        doc_id=str(entry.id),
        version=int(entry.version or 0),
        log_index=entry.index,
        direction=s("Direction"),
        type_name=s("TypeName"),
        code_number=s("CodeNumber"),
        code_notation=s("CodeNotation"),
        organ_name=s("OrganName"),
        subject=s("Subject"),
        issued_date=s("IssuedDate"),
        arrival_date=s("ArrivalDate"),
        arrival_number=i("ArrivalNumber"),
        year=i("Year"),
        file_code=s("FileCode"),
        folded=fts_body(data),
        data_json=json.dumps(data, ensure_ascii=False, sort_keys=True, default=str),
    )


def frontier_at(tx: CentreView, app: ApplianceRecord, size: int) -> list[bytes]:
    """The compact range of the centre's copy of the appliance's log at ``size``."""
    if size == app.accepted_size:
        return list(app.frontier)
    if size > app.accepted_size:
        raise BatchError(f"the centre holds only {app.accepted_size} entries, not {size}")
    cp = tx.checkpoint_at_or_below(app.id, size)
    base, fr = (cp.tree_size, list(cp.frontier)) if cp else (0, [])
    leaves = tx.leaves(app.id, base, size)
    if len(leaves) != size - base:
        raise BatchError(f"the centre's copy lacks entries {base}-{size}")
    return merkle.fold_leaves(fr, leaves, base)


def _skew_seconds(request_time: str, now: dt.datetime) -> float | None:
    try:
        t = dt.datetime.fromisoformat(request_time)
    except ValueError:
        return None
    if t.tzinfo is None:
        return None
    return (t - now).total_seconds()


# -- the intake -----------------------------------------------------------------------------


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
        count = 0
        size, root = 0, b""
        if app is not None:
            size, root = app.accepted_size, app.accepted_root
            if tx is not None:
                refs, count = tx.missing_content(app.id, self.c.config.missing_listed)
                missing = [r.sha256 for r in refs]
                if missing:  # where the listed uploads stand (absent: 0), so no HEAD is needed
                    offsets = {s: n for s in missing if (n := self.c.blobs.partial_size(s))}
                    # files that may go up in two lanes (their size is known), with the
                    # second lane [start, end) where there is one (sync/central/uploads.py)
                    held = self.c.blobs.lanes(missing)
                    lanes = {r.sha256: list(held.get(r.sha256, ())) for r in refs if r.size >= 0}
                    extra = {**(extra or {}), "offsets": offsets, "lanes": lanes}
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
        return Answer(status, self.c.sign_response(resp), outcome, code)

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
            self._note(None, AnomalyKind.MALFORMED, str(exc))
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
            self._note(
                None, AnomalyKind.UNKNOWN_KEY, f"request signed by unknown key {req.device.hex()}"
            )
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
            self._note(app.id, AnomalyKind.BAD_SIGNATURE, str(exc))
            raise
        return app, pub

    def _note(self, app_id: str | None, kind: AnomalyKind, detail: str) -> None:
        with self.c.storage.transaction() as tx:
            tx.record_anomaly(app_id, kind, detail, self.c.now())

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
                if req.type is wire.RequestType.STATUS:
                    return self._status(tx, req, fresh, extra)
                answer = self._batch(tx, req, fresh, extra)
                if answer.outcome in (wire.Outcome.ACCEPTED, wire.Outcome.DUPLICATE):
                    tx.remember_response(app.id, req.digest, answer.body, self.c.now())
                return answer
        except ForkError as exc:
            return self._fork(req, app, exc, transport)
        except SyncError as exc:
            self._refused_bookkeeping(req, app, exc, transport)
            with self.c.storage.view() as v:
                current = v.appliance(app.id)
            return self.refuse(req.digest, exc, current)

    def _refused_bookkeeping(
        self, req: wire.SignedRequest, app: ApplianceRecord, exc: SyncError, transport: Transport
    ) -> None:
        now = self.c.now()
        with self.c.storage.transaction() as tx:
            tx.touch(app.id, now)
            if isinstance(exc, ReplayError):
                kind = (
                    AnomalyKind.SEQUENCE_REGRESSED if "sequence" in str(exc) else AnomalyKind.REPLAY
                )
                tx.record_anomaly(app.id, kind, str(exc), now)
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
        self, tx: CentreTx, req: wire.SignedRequest, app: ApplianceRecord, extra: dict[str, Any]
    ) -> Answer:
        pub = load_public_key(app.public_key_pem)
        self._note_claim(tx, app, req.body.get("head"), pub)
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
        self, tx: CentreTx, app: ApplianceRecord, head: Any, pub: PublicKey
    ) -> Checkpoint | None:
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
        tx.set_claim(app.id, cp.tree_size, self.c.now())
        return cp

    # batches ---------------------------------------------------------------------------

    def _batch(
        self, tx: CentreTx, req: wire.SignedRequest, app: ApplianceRecord, extra: dict[str, Any]
    ) -> Answer:
        batch = wire.Batch.from_body(req.body)
        pub = load_public_key(app.public_key_pem)
        try:
            cp = verify_checkpoint(batch.checkpoint, pub)
        except (SignatureError, EncodingError) as exc:
            raise BatchError(f"the batch's checkpoint does not verify: {exc}") from exc
        if cp.origin != app.origin:
            raise BatchError(f"checkpoint origin {cp.origin!r} is not {app.origin!r}")
        if cp.tree_size != batch.end:
            raise BatchError(
                f"checkpoint is for size {cp.tree_size}, the batch ends at {batch.end}"
            )
        if self._note_claim(tx, app, req.body.get("head"), pub) is None:
            tx.set_claim(app.id, max(batch.end, app.claimed_size), self.c.now())
        seen = examine(app, batch)
        accepted = app.accepted_size
        known = tx.checkpoint(app.id, batch.end)
        if known is not None and known.root_hash != cp.root_hash:
            raise ForkError(
                f"the appliance signed a different root for tree size {batch.end} than the one "
                "the centre accepted",
                claimed_size=batch.end,
                claimed_checkpoint=batch.checkpoint,
                conflicting_checkpoint=known.cose,
            )
        if batch.start > accepted:
            tx.park(
                ParkedBatch(app.id, batch.start, batch.end, req.digest, req.raw, self.c.now())
            )
            return self._answer(
                req.digest,
                wire.Outcome.PARKED,
                app,
                tx,
                code="gap",
                message=f"the centre holds {accepted} entries; send from there (this batch is "
                "kept until the gap is filled)",
                retryable=True,
                last_seq=req.seq,
                extra=extra,
            )
        if batch.start < accepted:
            stored = tx.leaves(app.id, batch.start, min(accepted, batch.end))
            for k, leaf in enumerate(stored):
                if leaf != seen.leaves[k]:
                    raise ForkError(
                        f"entry {batch.start + k} differs from the one the centre accepted",
                        claimed_size=batch.end,
                        claimed_checkpoint=batch.checkpoint,
                        diverge_index=batch.start + k,
                    )
        fr_start = frontier_at(tx, app, batch.start)
        if batch.start > 0:
            try:
                old_root = merkle.frontier_root(fr_start)
                merkle.verify_consistency(
                    batch.start, batch.end, old_root, cp.root_hash, batch.proof
                )
            except ProofError as exc:
                raise ForkError(
                    f"the consistency proof from the centre's copy at size {batch.start} to "
                    f"{batch.end} fails: {exc}",
                    claimed_size=batch.end,
                    claimed_checkpoint=batch.checkpoint,
                ) from exc
        fr_end = merkle.fold_leaves(fr_start, seen.leaves, batch.start)
        root = merkle.frontier_root(fr_end)
        if root != cp.root_hash:
            raise BatchError(
                f"entries {batch.start}-{batch.end} do not hash to the checkpoint's root"
            )
        if known is not None:
            receipt = known.receipt
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
                    app.id, batch.end, root, batch.checkpoint, tuple(fr_end), self.c.now(), receipt
                )
            )
        if batch.end <= accepted:
            return self._answer(
                req.digest,
                wire.Outcome.DUPLICATE,
                app,
                tx,
                receipt=receipt,
                last_seq=req.seq,
                extra=extra,
            )
        skip = accepted - batch.start
        new_rows = seen.rows[skip:]
        tx.add_entries(app.id, new_rows)
        tx.add_content_refs(app.id, [r for r in seen.refs if r.first_index >= accepted])
        tx.upsert_documents([d for d in seen.docs if d.log_index >= accepted])
        withheld = app.withheld + sum(1 for r in new_rows if r.entry is None)
        tx.set_accepted(app.id, batch.end, root, fr_end, withheld)
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

    def _fork(
        self, req: wire.SignedRequest, app: ApplianceRecord, exc: ForkError, transport: Transport
    ) -> Answer:
        now = self.c.now()
        with self.c.storage.transaction() as tx:
            fresh = tx.appliance(app.id)
            assert fresh is not None
            if transport is Transport.HTTP and req.seq > fresh.last_seq:
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
        with self.c.storage.view() as v:
            current = v.appliance(app.id)
        return self.refuse(req.digest, exc, current)

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
            return self._answer(
                wire.sha256(b"usb-status\x00" + bytes.fromhex(app_id)),
                outcome,
                app,
                v,
                receipt=cp.receipt if cp else None,
                code="quarantined" if outcome is wire.Outcome.QUARANTINED else "",
            ).body
