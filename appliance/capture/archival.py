"""The archival form of a scanned page: small enough for a 256 kbit/s link and an SD card.

Measured on realistic pages (``tests/bench/scan_economy.py``; the numbers are in the README),
the encoding is a two-layer *mixed raster* page, as archives use for typed documents:

- the **ink** (text, table rules, the seal's strokes, signatures): a 1-bit mask at the scan's
  own resolution (300 dpi), CCITT Group 4 (PDF/A-2 allows it; Debian has no JBIG2 encoder,
  and JBIG2's lossy symbol matching is what once swapped digits in scanned invoices), painted
  with the ink's own colour from a 50 dpi colour layer (each cell the average of its ink
  pixels only), so a red seal stays red and blue ink blue, with the stroke shapes of the
  300 dpi scan;
- the **paper** (everything else, photographs included): colour JPEG at 200 dpi (Circular
  05/2025 Điều 8 for administrative documents), 4:2:0, with the paper's grain smoothed
  where there is no picture: grain is what makes a scan of a white page cost a lot, and it
  carries nothing. Pictures (a photograph, a solid fill: where the background is much darker
  than the page's paper, or mostly covered where text leaves most paper bare, and all they
  enclose) are kept whole, as scanned: neither masked nor smoothed. Judged cell by cell on
  the local contrast alone, a photograph's even parts (a sky) passed for paper, and the
  re-OCR of the benchmark's photograph page found stray letters in its masked texture.

Measured on the benchmark's letter (one A4 page, the page image alone): this form takes
91 KB and its re-OCR at 300 dpi is 0.44 points of character error rate worse than the
lossless page's; a 200 dpi JPEG (4:2:0) needs q35 and 191 KB (2.1×) for the same legibility,
JPEG 2000 at 116 KB (1.3×) is already 1.1 points worse, and at the JPEG's 191 KB no better
than it. SSIM at 150 dpi is lower than the JPEG's (0.87 against 0.89): what it counts as lost
is mostly the smoothed grain. JBIG2 is not an option here: Debian has no encoder.

Maps and drawings, or an office that asks for it (``ArchivalProfile.DRAWING``), keep the
scan's resolution for every layer and no smoothing.

Everything here is Pillow; pages are encoded one at a time, the colour layer one band at a
time (about 70 MB above the decoded 300 dpi page, 0.2–0.5 s of CPU a page on one core).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageMath, ImageOps

TEXT_DPI = 200  # Circular 05/2025 Điều 8: administrative documents
INK_LAYER_DPI = 50  # colour of the ink strokes; their shape is the full-resolution mask
INK_DELTA = 70  # darker than the local paper by this much (of 255) is ink
PICTURE_COVER = 0.6  # share of non-paper pixels above which a region is a picture
PICTURE_DARKER = 40  # a background this much darker than the page's paper is a picture's
PICTURE_HOLE = 0.25  # the largest share of the page a picture's hole (filled) may be


class ArchivalProfile(StrEnum):
    TEXT = "text"  # typed documents: 200 dpi paper, full-resolution ink
    DRAWING = "drawing"  # maps, drawings, or on request: the scan's resolution everywhere


@dataclass(frozen=True)
class Settings:
    paper_dpi: int | None  # None: the scan's own resolution
    paper_quality: int
    ink_quality: int
    smooth: bool


SETTINGS = {
    ArchivalProfile.TEXT: Settings(TEXT_DPI, 45, 40, True),
    ArchivalProfile.DRAWING: Settings(None, 70, 60, False),
}


@dataclass(frozen=True)
class Layer:
    data: bytes
    width: int
    height: int
    kind: str  # "jpeg" (DCTDecode, RGB) or "g4" (CCITTFaxDecode, 1 bit)


@dataclass(frozen=True)
class EncodedPage:
    """One page in its archival form: the paper, and the ink (colour and mask) if any."""

    width_pt: float
    height_pt: float
    paper: Layer
    ink: Layer | None
    mask: Layer | None
    dpi: float  # the scan's resolution (the mask's)

    @property
    def size(self) -> int:
        return sum(len(x.data) for x in (self.paper, self.ink, self.mask) if x is not None)


def _jpeg(im: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    im.save(out, "JPEG", quality=quality, subsampling=2, optimize=True)
    return out.getvalue()


def _g4(mask: Image.Image) -> bytes:
    """The CCITT Group 4 data of a 1-bit image (one strip, as PDF's CCITTFaxDecode reads it)."""
    from PIL import TiffImagePlugin

    out = io.BytesIO()
    mask.save(out, "TIFF", compression="group4", strip_size=2**31 - 1)
    out.seek(0)
    with Image.open(out) as tif:
        assert isinstance(tif, TiffImagePlugin.TiffImageFile)
        offsets = tif.tag_v2[TiffImagePlugin.STRIPOFFSETS]
        counts = tif.tag_v2[TiffImagePlugin.STRIPBYTECOUNTS]
    if isinstance(offsets, tuple):
        if len(offsets) != 1:
            raise ValueError("the G4 mask came out in more than one strip")
        offsets, counts = offsets[0], counts[0]
    raw = out.getvalue()
    return raw[int(offsets) : int(offsets) + int(counts)]


def _scaled(im: Image.Image, factor: float) -> Image.Image:
    if abs(factor - 1.0) < 1e-6:
        return im
    size = (max(1, round(im.width * factor)), max(1, round(im.height * factor)))
    return im.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)


