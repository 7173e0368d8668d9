"""Enrolment at the centre (sync/central/enrolment.py): one-time tokens for one agency, spent
by a request that proves the token and possession of the key it pins."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from appliance.errors import ValidationError
from appliance.keys.software import SoftwareKey
from sync import wire
from sync.agent.enrol import build_request
from sync.central.centre import Centre
from sync.central.enrolment import enrol, issue_token
from sync.central.intake import Answer, Intake
from sync.central.storage import AnomalyKind
from tests.sync.conftest import Appliance, response


def _enrol(app: Appliance, intake: Intake, token: str) -> Answer:
    assert app.store.key is not None
    req = build_request(app.store.key, app.store.config, token, app.now(), wire.Via.HTTP)
    return enrol(intake, req.raw)


def _token_row(centre: Centre, token: str) -> Any:
    secret, _ = wire.parse_token(token)
    with centre.storage.view() as v:
        return v.token(wire.token_id(secret))


def _enrolment_anomalies(centre: Centre) -> int:
    with centre.storage.view() as v:
        return sum(a.count for a in v.anomalies() if a.kind is AnomalyKind.ENROLMENT)


def test_a_token_names_the_centre_key_and_expires(centre: Centre) -> None:
    """lt1.<secret>.<first 8 bytes of the centre key id>, kept with its agency and expiry."""
    token = issue_token(centre, "000.21.08.H49", ttl_hours=2)
    secret, fingerprint = wire.parse_token(token)
    assert len(secret) == 20 and fingerprint == centre.key.kid[:8]
    row = _token_row(centre, token)
    assert row.org_id == "000.21.08.H49" and row.used_by is None and row.secret == secret
    made = dt.datetime.fromisoformat(row.created_at)
    assert dt.datetime.fromisoformat(row.expires_at) - made == dt.timedelta(hours=2)
    assert issue_token(centre, "000.21.08.H49") != token


def test_a_token_for_a_malformed_agency_id_is_refused(centre: Centre) -> None:
    """The mã định danh is checked before a token is made."""
    with pytest.raises(ValidationError, match="is not an agency identifier"):
        issue_token(centre, "not an id")


def test_enrolment_pins_the_device_key_and_spends_the_token(
    make_appliance: Callable[..., Appliance], centre: Centre, intake: Intake
) -> None:
    """ENROLLED with the centre key; the appliance is recorded; the token is used by it; the
    same appliance may enrol again with it (a lost answer), another may not."""
    app = make_appliance(enrolled=False)
    token = issue_token(centre, app.store.config.org_id)
    ans = _enrol(app, intake, token)
    resp = wire.verify_response(ans.body, centre.public_key, None)
    assert ans.status == 200 and resp.outcome is wire.Outcome.ENROLLED
    assert resp.extra["appliance_id"] == app.id
    assert resp.extra["centre_key"] == centre.key.public_key_pem()
    with centre.storage.view() as v:
        rec = v.appliance(app.id)
        assert rec is not None and rec.origin == app.store.config.origin
        assert rec.public_key_pem == app.store.key.public_key_pem()  # type: ignore[union-attr]
    assert _token_row(centre, token).used_by == app.id
    assert response(centre, _enrol(app, intake, token)).outcome is wire.Outcome.ENROLLED
    other = make_appliance("other", enrolled=False)
    refused = response(centre, _enrol(other, intake, token))
    assert refused.outcome is wire.Outcome.REFUSED
    assert "already used by another appliance" in refused.message


def test_an_expired_token_is_refused(
    make_appliance: Callable[..., Appliance], centre: Centre, intake: Intake
) -> None:
    """Past its expiry an unused token enrols nobody."""
    app = make_appliance(enrolled=False)
    token = issue_token(centre, app.store.config.org_id, ttl_hours=1)
    centre.clock.advance(3601)  # type: ignore[attr-defined]
    resp = response(centre, _enrol(app, intake, token))
    assert resp.outcome is wire.Outcome.REFUSED and "expired" in resp.message
    assert _token_row(centre, token).used_by is None


def test_a_token_of_another_agency_is_refused(
    make_appliance: Callable[..., Appliance], centre: Centre, intake: Intake
) -> None:
    """A token issued for one commune cannot enrol another's box."""
    app = make_appliance(enrolled=False)
    token = issue_token(centre, "000.21.09.H49")
    resp = response(centre, _enrol(app, intake, token))
    assert resp.outcome is wire.Outcome.REFUSED
    assert f"issued for 000.21.09.H49, but the appliance is {app.store.config.org_id}" in (
        resp.message)


