"""An OCRmyPDF plug-in: tesseract reads the full-resolution scan, not the archival page.

The PDF given to OCRmyPDF holds each page in its archival form (``archival.py``: 200 dpi paper,
compressed); recognition on that would lose accuracy. OCRmyPDF calls ``filter_ocr_image`` for
the image it is about to send to the OCR engine; this returns the page as it was scanned, from
the folder named by ``LUUTRU_OCR_MASTERS`` (``p000001.png``/``.jpg``… with ``dpi.json``). The
text layer is placed from the image's own resolution, so the words land where they are on the
page whatever the archival page's resolution.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ocrmypdf import hookimpl
from PIL import Image

MASTERS_ENV = "LUUTRU_OCR_MASTERS"


def master_path(folder: Path, pageno: int) -> Path | None:
    """The full-resolution image of page ``pageno`` (zero-based) in ``folder``, if any."""
    for ext in ("png", "jpg", "tif"):
        p = folder / f"p{pageno + 1:06d}.{ext}"
        if p.is_file():
            return p
    return None


@hookimpl
def filter_ocr_image(page: Any, image: Image.Image) -> Image.Image:
    folder = os.environ.get(MASTERS_ENV)
    if not folder:
        return image
    path = master_path(Path(folder), int(page.pageno))
    if path is None:
        return image
    dpi = json.loads((Path(folder) / "dpi.json").read_text())[int(page.pageno)]
    master: Image.Image = Image.open(path)
    master.load()
    if master.mode not in ("L", "RGB"):
        master = master.convert("RGB")
    master.info["dpi"] = (float(dpi), float(dpi))
    return master
