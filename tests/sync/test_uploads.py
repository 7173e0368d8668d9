"""tus uploads on a real socket: whole-chunk commits, stale requests, the final SHA-256."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient

from luutru.centre.app import create_app
from sync import wire
from sync.central.centre import Centre
from tests.sync.conftest import Appliance, response


@pytest.fixture(params=["sqlite", "postgresql"])
def centre_db(request: pytest.FixtureRequest) -> str:
    """Every test here runs against both storage backends."""
    return str(request.param)

pytestmark = pytest.mark.asyncio
CHUNK = 64 * 1024


def _content(app: Appliance, data: bytes) -> str:
    doc = app.add(1)[0]
    c = app.store.content.put_bytes(data)
    app.store.attach_content(doc, [{"sha256": c.sha256, "size": c.size, "name": "scan.pdf"}])
    app.store.wait_sealed()
    assert response(app.intake.c, app.send(0)).missing == (c.sha256,)
    return c.sha256


def _auth(app: Appliance, sha: str, offset: int, chunk: bytes, total: int, seq: int) -> str:
    assert app.store.key is not None
    body = dict(wire.chunk_body(sha, offset, chunk), total=total)
    return wire.b64(
        wire.sign_request(app.store.key, wire.RequestType.CHUNK, seq, app.now(), body)
    )


def _headers(offset: int, auth: str, length: int) -> dict[str, str]:
    return {
        "Tus-Resumable": "1.0.0",
        "Upload-Offset": str(offset),
        "Content-Type": "application/offset+octet-stream",
        "Content-Length": str(length),
        "Luutru-Signature": auth,
    }


@pytest_asyncio.fixture
async def client(
    centre: Centre, aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]]
) -> TestClient[Any, Any]:
    return await aiohttp_client(create_app(centre))


def _head_auth(app: Appliance, sha: str) -> str:
    return wire.b64(app.sign(wire.RequestType.HEAD, {"sha256": sha}))


async def _head(client: TestClient[Any, Any], sha: str, app: Appliance) -> tuple[int, str, str]:
    """A HEAD signed by ``app``'s device key, as the agent sends it."""
    r = await client.head(
        f"/v1/content/{sha}",
        headers={"Tus-Resumable": "1.0.0", "Luutru-Signature": _head_auth(app, sha)},
    )
    return r.status, r.headers.get("Upload-Offset", ""), r.headers.get("Upload-Length", "")


async def test_chunked_upload_resumes_from_head_offset(
    make_appliance: Callable[..., Appliance], client: TestClient[Any, Any], centre: Centre
) -> None:
    app = make_appliance()
    data = bytes(range(256)) * 1000
    sha = _content(app, data)
    assert await _head(client, sha, app) == (200, "0", str(len(data)))
    seq = 100
    offset = 0
    while offset < len(data):
        chunk = data[offset : offset + CHUNK]
        seq += 1
        r = await client.patch(
            f"/v1/content/{sha}", data=chunk,
            headers=_headers(offset, _auth(app, sha, offset, chunk, len(data), seq), len(chunk)),
        )
        assert r.status == 204, await r.text()
        offset = int(r.headers["Upload-Offset"])
        if offset == CHUNK:  # the HEAD after a "cut" says where to go on
            assert (await _head(client, sha, app))[1] == str(CHUNK)
    assert centre.blobs.has(sha)
    assert hashlib.sha256(centre.blobs.path(sha).read_bytes()).hexdigest() == sha
    app.seq = seq
    status = response(centre, app.intake.handle(app.sign(wire.RequestType.STATUS, {})))
    assert status.outcome is wire.Outcome.STATUS and status.missing_count == 0


async def test_wrong_offset_gets_409_with_the_real_one(
    make_appliance: Callable[..., Appliance], client: TestClient[Any, Any]
) -> None:
    app = make_appliance()
    data = b"x" * (CHUNK + 10)
    sha = _content(app, data)
    chunk = data[CHUNK:]
    r = await client.patch(
        f"/v1/content/{sha}", data=chunk,
        headers=_headers(CHUNK, _auth(app, sha, CHUNK, chunk, len(data), 200), len(chunk)),
    )
    assert r.status == 409 and r.headers["Upload-Offset"] == "0"


