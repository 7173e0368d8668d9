"""SANE via scanimage and the real `test` backend (private SANE_CONFIG_DIR); `luutru scan`."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
from pathlib import Path

import pikepdf
import pytest
from click.testing import CliRunner

from appliance.capture.batch import Capture
from appliance.capture.errors import ScannerInterrupted, SourceError
from appliance.capture.queue import BatchState, JobKind, JobState
from appliance.capture.separator import Target
from appliance.capture.sources.sane import SaneSource, list_devices
from appliance.store import Store
from luutru.cli import main

GRID = ("--test-picture", "Grid")


def _pdf_pages(store: Store, sha: str) -> int:
    with store.content.open(sha) as fh, pikepdf.open(io.BytesIO(fh.read())) as pdf:
        return len(pdf.pages)


def test_private_config_lists_only_the_test_backend(sane_env: dict[str, str]) -> None:
    """With our SANE_CONFIG_DIR only test:0 and test:1 exist (no network backend loaded)."""
    assert list_devices(sane_env) == ["test:0", "test:1"]


def test_flatbed_batch_becomes_a_sealed_document(
    store: Store, sane_env: dict[str, str], hoso: str
) -> None:
    """Two flatbed pages at 300 dpi colour: one document in the hồ sơ, sealed, OCR queued."""
    src = SaneSource("test", count=2, options=GRID, env=sane_env)
    res = Capture(store).scan(src, Target(file_code=hoso))
    (doc,) = res.documents
    assert doc.data["FileCode"] == hoso and doc.data["PageAmount"] == 2
    assert doc.data["ConfidenceLevel"] == "02" and doc.data["Status"] == "draft"
    (content,) = doc.data["Content"]
    assert _pdf_pages(store, content["sha256"]) == 2
    assert store.wait_sealed(10)
    cp = store.latest_checkpoint()
    assert cp is not None and cp[0] > doc.log_index
    assert res.status.state is BatchState.FILED and res.status.pages_scanned == 2
    assert [(j.kind, j.state) for j in res.status.jobs] == [(JobKind.OCR, JobState.QUEUED)]
    assert not Capture(store).queue.spool_dir(res.batch_id).exists()


def test_feeder_batch_runs_until_empty(store: Store, sane_env: dict[str, str]) -> None:
    """The test backend's feeder holds 10 sheets: the batch ends cleanly with 10 pages."""
    src = SaneSource("test", dpi=200, adf=True, options=GRID, env=sane_env)
    res = Capture(store).scan(src)
    assert res.status.pages_scanned == 10
    assert res.documents[0].data["PageAmount"] == 10


def test_paper_jam_is_a_clear_error(store: Store, sane_env: dict[str, str]) -> None:
    """A jam says so; the batch is left interrupted, nothing filed."""
    src = SaneSource(
        "test", options=(*GRID, "--read-return-value", "SANE_STATUS_JAMMED"), env=sane_env
    )
    cap = Capture(store)
    with pytest.raises(ScannerInterrupted, match="jam"):
        cap.scan(src)
    (batch,) = cap.queue.batches()
    assert batch.state is BatchState.INTERRUPTED and batch.documents == []


def test_missing_device_is_a_clear_error(store: Store, sane_env: dict[str, str]) -> None:
    with pytest.raises(SourceError, match=r"not available|failed"):
        Capture(store).scan(SaneSource("nosuchbackend", env=sane_env))


def test_scanner_unplugged_mid_batch_keeps_pages_and_resumes(
    store: Store, sane_env: dict[str, str]
) -> None:
    """scanimage killed mid-feeder: pages already scanned stay; resume adds the rest."""
    slow = (*GRID, "--read-delay=yes", "--read-delay-duration=2000")
    src = SaneSource("test", dpi=200, adf=True, options=slow, env=sane_env)
    cap = Capture(store)

    def unplug(n: int, _name: str) -> None:
        if n == 2:
            assert src.proc is not None
            os.kill(src.proc.pid, signal.SIGKILL)

    batch_id = cap.start(src.name)
    with pytest.raises(ScannerInterrupted, match="kept") as err:
        cap.receive(batch_id, src, unplug)
    assert batch_id in str(err.value)
    status = cap.queue.status(batch_id)
    kept = status.pages_scanned
    assert status.state is BatchState.INTERRUPTED and 2 <= kept < 10
    assert store.count("document") == 0
    res = cap.resume(batch_id, SaneSource("test", count=1, options=GRID, env=sane_env))
    (doc,) = res.documents
    assert doc.data["PageAmount"] == kept + 1
    assert _pdf_pages(store, doc.data["Content"][0]["sha256"]) == kept + 1


def test_cli_scan_json_prints_document_with_hashes(
    data_dir: Path, sane_env: dict[str, str], hoso: str, store: Store
) -> None:
    """`luutru scan --source sane:test --to … --json`: the document and each file's SHA-256."""
    store.close()
    result = CliRunner().invoke(
        main,
        [
            "scan",
            "--data",
            str(data_dir),
            "--source",
            "sane:test",
            "--to",
            hoso,
            "--pages",
            "2",
            "--sane-option=--test-picture=Grid",
            "--json",
        ],
        env=sane_env,
    )
    assert result.exit_code == 0, result.output
    (line,) = [ln for ln in result.stdout.splitlines() if ln.startswith("{")]
    doc = json.loads(line)
    assert doc["data"]["FileCode"] == hoso and doc["data"]["PageAmount"] == 2
    (content,) = doc["content"]
    path = data_dir / "content" / "sha256" / content["sha256"][:2] / content["sha256"][2:4]
    blob = (path / content["sha256"]).read_bytes()
    assert hashlib.sha256(blob).hexdigest() == content["sha256"] and blob.startswith(b"%PDF")


def test_cli_scan_reports_scanner_errors(data_dir: Path, sane_env: dict[str, str]) -> None:
    """A jam gives exit 1 and a message naming the batch to resume."""
    result = CliRunner().invoke(
        main,
        [
            "scan",
            "--data",
            str(data_dir),
            "--source",
            "sane:test",
            "--sane-option=--read-return-value=SANE_STATUS_JAMMED",
        ],
        env=sane_env,
    )
    assert result.exit_code == 1
    assert "jam" in result.output and "resume" in result.output
