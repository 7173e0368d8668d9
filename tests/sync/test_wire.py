"""The wire format: signing, parsing, bit flips, tokens, frontiers, schedules."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pytest

from appliance import cbor, cose, merkle
from appliance.clock import TZ
from appliance.keys.software import SoftwareKey
from appliance.keys.verify import load_public_key
from appliance.retry import backoff
from sync import wire
from sync.agent import seconds_until_window
from sync.central.intake import Intake
from sync.errors import AuthError, SyncError, WireError


@pytest.fixture
def key(tmp_path: Path) -> SoftwareKey:
    return SoftwareKey.create(tmp_path / "k")


def _flip_each(raw: bytes, step: int = 7) -> list[bytes]:
    out = []
    for i in range(0, len(raw), step):
        b = bytearray(raw)
        b[i] ^= 0x04
        out.append(bytes(b))
    return out


def test_request_round_trip_and_every_bit_flip_fails(key: SoftwareKey) -> None:
    raw = wire.sign_request(key, wire.RequestType.STATUS, 7, "2025-09-15T09:30:00+07:00", {})
    req = wire.parse_request(raw)
    pub = load_public_key(key.public_key_pem())
    wire.verify_request(req, pub)
    assert req.seq == 7 and req.device == key.kid and req.via is wire.Via.HTTP
    for bad in _flip_each(raw):
        with pytest.raises(SyncError):
            wire.verify_request(wire.parse_request(bad), pub)


def test_response_and_receipt_bit_flips_fail(key: SoftwareKey) -> None:
    pub = load_public_key(key.public_key_pem())
    rc = wire.Receipt(key.kid, "luutru/x", 3, b"\x01" * 32, b"cp", "centre", "t")
    raw = wire.sign_receipt(rc, key)
    assert wire.verify_receipt(raw, pub) == rc
    for bad in _flip_each(raw, 5):
        with pytest.raises((AuthError, WireError)):
            wire.verify_receipt(bad, pub)
    resp = wire.Response(b"\x02" * 32, wire.Outcome.ACCEPTED, "t", accepted_size=3)
    raw = wire.sign_response(resp, key)
    assert wire.verify_response(raw, pub, b"\x02" * 32).accepted_size == 3
    with pytest.raises(AuthError):
        wire.verify_response(raw, pub, b"\x03" * 32)  # answers another request
    for bad in _flip_each(raw, 9):
        with pytest.raises((AuthError, WireError)):
            wire.verify_response(bad, pub, None)


def test_a_response_is_not_a_receipt(key: SoftwareKey) -> None:
    pub = load_public_key(key.public_key_pem())
    raw = wire.sign_response(wire.Response(b"\x00" * 32, wire.Outcome.STATUS, "t"), key)
    with pytest.raises(WireError):
        wire.verify_receipt(raw, pub)


def test_batch_body_round_trip_and_malformed() -> None:
    b = wire.Batch(2, 4, b"cp", (b"\x05" * 32,), (b"entry", wire.Withheld(b"\x09" * 32)))
    assert wire.Batch.from_body(b.to_body()) == b
    assert b.withheld_count == 1
    body = b.to_body()
    body["to"] = 5
    with pytest.raises(WireError):
        wire.Batch.from_body(body)
    body = b.to_body()
    body["entries"][1] = {"withheld": b"short"}
    with pytest.raises(WireError):
        wire.Batch.from_body(body)


def test_token_round_trip() -> None:
    tok = wire.make_token(b"s" * 20, b"\xab" * 16)
    secret, fp = wire.parse_token(tok)
    assert secret == b"s" * 20 and fp == b"\xab" * 8
    for bad in ("", "lt1.abc", "lt2." + tok[4:], tok[:-2]):
        with pytest.raises(WireError):
            wire.parse_token(bad)


def test_frontier_matches_rfc9162_roots() -> None:
    rnd = random.Random(3)
    leaves = [rnd.randbytes(32) for _ in range(37)]
    for n in range(0, 38):
        fr = merkle.fold_leaves([], leaves[:n], 0)
        assert merkle.frontier_root(fr) == merkle.root_hash(merkle.list_source(leaves), n)
        # folding in two steps is the same as one
        k = n // 3
        two = merkle.fold_leaves(merkle.fold_leaves([], leaves[:k], 0), leaves[k:n], k)
        assert two == fr


def test_windows_and_backoff() -> None:
    night = ("22:00-05:30",)
    at = dt.datetime(2025, 9, 15, 23, 0, tzinfo=TZ)
    assert seconds_until_window(night, at) == 0
    assert seconds_until_window(night, at.replace(hour=4)) == 0
    assert seconds_until_window(night, at.replace(hour=12)) == 10 * 3600
    assert seconds_until_window((), at) == 0
    with pytest.raises(SyncError):
        seconds_until_window(("soon",), at)
    rnd = random.Random(1)
    delays = [backoff(n, cap=60, rnd=rnd) for n in range(1, 12)]
    assert all(2.5 <= d < 60 for d in delays)
    assert max(delays[6:]) <= 60 and min(delays[6:]) >= 30  # capped, jittered
    assert len(set(delays)) == len(delays)


def test_congestion_control_asked_for_and_read_back() -> None:
    """The agent's sockets ask for BBR; a name the kernel lacks leaves the system default."""
    import socket

    from sync.agent.http import congestion_control

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        default = congestion_control(s, None)
        assert default  # the kernel names the one the socket uses
        assert congestion_control(s, "no-such-algorithm") == default
        path = "/proc/sys/net/ipv4/tcp_available_congestion_control"
        with open(path) as fh:
            available = fh.read().split()
        if "bbr" in available:
            assert congestion_control(s, "bbr") == "bbr"


