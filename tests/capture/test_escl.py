"""eSCL: our aiohttp client against the emulator process, mDNS discovery on loopback only."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from appliance.capture.batch import Capture
from appliance.capture.errors import ScannerInterrupted, SourceError
from appliance.capture.queue import BatchState
from appliance.capture.sources.escl import EsclSource, discover
from appliance.store import Store
from luutru.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


Emulator = Callable[..., str]


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """start(*args) runs the emulator on a free loopback port and returns its eSCL URL."""
    procs: list[subprocess.Popen[str]] = []

    def start(*args: str) -> str:
        port = _free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.capture.escl_emulator", "127.0.0.1", str(port), *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "up" in line, "the eSCL emulator did not start"
        return f"http://127.0.0.1:{port}/eSCL"

    yield start
    for p in procs:
        p.terminate()
        p.wait(10)


def test_platen_scan(store: Store, emulator: Emulator) -> None:
    """A flatbed page through the real protocol: one 300 dpi colour page, one document."""
    src = EsclSource(emulator())
    res = Capture(store).scan(src)
    assert src.capabilities is not None and src.capabilities.has_adf
    assert src.capabilities.make_and_model == "luutru test eSCL Emulator"
    (doc,) = res.documents
    assert doc.data["PageAmount"] == 1 and res.status.pages_scanned == 1


def test_feeder_batch_in_jpeg(store: Store, emulator: Emulator) -> None:
    """The feeder gives all its pages until NextDocument answers 404; JPEG is kept as JPEG."""
    src = EsclSource(emulator("--adf-pages", "4", "--formats", "image/jpeg"), adf=True, dpi=200)
    res = Capture(store).scan(src)
    assert res.documents[0].data["PageAmount"] == 4
    assert res.documents[0].data["Content"][0]["size"] < 4 * 1_000_000


def test_scanner_dies_mid_batch_pages_kept_and_resumed(store: Store, emulator: Emulator) -> None:
    """The emulator process ends while serving page 3: pages 1–2 are kept; resume finishes."""
    src = EsclSource(emulator("--adf-pages", "5", "--die-after", "2"), adf=True)
    cap = Capture(store)
    batch_id = cap.start(src.name)
    with pytest.raises(ScannerInterrupted, match="after 2 page"):
        cap.receive(batch_id, src)
    status = cap.queue.status(batch_id)
    assert status.state is BatchState.INTERRUPTED and status.pages_scanned == 2
    res = cap.resume(batch_id, EsclSource(emulator("--adf-pages", "3"), adf=True))
    assert res.documents[0].data["PageAmount"] == 5


def test_scanner_not_answering(store: Store) -> None:
    with pytest.raises(SourceError, match="does not answer"):
        Capture(store).scan(EsclSource(f"http://127.0.0.1:{_free_port()}/eSCL"))


def test_discovery_on_loopback_then_scan(store: Store, emulator: Emulator) -> None:
    """`_uscan._tcp` announced on 127.0.0.1 is found there, and its URL scans."""
    url = emulator("--mdns", "Emu Office Scanner")
    found = discover(timeout=5.0, interfaces=["127.0.0.1"])
    match = [f for f in found if f.name == "Emu Office Scanner"]
    assert match and match[0].url == url
    res = Capture(store).scan(EsclSource(match[0].url))
    assert len(res.documents) == 1


def test_cli_escl_source(data_dir: Path, emulator: Emulator) -> None:
    url = emulator("--adf-pages", "2")
    result = CliRunner().invoke(
        main, ["scan", "--data", str(data_dir), "--source", f"escl:{url}", "--adf", "--json"]
    )
    assert result.exit_code == 0, result.output
    (line,) = [ln for ln in result.stdout.splitlines() if ln.startswith("{")]
    assert json.loads(line)["data"]["PageAmount"] == 2
