"""Enrolment: one-time tokens issued at the centre, and the signed request that spends one.

A token is ``lt1.<secret>.<fingerprint>``: the secret proves the technician was given it (the
appliance sends an HMAC of its own public key under the secret, never the secret itself), and
the fingerprint is the first 8 bytes of the centre key id, so the appliance can check the
centre key it is about to pin. The device key is pinned at the centre by the same request,
which it signs (proof of possession).
"""

from __future__ import annotations

import datetime as dt
import hmac
import os

from appliance.errors import SignatureError
from appliance.identifiers import validate_organ_id
from appliance.keys.verify import load_public_key, spki_der

from .. import wire
from ..errors import AuthError, EnrolmentError, SyncError, WireError
from .anomalies import note
from .centre import Centre
from .intake import Answer, Intake
from .storage import AnomalyKind, ApplianceRecord, TokenRecord

SECRET_SIZE = 20


def issue_token(centre: Centre, org_id: str, ttl_hours: int | None = None) -> str:
    """Create a one-time enrolment token for the agency ``org_id``."""
    org_id = validate_organ_id(org_id, "org_id", strict=False)
    secret = os.urandom(SECRET_SIZE)
    now = centre.clock.now()
    ttl = ttl_hours if ttl_hours is not None else centre.config.token_ttl_hours
    from appliance.clock import iso

    with centre.storage.transaction() as tx:
        tx.add_token(
            TokenRecord(
                token_id=wire.token_id(secret),
                secret=secret,
                org_id=org_id,
                created_at=iso(now),
                expires_at=iso(now + dt.timedelta(hours=ttl)),
            )
        )
    return wire.make_token(secret, centre.key.kid)


def enrol(intake: Intake, raw: bytes) -> Answer:
    """Spend a token: pin the device key that signed ``raw``; answer with the centre key."""
    c = intake.c
    digest = wire.sha256(raw)
    try:
        req = wire.parse_request(raw)
        if req.type is not wire.RequestType.ENROL:
            raise WireError("not an enrolment request")
        body = req.body
        pem = str(body["public_key"])
        pub = load_public_key(pem)
        wire.verify_request(req, pub)  # proof of possession of the key being pinned
        tid = bytes(body["token_id"])
        proof = bytes(body["proof"])
        org_id = str(body["org_id"])
        origin = str(body["origin"])
    except (KeyError, TypeError, ValueError, SignatureError) as exc:
        err: SyncError = WireError(f"enrolment request is malformed: {exc}")
        note(intake.c, None, AnomalyKind.ENROLMENT, str(err))
        return intake.refuse(digest, err)
    except SyncError as exc:
        note(intake.c, None, AnomalyKind.ENROLMENT, str(exc))
        return intake.refuse(digest, exc)
    app_id = req.device.hex()
    now = c.now()
    try:
        with c.storage.transaction() as tx:
            tok = tx.token(tid)
            if tok is None:
                raise EnrolmentError("this enrolment token is unknown at this centre")
            if tx.replacement(tid) is not None:
                raise EnrolmentError(
                    "this token replaces a dead appliance: use it with `luutru restore "
                    "--from-centre` on the new box, not with `luutru enrol`"
                )
            if not hmac.compare_digest(proof, wire.token_proof(tok.secret, spki_der(pub))):
                raise AuthError("the enrolment token proof is wrong (token mistyped?)")
            if tok.used_by is not None and tok.used_by != app_id:
                raise EnrolmentError("this enrolment token was already used by another appliance")
            if tok.used_by is None and tok.expires_at < now:
                raise EnrolmentError(f"this enrolment token expired at {tok.expires_at}")
            if org_id != tok.org_id:
                raise EnrolmentError(
                    f"the token was issued for {tok.org_id}, but the appliance is {org_id}"
                )
            existing = tx.appliance(app_id)
            if existing is None:
                tx.add_appliance(
                    ApplianceRecord(
                        id=app_id,
                        org_id=org_id,
                        org_name=str(body.get("org_name", "")),
                        origin=origin,
                        public_key_pem=pem,
                        backing=str(body.get("backing", "")),
                        alg=int(body.get("alg", 0)),
                        enrolled_at=now,
                    )
                )
                tx.touch(app_id, now)
            tx.use_token(tid, app_id, now)
    except SyncError as exc:
        note(intake.c, None, AnomalyKind.ENROLMENT, f"{app_id}: {exc}")
        return intake.refuse(digest, exc)
    resp = wire.Response(
        request=digest,
        outcome=wire.Outcome.ENROLLED,
        centre_time=now,
        extra={
            "appliance_id": app_id,
            "org_id": org_id,
            "centre_key": c.key.public_key_pem(),
            "centre_origin": c.origin,
            "centre_name": c.config.name,
        },
    )
    return Answer(200, c.sign_response(resp), wire.Outcome.ENROLLED)
