"""The centre's sync API: thin aiohttp handlers over intake, enrolment and uploads.

Blocking work (signature checks, SQLite commits with fsync, hashing) runs in worker threads;
the storage's one writer keeps commits in order. The centre's application joins this API to
the dashboard and is served by ``luutru.centre`` (the parts joined, above sync and web_ui).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator

from aiohttp import web

from .centre import Centre
from .enrolment import enrol
from .intake import Answer, Intake
from .replacement import Replacements
from .uploads import TUS_VERSION, Uploads, handle_head, handle_patch

log = logging.getLogger(__name__)

CENTRE = web.AppKey("centre", Centre)
INTAKE = web.AppKey("intake", Intake)
UPLOADS = web.AppKey("uploads", Uploads)
REPLACEMENTS = web.AppKey("replacements", Replacements)
CBOR = "application/cbor"
TUS_HEADERS = {"Tus-Resumable": TUS_VERSION, "Cache-Control": "no-store"}


def setup_sync_api(app: web.Application, centre: Centre) -> None:
    """Mount the sync API (/v1/…) and /healthz on ``app``."""
    intake = Intake(centre)
    app[CENTRE] = centre
    app[INTAKE] = intake
    app[UPLOADS] = Uploads(intake)
    app.router.add_get("/healthz", healthz)
    app.router.add_post("/v1/enrol", post_enrol)
    app.router.add_post("/v1/batch", post_signed)
    app.router.add_post("/v1/status", post_signed)
    app[REPLACEMENTS] = Replacements(intake)
    app.router.add_post("/v1/restore", post_restore)
    app.router.add_post("/v1/restore/fetch", post_fetch)
    app.router.add_post("/v1/handover", post_handover)
    app.router.add_post("/v1/upgrade", post_upgrade)
    app.router.add_route("OPTIONS", "/v1/content", tus_options)
    app.router.add_route("HEAD", "/v1/content/{sha256}", tus_head)
    app.router.add_route("PATCH", "/v1/content/{sha256}", tus_patch)


def setup_ltv_job(app: web.Application) -> None:
    """Run the scheduled signature upgrade beside the API (one process only: ltv_job.py)."""
    if app[CENTRE].config.ltv.enabled:
        app.cleanup_ctx.append(_ltv_job)


async def _ltv_job(app: web.Application) -> AsyncIterator[None]:
    """The signature upgrade every ``ltv.interval_s`` in a thread (it blocks on the network)."""
    from .ltv_job import run_forever

    stop = threading.Event()
    thread = threading.Thread(
        target=run_forever, args=(app[CENTRE], stop), name="ltv-job", daemon=True
    )
    thread.start()
    yield
    stop.set()
    await asyncio.to_thread(thread.join, 30)


def max_request_size(centre: Centre) -> int:
    """The largest request body the sync API takes (a batch, or a chunk of an upload)."""
    return max(centre.config.max_request_bytes, centre.config.max_chunk_bytes) + (1 << 16)


def _cbor(answer: Answer) -> web.Response:
    return web.Response(status=answer.status, body=answer.body, content_type=CBOR)


async def healthz(request: web.Request) -> web.Response:
    centre = request.app[CENTRE]

    def probe() -> int:
        with centre.storage.view() as v:
            return len(v.appliances())

    n = await asyncio.to_thread(probe)
    return web.json_response({"ok": True, "origin": centre.origin, "appliances": n})


async def _body(request: web.Request) -> bytes:
    if request.content_type != CBOR:
        raise web.HTTPUnsupportedMediaType(text=f"send {CBOR}")
    return await request.read()


async def post_enrol(request: web.Request) -> web.Response:
    raw = await _body(request)
    intake = request.app[INTAKE]
    return _cbor(await asyncio.to_thread(enrol, intake, raw))


async def post_signed(request: web.Request) -> web.Response:
    raw = await _body(request)
    intake = request.app[INTAKE]
    return _cbor(await asyncio.to_thread(intake.handle, raw))


async def post_restore(request: web.Request) -> web.Response:
    raw = await _body(request)
    return _cbor(await asyncio.to_thread(request.app[REPLACEMENTS].begin, raw))


async def post_fetch(request: web.Request) -> web.Response:
    raw = await _body(request)
    got = await asyncio.to_thread(request.app[REPLACEMENTS].fetch, raw)
    return web.Response(status=got.status, body=got.body, content_type=got.content_type.split(
        ";")[0], headers={"Cache-Control": "no-store"})


async def post_upgrade(request: web.Request) -> web.Response:
    from .ltv_fetch import fetch

    raw = await _body(request)
    got = await asyncio.to_thread(fetch, request.app[INTAKE], raw)
    return web.Response(status=got.status, body=got.body, content_type=got.content_type.split(
        ";")[0], headers={"Cache-Control": "no-store"})


async def post_handover(request: web.Request) -> web.Response:
    raw = await _body(request)
    return _cbor(await asyncio.to_thread(request.app[REPLACEMENTS].handover, raw))


async def tus_options(request: web.Request) -> web.Response:
    centre = request.app[CENTRE]
    return web.Response(
        status=204,
        headers={
            **TUS_HEADERS,
            "Tus-Version": TUS_VERSION,
            "Tus-Max-Size": str(1 << 40),
            "Luutru-Max-Chunk": str(centre.config.max_chunk_bytes),
        },
    )


def _tus_version(request: web.Request) -> None:
    if request.headers.get("Tus-Resumable") != TUS_VERSION:
        raise web.HTTPPreconditionFailed(
            headers={"Tus-Version": TUS_VERSION}, text=f"Tus-Resumable {TUS_VERSION} required"
        )


async def tus_head(request: web.Request) -> web.Response:
    _tus_version(request)
    # Signed by the device key like every other request (sync/central/uploads.py).
    return await handle_head(request.app[UPLOADS], request)


async def tus_patch(request: web.Request) -> web.Response:
    _tus_version(request)
    # Streamed: each piece is committed once it has fully arrived (sync/central/uploads.py).
    return await handle_patch(request.app[UPLOADS], request)


# On SIGTERM, requests still running get this long before they are cancelled: an upload whose
# appliance vanished (its connection half-open after an outage) would otherwise hold the stop
# for aiohttp's default minute. A cancelled PATCH keeps every piece it committed.
SHUTDOWN_S = 5.0
