"""Vietnamese OCR into archival PDF/A-2b, in a niced, memory-capped process (``ocr_job``).

The process encodes each page in its archival form (``archival.py``) and runs ocrmypdf +
tesseract `vie` with recognition on the full-resolution scan (``ocr_plugin``). The PDF/A
conversion uses ocrmypdf's internal backend (pikepdf): no Ghostscript, so the archival images
go through unchanged. Tesseract runs single-threaded (OMP_THREAD_LIMIT=1): on two cores
OpenMP makes it 3.5× slower.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from .archival import ArchivalProfile
from .errors import OcrFailed

_OOM_SIGNS = (
    "MemoryError",
    "Cannot allocate memory",
    "bad_alloc",
    "failed to map segment",
    "Out of memory",
)


@dataclass(frozen=True)
class OcrConfig:
    language: str = "vie"
    memory_mb: int = 1024  # address-space cap of the OCR process and its tesseract children
    timeout_s: float = 600.0
    nice: int = 10
    jobs: int = 1  # pages in parallel inside one OCR run


@dataclass(frozen=True)
class OcrResult:
    pdf: bytes
    text: str
    seconds: float
    peak_rss_kb: int
    page_image_bytes: tuple[int, ...] = ()  # each page's archival image layers


def _limits(config: OcrConfig) -> None:
    """Run in the child before exec: lower priority, cap memory, own process group."""
    os.setpgrp()
    os.nice(config.nice)
    cap = config.memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))


def command(
    src: Path,
    dst: Path,
    sidecar: Path,
    config: OcrConfig,
    profile: ArchivalProfile = ArchivalProfile.TEXT,
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "appliance.capture.ocr_job",
        str(src),
        str(dst),
        str(sidecar),
        str(dst.with_suffix(".json")),
        "--profile",
        profile.value,
        "--language",
        config.language,
        "--jobs",
        str(config.jobs),
        "--tesseract-timeout",
        str(int(config.timeout_s)),
    ]


def _explain(status: int, stderr: str, config: OcrConfig) -> str:
    tail = " ".join(stderr.strip().splitlines()[-3:])[-500:]
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = str(sig)
        return f"OCR was killed by {name} (out of memory or crashed; cap {config.memory_mb} MB)"
    code = os.WEXITSTATUS(status)
    if any(m in stderr for m in _OOM_SIGNS):
        return f"OCR ran out of memory (cap {config.memory_mb} MB): {tail}"
    return f"OCR failed with exit code {code}: {tail}"


def run_ocr(
    pdf: bytes,
    config: OcrConfig | None = None,
    workdir: Path | None = None,
    profile: ArchivalProfile = ArchivalProfile.TEXT,
) -> OcrResult:
    """The archival PDF/A-2b of the scan ``pdf`` with an invisible Vietnamese text layer, and
    the text (NFC)."""
    config = config or OcrConfig()
    with tempfile.TemporaryDirectory(dir=workdir, prefix="ocr-") as tmp:
        src, dst, side = Path(tmp, "in.pdf"), Path(tmp, "out.pdf"), Path(tmp, "out.txt")
        src.write_bytes(pdf)
        env = dict(os.environ, OMP_THREAD_LIMIT="1", PYTHONUNBUFFERED="1")
        started = time.monotonic()
        err_path = Path(tmp, "stderr")
        with err_path.open("wb") as err:
            proc = subprocess.Popen(
                command(src, dst, side, config, profile),
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=env,
                preexec_fn=lambda: _limits(config),
            )
            status, rusage = _wait(proc, config.timeout_s)
        seconds = time.monotonic() - started
        stderr = err_path.read_text("utf-8", "replace")
        if status is None:
            raise OcrFailed(f"OCR took longer than {config.timeout_s:.0f} s and was stopped")
        if status != 0 or not dst.is_file():
            raise OcrFailed(_explain(status, stderr, config))
        raw = side.read_text("utf-8", "replace") if side.exists() else ""
        text = unicodedata.normalize("NFC", raw)
        report = json.loads(dst.with_suffix(".json").read_text())
        return OcrResult(
            dst.read_bytes(),
            text,
            seconds,
            int(rusage.ru_maxrss) if rusage else 0,
            tuple(int(n) for n in report.get("page_image_bytes", ())),
        )


def _wait(
    proc: subprocess.Popen[bytes], timeout: float
) -> tuple[int | None, resource.struct_rusage | None]:
    """Wait for the OCR process with its resource use; kill its whole group on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = status
            return status, rusage
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            os.wait4(proc.pid, 0)
            proc.returncode = -9
            return None, None
        time.sleep(0.05)


def pdfa_part(pdf: bytes) -> str:
    """The PDF/A identification in the XMP, e.g. '2B' (empty when there is none)."""
    import io

    import pikepdf

    with pikepdf.open(io.BytesIO(pdf)) as doc:
        meta = doc.open_metadata()
        part = str(meta.get("pdfaid:part") or "")
        conf = str(meta.get("pdfaid:conformance") or "")
    return f"{part}{conf}".upper()
