"""First-page previews (web_ui/previews.py): a pixel budget whatever the page size, a memory
limit on the renderer, a bound on concurrent renders, and a clear answer when one fails.

A wrapper named ``pdftoppm`` first on PATH runs the real one and logs what it saw: start and
end, the renderer's peak RSS and the address-space limit it ran under."""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import struct
import sys
from pathlib import Path
from typing import Any

import pikepdf
import pytest
from aiohttp.test_utils import TestClient
from PIL import Image

from appliance.accounts import Role
from appliance.store import Store
from tests.conftest import incoming
from web_ui.config import WebConfig

from .conftest import as_role, services_of

pytestmark = pytest.mark.asyncio
MAX_SIDE = 1000
WRAPPER = '''#!{python} -S
import json, os, resource, subprocess, sys, time
t0 = time.monotonic()
time.sleep(float(os.environ.get("FAKE_DELAY", "0")))
if os.environ.get("FAKE_FAIL"):
    sys.exit(1)
proc = subprocess.run([{real!r}, *sys.argv[1:]], stdout=subprocess.PIPE)
sys.stdout.buffer.write(proc.stdout)
with open({log!r}, "a") as fh:
    fh.write(json.dumps({{"start": t0, "end": time.monotonic(),
        "maxrss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
        "as_limit": resource.getrlimit(resource.RLIMIT_AS)[0]}}) + "\\n")
sys.exit(proc.returncode)
'''


@pytest.fixture
def renders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The log of every render, one JSON line each."""
    real = shutil.which("pdftoppm")
    assert real, "poppler-utils is needed"
    bin_dir, log = tmp_path / "bin", tmp_path / "renders.jsonl"
    bin_dir.mkdir()
    wrapper = bin_dir / "pdftoppm"
    wrapper.write_text(WRAPPER.format(python=sys.executable, real=real, log=str(log)))
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{Path(real).parent}:/usr/bin:/bin")
    return log


def _log(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def _pdf(side_pt: float) -> bytes:
    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(side_pt, side_pt))
    pdf.pages[0].obj.Contents = pdf.make_stream(
        f"0 0 1 rg 0 0 {side_pt} {side_pt} re f 1 0 0 RG 50 w 0 0 m {side_pt} {side_pt} l S"
        .encode())
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def _doc_with(store: Store, data: bytes) -> tuple[str, str]:
    """A document holding ``data`` as its PDF (put in directly: previews, not uploads)."""
    doc = store.register_incoming(incoming()).record
    stored = store.content.put_bytes(data)
    store.attach_content(doc.id, [{"sha256": stored.sha256, "size": stored.size,
                                   "name": "x.pdf", "mime": "application/pdf"}])
    return doc.id, stored.sha256


async def _preview(client: TestClient, doc: tuple[str, str]) -> Any:
    return await client.get(f"/documents/{doc[0]}/content/{doc[1]}?preview=png")


async def test_a_huge_page_renders_within_the_pixel_budget(
    client: TestClient, renders: Path
) -> None:
    """A 14400 pt square page (a 1 GB bitmap at 80 dpi) comes out ≤ 1000 px, in little memory."""
    doc = _doc_with(services_of(client).store, _pdf(14400))
    await as_role(client, Role.CLERK)
    resp = await _preview(client, doc)
    assert resp.status == 200, await resp.text()
    png = await resp.read()
    assert png.startswith(b"\x89PNG") and max(struct.unpack(">II", png[16:24])) <= MAX_SIDE
    (run,) = _log(renders)
    assert run["maxrss_kb"] < 64 * 1024, run
    assert 0 < run["as_limit"] <= 512 << 20, run  # the renderer ran under a memory limit


async def test_an_a4_page_still_previews_at_screen_size(client: TestClient,
                                                        renders: Path) -> None:
    doc = _doc_with(services_of(client).store, _pdf(842))
    await as_role(client, Role.CLERK)
    resp = await _preview(client, doc)
    with Image.open(io.BytesIO(await resp.read())) as img:
        assert 800 <= max(img.size) <= MAX_SIDE


@pytest.fixture
def web_config(data_dir: Path) -> WebConfig:
    return WebConfig(data_dir=data_dir, mdns=False, preview_renders=2, preview_timeout=5.0)


async def test_concurrent_previews_never_run_more_renders_than_the_bound(
    client: TestClient, renders: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three requests at once, two slots: two render, the third waits for a slot."""
    monkeypatch.setenv("FAKE_DELAY", "0.6")
    doc = _doc_with(services_of(client).store, _pdf(842))
    await as_role(client, Role.CLERK)
    answers = await asyncio.gather(*(_preview(client, doc) for _ in range(3)))
    assert [r.status for r in answers] == [200, 200, 200]
    runs = _log(renders)
    assert len(runs) == 3
    # The most renders running at one moment (the most begun at some render's start and not
    # ended): one render overlapping the two others, one after the other, is still two at once.
    most = max(sum(1 for o in runs if o["start"] <= r["start"] < o["end"]) for r in runs)
    assert most <= 2, runs


async def test_a_failed_render_is_a_clear_error_not_a_500(
    client: TestClient, renders: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = _doc_with(services_of(client).store, _pdf(842))
    await as_role(client, Role.CLERK)
    monkeypatch.setenv("FAKE_FAIL", "1")
    resp = await _preview(client, doc)
    assert resp.status == 422
    assert "Không tạo được ảnh xem trước" in await resp.text()
    monkeypatch.delenv("FAKE_FAIL")
    monkeypatch.setenv("FAKE_DELAY", "8")  # longer than preview_timeout
    resp = await _preview(client, doc)
    assert resp.status == 422
    assert "Không tạo được ảnh xem trước" in await resp.text()


async def test_requests_that_wait_too_long_for_a_slot_are_told_to_come_back(
    client: TestClient, renders: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two slots busy for 3.5 s each round, a 5 s wait: the fifth request gets 503 (margins
    of seconds, so that a loaded machine does not turn a render into a timeout)."""
    monkeypatch.setenv("FAKE_DELAY", "3.5")
    doc = _doc_with(services_of(client).store, _pdf(842))
    await as_role(client, Role.CLERK)
    answers = await asyncio.gather(*(_preview(client, doc) for _ in range(5)))
    statuses = sorted(r.status for r in answers)
    assert statuses == [200, 200, 200, 200, 503], statuses
    busy = next(r for r in answers if r.status == 503)
    assert busy.headers["Retry-After"] == "30" and "bận" in await busy.text()
