"""The sync wire format: signed requests, batches, centre responses and receipts (pure).

Every object is a COSE_Sign1 (RFC 9052) over a CBOR map in deterministic encoding. Requests
from an appliance are signed by its device key; responses and receipts by the centre's key.
A receipt is the centre's witness cosignature over the appliance's own signed checkpoint: it
embeds the checkpoint's exact bytes so that it can be checked years later with the two public
keys alone. The same objects travel over HTTP (``application/cbor``) and on a USB stick.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from appliance import cbor, cose
from appliance.errors import EncodingError, SignatureError
from appliance.keys.base import KeyProvider
from appliance.keys.verify import PublicKey, key_id, verifier
from appliance.merkle import HASH_SIZE

from .errors import AuthError, WireError

USB_ROOT = "luutru-sync"  # the folder on a USB stick (or exchange folder) both ends use

PROTOCOL = "luutru-sync/1"
MEDIA_TYPE = "application/cbor"
CT_REQUEST = "application/vnd.luutru.sync-request+cbor"
CT_RESPONSE = "application/vnd.luutru.sync-response+cbor"
CT_RECEIPT = "application/vnd.luutru.receipt+cbor"
TOKEN_PREFIX = "lt1"
NONCE_SIZE = 16


class RequestType(StrEnum):
    ENROL = "enrol"
    BATCH = "batch"
    STATUS = "status"
    CHUNK = "chunk"
    HEAD = "head"  # where an upload stands (tus HEAD): signed like every other request
    RESTORE = "restore"  # a new box asks to take over a dead appliance's log
    FETCH = "fetch"  # ... and downloads its entries and content
    HANDOVER = "handover"  # ... and sends the hand-over entry for the centre to countersign
    UPGRADE = "upgrade"  # fetch a version of a signed PDF that the centre upgraded (B-LTA)


class Via(StrEnum):
    """How a request travelled: sequence numbers are enforced online only."""

    HTTP = "http"
    USB = "usb"


class Outcome(StrEnum):
    """What the centre did with a request; leaves the process in responses and reports."""

    ENROLLED = "enrolled"
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"  # nothing new: the same entries were accepted before
    PARKED = "parked"  # starts beyond the accepted size: kept until the gap fills
    STATUS = "status"
    RESTORING = "restoring"  # a replacement token was accepted: the log may be downloaded
    REFUSED = "refused"
    QUARANTINED = "quarantined"


def encode_map(value: dict[str, Any]) -> bytes:
    """Deterministic CBOR of a text-keyed map without floats (every wire payload)."""
    return cbor.dumps_text_keyed(value)


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def new_nonce() -> bytes:
    return os.urandom(NONCE_SIZE)


# -- signed requests ------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedRequest:
    """A request as the centre sees it after the envelope was parsed (not yet verified)."""

    raw: bytes
    msg: cose.Sign1
    type: RequestType
    device: bytes
    seq: int
    nonce: bytes
    time: str
    via: Via
    body: dict[str, Any]

    @property
    def digest(self) -> bytes:
        return sha256(self.raw)


def sign_request(
    key: KeyProvider,
    rtype: RequestType,
    seq: int,
    time: str,
    body: dict[str, Any],
    via: Via = Via.HTTP,
    nonce: bytes | None = None,
) -> bytes:
    """Build and sign a request with the device key."""
    payload = encode_map(
        {
            "p": PROTOCOL,
            "type": rtype.value,
            "device": key.kid,
            "seq": seq,
            "nonce": nonce if nonce is not None else new_nonce(),
            "time": time,
            "via": via.value,
            "body": body,
        }
    )
    msg = cose.sign1(payload, key.alg, key.kid, key.sign, {cose.HDR_CONTENT_TYPE: CT_REQUEST})
    return msg.encode()


def parse_request(raw: bytes) -> SignedRequest:
    """Parse the envelope of a request; the caller then verifies it with the enrolled key."""
    try:
        msg = cose.decode_sign1(raw)
        if msg.protected_headers.get(cose.HDR_CONTENT_TYPE) != CT_REQUEST:
            raise WireError("not a luutru sync request (content type)")
        p = cbor.loads(msg.payload)
    except EncodingError as exc:
        raise WireError(f"request is not a COSE_Sign1 over CBOR: {exc}") from exc
    if not isinstance(p, dict) or p.get("p") != PROTOCOL:
        raise WireError(f"request does not speak {PROTOCOL}")
    # bytes() of an int is that many zero bytes: type-check before anything is converted.
    if not isinstance(p.get("device"), bytes) or not isinstance(p.get("nonce"), bytes):
        raise WireError("request device or nonce is not a byte string")
    try:
        req = SignedRequest(
            raw=bytes(raw),
            msg=msg,
            type=RequestType(p["type"]),
            device=bytes(p["device"]),
            seq=p["seq"],
            nonce=bytes(p["nonce"]),
            time=str(p["time"]),
            via=Via(p.get("via", "http")),
            body=p["body"],
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise WireError(f"request lacks a field or has a wrong one: {exc}") from exc
    if not isinstance(req.seq, int) or req.seq < 0 or not isinstance(req.body, dict):
        raise WireError("request sequence number or body is malformed")
    if len(req.nonce) != NONCE_SIZE:
        raise WireError("request nonce must be 16 bytes")
    if msg.kid is not None and msg.kid != req.device:
        raise WireError("request header and payload name different devices")
    return req


def verify_request(req: SignedRequest, public_key: PublicKey) -> None:
    """Raise AuthError unless the request is signed by ``public_key``."""
    if key_id(public_key) != req.device:
        raise AuthError("request names a device other than the key it is checked with")
    try:
        cose.verify_sign1(req.msg, verifier(public_key))
    except (SignatureError, EncodingError) as exc:
        raise AuthError(f"request signature does not verify: {exc}") from exc


# -- batches --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Withheld:
    """A log entry that concerns a classified record: only its RFC 9162 leaf hash travels."""

    leaf_hash: bytes


BatchItem = bytes | Withheld


@dataclass(frozen=True)
class Batch:
    """Entries [start, end) of an appliance's log with its signed checkpoint at ``end``."""

    start: int
    end: int
    checkpoint: bytes  # COSE_Sign1 of the appliance's checkpoint at tree size ``end``
    proof: tuple[bytes, ...]  # RFC 9162 consistency proof start -> end
    items: tuple[BatchItem, ...]

    def to_body(self) -> dict[str, Any]:
        return {
            "from": self.start,
            "to": self.end,
            "checkpoint": self.checkpoint,
            "proof": list(self.proof),
            "entries": [
                {"withheld": it.leaf_hash} if isinstance(it, Withheld) else it
                for it in self.items
            ],
        }

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> Batch:
        try:
            start, end = body["from"], body["to"]
            checkpoint = bytes(body["checkpoint"])
            proof = tuple(bytes(p) for p in body["proof"])
            items: list[BatchItem] = []
            for it in body["entries"]:
                if isinstance(it, bytes):
                    items.append(it)
                elif isinstance(it, dict) and set(it) == {"withheld"}:
                    h = bytes(it["withheld"])
                    if len(h) != HASH_SIZE:
                        raise WireError("a withheld entry's leaf hash must be 32 bytes")
                    items.append(Withheld(h))
                else:
                    raise WireError("a batch entry is neither entry bytes nor a withheld hash")
        except (KeyError, TypeError, ValueError) as exc:
            raise WireError(f"batch lacks a field or has a wrong one: {exc}") from exc
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start <= end):
            raise WireError("batch range is malformed")
        if len(items) != end - start:
            raise WireError(f"batch {start}-{end} carries {len(items)} entries")
        if any(len(p) != HASH_SIZE for p in proof):
            raise WireError("a consistency proof element is not 32 bytes")
        return cls(start, end, checkpoint, proof, tuple(items))

    @property
    def withheld_count(self) -> int:
        return sum(1 for it in self.items if isinstance(it, Withheld))


