"""The archival form of a page (appliance/capture/archival.py): resolutions, colours, sizes."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageStat

from appliance.capture.archival import (
    ArchivalProfile,
    EncodedPage,
    _max,
    _paper_level,
    _smooth_paper,
    encode_page,
    pdf,
)
from tests.bench.pages import PHOTO_BOX, make, photo

from .images import text_page


def _letter() -> Image.Image:
    """Black text, a red ring (a seal) and an off-white paper tone, 300 dpi."""
    img = text_page().convert("RGB")
    bg = Image.new("RGB", img.size, (240, 236, 226))
    img = Image.composite(img, bg, img.convert("L").point(lambda v: 255 if v < 128 else 0))
    ImageDraw.Draw(img).ellipse((1500, 2400, 2100, 3000), outline=(210, 30, 35), width=16)
    return img


def _render(data: bytes, tmp: Path, dpi: int = 100) -> Image.Image:
    src = tmp / "p.pdf"
    src.write_bytes(data)
    subprocess.run(["pdftoppm", "-r", str(dpi), "-png", "-singlefile", str(src),
                    str(tmp / "r")], check=True)
    im = Image.open(tmp / "r.png")
    im.load()
    return im.convert("RGB")


def test_text_page_layers_and_colours(tmp_path: Path) -> None:
    """Paper JPEG at 200 dpi, ink mask at the scan's 300 dpi (Group 4), ink coloured from its
    own pixels: the text renders dark, the seal ring red, the paper its tone; well under
    100 KB for a page of text."""
    page = encode_page(_letter(), 300.0)
    w = _letter().width  # 2480 at 300 dpi
    assert page.paper.kind == "jpeg" and abs(page.paper.width - w * 2 / 3) <= 1
    assert page.mask is not None and (page.mask.width, page.mask.kind) == (w, "g4")
    assert page.ink is not None and abs(page.ink.width - w / 6) <= 1
    assert page.size < 100_000
    assert abs(page.width_pt - 595.2) < 1
    im = _render(pdf([page]), tmp_path, 300)
    r, g, b = im.getpixel((1800, 2408))  # on the ring's top stroke
    assert r > 150 and g < 90 and b < 90, (r, g, b)
    paper = im.getpixel((100, 3300))
    assert all(abs(a - e) < 12 for a, e in zip(paper, (240, 236, 226), strict=True)), paper
    ink = im.crop((240, 240, 1600, 300)).convert("L").histogram()
    assert sum(ink[:60]) > 500  # the first line of text is there, dark


def test_drawing_keeps_the_scan_resolution() -> None:
    """A map or drawing (or an office that asks) keeps 300 dpi in every layer."""
    page = encode_page(_letter(), 300.0, ArchivalProfile.DRAWING)
    assert page.paper.width == 2480
    assert page.ink is not None and page.ink.width == 2480


def test_a_photograph_stays_in_the_paper_layer() -> None:
    """A picture region is neither masked nor smoothed: it is not cut into ink and paper."""
    import pikepdf
    from pikepdf import PdfImage

    img = Image.new("RGB", (2480, 3508), (242, 239, 230))
    img.paste(photo((1600, 1100), 3), (400, 800))
    page = encode_page(img, 300.0)
    if page.mask is None:
        return  # nothing on the page was taken for ink
    with pikepdf.open(io.BytesIO(pdf([page]))) as doc:
        (ink,) = [im for im in doc.pages[0].get_images().values() if "/Mask" in im]
        mask = PdfImage(ink.Mask).as_pil_image().convert("L")
    inside = mask.crop((500, 900, 1900, 1800)).histogram()
    painted = sum(inside[:128])  # ink decodes dark (the stencil's painting bits)
    assert painted / sum(inside) < 0.02, painted


def _mask(page: EncodedPage) -> Image.Image:
    """The page's ink mask as decoded from its PDF (L: ink 0, the rest 255)."""
    import pikepdf
    from pikepdf import PdfImage

    with pikepdf.open(io.BytesIO(pdf([page]))) as doc:
        (ink,) = [im for im in doc.pages[0].get_images().values() if "/Mask" in im]
        return PdfImage(ink.Mask).as_pil_image().convert("L")


