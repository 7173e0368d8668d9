"""Scans that fit the link and the SD card: bytes, legibility, wire, time and memory per page.

Run pinned to one core, as a Raspberry Pi-class box would run its one OCR worker:

    taskset -c 0 .venv/bin/python -m tests.bench.scan_economy [--kinds text,table,photo] [--runs 3]

For each page type the generator makes (``tests/bench/pages.py``: paper grain and shading, a red
seal, Vietnamese text in three fonts; a register table; a photograph), as a 300 dpi colour PNG
(what SANE and most flatbeds hand over), it runs the real capture on a real box (``Capture`` →
``Worker``: OCR job, then PAdES signing with a P-256 agency key) and prints, against baselines
measured in the same run:

- bytes stored per page, all versions together (the content store's own files and derived
  records), with the signed file's parts: page images, text layer and PDF/A structure, and the
  signature increment, of which the 12 KiB of /Contents kept for the centre's time-stamp
  (24,576 hex digits in the file); against today's three versions (lossless assembly, OCR'd
  PDF/A of it, signed) and against ``ocrmypdf --optimize 3`` on the same PNG (target ≤ 1.0×);
  and what keeping lossless masters would add;
- legibility: tesseract's character error rate on the stored file rendered at 300 dpi against
  the text the generator wrote, minus the same on the lossless page (target ≤ +1 point), the
  CER of the stored text layer, and SSIM at 150 dpi (both files rendered by poppler);
- bytes on the wire to sync the document to a centre (in-process, HTTP on loopback), all
  requests with headers, against the stored bytes (target ≤ 1.05×);
- the OCR job's time and peak memory (median of ``--runs``) and signing time, against the
  OCR job as it was (ocrmypdf on the lossless assembly, no recompression).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from appliance.capture.batch import Capture
from appliance.capture.ocr import OcrConfig, run_ocr
from appliance.capture.pipeline import InputFile
from appliance.capture.sources.base import ListSource
from appliance.capture.worker import Worker
from appliance.datadir import init_data_dir
from appliance.pdfsign import TIMESTAMP_ROOM_HEX, sign_pdf
from appliance.store import Store
from tests.bench import pages
from tests.pki import SoftwareAgencyKey

ORG = ("000.21.08.H49", "Ủy ban nhân dân xã Đông Hải")
KB = 1000


# -- measures ---------------------------------------------------------------------------------


def cer(truth: str, text: str) -> float:
    """Character error rate (Levenshtein / length) on NFC text, free of reading order: both
    texts as their words sorted, so that a two-column heading read across or down (tesseract
    and pdftotext differ there) is not counted as errors, while every wrong, missing or extra
    letter or tone mark is."""
    a = " ".join(sorted(unicodedata.normalize("NFC", truth).split()))
    b = " ".join(sorted(unicodedata.normalize("NFC", text).split()))
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1] / max(1, len(a))


def tesseract(png: bytes, dpi: int = 300) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "page.png")
        path.write_bytes(png)
        out = subprocess.run(
            ["tesseract", str(path), "-", "-l", "vie", "--dpi", str(dpi)], capture_output=True,
            env=dict(os.environ, OMP_THREAD_LIMIT="1"),
        )
    if out.returncode != 0:
        raise RuntimeError(f"tesseract failed: {out.stderr.decode('utf-8', 'replace')[-500:]}")
    return out.stdout.decode("utf-8", "replace")


def render(pdf: bytes, dpi: int) -> bytes:
    """Page 1 of ``pdf`` as poppler draws it, PNG, without annotations (the signature's
    visible text block is not part of the scanned page)."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp, "in.pdf")
        src.write_bytes(pdf)
        subprocess.run(["pdftoppm", "-r", str(dpi), "-png", "-singlefile", "-hide-annotations",
                        str(src), str(Path(tmp, "out"))], check=True, capture_output=True)
        return Path(tmp, "out.png").read_bytes()


def text_layer(pdf: bytes) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp, "in.pdf")
        src.write_bytes(pdf)
        out = subprocess.run(["pdftotext", str(src), "-"], capture_output=True, check=True)
    return out.stdout.decode("utf-8", "replace")


