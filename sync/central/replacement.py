"""Replacement at the centre: a new box takes over a dead appliance's log from the centre's copy.

1. A technician at the province issues a one-time *replacement* token for the dead appliance
   (``luutru central token --replace ID``). It looks like an enrolment token (its fingerprint
   lets the new box pin the centre key) but it can only be spent here.
2. The new box sends a RESTORE request signed by its own new key, with an HMAC of that key
   under the token secret. The token is bound to that key (a later attempt by another key
   rebinds it, until the hand-over is done) and the answer, signed by the centre, names the
   log: its origin, the accepted size and root, the checkpoint and the key that signed it.
3. The box FETCHes the entries (classified ones as leaf hashes only: they never left the old
   box) and the content, and checks everything against that checkpoint itself.
4. It appends a ``device.handover`` entry and sends it as a one-entry batch signed by the new
   key (HANDOVER). The centre checks that the entry follows exactly the accepted copy and
   names the current key as the previous one and the signer as the new one; then, in one
   transaction, the new key becomes the appliance's key (the old one is refused from then
   on), the entry is stored and the centre's receipt countersigns the checkpoint over it.
"""

from __future__ import annotations

import datetime as dt
import hmac
import os
from dataclasses import dataclass
from typing import Any

from appliance import cbor
from appliance.clock import iso
from appliance.errors import EncodingError, SignatureError, ValidationError
from appliance.handover import HANDOVER_KIND
from appliance.handover import parse as parse_handover
from appliance.keys.verify import key_id, load_public_key, spki_der
from appliance.ledger import Entry

from .. import wire
from ..errors import (
    AuthError,
    BatchError,
    ContentError,
    EnrolmentError,
    ForkError,
    SyncError,
    UnknownKeyError,
    WireError,
)
from .anomalies import note
from .centre import Centre
from .enrolment import SECRET_SIZE
from .intake import Answer, Intake, Transport
from .storage import (
    AnomalyKind,
    ApplianceRecord,
    ApplianceStatus,
    KeyRecord,
    ReplacementRecord,
    TokenRecord,
)

FETCH_MAX_ENTRIES = 5000
FETCH_MAX_BYTES = 4 << 20
CONTENT_PIECE = 4 << 20


def find_appliance(centre: Centre, name: str) -> ApplianceRecord:
    """An appliance by its id, a unique prefix of it, or its agency's mã định danh."""
    with centre.storage.view() as v:
        apps = v.appliances()
    exact = [a for a in apps if a.id == name]
    found = exact or [a for a in apps if a.id.startswith(name.lower()) or a.org_id == name]
    if not found:
        raise EnrolmentError(f"no appliance {name!r} is enrolled at this centre")
    if len(found) > 1:
        ids = ", ".join(a.id[:16] for a in found)
        raise EnrolmentError(f"{name!r} names several appliances ({ids}); give the full id")
    return found[0]


def issue_replacement_token(centre: Centre, name: str, ttl_hours: int | None = None) -> str:
    """A one-time token that lets a new box take over appliance ``name``'s log."""
    app = find_appliance(centre, name)
    secret = os.urandom(SECRET_SIZE)
    now = centre.clock.now()
    ttl = ttl_hours if ttl_hours is not None else centre.config.token_ttl_hours
    tid = wire.token_id(secret)
    with centre.storage.transaction() as tx:
        tx.add_token(
            TokenRecord(
                token_id=tid,
                secret=secret,
                org_id=app.org_id,
                created_at=iso(now),
                expires_at=iso(now + dt.timedelta(hours=ttl)),
            )
        )
        tx.add_replacement(ReplacementRecord(tid, app.id, iso(now)))
    return wire.make_token(secret, centre.key.kid)


@dataclass(frozen=True)
class Fetched:
    """What a FETCH answers: CBOR of entries, or a piece of a content file."""

    status: int
    body: bytes
    content_type: str


