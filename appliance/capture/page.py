"""One scanned page: decoding, checking and normalising an input file into embeddable pages.

A page keeps the bytes that will go into the PDF (PNG or JPEG, passed through untouched when
they already qualify, so assembly stays lossless and fast) and a small grey copy at about
150 dpi that the blank and separator steps look at.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

from ..pdfcheck import find_active
from .errors import DecompressionBomb, ImageRejected, LowResolution, UnsafePdf

MIN_DPI = 200  # Decree 30/2020 Phụ lục I; Circular 05/2025 Điều 8
MAX_PIXELS = 120_000_000  # A3 at 600 dpi is 70 Mpx: anything far above is not a page
ANALYSIS_DPI = 150
A4_IN = (8.27, 11.69)
# A page size is plausible between a receipt-sized slip and A3 (with a scanner's margin).
_MIN_IN, _MAX_IN = 2.5, 18.0
_SCREEN_DPI = {72, 96}  # cameras and screenshots write these: they say nothing about paper


@dataclass(frozen=True)
class Page:
    """A checked page ready for assembly."""

    data: bytes  # PNG or JPEG bytes as embedded in the PDF
    fmt: str  # "png" or "jpeg"
    width: int
    height: int
    dpi: float  # real resolution: sets the PDF page size (100% scale)
    name: str  # where it came from, for messages
    mode: str = "RGB"
    warnings: tuple[str, ...] = ()
    thumb: Image.Image | None = field(default=None, compare=False, repr=False)

    @property
    def size_mm(self) -> tuple[float, float]:
        return (self.width / self.dpi * 25.4, self.height / self.dpi * 25.4)


def _plausible(w: int, h: int, dpi: float) -> bool:
    short, long_ = sorted((w / dpi, h / dpi))
    return short >= _MIN_IN and long_ <= _MAX_IN


def real_dpi(w: int, h: int, tagged: float | None, name: str, min_dpi: int = MIN_DPI) -> float:
    """The resolution the page really has on paper, or LowResolution saying why it is refused.

    A tag is believed when it gives a paper-sized page; a missing tag or a camera's 72/96 that
    gives an impossible size is replaced by the resolution the image has when fitted to A4.
    """
    if tagged and tagged >= 1 and _plausible(w, h, tagged) and round(tagged) not in _SCREEN_DPI:
        dpi = float(tagged)
        how = f"scanned at {dpi:.0f} dpi"
    elif tagged and round(tagged) in _SCREEN_DPI and _plausible(w, h, tagged):
        dpi = float(tagged)
        how = f"a {w}×{h} pixel image of a page ({dpi:.0f} dpi)"
    else:
        short, long_ = sorted((w, h))
        dpi = min(short / A4_IN[0], long_ / A4_IN[1])
        how = f"a {w}×{h} pixel image: about {dpi:.0f} dpi on an A4 page"
    if dpi + 0.5 < min_dpi:
        raise LowResolution(
            f"{how}; digitised documents need at least {min_dpi} dpi (Decree 30/2020 Phụ lục I, "
            f"Circular 05/2025 Điều 8). Scan it again at 300 dpi.",
            name,
        )
    return dpi


def _tag_dpi(im: Image.Image) -> float | None:
    dpi = im.info.get("dpi")
    if dpi:
        try:
            x, y = (float(v) for v in dpi)
        except (TypeError, ValueError):
            return None
        if x > 0 and y > 0:
            dpi = min(x, y)
            # PNG stores pixels per metre: 300 dpi comes back as 299.9994.
            return float(round(dpi)) if abs(dpi - round(dpi)) < 0.05 else dpi
    return None


def _thumb(im: Image.Image, dpi: float) -> Image.Image:
    """A grey copy at about ANALYSIS_DPI, upright (EXIF applied)."""
    factor = max(1, int(dpi // ANALYSIS_DPI))
    grey = im if im.mode == "L" else im.convert("L")
    small = grey.reduce(factor) if factor > 1 else grey.copy()
    out = ImageOps.exif_transpose(small.copy()) if _orientation(im) != 1 else small
    return out


def _orientation(im: Image.Image) -> int:
    try:
        return int(im.getexif().get(0x0112, 1) or 1)
    except Exception:
        return 1


def _open(data: bytes, name: str, max_pixels: int) -> Image.Image:
    if not data:
        raise ImageRejected("the file is empty (0 bytes); nothing was received", name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DecompressionBomb(f"refused: {exc}", name) from None
    except UnidentifiedImageError:
        raise ImageRejected("not an image or PDF this system can read", name) from None
    except OSError as exc:
        raise ImageRejected(f"the image is damaged ({exc})", name) from None
    w, h = im.size
    if w * h > max_pixels:
        raise DecompressionBomb(
            f"{w}×{h} pixels is more than any scanned page ({max_pixels:,} at most); refused",
            name,
        )
    return im


def _frames(im: Image.Image) -> int:
    return int(getattr(im, "n_frames", 1) or 1)


def _encode_png(im: Image.Image, dpi: float) -> bytes:
    out = io.BytesIO()
    im.save(out, "PNG", dpi=(dpi, dpi), compress_level=3)
    return out.getvalue()


def _page_from_image(im: Image.Image, data: bytes | None, name: str, min_dpi: int) -> Page:
    """Decode fully (a truncated file fails here), check, and pick pass-through or re-encode."""
    w, h = im.size
    fmt = (im.format or "").upper()
    dpi = real_dpi(w, h, _tag_dpi(im), name, min_dpi)
    try:
        if fmt == "JPEG" and im.mode in ("L", "RGB"):
            # Decode at reduced scale: fast, and still reads every block (truncation fails).
            im.draft(im.mode, (max(1, w // 2), max(1, h // 2)))
        im.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageRejected(f"the image is damaged or cut short ({exc})", name) from None
    notes: list[str] = []
    interlaced = bool(im.info.get("interlace"))
    # The PDF page size comes from Page.dpi at assembly, not from the file's own tag, so a
    # PNG or JPEG that is grey or RGB goes in byte for byte.
    passthrough = (
        data is not None and fmt in ("JPEG", "PNG") and im.mode in ("L", "RGB") and not interlaced
    )
    if passthrough:
        assert data is not None
        page_bytes, page_fmt, work = data, fmt.lower(), im
    else:
        work = im
        if im.mode not in ("L", "RGB"):
            work = im.convert("RGB")
            notes.append(f"colour mode {im.mode} converted to 24-bit RGB")
        page_bytes, page_fmt = _encode_png(work, dpi), "png"
    if work.mode == "L":
        notes.append(
            "scanned in grey: Circular 05/2025 asks for colour (≥ 24-bit); "
            "set the scanner to colour"
        )
    thumb = _thumb(work, dpi * work.size[0] / w)
    return Page(page_bytes, page_fmt, w, h, dpi, name, work.mode, tuple(notes), thumb)


def load_pages(
    data: bytes, name: str, *, min_dpi: int = MIN_DPI, max_pixels: int = MAX_PIXELS
) -> list[Page]:
    """Every page of one input file (image, multi-page TIFF or scanned PDF), checked."""
    if data[:5] == b"%PDF-":
        return pdf_pages(data, name, min_dpi=min_dpi, max_pixels=max_pixels)
    im = _open(data, name, max_pixels)
    if _frames(im) > 1:
        pages = []
        for i in range(_frames(im)):
            im.seek(i)
            frame = im.copy()
            frame.info["dpi"] = im.info.get("dpi")
            pages.append(_page_from_image(frame, None, f"{name} [{i + 1}]", min_dpi))
        return pages
    return [_page_from_image(im, data, name, min_dpi)]


def check_pdf_safe(pdf: Any, name: str) -> None:
    """Refuse a PDF that carries scripts, actions that run things, forms or attachments."""
    found = find_active(pdf)
    if found:
        attached = any("File" in k for k in found)
        what = "attachments" if attached else "scripts or actions"
        raise UnsafePdf(
            f"the PDF carries {what} ({', '.join(found)}); scanned documents never do. "
            "It was refused; scan the paper instead.",
            name,
        )


def pdf_pages(
    data: bytes, name: str, *, min_dpi: int = MIN_DPI, max_pixels: int = MAX_PIXELS
) -> list[Page]:
    """The page images of a scanned PDF (one image per page), extracted without re-encoding."""
    import pikepdf
    from pikepdf import PdfImage

    try:
        pdf = pikepdf.open(io.BytesIO(data))
    except pikepdf.PasswordError:
        raise ImageRejected("the PDF is password-protected", name) from None
    except pikepdf.PdfError as exc:
        raise ImageRejected(f"the PDF is damaged ({exc})", name) from None
    with pdf:
        check_pdf_safe(pdf, name)
        pages: list[Page] = []
        for n, page in enumerate(pdf.pages, start=1):
            label = f"{name} p.{n}"
            images = list(page.get_images().values())
            if not images:
                raise ImageRejected(
                    "the page has no scanned image (a typed PDF, not a scan)", label
                )
            raw = max(images, key=lambda im: int(im.Width) * int(im.Height))
            pim = PdfImage(raw)  # type: ignore[arg-type]
            if pim.width * pim.height > max_pixels:
                raise DecompressionBomb(f"{pim.width}×{pim.height} pixels; refused", label)
            box = [float(v) for v in page.mediabox]
            width_in = abs(box[2] - box[0]) / 72.0
            dpi = pim.width / width_in if width_in else 0.0
            buf = io.BytesIO()
            try:
                pim.extract_to(stream=buf)
                img_bytes = buf.getvalue()
            except Exception:
                img_bytes = b""
            try:
                im = (
                    Image.open(io.BytesIO(img_bytes)) if img_bytes else pim.as_pil_image()
                )
            except Exception as exc:
                raise ImageRejected(f"the page image cannot be read ({exc})", label) from None
            if (im.format or "") not in ("PNG", "JPEG"):
                img_bytes = b""
            im.info["dpi"] = (dpi, dpi)
            pages.append(_page_from_image(im, img_bytes or None, label, min_dpi))
        return pages
