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
from typing import Any

from PIL import Image

from .archival import ArchivalProfile, EncodedPage, encode_page, pdf
from .page import pdf_pages

PLUGIN = "appliance.capture.ocr_plugin"
MASTERS_ENV = "LUUTRU_OCR_MASTERS"  # where the plug-in finds the full-resolution scans


def with_dpi(data: bytes, fmt: str, dpi: float) -> bytes:
    """``data`` (PNG or JPEG) saying its resolution, without re-encoding the pixels: a pHYs
    chunk added to a PNG that has none, a JFIF density set in a JPEG that has the segment.
    Tesseract and OCRmyPDF read the resolution from the file."""
    import struct
    import zlib

    if fmt == "png" and data[:8] == b"\x89PNG\r\n\x1a\n" and b"pHYs" not in data[:4096]:
        ppm = round(dpi / 0.0254)
        body = b"pHYs" + struct.pack(">IIB", ppm, ppm, 1)
        chunk = struct.pack(">I", 9) + body + struct.pack(">I", zlib.crc32(body))
        end_ihdr = 8 + 8 + 13 + 4
        return data[:end_ihdr] + chunk + data[end_ihdr:]
    if fmt == "jpeg" and data[2:4] == b"\xff\xe0" and data[6:11] == b"JFIF\x00":
        d = round(dpi)
        return data[:13] + struct.pack(">BHH", 1, d, d) + data[18:]
    return data


def _png(raw: bytes, width: int, height: int, colours: int) -> bytes:
    """A PNG around zlib data that already holds PNG-filtered rows (img2pdf embeds a PNG's
    IDAT data as such: FlateDecode with /Predictor 15), so nothing is decoded or encoded."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(
            ">I", zlib.crc32(kind + body)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2 if colours == 3 else 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def page_images(raw: bytes) -> list[tuple[bytes, str, float]]:
    """(image file bytes, "png" or "jpeg", dpi) of each page of the lossless assembly (one
    image a page, as img2pdf made it), taken out of the PDF without decoding when it can be."""
    import pikepdf
    from pikepdf import Name

    out = []
    with pikepdf.open(io.BytesIO(raw)) as pdf:
        for page in pdf.pages:
            images = list(page.get_images().values())
            if len(images) != 1:
                return [(p.data, p.fmt, p.dpi) for p in pdf_pages(raw, "scan", min_dpi=1)]
            im = images[0]
            width_in = float(page.mediabox[2] - page.mediabox[0]) / 72.0
            dpi = int(im.Width) / width_in
            parms: Any = im.get("/DecodeParms") or {}
            cs = im.get("/ColorSpace")
            if im.get("/Filter") == Name.DCTDecode:
                out.append((im.read_raw_bytes(), "jpeg", dpi))
            elif (
                im.get("/Filter") == Name.FlateDecode
                and int(parms.get("/Predictor", 1)) >= 10
                and int(im.get("/BitsPerComponent", 0)) == 8
                and cs in (Name.DeviceRGB, Name.DeviceGray)
                and "/SMask" not in im
            ):
                colours = 3 if cs == Name.DeviceRGB else 1
                data = _png(im.read_raw_bytes(), int(im.Width), int(im.Height), colours)
                out.append((data, "png", dpi))
            else:
                return [(p.data, p.fmt, p.dpi) for p in pdf_pages(raw, "scan", min_dpi=1)]
    return out


def archival_pdf(raw: bytes, masters: Path, profile: ArchivalProfile) -> tuple[bytes, list[int]]:
    """The archival PDF of ``raw`` (pages as filed) and each page's image bytes; every page's
    full-resolution image is written to ``masters`` for the OCR plug-in."""
    masters.mkdir(parents=True, exist_ok=True)
    encoded: list[EncodedPage] = []
    dpis: list[float] = []
    for n, (data, fmt, dpi) in enumerate(page_images(raw), start=1):
        ext = "png" if fmt == "png" else "jpg"
        (masters / f"p{n:06d}.{ext}").write_bytes(with_dpi(data, fmt, dpi))
        dpis.append(dpi)
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            encoded.append(encode_page(im, dpi, profile))
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
    t0 = time.monotonic()
    work = a.dst.parent
    masters = work / "masters"
    archival, sizes = archival_pdf(a.src.read_bytes(), masters, ArchivalProfile(a.profile))
    src = work / "archival.pdf"
    src.write_bytes(archival)
    t1 = time.monotonic()
    os.environ[MASTERS_ENV] = str(masters)
    # Imported only now: OCRmyPDF costs ~40 MB, which the page images (freed by now) need not
    # share the process's peak with.
    import ocrmypdf

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
