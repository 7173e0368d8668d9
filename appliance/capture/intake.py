"""Every way in goes through capture: files a clerk uploads or photographs for a document.

A PDF made by a computer (text on its pages, or a digital signature inside) is kept byte for
byte — re-making it would break the issuer's signature — and its text is indexed for search at
once. Everything else (a phone photo, a scan saved as JPEG/PNG/TIFF, a PDF of page images)
joins the scanner's pipeline: normalised, assembled into one PDF, then, in the background
worker, recognised (Vietnamese OCR) into PDF/A and signed with the agency key when one exists.
``status`` says where a document's files stand, for the page that shows it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..results import Record
from ..store import Store
from . import filing
from .batch import ingest_upload
from .config import CaptureConfig
from .queue import JobKind, JobState, Queue, queue_exists
from .separator import Target

TEXT_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class IntakeFile:
    """A file already checked by the caller (type from its bytes, no active content)."""

    name: str
    path: Path
    mime: str
    born_digital: bool


def born_digital_text(path: Path) -> str:
    """The text layer of a computer-made PDF (poppler's pdftotext); empty when it has none or
    cannot be read in time."""
    try:
        proc = subprocess.run(
            ["pdftotext", "-enc", "UTF-8", "-q", str(path), "-"],
            capture_output=True, timeout=TEXT_TIMEOUT_S, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return proc.stdout.decode("utf-8", "replace").strip() if proc.returncode == 0 else ""


def take_in(
    store: Store,
    doc_id: str,
    files: Sequence[IntakeFile],
    actor: str,
    config: CaptureConfig | None = None,
) -> Record:
    """File ``files`` into the document (kept or captured, as the module says) and return its
    current version. Scans are refused with a capture error (``ImageRejected`` and its kinds:
    too low a resolution, every page blank) that names the file; born-digital files already
    kept stay."""
    kept = [f for f in files if f.born_digital]
    scans = [f for f in files if not f.born_digital]
    if kept:
        items: list[dict[str, Any]] = []
        for f in kept:
            with f.path.open("rb") as fh:
                stored = store.content.put_stream(fh)
            items.append({"sha256": stored.sha256, "size": stored.size, "name": f.name,
                          "mime": f.mime})
        store.attach_content(doc_id, items, actor)
        text = "\n\n".join(t for f in kept if (t := born_digital_text(f.path)))
        if text:
            filing.add_text(store, doc_id, items[0]["sha256"], text, actor)
    if scans:
        ingest_upload(store, [(f.name, f.path.read_bytes()) for f in scans],
                      target=Target(document_id=doc_id), actor=actor, config=config)
    return store.get("document", doc_id)


@dataclass(frozen=True)
class CaptureStatus:
    """Where a document's captured files stand: ``step`` is "ocr" or "sign" while work is
    queued or running, "failed" when a job gave up, "done" when every job finished, or None
    when nothing of it went through capture."""

    step: str | None
    error: str | None = None
    retrying: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"step": self.step, "error": self.error, "retrying": self.retrying}


def status(data_dir: Path, doc_id: str) -> CaptureStatus:
    if not queue_exists(data_dir):
        return CaptureStatus(None)
    jobs = Queue(data_dir).jobs(document_id=doc_id)
    if not jobs:
        return CaptureStatus(None)
    for job in jobs:
        if job.state in (JobState.QUEUED, JobState.RUNNING):
            step = "ocr" if job.kind is JobKind.OCR else "sign"
            return CaptureStatus(step, job.error, job.attempts > 0 and bool(job.error))
    failed = [j for j in jobs if j.state is JobState.FAILED]
    if failed:
        return CaptureStatus("failed", failed[-1].error)
    return CaptureStatus("done")