def ssim(png_a: bytes, png_b: bytes) -> float:
    """Mean SSIM of two renderings (grey, 11-tap Gaussian σ 1.5, Wang et al. 2004)."""
    a = np.asarray(Image.open(io.BytesIO(png_a)).convert("L"), dtype=np.float64)
    b = np.asarray(Image.open(io.BytesIO(png_b)).convert("L"), dtype=np.float64)
    h, w = min(a.shape[0], b.shape[0]), min(a.shape[1], b.shape[1])
    a, b = a[:h, :w], b[:h, :w]
    k = np.exp(-0.5 * (np.arange(-5, 6) / 1.5) ** 2)
    k /= k.sum()

    def blur(x: np.ndarray) -> np.ndarray:
        x = np.apply_along_axis(lambda r: np.convolve(r, k, "valid"), 1, x)
        return np.apply_along_axis(lambda c: np.convolve(c, k, "valid"), 0, x)

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    ma, mb = blur(a), blur(b)
    va, vb, cov = blur(a * a) - ma * ma, blur(b * b) - mb * mb, blur(a * b) - ma * mb
    s = ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2))
    return float(s.mean())


def ocrmypdf(src: Path, dst: Path, *extra: str) -> tuple[float, float]:
    """The ``ocrmypdf`` command as an office would run it; returns seconds and its peak RSS in
    MB (``wait4``, as ``run_ocr`` measures the OCR job; this process's RUSAGE_CHILDREN only
    grows past the largest child so far). Both figures are at least this process's own RSS:
    Linux carries the forking process's resident set into a child's ru_maxrss across exec,
    so an exact peak needs a small launcher (e.g. ``/usr/bin/time -f %M``)."""
    args = [sys.executable, "-m", "ocrmypdf", "-l", "vie", "--output-type", "pdfa-2",
            "--pdfa-backend", "internal", "-j", "1", "--quiet", *extra, str(src), str(dst)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, env=dict(os.environ, OMP_THREAD_LIMIT="1"))
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, args)
    return seconds, usage.ru_maxrss / 1024


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    import logging

    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


# -- one page type ----------------------------------------------------------------------------


@dataclass
class Result:
    kind: str
    figures: dict[str, Any] = field(default_factory=dict)


class SyncRig:
    """A fresh centre on loopback HTTP and a box enrolled at it; ``sync`` is one agent cycle
    and returns the bytes it put on the wire each way."""

    def __init__(self, tmp: Path, store: Store) -> None:
        from aiohttp.test_utils import TestServer

        from luutru.centre.app import create_app
        from sync.central.centre import init_centre

        self.store = store
        self.centre = init_centre(tmp / "centre")
        self.loop = asyncio.new_event_loop()
        self.server = TestServer(create_app(self.centre))
        self.loop.run_until_complete(self.server.start_server())
        self._enrol()

    def _enrol(self) -> None:
        from sync import wire
        from sync.agent.enrol import accept, build_request
        from sync.central.enrolment import enrol, issue_token
        from sync.central.intake import Intake

        assert self.store.key is not None
        token = issue_token(self.centre, self.store.config.org_id)
        req = build_request(self.store.key, self.store.config, token,
                            "2025-09-15T09:30:00+07:00", wire.Via.HTTP)
        ans = enrol(Intake(self.centre), req.raw)
        accept(self.store.data_dir, ans.body, wire.sha256(req.raw), req.fingerprint,
               str(self.server.make_url("")))

    def sync(self) -> dict[str, int]:
        from sync.agent.cycle import run_once
        from sync.agent.http import Counters

        counters = Counters()
        report = self.loop.run_until_complete(
            run_once(self.store.data_dir, self.store, counters=counters)
        )
        assert report.pending_content == 0, report
        return {"up": counters.request_bytes, "down": counters.response_bytes,
                "content": counters.content_bytes}

    def close(self) -> None:
        self.loop.run_until_complete(self.server.close())
        self.loop.close()
        self.centre.close()


