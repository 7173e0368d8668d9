"""The sync agent's cycle (sync/agent/cycle.py) through its public functions, against the
real centre application in-process: one cycle ships the log, then content, then keeps the
receipt; what the centre answers (refusals, quarantine, replays, junk, 500s) ends up in
state.json."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import os
import random
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient

from appliance import cbor
from appliance.clock import TZ
from appliance.config import SyncConfig
from appliance.store import Store
from luutru.centre.app import create_app
from sync.agent import CycleReport, run_agent, run_once, seconds_until_window
from sync.agent.cycle import parse_window
from sync.agent.state import (
    USB_CENTRE,
    AgentBusyError,
    AgentLock,
    load_enrolment,
    load_state,
    save_enrolment,
    save_state,
)
from sync.central.centre import Centre
from sync.central.quarantine import clear_quarantine
from sync.central.storage import ApplianceStatus
from sync.errors import (
    NotEnrolledError,
    QuarantinedError,
    SyncError,
    TransportError,
)
from tests.sync.conftest import Appliance


@pytest_asyncio.fixture
async def server(
    centre: Centre, aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]]
) -> TestClient[Any, Any]:
    """The centre's HTTP application on a loopback port."""
    return await aiohttp_client(create_app(centre))


def _point_at(app: Appliance, url: str) -> None:
    e = load_enrolment(app.data_dir)
    save_enrolment(app.data_dir, dataclasses.replace(e, centre_url=url))


def _sync_settings(app: Appliance, **kw: Any) -> None:
    """Change the agent's settings as appliance.json would give them to an opened store."""
    app.store.config = dataclasses.replace(app.store.config, sync=SyncConfig(**kw))


def _scan(app: Appliance, doc: str, size: int, seed: int) -> str:
    body = random.Random(seed).randbytes(size)
    c = app.store.content.put_bytes(body)
    app.store.attach_content(doc, [{"sha256": c.sha256, "size": c.size, "name": "scan.pdf"}])
    assert app.store.wait_sealed()
    return c.sha256


def _centre_has(centre: Centre, sha: str, body_of: Store) -> bool:
    path = centre.blobs.path(sha)
    return path.is_file() and path.read_bytes() == body_of.content.path(sha).read_bytes()


def _receipts(store: Store) -> list[int]:
    out = []
    for _, raw in store.entries():
        m = cbor.loads(raw)
        if m["kind"] == "sync.receipt":
            out.append(int(m["data"]["tree_size"]))
    return out


# -- one cycle ------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_cycle_ships_the_log_then_content_then_keeps_the_receipt(
    make_appliance: Callable[..., Appliance], server: TestClient[Any, Any], centre: Centre
) -> None:
    """Everything signed goes up, both scans arrive byte for byte, the receipt for the whole
    log is appended, and state.json says confirmed; a second cycle sends no batch."""
    app = make_appliance()
    docs = app.add(3)
    shas = [_scan(app, docs[0], 40_000, 1), _scan(app, docs[1], 5_000, 2)]
    size = app.store.tree_head()[0]
    _point_at(app, str(server.make_url("")))
    report = await run_once(app.data_dir, app.store)
    assert (report.batches, report.entries_sent, report.uploaded_files) == (1, size, 2)
    assert report.acknowledged_size == report.confirmed_size == size
    assert report.pending_content == 0 and report.receipt_index == size
    assert report.outcomes == ["accepted"] and report.bytes_sent > 45_000
    assert all(_centre_has(centre, s, app.store) for s in shas)
    assert _receipts(app.store) == [size]
    st = load_state(app.data_dir)
    assert (st.acknowledged_size, st.confirmed_size, st.settled_size) == (size, size, size + 1)
    assert st.last_error is None and not st.quarantined and st.missing == []
    assert st.content_bytes_sent >= 45_000
    again = await run_once(app.data_dir, app.store)
    assert again.batches == 0 and again.confirmed_size == size and again.receipt_index is None
    assert _receipts(app.store) == [size]


