"""Enrolment on the appliance: spend a one-time token, pin the centre key.

The request is signed by the device key and carries an HMAC of the device's public key under
the token secret (the secret itself never travels). The centre's answer is accepted only if
its key's id starts with the fingerprint printed in the token, so a man in the middle cannot
get his own key pinned. Works online, or by USB stick (request out, answer back).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from appliance import clock as clockmod
from appliance.config import ApplianceConfig
from appliance.errors import LuutruError
from appliance.fsutil import write_atomic
from appliance.keys.base import KeyProvider
from appliance.keys.verify import key_id, load_public_key, spki_der

from .. import wire
from ..errors import AuthError, CentreRefusedError, EnrolmentError, TransportError, WireError
from .state import (
    PENDING_ENROLMENT_NAME,
    USB_CENTRE,
    AgentState,
    Enrolment,
    device_dir,
    load_state,
    save_enrolment,
    save_state,
    sync_dir,
)


@dataclass(frozen=True)
class EnrolRequest:
    raw: bytes
    fingerprint: bytes


def build_request(
    key: KeyProvider, config: ApplianceConfig, token: str, now: str, via: wire.Via
) -> EnrolRequest:
    secret, fingerprint = wire.parse_token(token)
    spki = spki_der(load_public_key(key.public_key_pem()))
    body = {
        "token_id": wire.token_id(secret),
        "proof": wire.token_proof(secret, spki),
        "org_id": config.org_id,
        "org_name": config.org_name,
        "origin": config.origin,
        "public_key": key.public_key_pem(),
        "backing": key.backing.value,
        "alg": key.alg,
    }
    raw = wire.sign_request(key, wire.RequestType.ENROL, 0, now, body, via)
    return EnrolRequest(raw, fingerprint)


def pinned_answer(
    answer: bytes, request_digest: bytes | None, fingerprint: bytes, what: str
) -> tuple[wire.Response, str]:
    """Read an answer that brings the centre key (an enrolment, a restore): the key inside is
    trusted only once its id matches the token's fingerprint, and then the whole answer is
    checked with it. Returns the answer and the key (PEM)."""
    from appliance import cbor, cose

    payload: object = None
    try:
        msg = cose.decode_sign1(answer)
        payload = cbor.loads(msg.payload)
        extra = payload.get("extra") or {}  # type: ignore[attr-defined]
        pem = str(extra["centre_key"])
        centre_key = load_public_key(pem)
    except (LuutruError, KeyError, TypeError, ValueError, AttributeError) as exc:
        reason = payload.get("message") if isinstance(payload, dict) else None
        if reason:  # a refusal: its reason is shown, though it cannot be checked yet
            raise EnrolmentError(f"the centre refused the {what}: {reason}") from exc
        raise EnrolmentError(f"the centre's answer is not a {what}: {exc}") from exc
    if key_id(centre_key)[:8] != fingerprint:
        raise AuthError(
            "the centre's key does not match the fingerprint in the token: refusing to pin it"
        )
    return wire.verify_response(answer, centre_key, request_digest), pem


def accept(
    data_dir: Path, answer: bytes, request_digest: bytes | None, fingerprint: bytes, url: str
) -> Enrolment:
    """Check the centre's answer against the token's fingerprint and pin the centre key."""
    resp, pem = pinned_answer(answer, request_digest, fingerprint, "enrolment")
    if resp.outcome is not wire.Outcome.ENROLLED:
        raise CentreRefusedError(resp.message or "enrolment refused", resp.code or "enrolment")
    enrolment = Enrolment(
        centre_url=url,
        centre_key_pem=pem,
        centre_origin=str(resp.extra.get("centre_origin", "")),
        centre_name=str(resp.extra.get("centre_name", "")),
        appliance_id=str(resp.extra.get("appliance_id", "")),
        org_id=str(resp.extra.get("org_id", "")),
        enrolled_at=resp.centre_time,
    )
    save_enrolment(data_dir, enrolment)
    state = load_state(data_dir)
    state.centre_url = url
    save_state(data_dir, state)
    (sync_dir(data_dir) / PENDING_ENROLMENT_NAME).unlink(missing_ok=True)
    return enrolment


async def enrol_online(
    data_dir: Path,
    key: KeyProvider,
    config: ApplianceConfig,
    centre_url: str,
    token: str,
    clock: clockmod.Clock,
) -> Enrolment:
    from .http import CentreClient

    req = build_request(key, config, token, clockmod.iso(clock.now()), wire.Via.HTTP)
    async with CentreClient(centre_url) as client:
        status, body = await client.post_cbor("/v1/enrol", req.raw)
    if status >= 500:
        raise TransportError(f"the centre answered HTTP {status}")
    try:
        return accept(data_dir, body, wire.sha256(req.raw), req.fingerprint, centre_url.rstrip("/"))
    except EnrolmentError as exc:
        if status != 200:
            raise EnrolmentError(f"enrolment refused (HTTP {status}): {exc}") from None
        raise
    except WireError as exc:
        raise EnrolmentError(f"enrolment failed (HTTP {status}): {exc}") from exc


def enrol_export(
    data_dir: Path,
    key: KeyProvider,
    config: ApplianceConfig,
    token: str,
    folder: Path,
    clock: clockmod.Clock,
) -> Path:
    """Write the enrolment request to a USB folder; the answer comes back by --import-receipts."""

    req = build_request(key, config, token, clockmod.iso(clock.now()), wire.Via.USB)
    out = device_dir(folder, key.kid) / "outbox" / "enrol.cbor"
    write_atomic(out, req.raw)
    pending = {"fingerprint": req.fingerprint.hex(), "request": wire.sha256(req.raw).hex()}
    write_atomic(
        sync_dir(data_dir) / PENDING_ENROLMENT_NAME, json.dumps(pending).encode("utf-8")
    )
    if not (sync_dir(data_dir) / "state.json").exists():
        save_state(data_dir, AgentState())
    return out


def accept_usb(data_dir: Path, answer: bytes) -> Enrolment | None:
    """Accept an enrolment answer found on a USB stick if one is pending."""
    path = sync_dir(data_dir) / PENDING_ENROLMENT_NAME
    try:
        pending = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return None
    return accept(
        data_dir,
        answer,
        bytes.fromhex(pending["request"]),
        bytes.fromhex(pending["fingerprint"]),
        USB_CENTRE,
    )