# -- centre responses and receipts ----------------------------------------------------------


@dataclass(frozen=True)
class Response:
    """The centre's signed answer to one request (bound to it by the request's SHA-256)."""

    request: bytes
    outcome: Outcome
    centre_time: str
    accepted_size: int = 0
    accepted_root: bytes = b""
    receipt: bytes | None = None
    missing: tuple[str, ...] = ()  # content SHA-256 (hex) the centre still lacks
    missing_count: int = 0
    last_seq: int = 0
    code: str = ""
    message: str = ""
    retryable: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def to_map(self) -> dict[str, Any]:
        m: dict[str, Any] = {
            "p": PROTOCOL,
            "type": "response",
            "request": self.request,
            "outcome": self.outcome.value,
            "centre_time": self.centre_time,
            "accepted_size": self.accepted_size,
            "accepted_root": self.accepted_root,
            "missing": list(self.missing),
            "missing_count": self.missing_count,
            "last_seq": self.last_seq,
            "code": self.code,
            "message": self.message,
            "retryable": self.retryable,
            "extra": self.extra,
        }
        if self.receipt is not None:
            m["receipt"] = self.receipt
        return m

    @classmethod
    def from_map(cls, m: Any) -> Response:
        if not isinstance(m, dict) or m.get("p") != PROTOCOL or m.get("type") != "response":
            raise WireError("not a luutru sync response")
        try:
            return cls(
                request=bytes(m["request"]),
                outcome=Outcome(m["outcome"]),
                centre_time=str(m["centre_time"]),
                accepted_size=int(m["accepted_size"]),
                accepted_root=bytes(m["accepted_root"]),
                receipt=bytes(m["receipt"]) if m.get("receipt") is not None else None,
                missing=tuple(str(s) for s in m["missing"]),
                missing_count=int(m["missing_count"]),
                last_seq=int(m["last_seq"]),
                code=str(m["code"]),
                message=str(m["message"]),
                retryable=bool(m["retryable"]),
                extra=dict(m.get("extra") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise WireError(f"response lacks a field or has a wrong one: {exc}") from exc


def sign_response(resp: Response, key: KeyProvider) -> bytes:
    payload = encode_map(resp.to_map())
    msg = cose.sign1(payload, key.alg, key.kid, key.sign, {cose.HDR_CONTENT_TYPE: CT_RESPONSE})
    return msg.encode()


def verify_response(raw: bytes, centre_key: PublicKey, request_digest: bytes | None) -> Response:
    """Check the centre's signature and that the response answers our request."""
    try:
        msg = cose.decode_sign1(raw)
        if msg.protected_headers.get(cose.HDR_CONTENT_TYPE) != CT_RESPONSE:
            raise WireError("not a luutru sync response (content type)")
        cose.verify_sign1(msg, verifier(centre_key))
        resp = Response.from_map(cbor.loads(msg.payload))
    except SignatureError as exc:
        raise AuthError(f"response is not signed by the pinned centre key: {exc}") from exc
    except EncodingError as exc:
        raise WireError(f"response is not a COSE_Sign1 over CBOR: {exc}") from exc
    if request_digest is not None and resp.request != request_digest:
        raise AuthError("response answers a different request")
    return resp


@dataclass(frozen=True)
class Receipt:
    appliance: bytes  # device key id
    origin: str
    tree_size: int
    root_hash: bytes
    checkpoint: bytes  # the appliance's COSE_Sign1 checkpoint, exact bytes
    witness: str  # the centre's origin
    accepted_at: str

    def to_map(self) -> dict[str, Any]:
        return {
            "p": PROTOCOL,
            "type": "receipt",
            "appliance": self.appliance,
            "origin": self.origin,
            "tree_size": self.tree_size,
            "root_hash": self.root_hash,
            "checkpoint": self.checkpoint,
            "witness": self.witness,
            "accepted_at": self.accepted_at,
        }


def sign_receipt(rc: Receipt, key: KeyProvider) -> bytes:
    payload = encode_map(rc.to_map())
    msg = cose.sign1(payload, key.alg, key.kid, key.sign, {cose.HDR_CONTENT_TYPE: CT_RECEIPT})
    return msg.encode()


def verify_receipt(raw: bytes, centre_key: PublicKey) -> Receipt:
    """Return the receipt if the centre's signature verifies; raise AuthError otherwise."""
    try:
        msg = cose.decode_sign1(raw)
        if msg.protected_headers.get(cose.HDR_CONTENT_TYPE) != CT_RECEIPT:
            raise WireError("not a luutru receipt (content type)")
        cose.verify_sign1(msg, verifier(centre_key))
        m = cbor.loads(msg.payload)
    except SignatureError as exc:
        raise AuthError(f"receipt is not signed by the pinned centre key: {exc}") from exc
    except EncodingError as exc:
        raise WireError(f"receipt is not a COSE_Sign1 over CBOR: {exc}") from exc
    if not isinstance(m, dict) or m.get("type") != "receipt" or m.get("p") != PROTOCOL:
        raise WireError("not a luutru receipt")
    try:
        return Receipt(
            appliance=bytes(m["appliance"]),
            origin=str(m["origin"]),
            tree_size=int(m["tree_size"]),
            root_hash=bytes(m["root_hash"]),
            checkpoint=bytes(m["checkpoint"]),
            witness=str(m["witness"]),
            accepted_at=str(m["accepted_at"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise WireError(f"receipt lacks a field: {exc}") from exc


# -- chunk authorisation (tus PATCH) ------------------------------------------------------

AUTH_HEADER = "Luutru-Signature"


def head_body(sha256_hex: str) -> dict[str, Any]:
    """The body of a signed HEAD: the upload it asks about, so it answers for no other."""
    return {"sha256": sha256_hex}


def chunk_body(sha256_hex: str, offset: int, chunk: bytes) -> dict[str, Any]:
    return {"sha256": sha256_hex, "offset": offset, "length": len(chunk), "chunk": sha256(chunk)}


# A streamed PATCH carries the rest of a file (or a long run of it) in one request; its
# signature lists the SHA-256 of every piece, so the centre commits each piece as soon as it
# has fully arrived and matches, and a cut request keeps all its complete pieces.
ANSWER_HEADER = "Luutru-Answer"  # a signed status answer on the PATCH that completes a file
LANE_HEADER = "Luutru-Lane"  # "START-END": where an upload's second lane stands
MAX_PIECES = 64  # per PATCH: keeps the signature header well under 8 KiB


def pieces_body(
    sha256_hex: str,
    offset: int,
    length: int,
    piece: int,
    hashes: Sequence[bytes],
    total: int,
    lane: int = 0,
) -> dict[str, Any]:
    """What a streamed PATCH of bytes [offset, offset+length) of a ``total``-byte file signs;
    ``lane`` > 0: it belongs to the upload's second lane, the bytes from ``lane`` on."""
    body: dict[str, Any] = {
        "sha256": sha256_hex,
        "offset": offset,
        "length": length,
        "piece": piece,
        "pieces": list(hashes),
        "total": total,
    }
    if lane:
        body["lane"] = lane
    return body


@dataclass(frozen=True)
class UploadGrant:
    """What one signed chunk request authorises: bytes [offset, offset+length) of ``sha256``,
    in pieces of ``piece`` bytes (the last may be shorter) with these SHA-256 hashes."""

    sha256: str
    offset: int
    length: int
    piece: int
    hashes: tuple[bytes, ...]
    total: int | None
    lane: int = 0  # > 0: the second lane's start (the request writes to that lane)

    def span(self, i: int) -> tuple[int, int]:
        """Absolute [start, end) of piece ``i``."""
        start = self.offset + i * self.piece
        return start, min(start + self.piece, self.offset + self.length)

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> UploadGrant:
        """A streamed grant (``pieces``) or the one-chunk form (``chunk``); raises WireError."""
        try:
            sha, offset, length = body["sha256"], body["offset"], body["length"]
            if "pieces" in body:
                piece = body["piece"]
                hashes = tuple(bytes(h) for h in body["pieces"])
            else:
                piece, hashes = length, (bytes(body["chunk"]),)
            total = body.get("total")
            lane = body.get("lane", 0)
        except (KeyError, TypeError, ValueError) as exc:
            raise WireError(f"chunk request lacks a field or has a wrong one: {exc}") from exc
        ints = (offset, length, piece, lane)
        if not isinstance(sha, str) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in ints
        ):
            raise WireError("chunk request fields have wrong types")
        if offset < 0 or length <= 0 or piece <= 0 or lane < 0 or lane > offset:
            raise WireError("chunk request range is malformed")
        if len(hashes) != -(-length // piece) or len(hashes) > MAX_PIECES:
            raise WireError(f"{len(hashes)} piece hashes do not fit {length} bytes in {piece}")
        if any(len(h) != 32 for h in hashes):
            raise WireError("a piece hash is not 32 bytes")
        if total is not None and not (isinstance(total, int) and total >= offset + length):
            raise WireError("chunk request total is malformed")
        if lane and total is None:
            raise WireError("a lane request must give the file's total length")
        return cls(sha, offset, length, piece, hashes, total, lane)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError as exc:
        raise WireError(f"not base64url: {exc}") from exc


# -- enrolment tokens -----------------------------------------------------------------------


def make_token(secret: bytes, centre_kid: bytes) -> str:
    """``lt1.<secret>.<centre key fingerprint>``: the appliance checks the centre key with it."""
    return f"{TOKEN_PREFIX}.{b64(secret)}.{centre_kid[:8].hex()}"


def parse_token(token: str) -> tuple[bytes, bytes]:
    """Return (secret, centre key fingerprint) of a token, or raise WireError."""
    parts = token.strip().split(".")
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        raise WireError("an enrolment token looks like lt1.<secret>.<fingerprint>")
    secret = unb64(parts[1])
    try:
        fp = bytes.fromhex(parts[2])
    except ValueError as exc:
        raise WireError("the token's centre fingerprint is not hex") from exc
    if len(secret) < 16 or len(fp) != 8:
        raise WireError("the enrolment token is truncated")
    return secret, fp


def token_hash(secret: bytes) -> bytes:
    return sha256(b"luutru-enrol-token\x00" + secret)


def token_id(secret: bytes) -> bytes:
    """How the centre finds a token without the secret travelling."""
    return token_hash(secret)[:8]


def token_proof(secret: bytes, public_key_spki: bytes) -> bytes:
    """What the appliance sends instead of the secret: HMAC-SHA256 over its public key."""
    import hmac

    return hmac.new(secret, b"luutru-enrol\x00" + public_key_spki, hashlib.sha256).digest()


# -- helpers shared by both ends ----------------------------------------------------------


LeafSource = Callable[[int, int], list[bytes]]
