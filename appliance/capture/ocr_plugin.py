"""An OCRmyPDF plug-in: tesseract reads the full-resolution scan, not the archival page.

The PDF given to OCRmyPDF holds each page in its archival form (``archival.py``: 200 dpi paper,
compressed); recognition on that would lose accuracy. The scans as they came from the scanner
are in the folder named by ``LUUTRU_OCR_MASTERS`` (``p000001.png``/``.jpg``… and
``dpi.json``). Two hooks use them:

- ``rasterize_pdf_page``: when OCRmyPDF asks for page n at the scan's own resolution (it does:
  the ink mask is at that resolution, the page's highest), the scan itself is the raster, so
  nothing is drawn and nothing re-encoded (OCRmyPDF then hands the file to tesseract as is);
- ``filter_ocr_image``: otherwise, the image OCRmyPDF is about to send to tesseract is swapped
  for the scan. The text layer is placed from the image's own resolution, so the words land
  where they are on the page either way.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from ocrmypdf import hookimpl
from PIL import Image

from .ocr_job import MASTERS_ENV


def master_path(folder: Path, pageno: int) -> Path | None:
    """The full-resolution image of page ``pageno`` (zero-based) in ``folder``, if any."""
    for ext in ("png", "jpg", "tif"):
        p = folder / f"p{pageno + 1:06d}.{ext}"
        if p.is_file():
            return p
    return None


def _master(pageno: int) -> tuple[Path, float] | None:
    folder = os.environ.get(MASTERS_ENV)
    if not folder:
        return None
    path = master_path(Path(folder), pageno)
    if path is None:
        return None
    dpi = float(json.loads((Path(folder) / "dpi.json").read_text())[pageno])
    return path, dpi


@hookimpl
def rasterize_pdf_page(
    input_file: Path,
    output_file: Path,
    raster_device: Any,
    raster_dpi: Any,
    pageno: int,
    page_dpi: Any,
    rotation: int | None,
    filter_vector: bool,
    stop_on_soft_error: bool,
    options: Any,
    use_cropbox: bool,
) -> Path | None:
    found = _master(pageno - 1)
    if found is None or rotation or not str(output_file).endswith("rasterize.png"):
        return None  # previews, rotations: OCRmyPDF's own rasteriser
    path, dpi = found
    if abs(float(raster_dpi.x) - dpi) > 0.01 * dpi or abs(float(raster_dpi.y) - dpi) > 0.01 * dpi:
        return None
    with Image.open(path) as im:
        if im.mode not in ("L", "RGB") or im.info.get("dpi") is None:
            return None  # filter_ocr_image supplies it with its resolution set
    shutil.copyfile(path, output_file)  # the format is read from the bytes, not the name
    return output_file


@hookimpl
def filter_ocr_image(page: Any, image: Image.Image) -> Image.Image:
    found = _master(int(page.pageno))
    if found is None:
        return image
    path, dpi = found
    with Image.open(path) as probe:
        if probe.size == image.size:
            return image  # the raster is the scan already (rasterize_pdf_page)
    master: Image.Image = Image.open(path)
    master.load()
    if master.mode not in ("L", "RGB"):
        master = master.convert("RGB")
    master.info["dpi"] = (dpi, dpi)
    return master
