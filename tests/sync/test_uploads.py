"""tus uploads on a real socket: whole-chunk commits, stale requests, the final SHA-256."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient

from sync import wire
from sync.central.centre import Centre
from sync.central.server import create_app
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


async def _head(client: TestClient[Any, Any], sha: str, device: str) -> tuple[int, str, str]:
    r = await client.head(
        f"/v1/content/{sha}", headers={"Tus-Resumable": "1.0.0", "Luutru-Device": device}
    )
    return r.status, r.headers.get("Upload-Offset", ""), r.headers.get("Upload-Length", "")


async def test_chunked_upload_resumes_from_head_offset(
    make_appliance: Callable[..., Appliance], client: TestClient[Any, Any], centre: Centre
) -> None:
    app = make_appliance()
    data = bytes(range(256)) * 1000
    sha = _content(app, data)
    assert await _head(client, sha, app.id) == (200, "0", str(len(data)))
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
            assert (await _head(client, sha, app.id))[1] == str(CHUNK)
    assert centre.blobs.has(sha)
    assert hashlib.sha256(centre.blobs.path(sha).read_bytes()).hexdigest() == sha
    status = response(centre, app.intake.handle(app.sign(wire.RequestType.STATUS, {})))
    assert status.missing_count == 0


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
    stale_auth = _auth(app, sha, 0, first, len(data), 301)  # signed first, higher seq
    fresh_auth = _auth(app, sha, 0, first, len(data), 300)
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
    assert (await _head(client, "a" * 64, app.id))[0] == 404
    r = await client.get("/healthz")
    assert r.status == 200 and (await r.json())["ok"] is True
