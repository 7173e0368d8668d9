"""The background worker: OCR then signing for each filed document, each adding a version.

One worker per data folder, in the process that holds the Store (the one writer). OCR runs in
a separate, niced, memory-capped process; a crash or out-of-memory there fails only the job,
which is queued again with capped exponential backoff. The record, sealed at filing, stays.

Each page is stored once (appliance/versions.py): the OCR job makes the archival PDF/A from
the lossless assembly filed at capture, whose bytes are then released (its hash stays in the
log, ``keep: none``) unless the office keeps lossless masters; the signing job's output is
the archival PDF plus an incremental update (``extends``), so the archival PDF is then kept
as that file's prefix, not as a second copy. Files go only after the commit that says so.

A full disk or a halted store is not a job's fault: the job goes back to the queue without
using up an attempt, and the whole worker pauses (capped exponential backoff) instead of
taking the next job only to fail it too.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from .. import renditions, versions
from ..diskspace import Level, is_disk_full
from ..errors import (
    DiskFullError,
    HaltedError,
    KeyError_,
    LuutruError,
    NotFoundError,
    ReadOnlyError,
)
from ..retry import backoff
from ..store import Store
from . import filing
from .archival import ArchivalProfile
from .config import CaptureConfig
from .errors import CaptureError, DiskFull, OcrFailed, SigningUnavailable
from .ocr import OcrResult, pdfa_part, run_ocr
from .queue import Job, JobKind, Queue

log = logging.getLogger(__name__)
MAX_BACKOFF_S = 6 * 3600.0
PAUSE_BASE_S = 30.0  # a full disk or a halted store: the first pause, doubling
PAUSE_CAP_S = 3600.0


@dataclass(frozen=True)
class JobOutcome:
    job: Job
    ok: bool
    error: str | None = None
    output_sha256: str | None = None
    ocr: OcrResult | None = None


KeyOpener = Callable[[], AbstractContextManager[Any]]


class Worker:
    """Runs queued capture jobs: ``run_once()`` for one, ``run_forever()`` as a service."""

    def __init__(
        self,
        store: Store,
        config: CaptureConfig | None = None,
        queue: Queue | None = None,
        open_key: KeyOpener | None = None,
        actor: str = "capture",
    ) -> None:
        self.store = store
        self.config = config or CaptureConfig()
        self.queue = queue or Queue(store.data_dir)
        self._open_key = open_key or self._default_key
        self.actor = actor
        self.paused_until = 0.0  # time.monotonic(): no job is taken before
        self.pauses = 0
        self.queue.recover()

    def _default_key(self) -> AbstractContextManager[Any]:
        from ..keys.agency import open_agency_key

        return open_agency_key(self.store.data_dir)

    def backoff(self, attempts: int) -> float:
        base = backoff(attempts, float("inf"), self.config.retry_base_s, jitter=False)
        return float(min(MAX_BACKOFF_S, base) * random.uniform(0.8, 1.2))

    def pause(self, reason: str) -> float:
        """Take no job for a while (longer each time in a row); returns how long."""
        self.pauses += 1
        delay = backoff(self.pauses, PAUSE_CAP_S, PAUSE_BASE_S)
        self.paused_until = time.monotonic() + delay
        log.warning("capture worker paused for %.0f s: %s", delay, reason)
        return delay

    def _held_back(self) -> bool:
        """Whether no job may be taken now (paused, halted, disk too full for its output)."""
        if time.monotonic() < self.paused_until:
            return True
        if self.store.is_halted:
            self.pause("the store is halted: nothing can be recorded until it is repaired")
            return True
        if self.store.space.status().level is Level.FULL:
            self.pause("the disk is full: OCR and signed versions would not fit")
            return True
        return False

    def run_once(self) -> JobOutcome | None:
        """Run the oldest due job; None when nothing is due (or the worker is paused)."""
        if self._held_back():
            return None
        job = self.queue.claim()
        if job is None:
            self.pauses = 0
            return None
        try:
            if job.kind is JobKind.OCR:
                sha, ocr = self._ocr(job)
            else:
                sha, ocr = self._sign(job), None
        except (NotFoundError, ReadOnlyError) as exc:
            self.queue.fail(job.id, str(exc), None)  # the document is gone or frozen
            return JobOutcome(job, False, str(exc))
        except (DiskFull, DiskFullError, HaltedError) as exc:
            # Not the document's fault: back to the queue, and the worker waits.
            delay = self.pause(str(exc))
            self.queue.give_back(job.id, str(exc), delay)
            return JobOutcome(job, False, str(exc))
        except SigningUnavailable as exc:
            # Not the document's fault: wait for the key without using up attempts.
            self.queue.fail(job.id, str(exc), min(3600.0, self.backoff(job.attempts)))
            return JobOutcome(job, False, str(exc))
        except (LuutruError, OSError) as exc:
            msg = str(exc) if isinstance(exc, LuutruError) else f"{type(exc).__name__}: {exc}"
            if is_disk_full(exc):
                delay = self.pause(msg)
                self.queue.give_back(job.id, msg, delay)
                return JobOutcome(job, False, msg)
            retry = job.attempts < self.config.max_attempts
            self.queue.fail(job.id, msg, self.backoff(job.attempts) if retry else None)
            return JobOutcome(job, False, msg)
        self.queue.finish(job.id, sha)
        self.pauses = 0
        return JobOutcome(job, True, None, sha, ocr)

    def drain(self, on_job: Callable[[JobOutcome], None] | None = None) -> list[JobOutcome]:
        """Run jobs until none is due (the CLI's --wait, tests)."""
        done = []
        while (outcome := self.run_once()) is not None:
            done.append(outcome)
            if on_job is not None:
                on_job(outcome)
        return done

    def run_forever(self, stop: threading.Event, idle_s: float = 2.0) -> None:
        while not stop.is_set():
            try:
                outcome = self.run_once()
            except Exception as exc:  # the queue's own database may be what the disk refuses
                if not is_disk_full(exc):
                    raise
                self.pause(f"the job queue cannot be written: {exc}")
                outcome = None
            if outcome is None:
                wait = max(idle_s * random.uniform(0.8, 1.2),
                           min(self.paused_until - time.monotonic(), PAUSE_CAP_S))
                stop.wait(wait)

    # -- the jobs ---------------------------------------------------------------------------

    def _read(self, sha256: str) -> bytes:
        with self.store.content.open(sha256) as fh:
            return fh.read()

    def _put(self, data: bytes) -> tuple[str, int]:
        try:
            stored = self.store.content.put_bytes(data)
        except OSError as exc:
            raise DiskFull(f"the disk is full; the job is retried later ({exc})") from exc
        return stored.sha256, stored.size

    def _profile(self, job: Job) -> ArchivalProfile:
        chosen = job.profile or self.config.profile or self.store.config.scans.profile
        return ArchivalProfile(chosen)

    def _masters(self) -> str:
        return self.config.masters or self.store.config.scans.masters

    def _made_from(self, doc: Any, source: str, rendition: str) -> str | None:
        """The version of ``doc`` this job made already (a job run again after a crash
        between its commit and the queue's record of it)."""
        for c in doc.data.get("Content") or ():
            if c.get("from") == source and c.get("rendition") == rendition:
                return str(c["sha256"])
        return None

    def _ocr(self, job: Job) -> tuple[str, OcrResult | None]:
        doc = self.store.get("document", job.document_id)
        masters = self._masters()
        keep = {"off": versions.KEEP_NONE, "box": versions.KEEP_BOX}.get(masters)
        result: OcrResult | None = None
        sha = self._made_from(doc, job.input_sha256, renditions.OCR)
        if sha is None:  # (else: done before a crash; only the steps after it remain)
            result = run_ocr(
                self._read(job.input_sha256), self.config.ocr, profile=self._profile(job)
            )
            flavour = pdfa_part(result.pdf)
            if flavour != "2B":
                raise OcrFailed(f"OCR output is not PDF/A-2b (XMP says {flavour or 'nothing'})")
            sha, size = self._put(result.pdf)
            name = f"{filing.base_name(doc.data, doc.id)}.ocr.pdf"
            ref = filing.content_ref(sha, size, name, job.input_sha256, renditions.OCR)
            versions.add_version(self.store, doc.id, ref, job.input_sha256, keep_source=keep,
                                 actor=self.actor)
            filing.add_text(self.store, doc.id, sha, result.text, self.actor)
        if self.config.sign:
            self.queue.enqueue(JobKind.SIGN, doc.id, sha, job.batch_id)
        if keep == versions.KEEP_NONE:  # last: the scan is read until its archival PDF exists
            self._release(job.input_sha256, doc.id)
        return sha, result

    def _release(self, sha256: str, doc_id: str) -> None:
        """Delete a released version's own file unless another document still needs it."""
        if not versions.still_referenced(self.store.reader(), sha256, except_doc=doc_id):
            self.store.content.release(sha256)

    def _sign(self, job: Job) -> str:
        from ..pdfsign import sign_pdf

        doc = self.store.get("document", job.document_id)
        done = self._made_from(doc, job.input_sha256, renditions.SIGNED)
        if done is not None:  # signed before a crash: keep the PDF/A as its prefix, as below
            if not versions.still_referenced(self.store.reader(), job.input_sha256, doc.id):
                self.store.content.derive(job.input_sha256, done)
            return done
        pdf = self._read(job.input_sha256)
        try:
            with self._open_key() as key:
                signed = sign_pdf(
                    pdf,
                    key,
                    agency_name=self.store.config.org_name,
                    copy_type=self.config.copy_type,
                    signed_at=self.store.clock.now(),
                )
        except KeyError_ as exc:  # no agency key, no certificate, TPM or token absent
            raise SigningUnavailable(f"the agency key cannot sign now: {exc}") from exc
        except CaptureError:
            raise
        if signed[: len(pdf)] != pdf:  # an incremental update never changes what it signs
            raise CaptureError("the signed PDF does not begin with the PDF it signs")
        sha, size = self._put(signed)
        name = f"{filing.base_name(doc.data, doc.id)}.pdf"
        ref = filing.content_ref(sha, size, name, job.input_sha256, renditions.SIGNED)
        versions.add_version(self.store, doc.id, ref, job.input_sha256, extends=True,
                             actor=self.actor)
        # Now the log says the unsigned PDF is this file's prefix: keep it as that only.
        if not versions.still_referenced(self.store.reader(), job.input_sha256, doc.id):
            self.store.content.derive(job.input_sha256, sha)
        return sha
