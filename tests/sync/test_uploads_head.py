"""The tus HEAD at the centre (sync/central/uploads.py handle_head): signed by the device
key, uniform for everyone else, and answering only for the signing appliance's own files."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient

from luutru.centre.app import create_app
from sync.central.centre import Centre
from tests.sync.conftest import Appliance
from tests.sync.test_uploads import PIECE, _content, _head, _head_auth

pytestmark = pytest.mark.asyncio


@pytest.fixture(params=["sqlite", "postgresql"])
def centre_db(request: pytest.FixtureRequest) -> str:
    """Every test here runs against both storage backends."""
    return str(request.param)


@pytest_asyncio.fixture
async def client(
    centre: Centre, aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]]
) -> TestClient[Any, Any]:
    return await aiohttp_client(create_app(centre))


async def test_an_unsigned_head_learns_nothing_about_the_centres_content(
    make_appliance: Callable[..., Appliance], client: TestClient[Any, Any], centre: Centre
) -> None:
    """A HEAD needs the device's signature; without one (or with the old Luutru-Device
    claim, a bad signature, or one for another file) every answer is the same 403 with no
    offset, length or lane, whether the centre holds the file, part of it or nothing."""
    app = make_appliance()
    held = os.urandom(3000)
    sha_held = _content(app, held)
    centre.blobs.append_partial(sha_held, 0, held)
    assert centre.blobs.finish_lanes(sha_held) and centre.blobs.has(sha_held)
    sha_part = _content(make_appliance("other"), os.urandom(5000))
    centre.blobs.append_partial(sha_part, 0, b"x" * 100)
    answers = set()
    for sha in (sha_held, sha_part, "a" * 64, "not-a-sha"):
        for headers in ({}, {"Luutru-Device": app.id}, {"Luutru-Signature": "AAAA"},
                        {"Luutru-Signature": _head_auth(app, "b" * 64)}):
            r = await client.head(f"/v1/content/{sha}",
                                  headers={"Tus-Resumable": "1.0.0", **headers})
            assert not {"Upload-Offset", "Upload-Length", "Luutru-Lane"} & set(r.headers)
            answers.add((r.status, tuple(sorted(set(r.headers) - {"Date"})), await r.read()))
    (answer,) = answers
    assert answer[0] == 403


async def test_a_signed_head_answers_only_for_the_appliances_own_files(
    make_appliance: Callable[..., Appliance], client: TestClient[Any, Any], centre: Centre
) -> None:
    """Another enrolled appliance's signed HEAD of a file it does not reference: 404, the
    same as a file the centre has never seen (no oracle across communes)."""
    a, b = make_appliance(), make_appliance("other")
    data = os.urandom(3000)
    sha = _content(a, data)
    assert await _head(client, sha, a) == (200, "0", "3000")
    centre.blobs.append_partial(sha, 0, data)
    assert centre.blobs.finish_lanes(sha)
    assert await _head(client, sha, a) == (200, "3000", "3000")
    assert (await _head(client, sha, b))[0] == 404
    assert (await _head(client, "c" * 64, b))[0] == 404
    signed = {"Tus-Resumable": "1.0.0", "Luutru-Signature": _head_auth(a, sha)}
    assert (await client.head(f"/v1/content/{sha}", headers=signed)).status == 200
    again = await client.head(f"/v1/content/{sha}", headers=signed)  # its nonce is spent
    assert again.status == 409 and "Upload-Offset" not in again.headers


async def test_the_agent_asks_where_an_upload_stands_with_a_signed_head(
    make_appliance: Callable[..., Appliance], client: TestClient[Any, Any], centre: Centre
) -> None:
    """With no offset from the centre, the agent's HEAD (signed, over the real client) finds
    where the upload stands and the file goes up from there."""
    from sync.agent.cycle import _Cycle
    from sync.agent.http import CentreClient, RunAhead
    from sync.agent.state import load_enrolment, load_state
    from sync.errors import TransportError

    app = make_appliance()
    data = os.urandom(3 * PIECE + 7)
    sha = _content(app, data)
    centre.blobs.append_partial(sha, 0, data[:PIECE])
    state = load_state(app.data_dir)
    async with CentreClient(str(client.make_url("")).rstrip("/")) as cc:
        with pytest.raises(TransportError, match="403"):
            await cc.head(sha, "not-a-signature")
        cycle = _Cycle(app.data_dir, app.store, load_enrolment(app.data_dir), state, cc)
        done, _ = await cycle.upload(sha, None, PIECE, RunAhead(4 * PIECE))
    assert done and centre.blobs.has(sha)
    assert hashlib.sha256(centre.blobs.path(sha).read_bytes()).hexdigest() == sha
