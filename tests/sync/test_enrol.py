"""Enrolment on the appliance (sync/agent/enrol.py): the request proves the token without sending
it, and the centre key is pinned only if its id matches the token's fingerprint and the whole
answer verifies with it; online and by USB stick."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from appliance import cbor, cose
from appliance.keys.verify import load_public_key, spki_der
from sync import wire
from sync.agent.enrol import (
    EnrolRequest,
    accept,
    accept_usb,
    build_request,
    enrol_export,
    pinned_answer,
)
from sync.agent.state import USB_CENTRE, load_enrolment, load_state, sync_dir
from sync.central.centre import Centre
from sync.central.enrolment import enrol, issue_token
from sync.central.intake import Intake
from sync.errors import AuthError, CentreRefusedError, EnrolmentError, WireError
from tests.sync.conftest import Appliance

# How a changed answer can be refused: its key, its signature or its structure.
REFUSED = r"fingerprint|not signed by the pinned centre key|not a enrolment|not a luutru|" \
    r"lacks a field|answers a different request|refused the enrolment"


def _request(app: Appliance, token: str, via: wire.Via = wire.Via.HTTP) -> EnrolRequest:
    assert app.store.key is not None
    return build_request(app.store.key, app.store.config, token, app.now(), via)


def test_the_request_proves_the_token_without_carrying_its_secret(
    make_appliance: Callable[..., Appliance], centre: Centre
) -> None:
    """The body has the token id and an HMAC over the device's SPKI; the secret is nowhere in
    the bytes; the request is signed by the device key it pins."""
    app = make_appliance(enrolled=False)
    token = issue_token(centre, app.store.config.org_id)
    secret, fingerprint = wire.parse_token(token)
    assert app.store.key is not None
    req = build_request(app.store.key, app.store.config, token, app.now(), wire.Via.HTTP)
    assert req.fingerprint == fingerprint == centre.key.kid[:8]
    assert secret not in req.raw
    parsed = wire.parse_request(req.raw)
    device = load_public_key(app.store.key.public_key_pem())
    wire.verify_request(parsed, device)
    assert parsed.type is wire.RequestType.ENROL and parsed.seq == 0
    assert parsed.body["token_id"] == wire.token_id(secret)
    assert parsed.body["proof"] == wire.token_proof(secret, spki_der(device))
    assert parsed.body["org_id"] == app.store.config.org_id


def test_accepting_the_answer_pins_the_centre_key(
    make_appliance: Callable[..., Appliance], centre: Centre, intake: Intake
) -> None:
    """enrolment.json names the centre, its key, origin and our id; state.json the URL."""
    app = make_appliance(enrolled=False)
    req = _request(app, issue_token(centre, app.store.config.org_id))
    ans = enrol(intake, req.raw)
    e = accept(app.data_dir, ans.body, wire.sha256(req.raw), req.fingerprint, "http://c")
    assert e == load_enrolment(app.data_dir)
    assert (e.centre_url, e.centre_origin, e.appliance_id, e.org_id) == (
        "http://c", centre.origin, app.id, app.store.config.org_id)
    assert e.centre_key_pem == centre.key.public_key_pem()
    assert load_state(app.data_dir).centre_url == "http://c"


def test_a_centre_key_that_does_not_match_the_token_is_never_pinned(
    make_appliance: Callable[..., Appliance], centre: Centre, intake: Intake
) -> None:
    """A man in the middle answers with his own key: its id is not the token's fingerprint,
    so nothing is written."""
    app = make_appliance(enrolled=False)
    req = _request(app, issue_token(centre, app.store.config.org_id))
    ans = enrol(intake, req.raw)
    wrong = bytes([req.fingerprint[0] ^ 1]) + req.fingerprint[1:]
    with pytest.raises(AuthError, match="does not match the fingerprint in the token"):
        accept(app.data_dir, ans.body, wire.sha256(req.raw), wrong, "http://c")
    assert not (sync_dir(app.data_dir) / "enrolment.json").exists()


def test_every_bit_flip_of_the_answer_is_refused_and_pins_nothing(
    make_appliance: Callable[..., Appliance], centre: Centre, intake: Intake
) -> None:
    """Each flipped bit (every 5th byte) fails one of the checks; enrolment.json never
    appears."""
    app = make_appliance(enrolled=False)
    req = _request(app, issue_token(centre, app.store.config.org_id))
    raw, fp = req.raw, req.fingerprint
    body = enrol(intake, raw).body
    for i in range(0, len(body), 5):
        b = bytearray(body)
        b[i] ^= 0x20
        with pytest.raises((AuthError, WireError, EnrolmentError), match=REFUSED):
            accept(app.data_dir, bytes(b), wire.sha256(raw), fp, "http://c")
    assert not (sync_dir(app.data_dir) / "enrolment.json").exists()


def test_an_answer_to_another_request_is_refused(
    make_appliance: Callable[..., Appliance], centre: Centre, intake: Intake
) -> None:
    """The answer names the digest of the request it answers."""
    app = make_appliance(enrolled=False)
    req = _request(app, issue_token(centre, app.store.config.org_id))
    ans = enrol(intake, req.raw)
    with pytest.raises(AuthError, match="answers a different request"):
        accept(app.data_dir, ans.body, b"\x00" * 32, req.fingerprint, "u")


def test_a_refusal_shows_the_centres_reason(
    make_appliance: Callable[..., Appliance], centre: Centre, intake: Intake
) -> None:
    """An unknown token: the refusal's message is shown (unchecked: it carries no key)."""
    app = make_appliance(enrolled=False)
    token = wire.make_token(b"x" * 20, centre.key.kid)
    req = _request(app, token)
    ans = enrol(intake, req.raw)
    with pytest.raises(EnrolmentError, match="refused the enrolment: this enrolment token is "
                                             "unknown at this centre"):
        accept(app.data_dir, ans.body, wire.sha256(req.raw), req.fingerprint, "u")