def _max(im: Image.Image, size: int) -> Image.Image:
    """``MaxFilter(size)`` as ``size // 2`` passes of a 3×3 maximum: the same image (a square
    maximum is the 3×3 one repeated, edges replicated either way) for a fraction of the work
    (Pillow sorts each window: 81 values a pixel for 9×9, 4 × 9 this way)."""
    for _ in range(size // 2):
        im = im.filter(ImageFilter.MaxFilter(3))
    return im


def _paper_level(grey: Image.Image) -> Image.Image:
    """The local paper brightness (ink and grain removed), at ``grey``'s size."""
    small = grey.reduce(8)
    level = _max(small, 9).filter(ImageFilter.BoxBlur(4))
    return level.resize(grey.size, Image.Resampling.BILINEAR)


def _pictures(grey: Image.Image, paper: Image.Image) -> Image.Image:
    """L mask (255), at 1/32 of the scan, of the page's pictures (photographs, solid fills),
    each kept whole. A cell is picture where the background under it is not paper (the local
    paper level, ink taken out, is much darker than the page's paper: a sky, a hillside, a
    building) or where it is mostly covered (a picture's textured parts, its border against
    the paper), where text, rules and seal strokes leave most paper bare; what such cells
    enclose is picture too, and the picture reaches one cell past what was found (its edge
    cells, half paper)."""
    g, p = grey.reduce(2), paper.reduce(2)
    diff = ImageChops.subtract(p, g)
    covered = diff.point(lambda v: 255 if v > 18 else 0)
    density = covered.reduce(16).filter(ImageFilter.BoxBlur(2))
    cut = int(255 * PICTURE_COVER)
    found = density.point(lambda v: 255 if v >= cut else 0)
    level = p.reduce(16)
    bright = _percentile(level, 0.95)  # the page's paper (shading and mottle are far less)
    dark = level.point(lambda v: 255 if v < bright - PICTURE_DARKER else 0)
    # the level is a maximum over ±32 pixels, blurred over as much: it shows a picture's
    # background up to two cells short of its edge
    dark = dark.filter(ImageFilter.MaxFilter(5))
    return _filled(ImageChops.lighter(found, dark)).filter(ImageFilter.MaxFilter(3))


def _percentile(im: Image.Image, q: float) -> int:
    """The grey value below which a share ``q`` of ``im``'s pixels lie."""
    hist = im.histogram()
    seen, want = 0, q * im.width * im.height
    for value, count in enumerate(hist):
        seen += count
        if seen >= want:
            return value
    return 255


def _filled(mask: Image.Image) -> Image.Image:
    """``mask`` with its holes filled (a photograph's white wall or cloud), each hole up to
    PICTURE_HOLE of the page: a dark border all round a scan encloses the whole page, and a
    page is not a picture for that. The paper outside is found by a flood from a one-cell
    frame around the page."""
    if mask.getbbox() is None:
        return mask
    framed = ImageOps.expand(mask, 1, fill=0)
    ImageDraw.floodfill(framed, (0, 0), 128)
    limit = PICTURE_HOLE * mask.width * mask.height
    px = framed.load()
    assert px is not None
    for y in range(1, framed.height - 1):
        for x in range(1, framed.width - 1):
            if px[x, y] == 0:  # a hole not yet judged
                ImageDraw.floodfill(framed, (x, y), 64)
                small = framed.histogram()[64] <= limit
                ImageDraw.floodfill(framed, (x, y), 255 if small else 128)
    inner = framed.crop((1, 1, mask.width + 1, mask.height + 1))
    return inner.point(lambda v: 255 if v == 255 else 0)


def _ink_colour(rgb: Image.Image, ink: Image.Image, factor: int) -> Image.Image:
    """The ink layer at 1/``factor``: in each cell with ink, the average colour of its ink
    pixels only (so a thin red line stays red, not pink), spread a little beyond; one colour
    band at a time, so that no second full-size colour image is ever held."""
    if factor == 1:
        return rgb
    w = ink.reduce(factor)
    zero = Image.new("L", ink.size, 0)
    bands = []
    for i in range(3):
        premultiplied = Image.composite(rgb.getchannel(i), zero, ink).reduce(factor)
        bands.append(
            ImageMath.lambda_eval(lambda a: a["c"] * 255 / a["w"], c=premultiplied, w=w)
            .convert("L")
        )
    del zero
    fine = Image.merge("RGB", bands)
    has = w.point(lambda v: 255 if v else 0)
    coarse = fine.reduce(4)
    cw = has.reduce(4)
    # the same average one level up, to fill cells next to ink (JPEG blurs across them)
    coarse_bands = []
    black = Image.new("L", fine.size, 0)
    for i in range(3):
        pm = Image.composite(fine.getchannel(i), black, has).reduce(4)
        coarse_bands.append(
            ImageMath.lambda_eval(lambda a: a["c"] * 255 / a["w"], c=pm, w=cw).convert("L")
        )
    coarse = Image.composite(Image.merge("RGB", coarse_bands),
                             Image.new("RGB", cw.size, (40, 40, 40)),
                             cw.point(lambda v: 255 if v else 0))
    spread = coarse.resize(fine.size, Image.Resampling.BILINEAR)
    return Image.composite(fine, spread, has)


def _fit(im: Image.Image, size: tuple[int, int], resample: Image.Resampling) -> Image.Image:
    return im if im.size == size else im.resize(size, resample)


def _smooth_paper(
    rgb: Image.Image, ink: Image.Image, pictures: Image.Image, target: float, dpi: float
) -> Image.Image:
    """The paper at ``target`` dpi without its grain: under the ink, the paper's colour
    around it (no halo); elsewhere blurred (σ 0.03 inch); pictures as scanned. The blurred
    paper holds nothing finer than its blur, so it is made at a quarter of ``target``
    (a box reduction of the scan) and enlarged: the same page for a sixth of the work, which
    on a page given as JPEG is most of what the archival encoding costs."""
    k = max(1, round(dpi * 4 / target))
    work = rgb.reduce(k)
    near_ink = ink.reduce(k).point(lambda v: 255 if v else 0).filter(ImageFilter.MaxFilter(3))
    blank = _max(rgb.reduce(8), 9).filter(ImageFilter.BoxBlur(4))
    clean = Image.composite(_fit(blank, work.size, Image.Resampling.BILINEAR), work, near_ink)
    del blank, near_ink, work
    size = (max(1, round(rgb.width * target / dpi)), max(1, round(rgb.height * target / dpi)))
    smooth = clean.filter(ImageFilter.GaussianBlur(3 * dpi / k / 100))
    smooth = smooth.resize(size, Image.Resampling.BILINEAR)
    del clean
    if pictures.getbbox() is not None:
        paper = _scaled(rgb, target / dpi)
        smooth = Image.composite(paper, smooth, _fit(pictures, size, Image.Resampling.NEAREST))
    return smooth


def encode_page(
    image: Image.Image, dpi: float, profile: ArchivalProfile = ArchivalProfile.TEXT
) -> EncodedPage:
    """``image`` (a scanned page at ``dpi``) in its archival form."""
    settings = SETTINGS[profile]
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    grey = rgb.convert("L")
    level = _paper_level(grey)
    pictures = _pictures(grey, level)  # at 1/32 of the scan
    ink = ImageChops.subtract(level, grey)
    del grey, level
    ink = ink.point(lambda v: 255 if v > INK_DELTA else 0)
    if pictures.getbbox() is not None:  # pictures stay whole, in the paper layer
        ink = ImageChops.subtract(ink, _fit(pictures, ink.size, Image.Resampling.NEAREST))
    w_pt, h_pt = rgb.width * 72.0 / dpi, rgb.height * 72.0 / dpi
    target = min(dpi, settings.paper_dpi or dpi)
    if settings.smooth:
        paper = _smooth_paper(rgb, ink, pictures, target, dpi)
    else:
        paper = _scaled(rgb, target / dpi)
    paper_layer = Layer(_jpeg(paper, settings.paper_quality), paper.width, paper.height, "jpeg")
    del paper
    if ink.getbbox() is None:
        return EncodedPage(w_pt, h_pt, paper_layer, None, None, dpi)
    factor = round(dpi / INK_LAYER_DPI) if settings.smooth else 1
    colour = _ink_colour(rgb, ink, max(1, factor))
    ink_layer = Layer(_jpeg(colour, settings.ink_quality), colour.width, colour.height, "jpeg")
    # A stencil's 0 bits paint: the ink is white (1) in a Group 4 image read BlackIs1=false.
    mask = ink.convert("1", dither=Image.Dither.NONE)
    mask_layer = Layer(_g4(mask), mask.width, mask.height, "g4")
    return EncodedPage(w_pt, h_pt, paper_layer, ink_layer, mask_layer, dpi)


def pdf(pages: Sequence[EncodedPage], created: datetime | None = None) -> bytes:
    """A PDF of ``pages`` at 100 % scale (the page size is the scan's), deterministic bytes."""
    import pikepdf
    from pikepdf import Dictionary, Name

    doc = pikepdf.new()
    for n, page in enumerate(pages):
        resources = Dictionary(XObject=Dictionary())
        ops = [f"q {page.width_pt:.4f} 0 0 {page.height_pt:.4f} 0 0 cm /P{n} Do Q"]
        resources.XObject[f"/P{n}"] = _image(doc, page.paper)
        if page.ink is not None and page.mask is not None:
            fg = _image(doc, page.ink)
            fg.Mask = _image(doc, page.mask, stencil=True)
            resources.XObject[f"/I{n}"] = fg
            ops.append(f"q {page.width_pt:.4f} 0 0 {page.height_pt:.4f} 0 0 cm /I{n} Do Q")
        content = pikepdf.Stream(doc, "\n".join(ops).encode())
        pg = pikepdf.Page(
            Dictionary(
                Type=Name.Page,
                MediaBox=[0, 0, page.width_pt, page.height_pt],
                Resources=resources,
                Contents=content,
            )
        )
        doc.pages.append(pg)
    if created is not None:
        stamp = created.strftime("D:%Y%m%d%H%M%S")
        doc.docinfo[Name.CreationDate] = stamp
        doc.docinfo[Name.ModDate] = stamp
    doc.docinfo[Name.Creator] = "luutru capture"
    out = io.BytesIO()
    doc.save(out, deterministic_id=True, compress_streams=True)
    return out.getvalue()


def _image(doc: Any, layer: Layer, stencil: bool = False) -> Any:
    import pikepdf
    from pikepdf import Dictionary, Name

    assert isinstance(doc, pikepdf.Pdf)
    if layer.kind == "jpeg":
        return pikepdf.Stream(
            doc,
            layer.data,
            Type=Name.XObject,
            Subtype=Name.Image,
            Width=layer.width,
            Height=layer.height,
            ColorSpace=Name.DeviceRGB,
            BitsPerComponent=8,
            Filter=Name.DCTDecode,
        )
    parms = Dictionary(K=-1, Columns=layer.width, Rows=layer.height, BlackIs1=False)
    extra: dict[str, object] = {"ImageMask": True} if stencil else {
        "ColorSpace": Name.DeviceGray, "BitsPerComponent": 1}
    stream = pikepdf.Stream(
        doc,
        layer.data,
        Type=Name.XObject,
        Subtype=Name.Image,
        Width=layer.width,
        Height=layer.height,
        Filter=Name.CCITTFaxDecode,
        DecodeParms=parms,
        **extra,
    )
    if stencil:
        stream.BitsPerComponent = 1
    return stream
