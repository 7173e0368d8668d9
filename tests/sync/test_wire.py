"""The wire format: signing, parsing, bit flips, tokens, frontiers, schedules."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pytest

from appliance import merkle
from appliance.clock import TZ
from appliance.keys.software import SoftwareKey
from appliance.keys.verify import load_public_key
from sync import wire
from sync.agent import backoff, seconds_until_window
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
        fr = wire.frontier_from_leaves(leaves[:n])
        assert wire.frontier_root(fr) == merkle.root_hash(merkle.list_source(leaves), n)
        # folding in two steps is the same as one
        k = n // 3
        two = wire.fold_frontier(wire.frontier_from_leaves(leaves[:k]), leaves[k:n], k)
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

    from sync.client import congestion_control

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        default = congestion_control(s, None)
        assert default  # the kernel names the one the socket uses
        assert congestion_control(s, "no-such-algorithm") == default
        path = "/proc/sys/net/ipv4/tcp_available_congestion_control"
        with open(path) as fh:
            available = fh.read().split()
        if "bbr" in available:
            assert congestion_control(s, "bbr") == "bbr"
