"""A scan goes to the centre once: its final (signed) file only; every recorded version's hash
is checked against that file; a box that claims a wrong prefix is caught."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient

from appliance import versions
from appliance.capture.filing import content_ref
from appliance.capture.queue import JobKind, Queue
from luutru.centre.app import create_app
from sync.agent.cycle import run_once
from sync.agent.state import load_enrolment, save_enrolment
from sync.central.centre import Centre
from sync.central.storage import AnomalyKind
from tests.conftest import incoming
from tests.sync.conftest import Appliance

pytestmark = pytest.mark.asyncio


@pytest.fixture(params=["sqlite", "postgresql"])
def centre_db(request: pytest.FixtureRequest) -> str:
    """Both storage backends (PostgreSQL runs its migration 4, content_links)."""
    return str(request.param)


@pytest_asyncio.fixture
async def client(
    centre: Centre, aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]]
) -> TestClient[Any, Any]:
    return await aiohttp_client(create_app(centre))


def _point_at(app: Appliance, client: TestClient[Any, Any]) -> None:
    e = load_enrolment(app.data_dir)
    save_enrolment(app.data_dir, dataclasses.replace(e, centre_url=str(client.make_url(""))))


def _scan(app: Appliance) -> tuple[str, bytes, bytes, bytes]:
    """A filed scan (the lossless assembly) with an OCR job queued: (doc id, R, A, S)."""
    raw = b"%PDF-1.4 lossless scan " + bytes(range(256)) * 800  # ~200 KB
    archival = b"%PDF-1.7 archival PDF/A " + hashlib.sha512(b"a").digest() * 600
    signed = archival + b"\n% incremental update: PAdES signature " + b"0" * 24_000
    r = app.store.content.put_bytes(raw)
    doc = app.store.register_incoming(
        incoming(Content=[content_ref(r.sha256, r.size, "scan.pdf")])
    ).record
    Queue(app.data_dir).enqueue(JobKind.OCR, doc.id, r.sha256)
    return doc.id, raw, archival, signed


def _finish(app: Appliance, doc_id: str, raw: bytes, archival: bytes, signed: bytes) -> None:
    """What the capture worker does: the archival version (the scan released), then signed."""
    r = hashlib.sha256(raw).hexdigest()
    a = app.store.content.put_bytes(archival)
    versions.add_version(app.store, doc_id, content_ref(a.sha256, a.size, "x.ocr.pdf"), r,
                         keep_source=versions.KEEP_NONE)
    app.store.content.release(r)
    s = app.store.content.put_bytes(signed)
    versions.add_version(app.store, doc_id, content_ref(s.sha256, s.size, "x.pdf"), a.sha256,
                         extends=True)
    if signed.startswith(archival):
        assert app.store.content.derive(a.sha256, s.sha256)
    q = Queue(app.data_dir)
    for job in q.jobs(document_id=doc_id):
        q.finish(job.id, None)
    assert app.store.wait_sealed()


async def _cycle(app: Appliance) -> Any:
    return await asyncio.wait_for(run_once(app.data_dir, app.store), 60)


async def test_only_the_signed_file_goes_and_every_version_is_checked(
    make_appliance: Callable[..., Appliance], client: TestClient[Any, Any], centre: Centre
) -> None:
    """While OCR is pending nothing of the scan is sent (the log is); afterwards only the
    signed file goes: wire content bytes = its size; the centre holds it alone, has checked
    the PDF/A's hash against its prefix, lists nothing missing and confirms the receipt."""
    app = make_appliance()
    _point_at(app, client)
    doc_id, raw, archival, signed = _scan(app)
    assert app.store.wait_sealed()
    first = await _cycle(app)
    assert first.content_held == 1 and first.uploaded_files == 0
    assert first.content_bytes_sent == 0 and first.pending_content == 1

    _finish(app, doc_id, raw, archival, signed)
    second = await _cycle(app)
    assert second.uploaded_files == 1 and second.pending_content == 0
    assert second.content_bytes_sent == len(signed)
    assert second.receipt_index is not None
    sha = {x: hashlib.sha256(x).hexdigest() for x in (raw, archival, signed)}
    assert centre.blobs.has(sha[signed])
    assert not centre.blobs.has(sha[archival]) and not centre.blobs.has(sha[raw])
    with centre.storage.view() as v:
        links = {x.sha256: x for x in v.links(app.id)}
        assert v.missing_content(app.id, 10) == ([], 0)
        kinds = [x.kind for x in v.anomalies(app.id)]
    assert links[sha[archival]].kind == "within" and links[sha[archival]].checked
    assert links[sha[archival]].container == sha[signed]
    assert links[sha[raw]].kind == "unsent"
    assert AnomalyKind.CONTENT_MISMATCH not in kinds


async def test_a_wrong_prefix_claim_is_caught(
    make_appliance: Callable[..., Appliance], client: TestClient[Any, Any], centre: Centre
) -> None:
    """A box whose signed file does not begin with the version it claims to extend: the centre
    notes a content mismatch and lists that version as missing; no receipt confirms it."""
    app = make_appliance()
    _point_at(app, client)
    doc_id, raw, archival, _ = _scan(app)
    forged = b"%PDF-1.7 something else " + b"x" * 5000
    _finish(app, doc_id, raw, archival, forged)
    report = await _cycle(app)
    a = hashlib.sha256(archival).hexdigest()
    with centre.storage.view() as v:
        missing, count = v.missing_content(app.id, 10)
        kinds = [x.kind for x in v.anomalies(app.id)]
    assert [m.sha256 for m in missing] == [a] and count == 1
    assert AnomalyKind.CONTENT_MISMATCH in kinds
    assert report.pending_content == 1 and report.receipt_index is None


@pytest.mark.parametrize("masters", ["box", "sync"])
async def test_lossless_masters_are_sent_only_when_the_office_says(
    make_appliance: Callable[..., Appliance], client: TestClient[Any, Any], centre: Centre,
    masters: str,
) -> None:
    """Masters kept on the box ("box") stay there; "sync" sends them too (the archival
    version still goes once)."""
    app = make_appliance()
    _point_at(app, client)
    doc_id, raw, archival, _ = _scan(app)
    r = hashlib.sha256(raw).hexdigest()
    a = app.store.content.put_bytes(archival)
    keep = versions.KEEP_BOX if masters == "box" else None
    versions.add_version(app.store, doc_id, content_ref(a.sha256, a.size, "x.ocr.pdf"), r,
                         keep_source=keep)
    q = Queue(app.data_dir)
    for job in q.jobs(document_id=doc_id):
        q.finish(job.id, None)
    assert app.store.wait_sealed()
    report = await _cycle(app)
    assert report.pending_content == 0
    assert app.store.content.has_file(r)  # the box keeps its master either way
    assert centre.blobs.has(a.sha256)
    assert centre.blobs.has(r) is (masters == "sync")
    sent = len(archival) + (len(raw) if masters == "sync" else 0)
    assert report.content_bytes_sent == sent
