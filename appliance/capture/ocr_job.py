"""The OCR process: a scan's pages in their archival form, with a Vietnamese text layer, PDF/A-2b.

Run by ``ocr.run_ocr`` as ``python -m appliance.capture.ocr_job IN OUT SIDECAR REPORT [options]``
in a niced, memory-capped process of its own, so that a crash or an out-of-memory in the
image work or in tesseract fails only the job. IN is the lossless assembly filed at capture;
each page is encoded (``archival.encode_page``) while its full-resolution image is kept in
the work folder for tesseract (``ocr_plugin``): recognition runs on the scan as it came from
the scanner, the PDF keeps the archival page. OCRmyPDF's internal PDF/A backend (pikepdf)
makes the PDF/A-2b and passes the archival images through untouched.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from pathlib import Path

from PIL import Image

from .archival import ArchivalProfile, EncodedPage, encode_page, pdf
from .ocr_plugin import MASTERS_ENV
from .page import pdf_pages

PLUGIN = "appliance.capture.ocr_plugin"


def archival_pdf(raw: bytes, masters: Path, profile: ArchivalProfile) -> tuple[bytes, list[int]]:
    """The archival PDF of ``raw`` (pages as filed) and each page's image bytes; every page's
    full-resolution image is written to ``masters`` for the OCR plug-in."""
    masters.mkdir(parents=True, exist_ok=True)
    encoded: list[EncodedPage] = []
    dpis: list[float] = []
    for n, page in enumerate(pdf_pages(raw, "scan", min_dpi=1), start=1):
        ext = "png" if page.fmt == "png" else "jpg"
        (masters / f"p{n:06d}.{ext}").write_bytes(page.data)
        dpis.append(page.dpi)
        with Image.open(io.BytesIO(page.data)) as im:
            im.load()
            encoded.append(encode_page(im, page.dpi, profile))
    (masters / "dpi.json").write_text(json.dumps(dpis))
    return pdf(encoded), [e.size for e in encoded]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m appliance.capture.ocr_job")
    ap.add_argument("src", type=Path)
    ap.add_argument("dst", type=Path)
    ap.add_argument("sidecar", type=Path)
    ap.add_argument("report", type=Path)
    ap.add_argument("--profile", default=ArchivalProfile.TEXT.value)
    ap.add_argument("--language", default="vie")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--tesseract-timeout", type=float, default=600.0)
    a = ap.parse_args(argv)
    import ocrmypdf

    t0 = time.monotonic()
    work = a.dst.parent
    masters = work / "masters"
    archival, sizes = archival_pdf(a.src.read_bytes(), masters, ArchivalProfile(a.profile))
    src = work / "archival.pdf"
    src.write_bytes(archival)
    t1 = time.monotonic()
    os.environ[MASTERS_ENV] = str(masters)
    ocrmypdf.ocr(
        src,
        a.dst,
        language=a.language,
        output_type="pdfa-2",
        pdfa_backend="internal",
        optimize=0,
        jobs=a.jobs,
        sidecar=a.sidecar,
        tesseract_timeout=a.tesseract_timeout,
        progress_bar=False,
        plugins=[PLUGIN],
    )
    report = {"page_image_bytes": sizes, "encode_s": round(t1 - t0, 3),
              "ocr_s": round(time.monotonic() - t1, 3)}
    a.report.write_text(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