def _capture(store: Store, key: SoftwareAgencyKey, png: bytes) -> dict[str, Any]:
    """File one scanned page and run its OCR and signing jobs, as the box does."""
    res = Capture(store).scan(ListSource([InputFile("trang.png", png)]))
    (doc,) = res.documents
    worker = Worker(store, open_key=lambda: contextlib.nullcontext(key))
    t0 = time.perf_counter()
    outcomes = worker.drain()
    total = time.perf_counter() - t0
    assert [o.ok for o in outcomes] == [True, True], [o.error for o in outcomes]
    ocr = outcomes[0].ocr
    assert ocr is not None
    store.wait_sealed()
    return {
        "content": store.get("document", doc.id).data["Content"],
        "ocr_s": ocr.seconds, "ocr_rss_mb": ocr.peak_rss_kb / 1024,
        "sign_s": total - ocr.seconds, "images": ocr.page_image_bytes[0],
    }


def _read(store: Store, sha: str) -> bytes:
    with store.content.open(sha) as fh:
        return fh.read()


def measure(kind: str, seed: int, runs: int, key: SoftwareAgencyKey, tmp: Path) -> Result:
    page = pages.make(kind, seed)
    png = page.png()
    r = Result(kind)
    d = tmp / kind / "box"
    init_data_dir(d, *ORG, "software")
    with Store.open(d) as store:
        rig = SyncRig(tmp / kind, store)
        try:
            rig.sync()  # what the box held before the scan (its set-up entries)
            before = store.content.stored_bytes()
            got = _capture(store, key, png)
            stored = store.content.stored_bytes() - before
            wire = rig.sync()
        finally:
            rig.close()
        raw_item, ocr_item, signed_item = got["content"]
        assert raw_item.get("keep") == "none" and not store.content.exists(raw_item["sha256"])
        archival = _read(store, ocr_item["sha256"])
        signed = _read(store, signed_item["sha256"])
    r.figures.update(_sizes(got, stored, archival, signed, raw_item["size"]))
    r.figures["wire"] = wire
    r.figures["png"] = len(png)
    base = _baselines(tmp / kind, png, key, runs)
    r.figures.update({k: v for k, v in base.items() if not k.endswith("_pdf")})
    r.figures.update(_quality(page, png, signed, archival, base["raw_pdf"], base["o3_pdf"]))
    r.figures.update(ocr_s=got["ocr_s"], ocr_rss_mb=got["ocr_rss_mb"], sign_s=got["sign_s"])
    return r


def _sizes(got: dict[str, Any], stored: int, archival: bytes, signed: bytes,
           raw_size: int) -> dict[str, Any]:
    sig = len(signed) - len(archival)
    return {
        "stored": stored, "signed": len(signed), "archival": len(archival),
        "images": got["images"], "text_and_structure": len(archival) - got["images"],
        "signature": sig, "timestamp_room": TIMESTAMP_ROOM_HEX, "raw": raw_size,
    }


def _baselines(tmp: Path, png: bytes, key: SoftwareAgencyKey, runs: int) -> dict[str, Any]:
    """ocrmypdf -O3 on the PNG; today's three versions; and the OCR job as it was (ocrmypdf on
    the lossless assembly) against ours, run in turn ``runs`` times each (medians)."""
    from appliance.capture.page import load_pages
    from appliance.capture.pipeline import images_to_pdf

    src = tmp / "page.png"
    src.write_bytes(png)
    o3 = tmp / "o3.pdf"
    o3_s, _ = ocrmypdf(src, o3, "--optimize", "3")
    raw = images_to_pdf(load_pages(png, "p"))
    (tmp / "raw.pdf").write_bytes(raw)
    old = tmp / "old.pdf"
    old_s: list[float] = []
    old_rss: list[float] = []
    new_s: list[float] = []
    new_rss: list[float] = []
    for _ in range(max(1, runs)):
        seconds, peak_mb = ocrmypdf(tmp / "raw.pdf", old, "--optimize", "0")
        old_s.append(seconds)
        old_rss.append(peak_mb)
        res = run_ocr(raw, OcrConfig())
        new_s.append(res.seconds)
        new_rss.append(res.peak_rss_kb / 1024)
    old_pdf = old.read_bytes()
    with quiet():
        old_signed = sign_pdf(old_pdf, key, agency_name=ORG[1])
    return {
        "o3": o3.stat().st_size, "o3_s": o3_s, "o3_pdf": o3.read_bytes(), "raw_pdf": raw,
        "today": len(raw) + len(old_pdf) + len(old_signed), "old_ocr_s": old_s,
        "old_ocr_rss_mb": old_rss, "new_ocr_s": new_s, "new_ocr_rss_mb": new_rss,
    }


