"""Capture benchmarks, each printed with a raw baseline measured in the same run.

Run: ``.venv/bin/python -m tests.bench.capture`` (``--pages 20 --ocr-pages 3`` for a quick run).

- pipeline: A4 300 dpi colour pages through the whole capture without OCR (spool with fsync,
  normalise, blank check, separator check, img2pdf, content store, sealed record), in
  pages/min (target ≥ 60), against the raw minimum: img2pdf of the same bytes written with
  fsync.
- img2pdf: our image→PDF step (``images_to_pdf``) against the ``img2pdf`` command on the same
  page files (target ≥ 0.9×).
- OCR: pages/min of one OCR worker (ocrmypdf, -j 1, PDF/A-2b, memory cap) and its peak RSS
  (target ≤ 1 GB), against raw ``tesseract -l vie`` on the same page images.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import ImageDraw

from appliance.capture.batch import Capture
from appliance.capture.config import CaptureConfig
from appliance.capture.ocr import OcrConfig, run_ocr
from appliance.capture.page import load_pages
from appliance.capture.pipeline import images_to_pdf
from appliance.datadir import init_data_dir
from appliance.store import Store
from tests.capture.images import TEXT, encode, text_page

ORG = ("000.21.08.H49", "Ủy ban nhân dân xã Đông Hải")


def colour_page(i: int, fmt: str) -> bytes:
    """A scanned-looking A4 colour page at 300 dpi: text, a red stamp, a faint tint."""
    img = text_page([f"Trang {i + 1}", *TEXT])
    draw = ImageDraw.Draw(img)
    draw.ellipse((1500, 2600, 2100, 3200), outline=(200, 20, 20), width=18)
    draw.rectangle((0, 0, 2480, 40), fill=(235, 232, 220))
    if fmt == "PNG":
        return encode(img, "PNG")  # scanimage writes PNG
    return encode(img, "JPEG", quality=90)  # eSCL and scan-to-folder printers send JPEG


def bench_pipeline(pages: list[bytes], label: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp, "a")
        init_data_dir(data_dir, *ORG, "software")
        with Store.open(data_dir) as store:
            cap = Capture(store, CaptureConfig())
            t0 = time.perf_counter()
            batch = cap.start("bench")
            for n, data in enumerate(pages):
                cap.queue.add_page(batch, f"p{n}.png", data)
            res = cap.process(batch)
            store.wait_sealed()
            ours = time.perf_counter() - t0
            assert res.documents[0].data["PageAmount"] == len(pages)
        t0 = time.perf_counter()
        import img2pdf

        raw_pdf = img2pdf.convert(pages)
        with open(Path(tmp, "raw.pdf"), "wb") as fh:
            fh.write(raw_pdf)
            fh.flush()
            os.fsync(fh.fileno())
        raw = time.perf_counter() - t0
    rate = len(pages) / ours * 60
    print(
        f"pipeline ({label}, {len(pages)} pages A4 300 dpi colour, no OCR): "
        f"{rate:.0f} pages/min (target ≥ 60: {'OK' if rate >= 60 else 'MISSED'}); "
        f"raw img2pdf+fsync {len(pages) / raw * 60:.0f} pages/min; ratio raw/ours "
        f"{raw / ours:.2f}"
    )
    return rate


def bench_img2pdf(pages: list[bytes], label: str) -> float:
    loaded = [p for d in pages for p in load_pages(d, "p")]
    with tempfile.TemporaryDirectory() as tmp:
        ext = "png" if pages[0].startswith(b"\x89PNG") else "jpg"
        files = []
        for n, d in enumerate(pages):
            path = Path(tmp, f"p{n:03d}.{ext}")
            path.write_bytes(d)
            files.append(str(path))
        exe = shutil.which("img2pdf") or str(Path(sys.executable).with_name("img2pdf"))
        best_cmd = best_ours = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            subprocess.run([exe, *files, "-o", str(Path(tmp, "cmd.pdf"))], check=True)
            best_cmd = min(best_cmd, time.perf_counter() - t0)
            t0 = time.perf_counter()
            images_to_pdf(loaded)
            best_ours = min(best_ours, time.perf_counter() - t0)
    ratio = best_cmd / best_ours
    print(
        f"image→PDF ({label}, {len(pages)} pages): ours {best_ours * 1000:.0f} ms, img2pdf "
        f"command {best_cmd * 1000:.0f} ms; speed ratio {ratio:.2f}× "
        f"(target ≥ 0.9: {'OK' if ratio >= 0.9 else 'MISSED'})"
    )
    return ratio


def bench_ocr(n_pages: int) -> None:
    pages = [load_pages(colour_page(i, "JPEG"), "p")[0] for i in range(n_pages)]
    pdf = images_to_pdf(pages)
    result = run_ocr(pdf, OcrConfig(jobs=1))
    rate = n_pages / result.seconds * 60
    rss_mb = result.peak_rss_kb / 1024
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        for n, p in enumerate(pages):
            img = Path(tmp, f"p{n}.jpg")
            img.write_bytes(p.data)
            subprocess.run(
                ["tesseract", str(img), "-", "-l", "vie"],
                check=True,
                capture_output=True,
                env=dict(os.environ, OMP_THREAD_LIMIT="1"),
            )
        raw = time.perf_counter() - t0
        raw_rss = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    print(
        f"OCR (one worker, -j 1, PDF/A-2b, {n_pages} pages): {rate:.1f} pages/min, peak RSS "
        f"{rss_mb:.0f} MB (cap 1024 MB: {'OK' if rss_mb <= 1024 else 'MISSED'}); raw "
        f"tesseract {n_pages / raw * 60:.1f} pages/min, {raw_rss:.0f} MB; ratio raw/ours "
        f"{raw / result.seconds:.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, default=30)
    ap.add_argument("--ocr-pages", type=int, default=4)
    a = ap.parse_args(argv)
    for fmt in ("PNG", "JPEG"):
        pages = [colour_page(i, fmt) for i in range(a.pages)]
        bench_pipeline(pages, fmt)
        bench_img2pdf(pages, fmt)
    if shutil.which("tesseract"):
        bench_ocr(a.ocr_pages)
    else:
        print("OCR: skipped (tesseract is not installed)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())