def test_a_signed_answer_that_is_not_enrolled_is_a_refusal(
    make_appliance: Callable[..., Appliance], centre: Centre
) -> None:
    """A correctly signed answer with the centre key but another outcome pins nothing."""
    app = make_appliance(enrolled=False)
    resp = wire.Response(b"\x01" * 32, wire.Outcome.REFUSED, "t", code="enrolment",
                         message="no", extra={"centre_key": centre.key.public_key_pem()})
    raw = wire.sign_response(resp, centre.key)
    with pytest.raises(CentreRefusedError, match=r"^no$"):
        accept(app.data_dir, raw, b"\x01" * 32, centre.key.kid[:8], "u")
    assert not (sync_dir(app.data_dir) / "enrolment.json").exists()


def test_pinned_answer_refuses_bytes_that_are_not_an_answer() -> None:
    """Garbage, or a COSE message without the centre key, is not an answer."""
    with pytest.raises(EnrolmentError, match="answer is not a restore"):
        pinned_answer(b"garbage", None, b"\x00" * 8, "restore")
    msg = cose.sign1(cbor.dumps({"extra": {}}), -8, b"k", lambda tbs: b"s" * 64).encode()
    with pytest.raises(EnrolmentError, match="answer is not a enrolment"):
        pinned_answer(msg, None, b"\x00" * 8, "enrolment")


def test_usb_enrolment_round_trip(
    make_appliance: Callable[..., Appliance], centre: Centre, intake: Intake, tmp_path: Path
) -> None:
    """The request goes to the stick, the pending digest stays here; the answer brought back
    is accepted once, for the USB centre; without a pending request nothing happens."""
    app = make_appliance(enrolled=False)
    assert accept_usb(app.data_dir, b"anything") is None
    assert app.store.key is not None
    stick = tmp_path / "usb"
    out = enrol_export(app.data_dir, app.store.key, app.store.config,
                       issue_token(centre, app.store.config.org_id), stick, app.clock)
    assert out == stick / "luutru-sync" / app.store.key.kid.hex() / "outbox" / "enrol.cbor"
    assert wire.parse_request(out.read_bytes()).via is wire.Via.USB
    assert (sync_dir(app.data_dir) / "enrolment-pending.json").exists()
    ans = enrol(intake, out.read_bytes())
    e = accept_usb(app.data_dir, ans.body)
    assert e is not None and e.centre_url == USB_CENTRE
    assert not (sync_dir(app.data_dir) / "enrolment-pending.json").exists()
    assert accept_usb(app.data_dir, ans.body) is None
