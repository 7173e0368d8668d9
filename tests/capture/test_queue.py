"""The durable capture queue (appliance/capture/queue.py): batches and their spooled pages
survive a restart, and jobs are claimed once, retried later, and recovered after a crash."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from appliance.capture.errors import BatchNotFound
from appliance.capture.queue import BatchState, JobKind, JobState, Queue, queue_exists
from appliance.capture.separator import Target

FILE = "000.21.08.H49.2025.01.VP"
SHA = "ab" * 32


@pytest.fixture
def queue(tmp_path: Path) -> Queue:
    return Queue(tmp_path / "appliance")


def test_a_batch_keeps_its_target_metadata_and_pages_in_order(
    queue: Queue, tmp_path: Path
) -> None:
    """Pages come back in the order received, under safe names, from a queue reopened as
    after a restart; the database and spool are private."""
    assert queue_exists(tmp_path / "appliance")
    b = queue.new_batch("sane:test", Target(file_code=FILE), {"Subject": "Hồ sơ"}, "vanthu")
    assert [queue.add_page(b, n, d) for n, d in (("b.png", b"2"), ("../../a.png", b"1"),
                                                  ("trang 3.tif", b"3"))] == [1, 2, 3]
    again = Queue(tmp_path / "appliance")
    assert list(again.spooled(b)) == [("b.png", b"2"), ("a.png", b"1"), ("trang_3.tif", b"3")]
    assert again.metadata(b) == (Target(file_code=FILE), {"Subject": "Hồ sơ"}, "vanthu",
                                 "sane:test")
    st = again.status(b)
    assert (st.state, st.pages_scanned, st.target) == (BatchState.SCANNING, 3, Target(FILE))
    assert queue.path.stat().st_mode & 0o777 == 0o600
    assert queue.root.stat().st_mode & 0o777 == 0o700
    assert all((p.stat().st_mode & 0o777) == 0o600 for p in queue.spool_dir(b).iterdir())


def test_progress_is_recorded_and_listed_newest_first(queue: Queue) -> None:
    """update stores counts, lists and states; batches() filters by state."""
    first = queue.new_batch("folder:/in", Target())
    time.sleep(0.01)
    second = queue.new_batch("escl:http://mfp", Target(document_id="d1"))
    queue.update(first, state=BatchState.FILED, pages_kept=2, documents=["x"],
                 notes=["trang 2 trắng"], step="filing")
    queue.update(first)  # nothing to change
    st = queue.status(first)
    assert (st.state, st.pages_kept, st.documents, st.notes, st.step) == (
        BatchState.FILED, 2, ["x"], ["trang 2 trắng"], "filing")
    assert [s.id for s in queue.batches()] == [second, first]
    assert [s.id for s in queue.batches((BatchState.FILED,))] == [first]
    assert st.to_json()["target"] == {"file_code": None, "document_id": None}


def test_unknown_batches_are_not_found(queue: Queue) -> None:
    """status, metadata and add_page name the missing batch."""
    for call in (queue.status, queue.metadata, queue.created):
        with pytest.raises(BatchNotFound, match="no capture batch nope"):
            call("nope")
    with pytest.raises(BatchNotFound, match="no capture batch nope"):
        queue.add_page("nope", "p.png", b"x")


def test_discard_forgets_an_unfiled_batch_but_never_a_filed_one(queue: Queue) -> None:
    """A refused upload leaves nothing; a filed batch's record of what it made stays."""
    refused = queue.new_batch("upload", Target(), origin_sha256=SHA)
    queue.add_page(refused, "x.pdf", b"%PDF")
    assert queue.batch_by_origin(SHA) == refused
    queue.discard(refused)
    assert not queue.spool_dir(refused).exists() and queue.batch_by_origin(SHA) is None
    filed = queue.new_batch("upload", Target())
    queue.update(filed, state=BatchState.FILED)
    queue.discard(filed)
    assert queue.status(filed).state is BatchState.FILED


def test_a_job_is_queued_once_and_claimed_once(queue: Queue) -> None:
    """The same (document, kind, input) is one job; claim marks it running with one
    attempt; nothing else is due."""
    queue.enqueue(JobKind.OCR, "doc1", SHA, "b1")
    queue.enqueue(JobKind.OCR, "doc1", SHA, "b1")
    queue.enqueue(JobKind.SIGN, "doc1", SHA, "b1")
    assert [(j.kind, j.state) for j in queue.jobs("b1")] == [
        (JobKind.OCR, JobState.QUEUED), (JobKind.SIGN, JobState.QUEUED)]
    job = queue.claim()
    assert job is not None and (job.kind, job.state, job.attempts) == (
        JobKind.OCR, JobState.RUNNING, 1)
    assert queue.jobs(document_id="doc1")[0].state is JobState.RUNNING
    assert queue.pending() == 2
    queue.finish(job.id, "cd" * 32)
    done = queue.jobs("b1")[0]
    assert (done.state, done.output_sha256, done.error) == (JobState.DONE, "cd" * 32, None)
    assert queue.pending() == 1


def test_a_failed_job_waits_then_runs_again_or_stays_failed(queue: Queue) -> None:
    """fail(retry_in) puts it back after the delay; fail(None) gives up until retry_failed."""
    queue.enqueue(JobKind.OCR, "doc1", SHA)
    job = queue.claim()
    assert job is not None
    queue.fail(job.id, "tesseract ran out of memory", retry_in=60)
    assert queue.claim() is None  # not due yet
    assert queue.claim(now=time.time() + 61) is not None
    queue.fail(job.id, "again " * 1000, retry_in=None)
    failed = queue.jobs()[0]
    assert failed.state is JobState.FAILED and failed.attempts == 2
    assert failed.error is not None and len(failed.error) == 2000
    assert queue.claim(now=time.time() + 10**6) is None and queue.pending() == 0
    assert queue.retry_failed() == 1
    again = queue.claim()
    assert again is not None and again.attempts == 1


def test_jobs_left_running_by_a_crash_are_queued_again(queue: Queue, tmp_path: Path) -> None:
    """recover() after a restart requeues what was running, saying why; make_due runs
    waiting jobs now."""
    queue.enqueue(JobKind.OCR, "doc1", SHA)
    queue.enqueue(JobKind.OCR, "doc2", SHA)
    assert queue.claim() is not None
    restarted = Queue(tmp_path / "appliance")
    assert restarted.recover() == 1
    j = restarted.jobs(document_id="doc1")[0]
    assert (j.state, j.error) == (JobState.QUEUED, "interrupted by a restart")
    first = restarted.claim()
    assert first is not None and first.document_id == "doc1"
    restarted.fail(first.id, "busy", retry_in=3600)
    second = restarted.claim()
    assert second is not None and second.document_id == "doc2"
    assert restarted.claim() is None  # doc1 waits an hour
    restarted.make_due()
    again = restarted.claim()
    assert again is not None and again.document_id == "doc1" and again.attempts == 3
