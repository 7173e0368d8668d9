"""The appliance's HTTP transport (sync/agent/http.py): the bandwidth cap holds, byte counters
count, the HEAD answer is read strictly, and every way of not reaching the centre is a
retryable TransportError. (Filling connections and TCP_INFO are in test_wire.py.)"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from sync import wire
from sync.agent.http import CentreClient, Counters, TokenBucket
from sync.errors import TransportError

SHA = "ab" * 32
NOISE = random.Random(1).randbytes(1000)  # incompressible


@pytest.mark.asyncio
async def test_the_token_bucket_lets_a_burst_through_then_holds_the_rate() -> None:
    """The first ``burst`` bytes go at once; 100 kB more at 200 kB/s take about half a second
    (never less)."""
    bucket = TokenBucket(rate=200_000, burst=64 * 1024)
    start = time.monotonic()
    await bucket.take(64 * 1024)
    assert time.monotonic() - start < 0.05
    await bucket.take(50_000)
    await bucket.take(50_000)
    assert time.monotonic() - start >= 0.49


def test_the_bucket_burst_is_at_least_one_slice() -> None:
    """A tiny burst setting still lets a 16 KiB slice through."""
    assert TokenBucket(rate=1000, burst=10).burst == 16 * 1024


async def _serve(
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> TestClient[Any, Any]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    return await aiohttp_client(app)


@pytest.mark.asyncio
async def test_posts_are_counted_and_answered_as_they_came(
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
) -> None:
    """post_cbor returns the status and body as sent; the counters add the request and the
    answer bytes (a body deflate cannot shrink goes as it is)."""
    seen: list[bytes] = []

    async def echo(request: web.Request) -> web.Response:
        seen.append(await request.read())
        return web.Response(status=202, body=b"answer", content_type="application/cbor")

    server = await _serve(aiohttp_client, echo)
    counters = Counters()
    async with CentreClient(str(server.make_url("")), counters=counters) as client:
        assert await client.post_cbor("/v1/status", NOISE) == (202, b"answer")
    assert seen == [NOISE]
    assert counters.request_bytes > 1000 and counters.response_bytes >= len(b"answer")
    assert counters.requests == 1 and counters.content_bytes == 0


@pytest.mark.asyncio
async def test_signed_bodies_travel_deflated_without_aiohttps_own_headers(
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
) -> None:
    """A batch-sized CBOR body (hex hashes repeated, as a document's versions repeat them)
    goes deflated and the server reads it as it was made; a small one goes as it is; no
    request carries aiohttp's User-Agent, Accept or Accept-Encoding (the centre reads none)."""
    seen: list[tuple[bytes, str | None, set[str]]] = []

    async def echo(request: web.Request) -> web.Response:
        seen.append((await request.read(), request.headers.get("Content-Encoding"),
                     set(request.headers)))
        return web.Response(status=202, body=b"ok", content_type="application/cbor")

    server = await _serve(aiohttp_client, echo)
    batch = wire.encode_map({"entries": [{"sha256": f"{i % 3:064x}", "n": i} for i in range(60)]})
    counters = Counters()
    async with CentreClient(str(server.make_url("")), counters=counters) as client:
        assert await client.post_cbor("/v1/batch", batch) == (202, b"ok")
        big = counters.request_bytes
        assert await client.post_cbor("/v1/status", b"\xa0" * 100) == (202, b"ok")
    assert [(body, enc) for body, enc, _ in seen] == [(batch, "deflate"), (b"\xa0" * 100, None)]
    assert big < len(batch) / 4
    for _, _, headers in seen:
        assert not headers & {"User-Agent", "Accept", "Accept-Encoding"}, headers


@pytest.mark.asyncio
async def test_head_reads_offset_and_length_or_says_unknown(
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
) -> None:
    """The signed HEAD: 200 gives (offset, length); 404 means the centre does not expect the
    file; another status is a TransportError."""
    answers = iter([
        web.Response(headers={"Upload-Offset": "4096", "Upload-Length": "10000"}),
        web.Response(headers={"Upload-Offset": "0"}),
        web.Response(status=404),
        web.Response(status=503),
    ])

    async def head(request: web.Request) -> web.Response:
        assert request.headers[wire.AUTH_HEADER] == "signed" and request.method == "HEAD"
        return next(answers)

    server = await _serve(aiohttp_client, head)
    async with CentreClient(str(server.make_url(""))) as client:
        assert await client.head(SHA, "signed") == (4096, 10000)
        assert await client.head(SHA, "signed") == (0, None)
        assert await client.head(SHA, "signed") is None
        with pytest.raises(TransportError, match=f"HEAD {SHA}: HTTP 503"):
            await client.head(SHA, "signed")


@pytest.mark.asyncio
async def test_not_reaching_the_centre_is_a_retryable_transport_error(
    unused_tcp_port: int,
) -> None:
    """Nothing listening, or a client used outside its ``async with``."""
    async with CentreClient(f"http://127.0.0.1:{unused_tcp_port}", connect_timeout=2) as c:
        with pytest.raises(TransportError, match="cannot reach the centre") as info:
            await c.post_cbor("/v1/status", b"x")
    assert info.value.retryable
    with pytest.raises(TransportError, match="client is not open"):
        await CentreClient("http://127.0.0.1:1").post_cbor("/v1/status", b"x")


@pytest.mark.asyncio
async def test_a_centre_that_stops_answering_is_given_up_after_the_read_timeout(
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
) -> None:
    """An answer that never comes is a TransportError after read_timeout, not a hang."""
    async def silent(request: web.Request) -> web.Response:
        await asyncio.sleep(30)
        return web.Response()

    server = await _serve(aiohttp_client, silent)
    start = time.monotonic()
    async with CentreClient(str(server.make_url("")), read_timeout=0.5) as client:
        with pytest.raises(TransportError, match="cannot reach the centre"):
            await client.post_cbor("/v1/batch", b"x")
    assert time.monotonic() - start < 10
