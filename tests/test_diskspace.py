"""A full disk, on a real small file system (tmpfs): new records and files are refused with a
clear 507, while reads and their audit entries go on (the reserve is released for them);
/healthz and the pages say so well before; the capture worker and the sync agent wait
instead of failing in a loop; everything recovers once space is freed, without a restart."""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.capture.queue import JobKind, Queue
from appliance.capture.worker import Worker
from appliance.config import SpaceConfig, load_config, save_config
from appliance.datadir import init_data_dir
from appliance.diskspace import RESERVE_NAME, DiskSpace, Level
from appliance.errors import DiskFullError
from appliance.store import Store
from appliance.verify import verify_data_dir

from .conftest import ORG_ID, ORG_NAME, incoming
from .faults import add_clerk, call, no_traceback
from .web.server import serve

MiB = 1 << 20
SPACE = SpaceConfig(warn_mb=24, refuse_mb=12, reserve_mb=4)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 48 MiB tmpfs: a disk that really fills up (ENOSPC, SQLITE_FULL)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mnt = tmp_path / "disk"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m,mode=0700", "tmpfs",
                           str(mnt)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.fixture
def box(small_disk: Path, tmp_path: Path) -> Path:
    """A data folder on the small disk, with thresholds to its scale (made elsewhere: the
    defaults are for a real box's card)."""
    made = tmp_path / "made"
    init_data_dir(made, ORG_ID, ORG_NAME, "software")
    d = small_disk / "appliance"
    shutil.copytree(made, d)
    cfg = load_config(d)
    save_config(d, dataclasses.replace(cfg, space=SPACE))
    return d


def fill(disk: Path, leave: int = 0) -> Path:
    """Write a filler file until only ``leave`` bytes are free (0: until ENOSPC)."""
    filler = disk / "filler"
    with filler.open("ab") as fh:
        while True:
            free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
            n = min(1 * MiB, free - leave)
            if n <= 0:
                break
            try:
                fh.write(b"\0" * n)
                fh.flush()
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                break
    return filler


def test_records_are_refused_reads_and_audits_go_on_and_it_recovers(
    box: Path, small_disk: Path
) -> None:
    with Store.open(box, keep_reserve=True) as store:
        assert (box / RESERVE_NAME).stat().st_size == 4 * MiB
        doc = store.register_incoming(incoming(CodeNumber="1")).record
        filler = fill(small_disk)
        assert store.space.free() < MiB
        with pytest.raises(DiskFullError) as err:
            store.register_incoming(incoming(CodeNumber="2"))
        assert "MB trống" in str(err.value) and "MB free" in err.value.english
        with pytest.raises(DiskFullError):
            store.content.put_bytes(os.urandom(2 * MiB))
        # The view of a record is logged: the reserve gives SQLite room for it.
        index = store.audit("view", "vanthu", "document", doc.id)
        assert index is not None
        assert not (box / RESERVE_NAME).exists()
        assert store.space.status().level is Level.FULL
        assert store.wait_sealed()  # the checkpoint over it was stored too
        filler.unlink()  # the technician frees space: no restart needed
        store.register_incoming(incoming(CodeNumber="2"))
        assert (box / RESERVE_NAME).stat().st_size == 4 * MiB  # taken again
        assert store.wait_sealed()
    assert verify_data_dir(box).ok


def test_levels_warn_well_before_the_refusal(box: Path, small_disk: Path) -> None:
    space = DiskSpace(box, SPACE)
    assert space.status().level is Level.OK
    filler = fill(small_disk, leave=18 * MiB)
    assert space.status().level is Level.LOW
    space.check_records()  # still taken
    fill(small_disk, leave=6 * MiB)
    assert space.status().level is Level.FULL
    with pytest.raises(DiskFullError):
        space.check_records()
    filler.unlink()


