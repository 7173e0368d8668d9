"""Pipeline steps on generated pages: normalise, blank pages, separators, lossless assembly."""

from __future__ import annotations

import datetime as dt
import io
import struct
import zlib

import pikepdf
import pytest
from PIL import Image

from appliance.capture.errors import DecompressionBomb, ImageRejected, LowResolution, UnsafePdf
from appliance.capture.page import load_pages
from appliance.capture.pipeline import (
    Assemble,
    DropBlank,
    InputFile,
    Normalise,
    SplitAtSeparators,
    Work,
    images_to_pdf,
    ink_fraction,
    run_steps,
)
from appliance.capture.separator import Target, parse_payload, payload
from appliance.clock import TZ

from .images import a4_px, blank_page, encode, separator_page, text_page

FILE_A = "000.21.08.H49.2025.01.VP"


def _one(data: bytes, name: str = "p.png"):  # type: ignore[no-untyped-def]
    (page,) = load_pages(data, name)
    return page


def _pdf_page_mm(pdf: bytes, n: int = 0) -> tuple[float, float]:
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        box = [float(v) for v in doc.pages[n].mediabox]
    return round((box[2] - box[0]) / 72 * 25.4), round((box[3] - box[1]) / 72 * 25.4)


def test_png_scan_passes_through_byte_for_byte() -> None:
    """A 300 dpi RGB PNG from a scanner is kept as it is, at its real resolution."""
    data = encode(text_page(), "PNG")
    page = _one(data)
    assert page.data == data and page.fmt == "png" and page.dpi == 300 and page.mode == "RGB"
    assert [round(v) for v in page.size_mm] == [210, 297]


def test_below_200_dpi_is_refused_with_the_reason() -> None:
    """A 150 dpi scan is refused, and the message says the legal minimum and what to do."""
    data = encode(text_page(dpi=150), "PNG", dpi=150)
    with pytest.raises(LowResolution) as err:
        load_pages(data, "low.png")
    msg = str(err.value)
    assert "150 dpi" in msg and "200 dpi" in msg and "300 dpi" in msg and "low.png" in msg


def test_exactly_200_dpi_is_accepted() -> None:
    """The minimum itself is allowed."""
    assert _one(encode(text_page(dpi=200), "PNG", dpi=200)).dpi == 200


def test_phone_photo_gets_its_real_resolution_on_a4() -> None:
    """A camera's 72 dpi tag on a 3000×4242 photo is not believed: about 363 dpi on A4."""
    img = text_page(dpi=363, size=(3000, 4242))
    page = _one(encode(img, "JPEG", dpi=72, quality=90), "phone.jpg")
    assert 355 < page.dpi < 370 and page.fmt == "jpeg"
    w_mm, h_mm = page.size_mm
    assert w_mm <= 211 and h_mm <= 298


def test_small_untagged_image_is_refused() -> None:
    """800×1131 pixels with no tag is about 97 dpi on A4: refused."""
    with pytest.raises(LowResolution, match="about 97 dpi"):
        load_pages(encode(text_page(dpi=97, size=(800, 1131)), "PNG", dpi=None), "small.png")


def test_exif_orientation_is_honoured() -> None:
    """A JPEG lying on its side with EXIF orientation 6 becomes an upright page."""
    img = text_page().rotate(90, expand=True)  # stored sideways
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(img, "JPEG", exif=exif.tobytes(), quality=85)
    page = _one(data, "side.jpg")
    assert page.thumb is not None and page.thumb.height > page.thumb.width
    w_mm, h_mm = _pdf_page_mm(images_to_pdf([page]))
    with pikepdf.open(io.BytesIO(images_to_pdf([page]))) as doc:
        rotate = int(doc.pages[0].obj.get("/Rotate", 0))
    # upright either by swapping the box or by /Rotate
    assert (h_mm > w_mm) != (rotate in (90, 270))


@pytest.mark.parametrize(
    ("mode", "fmt"), [("RGBA", "PNG"), ("P", "PNG"), ("CMYK", "JPEG"), ("1", "PNG")]
)
def test_colour_modes_become_rgb(mode: str, fmt: str) -> None:
    """Alpha, palette, CMYK and bilevel pages are converted to 24-bit RGB, with a note."""
    img = text_page().convert(mode)
    page = _one(encode(img, fmt), f"p.{fmt.lower()}")
    assert page.mode == "RGB" and page.fmt == "png"
    assert any("converted to 24-bit RGB" in w for w in page.warnings)


def test_grey_scan_is_kept_with_a_warning() -> None:
    """A grey scan is not re-encoded (lossless) but the clerk is told colour is required."""
    page = _one(encode(text_page(mode="L"), "PNG"))
    assert page.mode == "L" and any("colour" in w for w in page.warnings)


def test_zero_byte_file_is_refused() -> None:
    with pytest.raises(ImageRejected, match="empty"):
        load_pages(b"", "empty.jpg")