@pytest.mark.asyncio
async def test_a_long_log_goes_in_several_batches_each_receipted(
    make_appliance: Callable[..., Appliance], server: TestClient[Any, Any], centre: Centre
) -> None:
    """max_batch_entries splits the log; every batch is accepted in order."""
    app = make_appliance()
    app.add(9)
    size = app.store.tree_head()[0]
    _sync_settings(app, max_batch_entries=4)
    _point_at(app, str(server.make_url("")))
    report = await run_once(app.data_dir, app.store)
    assert report.batches == -(-size // 4) and report.entries_sent == size
    assert report.outcomes == ["accepted"] * report.batches
    with centre.storage.view() as v:
        assert v.appliance(app.id).accepted_size == size  # type: ignore[union-attr]


@pytest.mark.asyncio
async def test_a_large_file_goes_up_in_pieces_and_arrives_whole(
    make_appliance: Callable[..., Appliance], server: TestClient[Any, Any], centre: Centre
) -> None:
    """With 16 KiB chunks a 300 KB scan takes many PATCHes (and lanes if the centre offers
    them); the centre's copy is the same bytes and the log is confirmed."""
    app = make_appliance()
    doc = app.add(1)[0]
    sha = _scan(app, doc, 300_000, 3)
    _sync_settings(app, chunk_bytes=16 * 1024)
    _point_at(app, str(server.make_url("")))
    report = await run_once(app.data_dir, app.store)
    assert report.uploaded_files == 1 and report.pending_content == 0
    assert _centre_has(centre, sha, app.store)
    assert report.confirmed_size == app.store.tree_head()[0] - 1


@pytest.mark.asyncio
async def test_classified_content_never_goes_and_is_not_waited_for(
    make_appliance: Callable[..., Appliance], server: TestClient[Any, Any], centre: Centre
) -> None:
    """A mật document's entries go as leaf hashes, its scan stays here, and the log is
    still confirmed."""
    app = make_appliance()
    secret = app.add(1, Mode="03")[0]
    sha = _scan(app, secret, 2_000, 4)
    _point_at(app, str(server.make_url("")))
    report = await run_once(app.data_dir, app.store)
    assert report.withheld_sent >= 2 and report.uploaded_files == 0
    assert not _centre_has(centre, sha, app.store)
    assert report.confirmed_size == app.store.tree_head()[0] - 1


@pytest.mark.asyncio
async def test_content_lost_here_is_counted_and_the_log_stays_unconfirmed(
    make_appliance: Callable[..., Appliance], server: TestClient[Any, Any]
) -> None:
    """A scan the centre wants but this box no longer has: content_unavailable, no receipt
    appended, pending_content says what is missing."""
    app = make_appliance()
    doc = app.add(1)[0]
    sha = _scan(app, doc, 1_000, 5)
    path = app.store.content.path(sha)
    os.chmod(path, 0o600)
    path.unlink()
    _point_at(app, str(server.make_url("")))
    report = await run_once(app.data_dir, app.store)
    assert report.content_unavailable == 1 and report.pending_content == 1
    assert report.confirmed_size == 0 and _receipts(app.store) == []
    st = load_state(app.data_dir)
    assert st.missing == [sha] and st.content_unavailable == 1
    assert st.acknowledged_size == app.store.tree_head()[0]


@pytest.mark.asyncio
async def test_a_replayed_sequence_number_is_skipped_past(
    make_appliance: Callable[..., Appliance], server: TestClient[Any, Any], centre: Centre
) -> None:
    """After state.json went back (a restored backup), the centre refuses the old sequence
    numbers once; the agent re-signs past them and the cycle succeeds."""
    app = make_appliance()
    _point_at(app, str(server.make_url("")))
    for _ in range(4):
        app.add(1)
        await run_once(app.data_dir, app.store)
    st = load_state(app.data_dir)
    save_state(app.data_dir, dataclasses.replace(st, seq_reserved=0))
    with centre.storage.view() as v:
        seen = v.appliance(app.id).last_seq  # type: ignore[union-attr]
    assert seen >= 4  # more than one retry past 1: only skipping to the centre's number helps
    app.add(2)
    report = await run_once(app.data_dir, app.store)
    assert report.outcomes == ["accepted"]
    assert report.confirmed_size == app.store.tree_head()[0] - 1
    with centre.storage.view() as v:
        assert v.appliance(app.id).last_seq > seen  # type: ignore[union-attr]


# -- refusals and failures ------------------------------------------------------------------


@pytest.mark.asyncio
async def test_quarantine_is_raised_and_recorded_until_it_is_cleared(
    make_appliance: Callable[..., Appliance], server: TestClient[Any, Any], centre: Centre
) -> None:
    """A quarantined appliance gets QuarantinedError and state.json says so; once a
    technician clears it, the next cycle syncs and the flag goes."""
    app = make_appliance()
    app.add(1)
    _point_at(app, str(server.make_url("")))
    await run_once(app.data_dir, app.store)
    with centre.storage.transaction() as tx:
        tx.set_status(app.id, ApplianceStatus.QUARANTINED)
    app.add(1)
    with pytest.raises(QuarantinedError, match="quarantined by the centre"):
        await run_once(app.data_dir, app.store)
    st = load_state(app.data_dir)
    assert st.quarantined and st.last_error_code == QuarantinedError.code
    assert st.last_error is not None and "quarantined" in st.last_error
    clear_quarantine(centre, app.id, "kỹ thuật viên")
    report = await run_once(app.data_dir, app.store)
    assert report.outcomes == ["accepted"]
    st = load_state(app.data_dir)
    assert not st.quarantined and st.last_error is None


@pytest.mark.asyncio
async def test_an_unreachable_centre_is_a_retryable_transport_error(
    make_appliance: Callable[..., Appliance], unused_tcp_port: int
) -> None:
    """Nothing listening: TransportError (retryable), saved in state.json; nothing acked."""
    app = make_appliance()
    app.add(1)
    _point_at(app, f"http://127.0.0.1:{unused_tcp_port}")
    with pytest.raises(TransportError, match="cannot reach the centre") as info:
        await run_once(app.data_dir, app.store)
    assert info.value.retryable
    st = load_state(app.data_dir)
    assert st.acknowledged_size == 0 and st.last_error == str(info.value)


@pytest.mark.parametrize(
    ("status", "body", "match"),
    [
        (500, b"boom", "answered HTTP 500"),
        (200, b"not a signed answer", "HTTP 200 without a signed answer"),
    ],
    ids=["server-error", "unsigned-answer"],
)
@pytest.mark.asyncio
async def test_an_answer_that_is_not_the_centres_is_a_transport_error(
    make_appliance: Callable[..., Appliance],
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
    status: int, body: bytes, match: str,
) -> None:
    """A 5xx, or a 200 whose body the pinned centre key did not sign, moves nothing."""
    async def answer(request: web.Request) -> web.Response:
        return web.Response(status=status, body=body, content_type="application/cbor")

    fake = web.Application()
    fake.router.add_post("/v1/batch", answer)
    fake.router.add_post("/v1/status", answer)
    client = await aiohttp_client(fake)
    app = make_appliance()
    app.add(1)
    _point_at(app, str(client.make_url("")))
    with pytest.raises(TransportError, match=match):
        await run_once(app.data_dir, app.store)
    st = load_state(app.data_dir)
    assert st.acknowledged_size == 0 and st.confirmed_size == 0
    assert st.last_error_code == TransportError.code


@pytest.mark.asyncio
async def test_a_cycle_refuses_to_run_without_what_it_needs(
    make_appliance: Callable[..., Appliance], server: TestClient[Any, Any]
) -> None:
    """Not enrolled, enrolled for USB only, another agent holding the lock, or a read-only
    store: each is its own clear error and nothing is sent."""
    lone = make_appliance("lone", enrolled=False)
    with pytest.raises(NotEnrolledError, match="not enrolled"):
        await run_once(lone.data_dir, lone.store)
    app = make_appliance()
    _point_at(app, USB_CENTRE)
    with pytest.raises(SyncError, match="enrolled for USB only"):
        await run_once(app.data_dir, app.store)
    _point_at(app, str(server.make_url("")))
    with AgentLock(app.data_dir), pytest.raises(AgentBusyError, match="another sync agent"):
        await run_once(app.data_dir, app.store)
    readonly = Store.open(app.data_dir, readonly=True)
    try:
        with pytest.raises(SyncError, match="opened read-only"):
            await run_once(app.data_dir, readonly)
    finally:
        readonly.close()
    assert load_state(app.data_dir).acknowledged_size == 0


# -- the background loop --------------------------------------------------------------------


@pytest.mark.asyncio
async def test_run_agent_outside_its_window_waits_and_stops_promptly(
    make_appliance: Callable[..., Appliance], server: TestClient[Any, Any]
) -> None:
    """With a window that has not begun nothing is sent; stop ends the loop at once."""
    app = make_appliance()
    app.add(1)
    _point_at(app, str(server.make_url("")))
    now = app.clock.now()
    start = (now + dt.timedelta(hours=2)).strftime("%H:%M")
    end = (now + dt.timedelta(hours=3)).strftime("%H:%M")
    _sync_settings(app, windows=(f"{start}-{end}",))
    stop = asyncio.Event()
    task = asyncio.create_task(run_agent(app.data_dir, stop, app.store))
    await asyncio.sleep(0.5)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert load_state(app.data_dir).acknowledged_size == 0


@pytest.mark.asyncio
async def test_run_agent_survives_failures_and_never_raises(
    make_appliance: Callable[..., Appliance], unused_tcp_port: int
) -> None:
    """Not enrolled, then a centre that does not answer: the loop records, backs off and
    returns cleanly when stopped."""
    lone = make_appliance("lone", enrolled=False)
    app = make_appliance()
    app.add(1)
    _point_at(app, f"http://127.0.0.1:{unused_tcp_port}")
    stop = asyncio.Event()
    tasks = [asyncio.create_task(run_agent(a.data_dir, stop, a.store)) for a in (lone, app)]
    for _ in range(100):
        await asyncio.sleep(0.05)
        if load_state(app.data_dir).last_error:
            break
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    last_error = load_state(app.data_dir).last_error
    assert last_error is not None and "cannot reach the centre" in last_error
    assert load_state(lone.data_dir).last_error is None


# -- schedule -------------------------------------------------------------------------------


def test_windows_are_parsed_and_wrap_midnight() -> None:
    """HH:MM-HH:MM, inside or not, and the seconds to the nearest start of several."""
    assert parse_window(" 22:00 - 05:30 ") == (dt.time(22, 0), dt.time(5, 30))
    for bad in ("22:00", "22:00/05:30", "25:00-26:00", "a-b", "22:00-05:30-07:00"):
        with pytest.raises(SyncError, match="is not HH:MM-HH:MM"):
            parse_window(bad)
    at = dt.datetime(2025, 9, 15, 12, 0, tzinfo=TZ)
    assert seconds_until_window(("12:00-13:00",), at) == 0.0  # the start is inside
    assert seconds_until_window(("11:00-12:00",), at) == 23 * 3600.0  # the end is not
    assert seconds_until_window(("22:00-05:30", "13:30-14:00"), at) == 1.5 * 3600
    assert seconds_until_window(("22:00-05:30",), at.replace(hour=3)) == 0.0


def test_reports_serialise_every_field() -> None:
    """CycleReport.to_json carries each counter (luutru sync --json prints it)."""
    r = CycleReport(batches=2, outcomes=["accepted", "duplicate"])
    j = r.to_json()
    assert j["batches"] == 2 and j["outcomes"] == ["accepted", "duplicate"]
    assert set(j) == {f.name for f in dataclasses.fields(CycleReport)}