@pytest.mark.slow
def test_served_box_answers_507_keeps_reading_and_says_so(box: Path, small_disk: Path) -> None:
    token = add_clerk(box)
    with serve(box) as srv:
        status, body = call(srv.url + "/api/v1/documents/incoming", token, _doc("1"))
        assert status == 201, body
        doc_id = body["document"]["id"]
        status, health = call(srv.url + "/healthz")
        assert health["status"] == "ok" and health["disk"]["level"] == "ok"
        filler = fill(small_disk, leave=18 * MiB)  # below warn_mb: said, not refused
        status, health = call(srv.url + "/healthz")
        assert status == 200 and health["status"] == "disk_low"
        fill(small_disk)  # now really full
        status, health = call(srv.url + "/healthz")
        assert status == 200 and health["status"] == "disk_full"
        assert health["disk"]["free_bytes"] < MiB
        status, body = call(srv.url + "/api/v1/documents/incoming", token, _doc("2"))
        assert status == 507, body
        assert body["error"]["code"] == "DiskFullError" and "MB trống" in body["error"]["message"]
        status, body = call(srv.url + f"/api/v1/documents/{doc_id}/content?name=scan.pdf", token,
                            raw=b"%PDF-1.4\n" + b"x" * 4096, ctype="application/pdf")
        assert status == 507, body
        status, body = call(srv.url + f"/api/v1/documents/{doc_id}", token)  # a logged read
        assert status == 200 and body["id"] == doc_id
        status, body = call(srv.url + "/api/v1/documents?q=kiem", token)
        assert status == 200
        out = _stop(srv)
    no_traceback(out)
    with serve(box) as srv:  # started again on the full disk: it opens, reads, and says so
        status, health = call(srv.url + "/healthz")
        assert status == 200 and health["status"] == "disk_full"
        status, body = call(srv.url + f"/api/v1/documents/{doc_id}", token)
        assert status == 200
        filler.unlink()
        status, body = call(srv.url + "/api/v1/documents/incoming", token, _doc("2"))
        assert status == 201, body
        out = _stop(srv)
    no_traceback(out)
    rep = verify_data_dir(box)
    assert rep.ok, rep.findings
    reads = [f for f in _kinds(box) if f == "audit.view"]
    assert len(reads) >= 1  # the read made on the full disk is in the log


def _doc(n: str) -> dict[str, object]:
    return {"TypeName": "Công văn", "CodeNumber": n, "CodeNotation": "UBND-VP",
            "IssuedDate": "2025-09-03", "OrganName": "Sở Nội vụ", "Subject": f"V/v kiểm tra {n}"}


def _stop(srv: object) -> str:
    import signal

    proc = srv.proc  # type: ignore[attr-defined]
    proc.send_signal(signal.SIGTERM)
    proc.wait(15)
    return str(proc.stdout.read() if proc.stdout else "")


def _kinds(data_dir: Path) -> list[str]:
    import cbor2

    with Store.open(data_dir, readonly=True) as s:
        return [cbor2.loads(raw)["kind"] for _, raw in s.entries()]


def test_the_capture_worker_waits_without_using_up_its_jobs(box: Path, small_disk: Path) -> None:
    with Store.open(box) as store:
        doc = store.register_incoming(incoming(CodeNumber="1")).record
        sha = store.content.put_bytes(b"%PDF-1.4 a scan").sha256
        queue = Queue(box)
        worker = Worker(store, queue=queue)
        queue.enqueue(JobKind.OCR, doc.id, sha, None)
        filler = fill(small_disk)
        t0 = time.monotonic()
        assert worker.run_once() is None  # not even taken: the disk is full
        assert worker.paused_until > t0 + 10
        assert worker.run_once() is None  # paused: no loop of failures
        filler.unlink()
        (job,) = queue.jobs()
        assert job.state.value == "queued" and job.attempts == 0
        worker.paused_until = 0.0  # the pause over
        outcome = worker.run_once()
        assert outcome is not None and outcome.job.id == job.id


def test_the_sync_agent_backs_off_on_a_full_disk(
    box: Path, small_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The agent's own writes (state.json, receipts) hit the full disk: it waits with a
    growing backoff and says why, without a traceback each time."""
    from sync.agent import run_agent
    from sync.agent.state import Enrolment, save_enrolment

    save_enrolment(box, Enrolment("http://127.0.0.1:9", _centre_pem(), "o", "c", "a" * 32,
                                  ORG_ID, "2025-09-15T09:30:00+07:00"))

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.call_later(4.0, stop.set)
        with Store.open(box) as store:  # serving when the disk fills up
            fill(small_disk)
            await run_agent(box, stop, store=store)

    with caplog.at_level(logging.WARNING, logger="sync.agent.cycle"):
        asyncio.run(run())
    paused = [r for r in caplog.records if "disk is full" in r.getMessage()]
    assert 1 <= len(paused) <= 2, [r.getMessage() for r in caplog.records]
    assert not any(r.exc_info for r in caplog.records)


def _centre_pem() -> str:
    from appliance.keys.software import SoftwareKey

    return SoftwareKey(os.urandom(32)).public_key_pem()