def test_a_wrong_proof_is_refused_and_counted(
    make_appliance: Callable[..., Appliance], centre: Centre, intake: Intake
) -> None:
    """The right token id with an HMAC made from another secret (a mistyped token)."""
    app = make_appliance(enrolled=False)
    token = issue_token(centre, app.store.config.org_id)
    assert app.store.key is not None
    body = wire.parse_request(build_request(
        app.store.key, app.store.config, token, app.now(), wire.Via.HTTP).raw).body
    body["proof"] = bytes(b ^ 1 for b in body["proof"])
    raw = wire.sign_request(app.store.key, wire.RequestType.ENROL, 0, app.now(), body)
    before = _enrolment_anomalies(centre)
    resp = response(centre, enrol(intake, raw))
    assert resp.outcome is wire.Outcome.REFUSED and "token proof is wrong" in resp.message
    assert _enrolment_anomalies(centre) == before + 1
    assert _token_row(centre, token).used_by is None


def test_a_request_not_signed_by_the_key_it_pins_is_refused(
    make_appliance: Callable[..., Appliance], centre: Centre, intake: Intake, tmp_path: Path
) -> None:
    """Proof of possession: a body naming one key, signed by another, pins nothing."""
    app = make_appliance(enrolled=False)
    token = issue_token(centre, app.store.config.org_id)
    assert app.store.key is not None
    body = wire.parse_request(build_request(
        app.store.key, app.store.config, token, app.now(), wire.Via.HTTP).raw).body
    thief = SoftwareKey.create(tmp_path / "thief")
    raw = wire.sign_request(thief, wire.RequestType.ENROL, 0, app.now(), body)
    resp = response(centre, enrol(intake, raw))
    assert resp.outcome is wire.Outcome.REFUSED
    with centre.storage.view() as v:
        assert v.appliance(app.id) is None and v.appliance(thief.kid.hex()) is None


@pytest.mark.parametrize(
    ("rtype", "drop", "match"),
    [
        (wire.RequestType.STATUS, None, "not an enrolment request"),
        (wire.RequestType.ENROL, "public_key", "enrolment request is malformed"),
        (wire.RequestType.ENROL, "token_id", "enrolment request is malformed"),
    ],
    ids=["wrong-type", "no-public-key", "no-token-id"],
)
def test_malformed_enrolment_requests_are_refused(
    make_appliance: Callable[..., Appliance], centre: Centre, intake: Intake,
    rtype: wire.RequestType, drop: str | None, match: str,
) -> None:
    """Another request type, or a body without a field it needs, is a signed refusal."""
    app = make_appliance(enrolled=False)
    token = issue_token(centre, app.store.config.org_id)
    assert app.store.key is not None
    body = wire.parse_request(build_request(
        app.store.key, app.store.config, token, app.now(), wire.Via.HTTP).raw).body
    if drop:
        del body[drop]
    raw = wire.sign_request(app.store.key, rtype, 0, app.now(), body)
    ans = enrol(intake, raw)
    resp = response(centre, ans)
    assert resp.outcome is wire.Outcome.REFUSED and match in resp.message
    assert resp.request == wire.sha256(raw)
    assert enrol(intake, b"not cbor").outcome is wire.Outcome.REFUSED
