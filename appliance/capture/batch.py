"""A capture batch from source to sealed record: receive → spool → pipeline → file → queue jobs.

Every received file is fsynced into the batch's spool before the next is asked for, so a
scanner that dies mid-batch loses nothing already scanned; `resume` carries on with more
pages from the same or another source. Filing is idempotent: a re-run after a crash finds the
document that already holds a segment's PDF instead of making a second one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from .. import clock as clockmod
from ..store import Record, Store
from . import filing
from .archival import ArchivalProfile
from .config import CaptureConfig
from .errors import CaptureError, DiskFull, ImageRejected, ScannerInterrupted
from .pipeline import (
    Assemble,
    DropBlank,
    InputFile,
    Normalise,
    SplitAtSeparators,
    Step,
    Work,
    run_steps,
)
from .queue import BatchState, BatchStatus, JobKind, Queue
from .separator import Target
from .sources.base import ListSource, Source

OnPage = Callable[[int, str], None]
OnStep = Callable[[str], None]


@dataclass(frozen=True)
class CaptureResult:
    batch_id: str
    documents: list[Record]
    status: BatchStatus
    notes: list[str] = field(default_factory=list)


def steps_for(config: CaptureConfig) -> list[Step]:
    steps: list[Step] = [
        Normalise(config.min_dpi, config.max_pixels),
        DropBlank(config.blank_max_ink),
    ]
    if config.split_at_separators:
        steps.append(SplitAtSeparators())
    else:
        steps.append(_OneSegment())
    steps.append(Assemble())
    return steps


@dataclass(frozen=True)
class _OneSegment:
    name: str = "split"

    def run(self, work: Work) -> None:
        from .pipeline import Segment

        work.segments = [Segment(work.default, list(work.pages))] if work.pages else []


class Capture:
    """Capture batches into one store. Cheap to make; holds no open resources."""

    def __init__(
        self, store: Store, config: CaptureConfig | None = None, queue: Queue | None = None
    ) -> None:
        self.store = store
        self.config = config or CaptureConfig()
        self.queue = queue or Queue(store.data_dir)

    def start(
        self,
        source: str,
        target: Target | None = None,
        metadata: Mapping[str, Any] | None = None,
        actor: str = "capture",
        origin_sha256: str | None = None,
        profile: str | None = None,
    ) -> str:
        """Open a new batch aimed at ``target`` (default: new documents outside any hồ sơ);
        ``profile`` "drawing" keeps the scan's resolution (maps, drawings)."""
        if profile is not None:
            ArchivalProfile(profile)  # refuse an unknown one now, not in the OCR job
        return self.queue.new_batch(
            source, target or Target(), dict(metadata or {}), actor, origin_sha256, profile
        )

    def receive(self, batch_id: str, source: Source, on_page: OnPage | None = None) -> int:
        """Spool every file ``source`` yields; an interruption keeps them and is re-raised."""
        self.queue.update(batch_id, state=BatchState.SCANNING, step="scan", error=None)
        n = self.queue.status(batch_id).pages_scanned
        try:
            for f in source.pages():
                n = self.queue.add_page(batch_id, f.name, f.data)
                if on_page is not None:
                    on_page(n, f.name)
        except ScannerInterrupted as exc:
            msg = (
                f"{exc} — {n} page(s) already scanned are kept in batch {batch_id}; "
                f"fix the scanner and resume the batch"
            )
            self.queue.update(batch_id, state=BatchState.INTERRUPTED, error=msg)
            raise ScannerInterrupted(msg) from exc
        except DiskFull:
            self.queue.update(batch_id, state=BatchState.INTERRUPTED)
            raise
        return n

    def process(self, batch_id: str, on_step: OnStep | None = None) -> CaptureResult:
        """Run the pipeline over the spooled files and file each document."""
        target, metadata, actor, _ = self.queue.metadata(batch_id)
        created = dt.datetime.fromtimestamp(self.queue.created(batch_id), clockmod.TZ)
        files = [InputFile(name, data) for name, data in self.queue.spooled(batch_id)]
        if not files:
            raise CaptureError(f"batch {batch_id} has no pages")
        self.queue.update(batch_id, state=BatchState.PROCESSING, error=None)

        def step(name: str, _work: Work) -> None:
            self.queue.update(batch_id, step=name)
            if on_step is not None:
                on_step(name)

        work = Work(files, target, created)
        try:
            run_steps(work, steps_for(self.config), step)
        except ImageRejected as exc:
            self.queue.update(batch_id, state=BatchState.REJECTED, error=str(exc))
            raise
        kept = sum(len(s.pages) for s in work.segments)
        self.queue.update(
            batch_id,
            pages_kept=kept,
            blank_dropped=work.blank_dropped,
            separators=work.separators,
            notes=work.notes,
        )
        if not work.segments:
            msg = f"every page of batch {batch_id} is blank or a separator: nothing to file"
            self.queue.update(batch_id, state=BatchState.REJECTED, error=msg)
            raise ImageRejected(msg)
        step("store", work)
        docs: list[Record] = []
        for n, seg in enumerate(work.segments, start=1):
            doc = self._file(batch_id, n, seg.target, seg.pdf, len(seg.pages), metadata, actor)
            docs.append(doc)
            self.queue.update(batch_id, documents=[d.id for d in docs])
        self.queue.update(batch_id, state=BatchState.FILED, step="filed")
        self.queue.drop_spool(batch_id)
        return CaptureResult(batch_id, docs, self.queue.status(batch_id), work.notes)

    def _file(
        self,
        batch_id: str,
        n: int,
        target: Target,
        pdf: bytes,
        pages: int,
        metadata: Mapping[str, Any],
        actor: str,
    ) -> Record:
        try:
            stored = self.store.content.put_bytes(pdf)
        except OSError as exc:
            self.queue.update(batch_id, state=BatchState.INTERRUPTED, error=f"disk full: {exc}")
            raise DiskFull(
                f"the disk is full while storing document {n} of batch {batch_id}; its pages "
                "are kept in the spool. Free space and resume the batch."
            ) from exc
        existing = filing.find_by_content(self.store, stored.sha256)
        if existing is not None:
            return existing
        name = f"scan-{batch_id[:8]}-{n}.pdf"
        ref = filing.content_ref(stored.sha256, stored.size, name)
        if target.document_id:
            doc = filing.attach(self.store, target.document_id, ref, actor)
        else:
            doc = filing.new_document(self.store, target, metadata, ref, pages, actor)
        self.queue.enqueue(
            JobKind.OCR, doc.id, stored.sha256, batch_id, self.queue.profile(batch_id)
        )
        return doc

    def scan(
        self,
        source: Source,
        target: Target | None = None,
        metadata: Mapping[str, Any] | None = None,
        actor: str = "capture",
        on_page: OnPage | None = None,
        on_step: OnStep | None = None,
        profile: str | None = None,
    ) -> CaptureResult:
        """A whole batch: receive from ``source``, then process and file it."""
        batch_id = self.start(source.name, target, metadata, actor, profile=profile)
        self.receive(batch_id, source, on_page)
        return self.process(batch_id, on_step)

    def resume(
        self,
        batch_id: str,
        source: Source | None = None,
        on_page: OnPage | None = None,
        on_step: OnStep | None = None,
    ) -> CaptureResult:
        """Carry on with an interrupted batch: more pages from ``source`` (if any), then file."""
        status = self.queue.status(batch_id)
        if status.state is BatchState.FILED:
            raise CaptureError(f"batch {batch_id} is already filed")
        if source is not None:
            self.receive(batch_id, source, on_page)
        return self.process(batch_id, on_step)


def ingest_upload(
    store: Store,
    files: Sequence[tuple[str, bytes | BinaryIO]],
    *,
    target: Target | None = None,
    metadata: Mapping[str, Any] | None = None,
    actor: str = "web",
    config: CaptureConfig | None = None,
    profile: str | None = None,
) -> CaptureResult:
    """Files uploaded from the web UI (or a phone camera) as one batch, filed like a scan.

    ``files`` are (name, bytes or binary stream) in page order. Bad input raises an
    ImageRejected subclass whose message names the file and says why; the files stay in the
    batch's spool (see ``BatchStatus``) until the batch is discarded.
    """
    loaded = [
        InputFile(name, data if isinstance(data, bytes) else data.read()) for name, data in files
    ]
    return Capture(store, config).scan(
        ListSource(loaded), target, metadata, actor, profile=profile
    )


def progress(store_or_queue: Store | Queue, batch_id: str | None = None) -> list[BatchStatus]:
    """Batches (newest first) with pages, step, documents, job states and errors, for the UI."""
    queue = store_or_queue if isinstance(store_or_queue, Queue) else Queue(store_or_queue.data_dir)
    if batch_id is not None:
        return [queue.status(batch_id)]
    return queue.batches()
