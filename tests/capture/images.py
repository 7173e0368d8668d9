"""Page images made in the test: Vietnamese text rendered with DejaVu, blank backs, separators."""

from __future__ import annotations

import io
import random
import subprocess
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from appliance.capture.separator import Target, sheet_pdf

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
A4_MM = (210, 297)

TEXT = [
    "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
    "Độc lập - Tự do - Hạnh phúc",
    "ỦY BAN NHÂN DÂN XÃ TÂN PHÚ",
    "Số: 125/QĐ-UBND",
    "Tân Phú, ngày 15 tháng 9 năm 2025",
    "QUYẾT ĐỊNH",
    "Về việc phê duyệt kế hoạch phòng, chống thiên tai",
    "Điều 1. Phê duyệt kế hoạch năm 2025 của xã.",
    "Điều 2. Giao Văn phòng Hội đồng nhân dân và",
    "Ủy ban nhân dân xã theo dõi, đôn đốc thực hiện.",
    "Điều 3. Quyết định có hiệu lực kể từ ngày ký.",
    "Nơi nhận: Chủ tịch, các Phó Chủ tịch; Lưu: VT.",
]


def a4_px(dpi: int) -> tuple[int, int]:
    return round(A4_MM[0] / 25.4 * dpi), round(A4_MM[1] / 25.4 * dpi)


def text_page(
    lines: list[str] | None = None,
    dpi: int = 300,
    mode: str = "RGB",
    size: tuple[int, int] | None = None,
    pt: int = 13,
) -> Image.Image:
    """An A4 page with ``lines`` of Vietnamese text at ``pt`` points, as a scanner would see it."""
    img = Image.new(mode, size or a4_px(dpi), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(FONT, round(pt * dpi / 72))
    y = round(0.8 * dpi)
    for line in lines if lines is not None else TEXT:
        draw.text((round(0.8 * dpi), y), line, font=font, fill="black")
        y += round(pt * 1.8 * dpi / 72)
    return img


def blank_page(dpi: int = 300, specks: int = 40, seed: int = 1) -> Image.Image:
    """The empty back of a sheet: off-white with a few dust specks and a grey scanner edge."""
    w, h = a4_px(dpi)
    img = Image.new("RGB", (w, h), (246, 245, 240))
    draw = ImageDraw.Draw(img)
    rnd = random.Random(seed)
    for _ in range(specks):
        x, y = rnd.randrange(w), rnd.randrange(h)
        draw.point((x, y), fill=(40, 40, 40))
    draw.rectangle((0, 0, w, 6), fill=(90, 90, 90))  # the lid's shadow at the top edge
    return img


def separator_page(target: Target, dpi: int = 300) -> Image.Image:
    """A separator sheet as printed by us and scanned: our PDF rasterised by poppler."""
    with tempfile.TemporaryDirectory() as tmp:
        pdf = Path(tmp, "sep.pdf")
        pdf.write_bytes(sheet_pdf(target, "Phiếu phân cách"))
        subprocess.run(
            ["pdftoppm", "-r", str(dpi), "-png", "-singlefile", str(pdf), str(Path(tmp, "s"))],
            check=True,
        )
        img = Image.open(Path(tmp, "s.png"))
        img.load()
        return img.convert("RGB")


def encode(img: Image.Image, fmt: str = "PNG", dpi: float | None = 300, **kw: object) -> bytes:
    out = io.BytesIO()
    if dpi is not None:
        kw["dpi"] = (dpi, dpi)
    img.save(out, fmt, **kw)
    return out.getvalue()