class Replacements:
    """The centre's side of a replacement; every method answers and never raises."""

    def __init__(self, intake: Intake) -> None:
        self.intake = intake
        self.c = intake.c

    # -- helpers ----------------------------------------------------------------------------

    def _signed(self, raw: bytes, rtype: wire.RequestType) -> tuple[wire.SignedRequest, str]:
        """Parse a request signed by the key it carries in its body (the new box's key)."""
        req = wire.parse_request(raw)
        if req.type is not rtype:
            raise WireError(f"a {req.type.value} request does not go here")
        try:
            pem = str(req.body["public_key"])
            pub = load_public_key(pem)
        except (KeyError, TypeError, ValueError, SignatureError, EncodingError) as exc:
            raise WireError(f"the request does not carry its public key: {exc}") from exc
        wire.verify_request(req, pub)
        return req, pem

    def _token(self, body: dict[str, Any], pem: str) -> tuple[TokenRecord, ReplacementRecord]:
        try:
            tid = bytes(body["token_id"])
            proof = bytes(body["token_proof"])
        except (KeyError, TypeError, ValueError) as exc:
            raise WireError(f"the request lacks its token proof: {exc}") from exc
        with self.c.storage.view() as v:
            tok = v.token(tid)
            rep = v.replacement(tid)
        if tok is None or rep is None:
            raise EnrolmentError("this replacement token is unknown at this centre")
        spki = spki_der(load_public_key(pem))
        if not hmac.compare_digest(proof, wire.token_proof(tok.secret, spki)):
            raise AuthError("the replacement token proof is wrong (token mistyped?)")
        if rep.completed_at is not None:
            raise EnrolmentError(
                f"this replacement was completed at {rep.completed_at}; ask for a new token"
            )
        if tok.expires_at < self.c.now():
            raise EnrolmentError(f"this replacement token expired at {tok.expires_at}")
        return tok, rep

    def _refuse(self, digest: bytes, exc: SyncError, app: ApplianceRecord | None = None) -> Answer:
        note(self.c, app.id if app else None, AnomalyKind.ENROLMENT, f"replacement: {exc}")
        return self.intake.refuse(digest, exc, app)

    # -- 2. begin ---------------------------------------------------------------------------

    def begin(self, raw: bytes) -> Answer:
        digest = wire.sha256(raw)
        try:
            req, pem = self._signed(raw, wire.RequestType.RESTORE)
            tok, rep = self._token(req.body, pem)
        except SyncError as exc:
            return self._refuse(digest, exc)
        new_kid = req.device.hex()
        now = self.c.now()
        with self.c.storage.transaction() as tx:
            app = tx.appliance(rep.appliance_id)
            if app is None:
                return self._refuse(digest, UnknownKeyError("the appliance to replace is gone"))
            if tx.appliance_for_key(new_kid) is not None:
                return self._refuse(
                    digest, EnrolmentError("this key already belongs to an appliance"), app
                )
            if app.accepted_size == 0:
                return self._refuse(
                    digest,
                    EnrolmentError(
                        "the centre holds no entries of this appliance: there is nothing to "
                        "restore (provision the new box afresh)"
                    ),
                    app,
                )
            tx.start_replacement(tok.token_id, new_kid, now)
            tx.use_token(tok.token_id, new_kid, now)
            cp = tx.checkpoint(app.id, app.accepted_size)
            if cp is None:
                return self._refuse(
                    digest, BatchError("the centre has no checkpoint at its accepted size"), app
                )
            refs, missing = tx.missing_content(app.id, 1_000_000)
        resp = wire.Response(
            request=digest,
            outcome=wire.Outcome.RESTORING,
            centre_time=now,
            accepted_size=app.accepted_size,
            accepted_root=app.accepted_root,
            receipt=cp.receipt,
            missing=tuple(r.sha256 for r in refs),
            missing_count=missing,
            extra={
                "appliance_id": app.id,
                "org_id": app.org_id,
                "org_name": app.org_name,
                "origin": app.origin,
                "status": app.status.value,
                "claimed_size": app.claimed_size,
                "last_contact": app.last_contact or "",
                "checkpoint": cp.cose,
                "signer_public_key": app.public_key_pem,
                "signer_backing": app.backing,
                "centre_key": self.c.key.public_key_pem(),
                "centre_origin": self.c.origin,
                "centre_name": self.c.config.name,
            },
        )
        return Answer(200, self.c.sign_response(resp), wire.Outcome.RESTORING)

    # -- 3. fetch ---------------------------------------------------------------------------

    def _bound(self, req: wire.SignedRequest) -> ApplianceRecord:
        """The appliance whose log the signer may read: one it is replacing (token still
        valid, hand-over not done), or its own (the signer is its current key)."""
        kid = req.device.hex()
        now = self.c.now()
        with self.c.storage.view() as v:
            rep = v.replacement_for_key(kid)
            tok = v.token(rep.token_id) if rep is not None else None
            app = v.appliance(rep.appliance_id) if rep is not None else v.appliance_for_key(kid)
        if app is None:
            raise UnknownKeyError(f"key {kid} is neither enrolled nor replacing an appliance")
        replacing = (
            rep is not None and rep.completed_at is None and tok is not None
            and tok.expires_at >= now
        )
        current = key_id(load_public_key(app.public_key_pem)).hex() == kid
        if not (replacing or current):
            raise AuthError(
                "this key may not read that log (token expired, or key retired by a hand-over)"
            )
        return app

    def fetch(self, raw: bytes) -> Fetched:
        try:
            req, _pem = self._signed(raw, wire.RequestType.FETCH)
            app = self._bound(req)
            what = req.body.get("what")
            if what == "entries":
                return self._entries(app, req.body)
            if what == "content":
                return self._content(app, req.body)
            raise WireError(f"cannot fetch {what!r}")
        except SyncError as exc:
            status = {"malformed": 400, "content": 404}.get(exc.code, 403)
            note(self.c, None, AnomalyKind.ENROLMENT, f"replacement fetch: {exc}")
            return Fetched(status, str(exc).encode("utf-8"), "text/plain; charset=utf-8")

    def _entries(self, app: ApplianceRecord, body: dict[str, Any]) -> Fetched:
        start = body.get("from")
        if not isinstance(start, int) or not 0 <= start <= app.accepted_size:
            raise WireError(f"entries must start within 0–{app.accepted_size}")
        end = min(app.accepted_size, start + FETCH_MAX_ENTRIES)
        with self.c.storage.view() as v:
            rows = v.entries(app.id, start, end)
        out: list[list[Any]] = []
        size = 0
        for r in rows:
            out.append([r.leaf_hash, r.entry])
            size += 40 + len(r.entry or b"")
            if size >= FETCH_MAX_BYTES:
                break
        payload = {"from": start, "entries": out, "accepted_size": app.accepted_size}
        return Fetched(200, cbor.dumps_text_keyed(payload), wire.MEDIA_TYPE)

    def _content(self, app: ApplianceRecord, body: dict[str, Any]) -> Fetched:
        sha = str(body.get("sha256", ""))
        offset = body.get("offset", 0)
        if not isinstance(offset, int) or offset < 0:
            raise WireError("offset must be a non-negative integer")
        try:
            path = self.c.blobs.path(sha)
        except (SyncError, ValueError) as exc:
            raise WireError(f"{sha!r} is not a SHA-256") from exc
        with self.c.storage.view() as v:
            ref = v.content_expected(app.id, sha)
        if ref is None or not self.c.blobs.has(sha):
            raise ContentError(f"the centre does not hold content {sha} of this appliance")
        with path.open("rb") as fh:
            fh.seek(offset)
            data = fh.read(CONTENT_PIECE)
        return Fetched(200, data, "application/octet-stream")

    # -- 4. hand-over -----------------------------------------------------------------------

    def handover(self, raw: bytes) -> Answer:
        digest = wire.sha256(raw)
        app: ApplianceRecord | None = None
        try:
            req, pem = self._signed(raw, wire.RequestType.HANDOVER)
            try:
                tid = bytes(req.body["token_id"])
            except (KeyError, TypeError, ValueError) as exc:
                raise WireError(f"the hand-over lacks its token: {exc}") from exc
            with self.c.storage.view() as v:
                earlier = v.replacement(tid)
                stored = v.response_for(earlier.appliance_id, digest) if earlier else None
            if stored is not None:  # the same hand-over again (its answer was lost): the same
                return Answer(200, stored, wire.Outcome.ACCEPTED)
            tok, rep = self._token(req.body, pem)
            if rep.new_key_id != req.device.hex():
                raise EnrolmentError("this replacement token is bound to another key")
            batch = wire.Batch.from_body(req.body)
        except SyncError as exc:
            return self._refuse(digest, exc)
        try:
            with self.c.storage.transaction() as tx:
                app = tx.appliance(rep.appliance_id)
                if app is None:
                    raise UnknownKeyError("the appliance to replace is gone")
                self._check_handover(app, batch, req, tok)
                key = KeyRecord(
                    appliance_id=app.id,
                    key_id=req.device.hex(),
                    public_key_pem=pem,
                    backing=str(req.body.get("backing", "")),
                    alg=int(req.body.get("alg", 0)),
                    from_size=batch.start,
                    added_at=self.c.now(),
                )
                tx.rekey(key)
                fresh = tx.appliance(app.id)
                assert fresh is not None
                extra = self.intake._bookkeep(tx, req, fresh, Transport.HTTP)
                answer = self.intake._batch(tx, req, fresh, extra)
                if answer.outcome is not wire.Outcome.ACCEPTED:
                    raise BatchError("the hand-over entry was not accepted as new")
                # Entries the old box signed but never sent are lost with it: its claim ends.
                tx.set_claim(app.id, batch.end, self.c.now())
                tx.remember_response(app.id, digest, answer.body, self.c.now())
                tx.complete_replacement(tok.token_id, batch.end, self.c.now())
                if fresh.status is ApplianceStatus.QUARANTINED:
                    tx.record_anomaly(
                        app.id,
                        AnomalyKind.FORK,
                        "replaced while quarantined: the new box continues the centre's copy",
                        self.c.now(),
                    )
                return answer
        except ForkError as exc:
            return self._refuse(digest, BatchError(f"the hand-over does not extend the "
                                                   f"centre's copy: {exc}"), app)
        except SyncError as exc:
            return self._refuse(digest, exc, app)

    def _check_handover(
        self, app: ApplianceRecord, batch: wire.Batch, req: wire.SignedRequest, tok: TokenRecord
    ) -> None:
        if batch.start != app.accepted_size or batch.end != batch.start + 1:
            raise BatchError(
                f"the hand-over must be the one entry after the centre's {app.accepted_size}; "
                f"got {batch.start}–{batch.end} (the old appliance sent more since the restore "
                "began: restore again)"
            )
        item = batch.items[0]
        if not isinstance(item, bytes):
            raise BatchError("the hand-over entry cannot be withheld")
        try:
            entry = Entry.decode(item)
            if entry.kind != HANDOVER_KIND or entry.index != batch.start:
                raise ValidationError(f"entry {entry.index} is a {entry.kind!r} entry")
            h = parse_handover(entry.index, entry.data)
        except (EncodingError, ValidationError) as exc:
            raise BatchError(f"not a hand-over entry: {exc}") from exc
        data = entry.data or {}
        current = load_public_key(app.public_key_pem)
        if key_id(h.previous_key) != key_id(current):
            raise BatchError("the hand-over names another key than the appliance's current one")
        if key_id(h.new_key) != req.device:
            raise BatchError("the hand-over gives the log to another key than its signer's")
        if data.get("appliance") != app.id or data.get("restored_root") != app.accepted_root.hex():
            raise BatchError("the hand-over names another log or another restored root")
        if data.get("token_id") != tok.token_id.hex():
            raise BatchError("the hand-over names another replacement token")