def _quality(
    page: pages.SyntheticPage, png: bytes, signed: bytes, archival: bytes, raw: bytes,
    o3: bytes,
) -> dict[str, Any]:
    """Re-OCR of what is stored (rendered at 300 dpi) against the lossless page, the stored
    text layer (read from the PDF/A the signed file begins with: pdftotext would add the
    signature's visible text block), and SSIM at 150 dpi against the lossless page rendered
    the same way."""
    reference = render(raw, 150)
    return {
        "cer_lossless": cer(page.text, tesseract(png)),
        "cer_stored": cer(page.text, tesseract(render(signed, 300))),
        "cer_o3": cer(page.text, tesseract(render(o3, 300))),
        "cer_text_layer": cer(page.text, text_layer(archival)),
        "ssim": ssim(reference, render(signed, 150)),
        "ssim_o3": ssim(reference, render(o3, 150)),
    }


def candidates(page: pages.SyntheticPage) -> list[str]:
    """The encodings considered for a page of text, each measured the same way: bytes of the
    page image, SSIM at 150 dpi, and the re-OCR character error rate of the decoded image
    against the lossless page (JBIG2 is not among them: Debian has no encoder)."""
    from appliance.capture.archival import encode_page
    from appliance.capture.archival import pdf as archival_pdf

    img = page.image
    w, h = img.size
    at200 = img.resize((round(w * 2 / 3), round(h * 2 / 3)), Image.Resampling.LANCZOS)
    ref150 = _png(img.resize((w // 2, h // 2), Image.Resampling.LANCZOS))
    base = cer(page.text, tesseract(page.png()))
    out: list[str] = []

    def line(name: str, size: int, decoded: Image.Image) -> None:
        full = decoded.resize((w, h), Image.Resampling.BICUBIC)
        c = cer(page.text, tesseract(_png(full)))
        s150 = ssim(ref150, _png(decoded.resize((w // 2, h // 2), Image.Resampling.LANCZOS)))
        out.append(f"    {name:34s} {size / KB:7.1f} KB  SSIM@150 {s150:.3f}  re-OCR CER "
                   f"{100 * c:.2f} % ({100 * (c - base):+.2f} pt)")

    for q in (35, 50, 65):
        data = _encode(at200, "JPEG", quality=q, subsampling=2, optimize=True)
        line(f"JPEG 200 dpi q{q} 4:2:0", len(data), _decoded(data))
    for rate in (60, 100):
        data = _encode(at200, "JPEG2000", quality_mode="rates", quality_layers=[rate],
                       irreversible=True)
        line(f"JPEG 2000 200 dpi 1:{rate}", len(data), _decoded(data))
    enc = encode_page(img, 300.0)
    drawn = Image.open(io.BytesIO(render(archival_pdf([enc]), 300))).convert("RGB")
    line("mixed raster (chosen)", enc.size, drawn)
    return out


def _png(im: Image.Image) -> bytes:
    return _encode(im, "PNG", dpi=(300, 300))


def _encode(im: Image.Image, fmt: str, **kw: Any) -> bytes:
    out = io.BytesIO()
    im.save(out, fmt, **kw)
    return out.getvalue()


def _decoded(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im.convert("RGB")


def _ok(good: bool) -> str:
    return "OK" if good else "MISSED"


def report(r: Result) -> str:
    f = r.figures
    times = f["new_ocr_s"]
    rss = f["new_ocr_rss_mb"]
    med = statistics.median(times)
    old_med = statistics.median(f["old_ocr_s"])
    room = f["timestamp_room"]
    target = 150 * KB if r.kind != "photo" else None
    lines = [
        f"{r.kind} page (A4, 300 dpi colour PNG from the scanner, {f['png'] / 1e6:.1f} MB):",
        f"  stored, all versions: {f['stored'] / KB:.1f} KB"
        + (f" (target ≤ 150 KB: {_ok(f['stored'] <= target)})" if target else "")
        + f"; today's three versions {f['today'] / 1e6:.1f} MB ({f['today'] / f['stored']:.0f}×)"
        f"; ocrmypdf --optimize 3 {f['o3'] / KB:.1f} KB → ratio {f['stored'] / f['o3']:.2f}× "
        f"(target ≤ 1.0: {_ok(f['stored'] <= f['o3'])})",
        f"  the signed file {f['signed'] / KB:.1f} KB = page images {f['images'] / KB:.1f} KB + "
        f"text layer and PDF/A {f['text_and_structure'] / KB:.1f} KB + signature "
        f"{f['signature'] / KB:.1f} KB, of which the time-stamp room {room / KB:.1f} KB "
        f"({100 * room / f['signed']:.0f} % of the page's bytes)",
        f"  lossless masters (off by default) would add {f['raw'] / 1e6:.1f} MB per page",
        f"  legibility: re-OCR CER {100 * f['cer_stored']:.2f} % on the stored file vs "
        f"{100 * f['cer_lossless']:.2f} % on the lossless page "
        f"({100 * (f['cer_stored'] - f['cer_lossless']):+.2f} pt; target ≤ +1: "
        f"{_ok(f['cer_stored'] - f['cer_lossless'] <= 0.01)}); -O3 {100 * f['cer_o3']:.2f} %; "
        f"stored text layer CER {100 * f['cer_text_layer']:.2f} %; SSIM at 150 dpi "
        f"{f['ssim']:.3f} (-O3 {f['ssim_o3']:.3f})",
        f"  wire: {f['wire']['up'] / KB:.1f} KB up ({f['wire']['up'] / f['stored']:.3f}× stored; "
        f"target ≤ 1.05: {_ok(f['wire']['up'] <= 1.05 * f['stored'])}), "
        f"{f['wire']['down'] / KB:.1f} KB down",
        f"  one core: OCR job (archival encoding + OCR + PDF/A) median {med:.1f} s "
        f"({', '.join(f'{t:.1f}' for t in times)}), peak {max(rss):.0f} MB; the OCR job as it "
        f"was (ocrmypdf on the lossless assembly, no recompression), run in turn: median "
        f"{old_med:.1f} s ({', '.join(f'{t:.1f}' for t in f['old_ocr_s'])}), peak "
        f"{max(f['old_ocr_rss_mb']):.0f} MB → ratio old/new {old_med / med:.2f}; signing "
        f"{f['sign_s']:.1f} s; ocrmypdf -O3 {f['o3_s']:.1f} s",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.bench.scan_economy")
    ap.add_argument("--kinds", default="text,table,photo")
    ap.add_argument("--runs", type=int, default=3, help="OCR job runs per page (median)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", type=Path, help="also write every figure here")
    ap.add_argument("--no-candidates", action="store_true",
                    help="skip the comparison of encodings on the text page")
    a = ap.parse_args(argv)
    affinity = sorted(os.sched_getaffinity(0))
    print(f"scan economy: CPUs {affinity} (pin with taskset -c 0), runs {a.runs}")
    key = SoftwareAgencyKey.make()
    results = []
    with tempfile.TemporaryDirectory() as tmp, quiet():
        if not a.no_candidates:
            print("encodings considered for a text page (the page image alone):", flush=True)
            for text in candidates(pages.make("text", a.seed)):
                print(text, flush=True)
        for kind in a.kinds.split(","):
            r = measure(kind, a.seed, a.runs, key, Path(tmp))
            print(report(r), flush=True)
            results.append(r)
    self_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process (capture, signing, sync): {self_rss:.0f} MB")
    if a.json:
        a.json.write_text(json.dumps({r.kind: r.figures for r in results}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