@pytest.mark.asyncio
async def test_tcp_info_of_a_real_connection() -> None:
    """RunAhead reads in-flight bytes, minimum RTT and delivery rate from TCP_INFO."""
    import asyncio

    from sync.agent.http import _tcp_info

    got = bytearray()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            got.extend(data)
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"x" * 200_000)
    await writer.drain()
    while len(got) < 200_000:
        await asyncio.sleep(0.01)
    info = _tcp_info(writer.transport)
    assert info is not None
    flight, min_rtt, rate = info
    assert flight >= 0 and min_rtt > 0 and rate > 0
    writer.close()
    await writer.wait_closed()
    server.close()
    assert _tcp_info(writer.transport) is None  # closed: nothing to read


@pytest.mark.asyncio
async def test_a_filling_connection_sends_only_into_the_gaps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """RunAhead: the second lane waits while lane 0 keeps the link full (its in-flight bytes
    near its delivery rate × min RTT), writes while lane 0 stalls (BBR's RTT probe: 4
    packets in flight), never ahead of a waiting lane-0 write, and freely once lane 0 is
    gone."""
    import asyncio

    import sync.agent.http as client

    class Conn:
        def __init__(self) -> None:
            self.flight, self.queued = 0, 0

        def is_closing(self) -> bool:
            return False

    primary, second = Conn(), Conn()
    bdp_rate, min_rtt = 32_000, 600_000  # 256 kbit/s, 600 ms: 19,200 bytes on the link
    monkeypatch.setattr(
        client, "_tcp_info", lambda t: (t.flight, min_rtt, bdp_rate) if t is primary else None
    )
    monkeypatch.setattr(client, "_unacked", lambda t: t.queued)
    window = client.RunAhead(100_000)
    window.add(primary)  # type: ignore[arg-type]
    window.add(second, fill=True)  # type: ignore[arg-type]
    assert window.sending()

    async def writes(conn: Conn) -> bool:
        try:
            await asyncio.wait_for(window.room(4096, conn), 0.2)  # type: ignore[arg-type]
            return True
        except TimeoutError:
            return False

    primary.flight = 26_000  # BBR in ProbeBW: a BDP and more in flight
    assert not await writes(second)
    primary.flight = 4 * 1448  # ProbeRTT
    assert await writes(second)
    second.queued = 14_000  # the gap (19,200 - 5,792) is filled
    assert not await writes(second)
    second.queued = 0
    primary.queued = 90_000
    hold = asyncio.create_task(window.room(20_000, primary))  # type: ignore[arg-type]
    await asyncio.sleep(0.05)  # lane 0 waits for room: the filler does not go first
    assert not hold.done() and not await writes(second)
    primary.queued = 0
    await asyncio.wait_for(hold, 1)
    assert await writes(second)
    window.discard(primary)  # type: ignore[arg-type]
    primary.flight = 26_000
    assert not window.sending() and await writes(second)


def test_agent_sockets_reset_on_close_and_ask_for_bbr() -> None:
    """A request given up is closed with a reset (SO_LINGER 0): its unsent bytes must not
    reach the centre after the link comes back and the resume was planned."""
    import socket
    import struct

    from sync.agent.http import CentreClient

    c = CentreClient("http://127.0.0.1:1")
    info = (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", 1))
    with c._socket(info) as s:
        assert struct.unpack("ii", s.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, 8)) == (1, 0)
        assert c.counters.congestion


@pytest.mark.parametrize(
    ("header", "field", "value"),
    [
        ("kid", None, "abc"),
        ("kid", None, 2**40),
        (None, "device", 2**40),
        (None, "device", -1),
        (None, "nonce", 2**40),
        (None, "nonce", "16 characters!!!"),
    ],
    ids=["kid-text", "kid-int", "device-int", "device-negative", "nonce-int", "nonce-text"],
)
def test_a_request_with_a_field_of_the_wrong_type_is_a_wire_error(
    key: SoftwareKey, header: str | None, field: str | None, value: object
) -> None:
    """Before any signature is checked, a kid, device or nonce that is not a byte string is
    refused as malformed (WireError), never a TypeError or a huge allocation (a 500)."""
    raw = wire.sign_request(key, wire.RequestType.STATUS, 1, "2025-09-15T09:30:00+07:00", {})
    msg = cose.decode_sign1(raw)
    protected, payload = msg.protected, msg.payload
    if header == "kid":
        protected = cbor.dumps({**msg.protected_headers, cose.HDR_KID: value})
    else:
        assert field is not None
        payload = cbor.dumps({**cbor.loads(payload), field: value})
    bad = cose.Sign1(protected, {}, payload, msg.signature).encode()
    with pytest.raises(WireError, match="not a byte string"):
        wire.parse_request(bad)


def test_the_centre_answers_a_malformed_kid_with_a_signed_refusal(
    key: SoftwareKey, intake: Intake
) -> None:
    """At the centre the same request is refused in a signed answer (it used to raise: a 500)."""
    raw = wire.sign_request(key, wire.RequestType.STATUS, 1, "2025-09-15T09:30:00+07:00", {})
    msg = cose.decode_sign1(raw)
    protected = cbor.dumps({**msg.protected_headers, cose.HDR_KID: "abc"})
    bad = cose.Sign1(protected, {}, msg.payload, msg.signature).encode()
    answer = intake.handle(bad)
    resp = wire.verify_response(answer.body, intake.c.public_key, wire.sha256(bad))
    assert resp.outcome is wire.Outcome.REFUSED and "kid is not a byte string" in resp.message
