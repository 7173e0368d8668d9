"""Real files for upload tests, made on the fly: good scans and each kind of bad file."""

from __future__ import annotations

import io

import pikepdf
from PIL import Image, ImageDraw


def png(size: tuple[int, int] = (1654, 2339), text: str = "CONG VAN") -> bytes:
    """A page as a scanner or a phone gives it: A4 at 200 dpi (capture refuses less)."""
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    draw.rectangle((20, 20, size[0] - 20, 80), outline="black", width=3)
    draw.text((40, 40), text, fill="black")
    # Lines of "text" as a typed page has them, so capture does not take it for a blank back.
    step = max(12, size[1] // 40)
    for y in range(120, size[1] - step, step):
        draw.rectangle((size[0] // 10, y, size[0] * 9 // 10, y + max(2, step // 5)), fill="black")
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.open(io.BytesIO(png())).save(out, "JPEG", quality=80)
    return out.getvalue()


def tiff(pages: int = 2) -> bytes:
    frames = [Image.open(io.BytesIO(png(text=f"TRANG {i + 1}"))).convert("L")
              for i in range(pages)]
    out = io.BytesIO()
    frames[0].save(out, "TIFF", save_all=True, append_images=frames[1:], compression="tiff_lzw")
    return out.getvalue()


def pdf(pages: int = 1) -> bytes:
    import img2pdf

    return bytes(img2pdf.convert([jpeg()] * pages))


def pdf_with_javascript() -> bytes:
    p = pikepdf.open(io.BytesIO(pdf()))
    p.Root.OpenAction = pikepdf.Dictionary(
        S=pikepdf.Name.JavaScript, JS=pikepdf.String("app.alert(1)")
    )
    out = io.BytesIO()
    p.save(out)
    return out.getvalue()


def pdf_with_attachment() -> bytes:
    p = pikepdf.open(io.BytesIO(pdf()))
    p.attachments["virus.exe"] = pikepdf.AttachedFileSpec(p, b"MZ\x90\x00 not really")
    out = io.BytesIO()
    p.save(out)
    return out.getvalue()


def png_bomb(side: int = 5000) -> bytes:
    """A tiny file that decodes to side×side pixels (25 Mpx at 5000)."""
    out = io.BytesIO()
    Image.new("1", (side, side), 0).save(out, "PNG", optimize=True)
    return out.getvalue()


def truncated_jpeg() -> bytes:
    data = jpeg()
    return data[: len(data) // 3]


def damaged_pdf() -> bytes:
    data = bytearray(pdf())
    mid = len(data) // 2
    data[mid : mid + 400] = b"\x00" * 400  # the image stream and xref no longer parse
    return bytes(data[: int(len(data) * 0.6)])


def not_a_scan() -> bytes:
    return b"PK\x03\x04" + b"\x00" * 200  # a .docx / .zip