def test_garbage_is_refused() -> None:
    with pytest.raises(ImageRejected, match="not an image"):
        load_pages(b"hello, not a picture" * 10, "x.png")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_image_is_refused(fmt: str) -> None:
    """A file cut short in transfer is refused as damaged, not half-imported."""
    data = encode(text_page(), fmt)
    with pytest.raises(ImageRejected, match=r"damaged|cut short"):
        load_pages(data[: len(data) // 2], f"cut.{fmt.lower()}")


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width``×``height`` pixels (a decompression bomb)."""
    real = encode(Image.new("1", (1, 1)), "PNG", dpi=None)
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    patched = struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))
    return real[:8] + patched + real[8 + 25 :]


def test_decompression_bomb_is_refused_before_decoding() -> None:
    """A 1 kB PNG that claims 50,000×50,000 pixels is refused from its header alone."""
    data = _png_claiming(50_000, 50_000)
    assert len(data) < 200
    with pytest.raises(DecompressionBomb, match="refused"):
        load_pages(data, "bomb.png")


def _pdf_with(extra: str) -> bytes:
    doc = pikepdf.open(io.BytesIO(images_to_pdf([_one(encode(text_page(), "JPEG"))])))
    if extra == "js":
        doc.Root.OpenAction = pikepdf.Dictionary(
            S=pikepdf.Name.JavaScript, JS=pikepdf.String("app.alert('x')")
        )
    else:
        doc.attachments["payload.exe"] = pikepdf.AttachedFileSpec(doc, b"MZ\x90\x00")
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


@pytest.mark.parametrize(("extra", "word"), [("js", "scripts"), ("attachment", "attachments")])
def test_pdf_with_script_or_attachment_is_refused(extra: str, word: str) -> None:
    with pytest.raises(UnsafePdf, match=word):
        load_pages(_pdf_with(extra), "bad.pdf")


def test_scanned_pdf_pages_are_extracted_at_their_resolution() -> None:
    """A clean scan-to-folder PDF gives its page images back unchanged, with the real dpi."""
    jpeg = encode(text_page(), "JPEG", quality=80)
    pdf = images_to_pdf([_one(jpeg, "a.jpg"), _one(jpeg, "b.jpg")])
    pages = load_pages(pdf, "mfp.pdf")
    assert len(pages) == 2 and all(abs(p.dpi - 300) < 1 for p in pages)
    assert pages[0].data == jpeg  # JPEG bytes came through untouched


def test_blank_back_is_dropped_but_a_few_words_stay() -> None:
    """Dust on an empty back is blank; a page with one short line of text is not."""
    blank = _one(encode(blank_page(), "PNG"))
    short = _one(encode(text_page(["Ghi chú: đã xem"]), "PNG"))
    black = _one(encode(Image.new("RGB", a4_px(300), "black"), "PNG"))
    assert ink_fraction(blank) < 0.0003 <= ink_fraction(short)
    work = Work([])
    work.pages = [short, blank, black]
    DropBlank().run(work)
    assert work.pages == [short, black] and work.blank_dropped == 1


def test_payload_round_trip_and_foreign_codes() -> None:
    for t in (Target(file_code=FILE_A), Target(document_id="abc"), Target()):
        assert parse_payload(payload(t)) == t
    assert parse_payload("https://example.vn/qr") is None


def test_split_at_separator_sheets() -> None:
    """Separators start documents (hồ sơ or generic); the sheets and their blank backs go."""
    p = [encode(text_page([f"Trang {i}", "Nội dung văn bản"]), "PNG") for i in range(4)]
    sep_a = encode(separator_page(Target(file_code=FILE_A)), "PNG")
    sep_g = encode(separator_page(Target()), "PNG")
    back = encode(blank_page(), "PNG")
    files = [p[0], sep_a, back, p[1], p[2], sep_g, back, p[3]]
    work = Work([InputFile(f"{i}.png", d) for i, d in enumerate(files)])
    run_steps(work, (Normalise(), DropBlank(), SplitAtSeparators(), Assemble()))
    assert work.separators == 2 and work.blank_dropped == 2
    targets = [s.target for s in work.segments]
    assert targets == [Target(), Target(file_code=FILE_A), Target()]
    assert [[pg.data for pg in s.pages] for s in work.segments] == [[p[0]], [p[1], p[2]], [p[3]]]
    assert all(s.pdf.startswith(b"%PDF-") for s in work.segments)


def test_assembly_is_lossless_and_at_100_percent_scale() -> None:
    """PNG pixels decode back identically; JPEG bytes are embedded verbatim; A4 stays A4."""
    png_img = text_page()
    png = _one(encode(png_img, "PNG"))
    jpeg_bytes = encode(text_page(["JPEG"]), "JPEG", quality=80)
    jpg = _one(jpeg_bytes, "j.jpg")
    pdf = images_to_pdf([png, jpg])
    assert _pdf_page_mm(pdf, 0) == (210, 297) and _pdf_page_mm(pdf, 1) == (210, 297)
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        (im0,) = doc.pages[0].get_images().values()
        (im1,) = doc.pages[1].get_images().values()
        assert pikepdf.PdfImage(im0).as_pil_image().tobytes() == png_img.tobytes()
        assert im1.read_raw_bytes() == jpeg_bytes


def test_same_pages_give_the_same_pdf() -> None:
    """With the batch's time fixed, assembly is deterministic (a re-run finds its document)."""
    page = _one(encode(text_page(), "PNG"))
    when = dt.datetime(2025, 9, 15, 9, 30, tzinfo=TZ)
    assert images_to_pdf([page], when) == images_to_pdf([page], when)