async def test_abandoned_request_tail_is_never_appended(
    make_appliance: Callable[..., Appliance], client: TestClient[Any, Any], centre: Centre
) -> None:
    """io-recipes §7: a stale PATCH whose body completes late must not append after a newer
    one at the same offset was committed."""
    app = make_appliance()
    data = hashlib.sha256(b"seed").digest() * 4096  # 128 KiB
    sha = _content(app, data)
    first = data[:CHUNK]
    stale_auth = _auth(app, sha, 0, first, len(data), 300)  # the abandoned request
    fresh_auth = _auth(app, sha, 0, first, len(data), 301)  # its resume, signed later
    host, port = client.server.host, client.server.port
    reader, writer = await asyncio.open_connection(host, port)
    head = f"PATCH /v1/content/{sha} HTTP/1.1\r\nHost: {host}\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in _headers(0, stale_auth, len(first)).items()
    )
    writer.write(head.encode() + b"\r\n" + first[: CHUNK // 2])
    await writer.drain()
    await asyncio.sleep(0.2)
    r = await client.patch(
        f"/v1/content/{sha}", data=first, headers=_headers(0, fresh_auth, len(first))
    )
    assert r.status == 204 and r.headers["Upload-Offset"] == str(CHUNK)
    writer.write(first[CHUNK // 2 :])  # the stale request's tail arrives after the outage
    await writer.drain()
    status_line = await reader.readline()
    writer.close()
    assert b"409" in status_line
    assert centre.blobs.partial_size(sha) == CHUNK  # not 2 × CHUNK
    rest = data[CHUNK:]
    r = await client.patch(
        f"/v1/content/{sha}", data=rest,
        headers=_headers(CHUNK, _auth(app, sha, CHUNK, rest, len(data), 302), len(rest)),
    )
    assert r.status == 204
    assert hashlib.sha256(centre.blobs.path(sha).read_bytes()).hexdigest() == sha


async def test_cut_request_commits_nothing(
    make_appliance: Callable[..., Appliance], client: TestClient[Any, Any], centre: Centre
) -> None:
    app = make_appliance()
    data = b"y" * CHUNK
    sha = _content(app, data)
    _, writer = await asyncio.open_connection(client.server.host, client.server.port)
    head = f"PATCH /v1/content/{sha} HTTP/1.1\r\nHost: x\r\n" + "".join(
        f"{k}: {v}\r\n"
        for k, v in _headers(0, _auth(app, sha, 0, data, len(data), 400), len(data)).items()
    )
    writer.write(head.encode() + b"\r\n" + data[:1000])
    await writer.drain()
    writer.close()
    await asyncio.sleep(0.3)
    assert centre.blobs.partial_size(sha) == 0 and not centre.blobs.has(sha)


async def test_finished_file_with_wrong_hash_is_discarded(
    make_appliance: Callable[..., Appliance], client: TestClient[Any, Any], centre: Centre
) -> None:
    app = make_appliance()
    data = b"z" * 1000
    sha = _content(app, data)
    wrong = b"Z" * 1000  # the device signs bytes that are not the file (a bug or bad disk)
    r = await client.patch(
        f"/v1/content/{sha}", data=wrong,
        headers=_headers(0, _auth(app, sha, 0, wrong, len(data), 500), len(wrong)),
    )
    assert r.status == 460 and r.headers["Upload-Offset"] == "0"
    assert not centre.blobs.has(sha) and centre.blobs.partial_size(sha) == 0
    with centre.storage.view() as v:
        assert any(a.kind.value == "content_mismatch" for a in v.anomalies(app.id))


async def test_chunk_not_matching_its_signature_is_refused(
    make_appliance: Callable[..., Appliance], client: TestClient[Any, Any], centre: Centre
) -> None:
    app = make_appliance()
    data = b"q" * 1000
    sha = _content(app, data)
    auth = _auth(app, sha, 0, data, len(data), 600)
    r = await client.patch(
        f"/v1/content/{sha}", data=b"Q" * 1000, headers=_headers(0, auth, 1000)
    )
    assert r.status == 400
    assert centre.blobs.partial_size(sha) == 0


async def test_unknown_content_is_404_and_healthz(
    make_appliance: Callable[..., Appliance], client: TestClient[Any, Any]
) -> None:
    app = make_appliance()
    assert (await _head(client, "a" * 64, app))[0] == 404
    r = await client.get("/healthz")
    assert r.status == 200 and (await r.json())["ok"] is True


# -- streamed PATCHes: one request for the rest of a file, committed piece by piece ----------

PIECE = 16 * 1024


def _stream_auth(
    app: Appliance, sha: str, offset: int, body: bytes, total: int, seq: int,
    piece: int = PIECE,
) -> tuple[str, bytes]:
    """(header value, raw signed request) for a streamed PATCH of ``body`` at ``offset``."""
    assert app.store.key is not None
    hashes = [wire.sha256(body[i : i + piece]) for i in range(0, len(body), piece)]
    raw = wire.sign_request(
        app.store.key, wire.RequestType.CHUNK, seq, app.now(),
        wire.pieces_body(sha, offset, len(body), piece, hashes, total),
    )
    return wire.b64(raw), raw


async def _start_raw(
    client: TestClient[Any, Any], sha: str, offset: int, auth: str, length: int, first: bytes
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A PATCH on a raw socket that has sent its headers and ``first`` body bytes."""
    host, port = client.server.host, client.server.port
    reader, writer = await asyncio.open_connection(host, port)
    head = f"PATCH /v1/content/{sha} HTTP/1.1\r\nHost: {host}\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in _headers(offset, auth, length).items()
    )
    writer.write(head.encode() + b"\r\n" + first)
    await writer.drain()
    return reader, writer


async def _until(pred: Callable[[], bool], what: str) -> None:
    for _ in range(200):
        if pred():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def test_streamed_patch_cut_mid_body_keeps_its_complete_pieces(
    make_appliance: Callable[..., Appliance], client: TestClient[Any, Any], centre: Centre
) -> None:
    app = make_appliance()
    data = os.urandom(5 * PIECE + 1000)
    sha = _content(app, data)
    auth, _ = _stream_auth(app, sha, 0, data, len(data), 700)
    _, writer = await _start_raw(client, sha, 0, auth, len(data), data[: 2 * PIECE + PIECE // 2])
    await _until(lambda: centre.blobs.partial_size(sha) == 2 * PIECE, "two pieces committed")
    writer.close()  # the link goes: half a piece was on its way
    await asyncio.sleep(0.3)
    assert centre.blobs.partial_size(sha) == 2 * PIECE  # kept; the half piece is not
    assert await _head(client, sha, app) == (200, str(2 * PIECE), str(len(data)))
    # The status answer says where the upload stands, so the agent needs no HEAD.
    app.seq = 750  # above the chunk requests' sequence numbers
    status = response(centre, app.intake.handle(app.sign(wire.RequestType.STATUS, {})))
    assert status.outcome is wire.Outcome.STATUS
    assert status.missing == (sha,) and status.extra["offsets"] == {sha: 2 * PIECE}
    rest = data[2 * PIECE :]
    auth, raw = _stream_auth(app, sha, 2 * PIECE, rest, len(data), 760)
    r = await client.patch(
        f"/v1/content/{sha}", data=rest, headers=_headers(2 * PIECE, auth, len(rest))
    )
    assert r.status == 204 and r.headers["Upload-Offset"] == str(len(data))
    assert hashlib.sha256(centre.blobs.path(sha).read_bytes()).hexdigest() == sha
    # The completing PATCH carries the centre's signed answer: nothing missing, a receipt.
    answer = wire.verify_response(
        wire.unb64(r.headers[wire.ANSWER_HEADER]), centre.public_key, wire.sha256(raw)
    )
    assert answer.missing_count == 0 and answer.receipt is not None
    assert answer.accepted_size == status.accepted_size


async def test_superseded_stream_tail_never_lands(
    make_appliance: Callable[..., Appliance], client: TestClient[Any, Any], centre: Centre
) -> None:
    """io-recipes §7 with streamed PATCHes: the abandoned request's tail arrives after its
    resume took the upload over, at the very offset the upload stands at. It commits nothing
    (the resume owns the upload); the resume goes on, and the file comes out whole."""
    app = make_appliance()
    data = os.urandom(4 * PIECE)
    sha = _content(app, data)
    stale_auth, _ = _stream_auth(app, sha, 0, data, len(data), 800)
    reader, writer = await _start_raw(
        client, sha, 0, stale_auth, len(data), data[: PIECE + PIECE // 2]
    )
    await _until(lambda: centre.blobs.partial_size(sha) == PIECE, "the first piece")
    # The agent gave up on it and resumes from the centre's offset, signed later; half of
    # the resume's first piece is on its way.
    rest = data[PIECE:]
    fresh_auth, _ = _stream_auth(app, sha, PIECE, rest, len(data), 801)
    fresh_r, fresh_w = await _start_raw(
        client, sha, PIECE, fresh_auth, len(rest), rest[: PIECE // 2]
    )
    await asyncio.sleep(0.3)  # the resume's headers are in: it owns the upload
    # Now the stale request's tail arrives: its second piece is complete, correct, and at
    # the offset the upload stands at, but the request no longer owns the upload.
    writer.write(data[PIECE + PIECE // 2 :])
    await writer.drain()
    assert b"409" in await reader.readline()
    writer.close()
    assert centre.blobs.partial_size(sha) == PIECE
    fresh_w.write(rest[PIECE // 2 :])
    await fresh_w.drain()
    assert b"204" in await fresh_r.readline()
    fresh_w.close()
    assert hashlib.sha256(centre.blobs.path(sha).read_bytes()).hexdigest() == sha


async def test_streamed_patch_at_a_stale_offset_gets_409_and_commits_nothing(
    make_appliance: Callable[..., Appliance], client: TestClient[Any, Any], centre: Centre
) -> None:
    app = make_appliance()
    data = os.urandom(3 * PIECE)
    sha = _content(app, data)
    first = data[:PIECE]
    auth, _ = _stream_auth(app, sha, 0, first, len(data), 900)
    r = await client.patch(f"/v1/content/{sha}", data=first, headers=_headers(0, auth, PIECE))
    assert r.status == 204
    # A request from offset 0 again (the agent missed the answer): refused before its body.
    auth, _ = _stream_auth(app, sha, 0, data, len(data), 901)
    r = await client.patch(f"/v1/content/{sha}", data=data, headers=_headers(0, auth, len(data)))
    assert r.status == 409 and r.headers["Upload-Offset"] == str(PIECE)
    assert centre.blobs.partial_size(sha) == PIECE
    # One whose signature names another offset than its header is refused outright.
    rest = data[PIECE:]
    auth, _ = _stream_auth(app, sha, 2 * PIECE, rest, len(data), 902)
    r = await client.patch(
        f"/v1/content/{sha}", data=rest, headers=_headers(PIECE, auth, len(rest))
    )
    assert r.status == 400 and centre.blobs.partial_size(sha) == PIECE


async def test_a_piece_changed_in_flight_is_not_committed(
    make_appliance: Callable[..., Appliance], client: TestClient[Any, Any], centre: Centre
) -> None:
    """The pieces before it are kept; it and the rest are refused, and it is counted."""
    app = make_appliance()
    data = os.urandom(4 * PIECE)
    sha = _content(app, data)
    auth, _ = _stream_auth(app, sha, 0, data, len(data), 1000)
    bad = bytearray(data)
    bad[2 * PIECE + 5] ^= 1
    r = await client.patch(
        f"/v1/content/{sha}", data=bytes(bad), headers=_headers(0, auth, len(data))
    )
    assert r.status == 400 and "signature" in await r.text()
    assert centre.blobs.partial_size(sha) == 2 * PIECE and not centre.blobs.has(sha)
    with centre.storage.view() as v:
        assert any(a.kind.value == "bad_signature" for a in v.anomalies(app.id))
    rest = data[2 * PIECE :]
    auth, _ = _stream_auth(app, sha, 2 * PIECE, rest, len(data), 1001)
    r = await client.patch(
        f"/v1/content/{sha}", data=rest, headers=_headers(2 * PIECE, auth, len(rest))
    )
    assert r.status == 204
    assert hashlib.sha256(centre.blobs.path(sha).read_bytes()).hexdigest() == sha


async def test_concurrent_patches_may_arrive_out_of_order_but_never_twice(
    make_appliance: Callable[..., Appliance], client: TestClient[Any, Any], centre: Centre
) -> None:
    """Two files in flight on two connections: the later-signed PATCH may arrive first.
    A fresh nonce a little below the last sequence number is accepted; a replayed request,
    or one far below, is refused and counted."""
    app = make_appliance()
    one, two = os.urandom(3000), os.urandom(5000)
    doc = app.add(1)[0]
    c1, c2 = app.store.content.put_bytes(one), app.store.content.put_bytes(two)
    app.store.attach_content(doc, [{"sha256": c.sha256, "size": c.size, "name": f"{i}.pdf"}
                                   for i, c in enumerate((c1, c2))])
    app.store.wait_sealed()
    assert set(response(app.intake.c, app.send(0)).missing) == {c1.sha256, c2.sha256}
    early, _ = _stream_auth(app, c1.sha256, 0, one, len(one), 2000)
    late, _ = _stream_auth(app, c2.sha256, 0, two, len(two), 2001)
    r = await client.patch(f"/v1/content/{c2.sha256}", data=two, headers=_headers(0, late, 5000))
    assert r.status == 204
    r = await client.patch(f"/v1/content/{c1.sha256}", data=one, headers=_headers(0, early, 3000))
    assert r.status == 204 and wire.ANSWER_HEADER in r.headers
    answer = wire.verify_response(
        wire.unb64(r.headers[wire.ANSWER_HEADER]), centre.public_key, None
    )
    assert answer.missing_count == 0
    with centre.storage.view() as v:
        assert v.appliance(app.id).last_seq == 2001  # type: ignore[union-attr]
        assert not v.anomalies(app.id)
    # The same request again (its nonce is known), and a fresh one far below: refused.
    again = await client.patch(
        f"/v1/content/{c1.sha256}", data=one, headers=_headers(0, early, 3000)
    )
    old, _ = _stream_auth(app, c1.sha256, 0, one, len(one), 1900)
    stale = await client.patch(f"/v1/content/{c1.sha256}", data=one, headers=_headers(0, old, 3000))
    for r in (again, stale):
        assert r.status == 409 and r.headers["Luutru-Error"] == "replay"
    with centre.storage.view() as v:
        assert sum(a.count for a in v.anomalies(app.id) if a.kind.value == "replay") == 2


# -- two lanes: one file over two connections at once ---------------------------------------


def _lane_auth(
    app: Appliance, sha: str, offset: int, body: bytes, total: int, seq: int, lane: int
) -> tuple[str, bytes]:
    """A streamed PATCH of ``body`` at ``offset`` in the second lane starting at ``lane``."""
    assert app.store.key is not None
    hashes = [wire.sha256(body[i : i + PIECE]) for i in range(0, len(body), PIECE)]
    raw = wire.sign_request(
        app.store.key, wire.RequestType.CHUNK, seq, app.now(),
        wire.pieces_body(sha, offset, len(body), PIECE, hashes, total, lane),
    )
    return wire.b64(raw), raw


async def _patch(
    client: TestClient[Any, Any], sha: str, offset: int, auth: str, body: bytes
) -> Any:
    return await client.patch(
        f"/v1/content/{sha}", data=body, headers=_headers(offset, auth, len(body))
    )


async def test_two_lanes_cut_in_each_lane_resume_each_from_its_offset(
    make_appliance: Callable[..., Appliance], client: TestClient[Any, Any], centre: Centre
) -> None:
    """Both halves of a file go up at once; the link goes with half a piece on its way in
    each lane. Each lane keeps its complete pieces, the answers say where each stands, and
    the resumes send only what is missing (two half pieces in all), then the file is whole."""
    app = make_appliance()
    data = os.urandom(6 * PIECE + 777)
    sha = _content(app, data)
    s = 3 * PIECE
    a0, _ = _stream_auth(app, sha, 0, data[:s], len(data), 3000)
    a1, _ = _lane_auth(app, sha, s, data[s:], len(data), 3001, s)
    _, w0 = await _start_raw(client, sha, 0, a0, s, data[: PIECE + PIECE // 2])
    _, w1 = await _start_raw(client, sha, s, a1, len(data) - s, data[s : s + PIECE + PIECE // 2])
    await _until(lambda: centre.blobs.partial_size(sha) == PIECE
                 and centre.blobs.lane(sha) == (s, s + PIECE), "a piece in each lane")
    w0.close()
    w1.close()
    await asyncio.sleep(0.3)
    assert centre.blobs.partial_size(sha) == PIECE and centre.blobs.lane(sha) == (s, s + PIECE)
    r = await client.head(
        f"/v1/content/{sha}",
        headers={"Tus-Resumable": "1.0.0", "Luutru-Signature": _head_auth(app, sha)},
    )
    assert r.headers["Upload-Offset"] == str(PIECE)
    assert r.headers["Luutru-Lane"] == f"{s}-{s + PIECE}"
    app.seq = 3100
    status = response(centre, app.intake.handle(app.sign(wire.RequestType.STATUS, {})))
    assert status.extra["offsets"] == {sha: PIECE}
    assert status.extra["lanes"] == {sha: [s, s + PIECE]}
    # Resume both lanes from those offsets, lane 1 first: it fills its lane, and only the
    # request that completes the file (lane 0, last) carries the signed answer.
    a1, _ = _lane_auth(app, sha, s + PIECE, data[s + PIECE :], len(data), 3101, s)
    r = await _patch(client, sha, s + PIECE, a1, data[s + PIECE :])
    assert r.status == 204 and r.headers["Upload-Offset"] == str(len(data))
    assert wire.ANSWER_HEADER not in r.headers and not centre.blobs.has(sha)
    a0, raw = _stream_auth(app, sha, PIECE, data[PIECE:s], len(data), 3102)
    r = await _patch(client, sha, PIECE, a0, data[PIECE:s])
    assert r.status == 204 and r.headers["Upload-Offset"] == str(len(data))
    answer = wire.verify_response(
        wire.unb64(r.headers[wire.ANSWER_HEADER]), centre.public_key, wire.sha256(raw)
    )
    assert answer.missing_count == 0 and answer.receipt is not None
    assert hashlib.sha256(centre.blobs.path(sha).read_bytes()).hexdigest() == sha
    assert centre.blobs.lane(sha) is None and centre.blobs.partial_size(sha) == 0
    with centre.storage.view() as v:
        assert v.counts(app.id).content_missing == 0


async def test_a_stale_tail_on_a_lane_never_lands(
    make_appliance: Callable[..., Appliance], client: TestClient[Any, Any], centre: Centre
) -> None:
    """io-recipes §7 in the second lane: the abandoned lane request's tail arrives after
    its resume took that lane over; it commits nothing, and lane 0 is not disturbed."""
    app = make_appliance()
    data = os.urandom(6 * PIECE)
    sha = _content(app, data)
    s = 3 * PIECE
    stale, _ = _lane_auth(app, sha, s, data[s:], len(data), 4000, s)
    r_stale, w_stale = await _start_raw(
        client, sha, s, stale, len(data) - s, data[s : s + PIECE + PIECE // 2]
    )
    await _until(lambda: centre.blobs.lane(sha) == (s, s + PIECE), "a piece in the lane")
    rest = data[s + PIECE :]
    fresh, _ = _lane_auth(app, sha, s + PIECE, rest, len(data), 4001, s)
    r_fresh, w_fresh = await _start_raw(client, sha, s + PIECE, fresh, len(rest), rest[:100])
    await asyncio.sleep(0.3)  # the resume's headers are in: it owns the lane
    w_stale.write(data[s + PIECE + PIECE // 2 :])  # a whole, correct piece at the lane's end
    await w_stale.drain()
    assert b"409" in await r_stale.readline()
    w_stale.close()
    assert centre.blobs.lane(sha) == (s, s + PIECE)
    # Lane 0 goes on meanwhile, on its own connection, and is not fenced off by the lane.
    a0, _ = _stream_auth(app, sha, 0, data[:s], len(data), 4002)
    r = await _patch(client, sha, 0, a0, data[:s])
    assert r.status == 204 and r.headers["Upload-Offset"] == str(s)
    w_fresh.write(rest[100:])
    await w_fresh.drain()
    assert b"204" in await r_fresh.readline()
    w_fresh.close()
    await _until(lambda: centre.blobs.has(sha), "the file")
    assert hashlib.sha256(centre.blobs.path(sha).read_bytes()).hexdigest() == sha


async def test_a_lane_is_refused_past_its_end_and_where_it_cannot_be(
    make_appliance: Callable[..., Appliance], client: TestClient[Any, Any], centre: Centre
) -> None:
    app = make_appliance()
    data = os.urandom(6 * PIECE)
    sha = _content(app, data)
    s = 4 * PIECE
    # Lane 0 already holds two pieces: a second lane inside them cannot open.
    a0, _ = _stream_auth(app, sha, 0, data[: 2 * PIECE], len(data), 5000)
    assert (await _patch(client, sha, 0, a0, data[: 2 * PIECE])).status == 204
    a1, _ = _lane_auth(app, sha, PIECE, data[PIECE:], len(data), 5001, PIECE)
    r = await _patch(client, sha, PIECE, a1, data[PIECE:])
    assert r.status == 409 and r.headers["Upload-Offset"] == str(2 * PIECE)
    assert "Luutru-Lane" not in r.headers and centre.blobs.lane(sha) is None
    # A lane at 4 pieces opens; from then on lane 0 ends there.
    a1, _ = _lane_auth(app, sha, s, data[s : s + PIECE], len(data), 5002, s)
    assert (await _patch(client, sha, s, a1, data[s : s + PIECE])).status == 204
    assert centre.blobs.lane(sha) == (s, s + PIECE)
    a0, _ = _stream_auth(app, sha, 2 * PIECE, data[2 * PIECE :], len(data), 5003)
    r = await _patch(client, sha, 2 * PIECE, a0, data[2 * PIECE :])
    assert r.status == 409 and r.headers["Upload-Offset"] == str(2 * PIECE)
    assert r.headers["Luutru-Lane"] == f"{s}-{s + PIECE}" and "lane" in await r.text()
    # A lane at another start is refused; so is one past the file's end.
    a1, _ = _lane_auth(app, sha, 3 * PIECE, data[3 * PIECE :], len(data), 5004, 3 * PIECE)
    r = await _patch(client, sha, 3 * PIECE, a1, data[3 * PIECE :])
    assert r.status == 409 and r.headers["Luutru-Lane"] == f"{s}-{s + PIECE}"
    over = data[s + PIECE :] + b"x" * PIECE
    a1, _ = _lane_auth(app, sha, s + PIECE, over, len(data) + PIECE, 5005, s)
    r = await _patch(client, sha, s + PIECE, a1, over)
    assert r.status == 400 and centre.blobs.lane(sha) == (s, s + PIECE)
    assert centre.blobs.partial_size(sha) == 2 * PIECE and not centre.blobs.has(sha)
    # The right requests still finish the file.
    a0, _ = _stream_auth(app, sha, 2 * PIECE, data[2 * PIECE : s], len(data), 5006)
    assert (await _patch(client, sha, 2 * PIECE, a0, data[2 * PIECE : s])).status == 204
    a1, _ = _lane_auth(app, sha, s + PIECE, data[s + PIECE :], len(data), 5007, s)
    r = await _patch(client, sha, s + PIECE, a1, data[s + PIECE :])
    assert r.status == 204 and wire.ANSWER_HEADER in r.headers
    assert hashlib.sha256(centre.blobs.path(sha).read_bytes()).hexdigest() == sha


async def test_a_corrupted_piece_in_one_lane(
    make_appliance: Callable[..., Appliance], client: TestClient[Any, Any], centre: Centre
) -> None:
    """A piece changed in flight in lane 1 is refused and counted; lane 1 keeps the pieces
    before it, lane 0 is untouched, and resending lane 1's rest finishes the file."""
    app = make_appliance()
    data = os.urandom(6 * PIECE)
    sha = _content(app, data)
    s = 3 * PIECE
    a0, _ = _stream_auth(app, sha, 0, data[:s], len(data), 6000)
    a1, _ = _lane_auth(app, sha, s, data[s:], len(data), 6001, s)
    bad = bytearray(data[s:])
    bad[PIECE + 3] ^= 1
    r1 = await _patch(client, sha, s, a1, bytes(bad))
    assert r1.status == 400 and "signature" in await r1.text()
    assert centre.blobs.lane(sha) == (s, s + PIECE)
    with centre.storage.view() as v:
        assert any(a.kind.value == "bad_signature" for a in v.anomalies(app.id))
    assert (await _patch(client, sha, 0, a0, data[:s])).status == 204
    assert centre.blobs.partial_size(sha) == s and not centre.blobs.has(sha)
    a1, _ = _lane_auth(app, sha, s + PIECE, data[s + PIECE :], len(data), 6002, s)
    r = await _patch(client, sha, s + PIECE, a1, data[s + PIECE :])
    assert r.status == 204 and wire.ANSWER_HEADER in r.headers
    assert hashlib.sha256(centre.blobs.path(sha).read_bytes()).hexdigest() == sha


async def test_lanes_that_make_another_file_are_discarded(
    make_appliance: Callable[..., Appliance], client: TestClient[Any, Any], centre: Centre
) -> None:
    """Lane 1 signed over other bytes (the appliance's copy changed): every piece matches
    its signature, the whole does not hash to its name; both lanes are thrown away (460)."""
    app = make_appliance()
    other = os.urandom(6 * PIECE)
    sha2 = _content(app, other)
    s = 3 * PIECE
    wrong = os.urandom(len(other) - s)
    a1, _ = _lane_auth(app, sha2, s, wrong, len(other), 6100, s)
    assert (await _patch(client, sha2, s, a1, wrong)).status == 204
    a0, _ = _stream_auth(app, sha2, 0, other[:s], len(other), 6101)
    r = await _patch(client, sha2, 0, a0, other[:s])
    assert r.status == 460 and r.headers["Upload-Offset"] == "0"
    assert not centre.blobs.has(sha2) and centre.blobs.partial_size(sha2) == 0
    assert centre.blobs.lane(sha2) is None


async def test_both_lanes_full_but_not_put_together_are_joined_by_a_head(
    make_appliance: Callable[..., Appliance], client: TestClient[Any, Any], centre: Centre
) -> None:
    """The centre stopped between the last piece of the second full lane and putting the
    file together: nothing is left to send, so the agent asks with a HEAD, and the centre
    then joins the lanes, checks the file and answers with its whole length."""
    app = make_appliance()
    data = os.urandom(5 * PIECE + 99)
    sha = _content(app, data)
    s = 3 * PIECE
    centre.blobs.append_partial(sha, 0, data[:s])
    centre.blobs.open_lane(sha, s)
    centre.blobs.append_lane(sha, s, s, data[s:])
    app.seq = 5000
    status = response(centre, app.intake.handle(app.sign(wire.RequestType.STATUS, {})))
    assert list(status.missing) == [sha]
    assert status.extra["offsets"] == {sha: s} and status.extra["lanes"] == {sha: [s, len(data)]}
    r = await client.head(
        f"/v1/content/{sha}",
        headers={"Tus-Resumable": "1.0.0", "Luutru-Signature": _head_auth(app, sha)},
    )
    assert r.status == 200 and r.headers["Upload-Offset"] == str(len(data))
    assert "Luutru-Lane" not in r.headers
    assert hashlib.sha256(centre.blobs.path(sha).read_bytes()).hexdigest() == sha
    assert centre.blobs.lane(sha) is None and centre.blobs.partial_size(sha) == 0
    with centre.storage.view() as v:
        assert v.counts(app.id).content_missing == 0