def test_a_photograph_on_grained_paper_is_kept_whole() -> None:
    """The benchmark's photograph page (paper grain, mottling and shading; a pale sky, dark
    hills, a building): no pixel of the photograph is taken for ink, and it is kept as
    scanned, not smoothed as paper (its paper-layer pixels are the scan's at 200 dpi, grain
    and all); the heading and the caption around it are still ink."""
    scan = make("photo", 1).image
    page = encode_page(scan, 300.0)
    assert page.mask is not None
    mask = _mask(page)
    x0, y0, x1, y1 = PHOTO_BOX
    assert sum(mask.crop(PHOTO_BOX).histogram()[:128]) == 0
    assert sum(mask.crop((x0, y1 + 100, x1, y1 + 270)).histogram()[:128]) > 5000  # caption
    assert sum(mask.crop((x0, 450, x1, 600)).histogram()[:128]) > 2000  # heading
    paper = Image.open(io.BytesIO(page.paper.data)).convert("L")
    s = paper.width / scan.width
    box = (round(x0 * s), round(y0 * s), round(x1 * s), round(y1 * s))
    stored = paper.crop(box)
    scanned = scan.convert("L").resize(paper.size, Image.Resampling.LANCZOS).crop(box)
    diff = ImageChops.difference(stored, scanned)
    rows = [ImageStat.Stat(diff.crop((0, y, diff.width, y + 8))).mean[0]
            for y in range(0, diff.height - 8, 8)]
    assert max(rows) < 12, max(rows)  # every band of the photograph as scanned


def test_the_square_maximum_in_3x3_passes_is_pillows_own() -> None:
    """``_max`` (four 3×3 passes) gives exactly ``MaxFilter(9)``, in colour and in grey."""
    small = make("text", 1).image.reduce(8)
    for im in (small, small.convert("L")):
        same = ImageChops.difference(_max(im, 9), im.filter(ImageFilter.MaxFilter(9)))
        assert same.getbbox() is None


def test_paper_smoothed_at_a_quarter_resolution_is_the_same_paper() -> None:
    """The paper blurred at 50 dpi and enlarged to 200 dpi, against the same paper made at
    200 dpi (a Lanczos reduction, ink covered by the paper around it, blurred σ 0.03 inch):
    less than a grey level apart on average, and no more than a few levels at 99 % of the
    pixels (where they differ is at the edge of the ink, which the mask paints over)."""
    scan = make("text", 1).image
    grey = scan.convert("L")
    ink = ImageChops.subtract(_paper_level(grey), grey).point(lambda v: 255 if v > 70 else 0)
    none = Image.new("L", (78, 110), 0)
    smooth = _smooth_paper(scan, ink, none, 200.0, 300.0)
    paper = scan.resize(smooth.size, Image.Resampling.LANCZOS)
    near = ink.resize(smooth.size, Image.Resampling.LANCZOS).point(lambda v: 255 if v else 0)
    blank = _max(scan.reduce(8), 9).filter(ImageFilter.BoxBlur(4)).resize(smooth.size)
    reference = Image.composite(blank, paper, near.filter(ImageFilter.MaxFilter(3)))
    reference = reference.filter(ImageFilter.GaussianBlur(6))
    diff = ImageChops.difference(smooth, reference).convert("L")
    hist = diff.histogram()
    assert ImageStat.Stat(diff).mean[0] < 1.0, ImageStat.Stat(diff).mean
    assert sum(hist[:5]) >= 0.99 * diff.width * diff.height, hist[:12]


def test_a_dark_border_round_the_scan_does_not_make_the_page_a_picture() -> None:
    """A scan with a black border all round (the lid, a smaller page on the glass): the
    border is picture, but what it encloses is a page of text, masked and smoothed as one;
    only a picture's own holes (here: none) are filled."""
    img = _letter()
    d = ImageDraw.Draw(img)
    d.rectangle((0, 0, img.width - 1, img.height - 1), outline=(12, 12, 12), width=60)
    page = encode_page(img, 300.0)
    plain = encode_page(_letter(), 300.0)
    assert page.mask is not None  # not all of it taken for a picture
    mask = _mask(page)
    assert sum(mask.crop((240, 240, 1600, 300)).histogram()[:128]) > 500  # text is ink
    assert page.size < plain.size + 30_000, (page.size, plain.size)
