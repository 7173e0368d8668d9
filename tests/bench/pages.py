"""Realistic scanned pages, made in the process (deterministic per seed), with the text they carry.

What a commune's flatbed hands over for an ordinary office letter: A4 at 300 dpi colour, off-white
paper with grain and uneven shading (the lid does not press flat), typed Vietnamese in the fonts
offices use (a Times New Roman-like serif for the body, a bold sans for headings, an italic serif
for the signature block), dark-grey rather than black ink slightly spread into the paper, a red
seal over the signature, and a small skew. ``table`` is a register page with ruled cells;
``photo`` a page with a continuous-tone photograph (the kind of page a text-tuned encoder
handles worst).
"""

from __future__ import annotations

import io
import math
import random
from dataclasses import dataclass

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont

DPI = 300
A4 = (2480, 3508)
FONTS = {
    "serif": "/usr/share/fonts/truetype/liberation2/LiberationSerif-Regular.ttf",
    "sans-bold": "/usr/share/fonts/truetype/liberation2/LiberationSans-Bold.ttf",
    "serif-italic": "/usr/share/fonts/truetype/dejavu/DejaVuSerif-Italic.ttf",
}
BODY = [
    "Căn cứ Luật Tổ chức chính quyền địa phương ngày 16 tháng 6 năm 2025;",
    "Căn cứ Nghị định số 30/2020/NĐ-CP ngày 05 tháng 3 năm 2020 của Chính phủ",
    "về công tác văn thư; Thông tư số 05/2025/TT-BNV của Bộ Nội vụ;",
    "Xét đề nghị của Công chức Văn phòng - Thống kê xã.",
    "Điều 1. Phê duyệt kế hoạch phòng, chống thiên tai và tìm kiếm cứu nạn",
    "năm 2025 của xã Tân Phú, với các nội dung chủ yếu sau đây:",
    "a) Kiện toàn Ban Chỉ huy phòng, chống thiên tai cấp xã; phân công",
    "nhiệm vụ cụ thể cho từng thành viên, từng thôn, tổ dân phố;",
    "b) Rà soát các hộ dân sống ở vùng trũng thấp, ven sông, sườn đồi;",
    "c) Chuẩn bị lương thực, thuốc men, phương tiện cứu hộ tại chỗ.",
    "Điều 2. Giao Văn phòng Hội đồng nhân dân và Ủy ban nhân dân xã",
    "chủ trì, phối hợp với các đơn vị liên quan theo dõi, đôn đốc.",
    "Điều 3. Quyết định này có hiệu lực kể từ ngày ký. Chánh Văn phòng,",
    "Trưởng các thôn và các cá nhân có liên quan chịu trách nhiệm thi hành.",
]


@dataclass(frozen=True)
class SyntheticPage:
    kind: str  # "text", "table", "photo"
    image: Image.Image  # RGB, 300 dpi
    text: str  # what the generator wrote, line by line (for the character error rate)

    def png(self) -> bytes:
        out = io.BytesIO()
        self.image.save(out, "PNG", dpi=(DPI, DPI), compress_level=6)
        return out.getvalue()


def noise(size: tuple[int, int], sigma: float, seed: int) -> Image.Image:
    """Grey noise around 128 with standard deviation ``sigma``, the same for the same seed
    (Pillow's own ``effect_noise`` is not seeded: every page would differ)."""
    rnd = random.Random(seed)
    w, h = size
    # The mean of four uniform bytes is nearly Gaussian (σ of one byte: 73.9; of four: 36.9).
    layers = [Image.frombytes("L", size, rnd.randbytes(w * h)) for _ in range(2)]
    mixed = ImageChops.add(layers[0], layers[1], scale=2.0)  # σ 52.3 around 127.5
    k = sigma / 52.3
    return mixed.point(lambda v: max(0, min(255, round(128 + (v - 127.5) * k))))


def _font(name: str, pt: float) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(FONTS[name], round(pt * DPI / 72))


def paper(seed: int, size: tuple[int, int] = A4) -> Image.Image:
    """Off-white paper: fibre grain, a little mottling and shading towards one edge."""
    rnd = random.Random(seed)
    w, h = size
    grain = noise((w, h), 7.0, seed)  # fine grain, grey around 128
    mottle = noise((w // 24, h // 24), 18.0, seed + 1).resize((w, h), Image.Resampling.BICUBIC)
    shade = Image.linear_gradient("L").rotate(rnd.choice((90, -90, 0, 180))).resize((w, h))
    base = Image.new("RGB", (w, h), (243, 240, 231))
    tone = ImageChops.add(grain, mottle.point(lambda v: 128 + (v - 128) // 3), 1.0, -128)
    out = ImageChops.add(base, Image.merge("RGB", (tone, tone, tone)), 1.0, -128)
    dark = shade.point(lambda v: 255 - v * 22 // 255)  # up to ~9 % darker at one edge
    return ImageChops.multiply(out, Image.merge("RGB", (dark, dark, dark)))


def _ink(page: Image.Image, layer: Image.Image, colour: tuple[int, int, int]) -> Image.Image:
    """Lay ``layer`` (L, 255 = ink) on ``page`` as ink of ``colour`` soaked into the paper."""
    soft = layer.filter(ImageFilter.GaussianBlur(0.7))
    ink = Image.new("RGB", page.size, colour)
    return Image.composite(ImageChops.multiply(page, ink), page, soft)


def seal(size: int, seed: int) -> Image.Image:
    """A round red agency seal (L mask) with its ring text and a star; ink a little patchy."""
    m = Image.new("L", (size, size), 0)
    d = ImageDraw.Draw(m)
    c = size / 2
    d.ellipse((4, 4, size - 4, size - 4), outline=255, width=14)
    d.ellipse((size * 0.2, size * 0.2, size * 0.8, size * 0.8), outline=255, width=6)
    font = ImageFont.truetype(FONTS["sans-bold"], size // 12)
    ring = "ỦY BAN NHÂN DÂN XÃ TÂN PHÚ * TỈNH ĐỒNG THÁP * "
    for i, ch in enumerate(ring):
        a = 2 * math.pi * i / len(ring) - math.pi / 2
        glyph = Image.new("L", (size // 10, size // 10), 0)
        ImageDraw.Draw(glyph).text((size // 40, 0), ch, font=font, fill=255)
        glyph = glyph.rotate(-math.degrees(a) - 90, expand=True)
        r = size * 0.39
        m.paste(255, (int(c + r * math.cos(a) - glyph.width / 2),
                      int(c + r * math.sin(a) - glyph.height / 2)), glyph)
    star = [(c + (size * (0.16 if k % 2 == 0 else 0.065)) * math.cos(math.pi * k / 5 - math.pi / 2),
             c + (size * (0.16 if k % 2 == 0 else 0.065)) * math.sin(math.pi * k / 5 - math.pi / 2))
            for k in range(10)]
    d.polygon(star, fill=255)
    patchy = noise((size, size), 60, seed + 2).point(lambda v: 255 if v > 70 else 150)
    return ImageChops.multiply(m, patchy)


def _letter(seed: int) -> tuple[Image.Image, list[str]]:
    rnd = random.Random(seed)
    img = paper(seed)
    layer = Image.new("L", img.size, 0)
    d = ImageDraw.Draw(layer)
    lines: list[str] = []

    def put(x: int, y: int, text: str, font: ImageFont.FreeTypeFont, centre: bool = False) -> None:
        if centre:
            x -= int(d.textlength(text, font=font) / 2)
        d.text((x, y), text, font=font, fill=255)
        lines.append(text)

    head, serif, italic = _font("sans-bold", 12), _font("serif", 13), _font("serif-italic", 12)
    put(620, 300, "ỦY BAN NHÂN DÂN", head, True)
    put(620, 360, "XÃ TÂN PHÚ", head, True)
    put(1700, 300, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", head, True)
    put(1700, 360, "Độc lập - Tự do - Hạnh phúc", head, True)
    put(620, 470, f"Số: {rnd.randint(10, 299)}/QĐ-UBND", serif, True)
    put(1700, 470, f"Tân Phú, ngày {rnd.randint(1, 28)} tháng 9 năm 2025", italic, True)
    put(1240, 640, "QUYẾT ĐỊNH", head, True)
    put(1240, 710, "Về việc phê duyệt kế hoạch phòng, chống thiên tai", serif, True)
    y = 880
    for text in BODY:
        put(240, y, text, serif)
        y += 96
    put(1750, y + 80, "TM. ỦY BAN NHÂN DÂN", head, True)
    put(1750, y + 140, "CHỦ TỊCH", head, True)
    put(1750, y + 520, "Nguyễn Văn Bình", italic, True)
    img = _ink(img, layer, (38, 36, 40))
    s = seal(560, seed).rotate(rnd.uniform(-20, 20))
    pos = (1450, y + 120)
    patch = img.crop((pos[0], pos[1], pos[0] + 560, pos[1] + 560))
    red = Image.new("RGB", (560, 560), (214, 36, 40))
    patch = Image.composite(ImageChops.multiply(patch, red), patch,
                            s.filter(ImageFilter.GaussianBlur(0.8)).point(lambda v: v * 85 // 100))
    img.paste(patch, pos)
    return img.rotate(0.25, resample=Image.Resampling.BICUBIC, fillcolor=(243, 240, 231)), lines


def _table(seed: int) -> tuple[Image.Image, list[str]]:
    rnd = random.Random(seed)
    img = paper(seed)
    layer = Image.new("L", img.size, 0)
    d = ImageDraw.Draw(layer)
    head, serif = _font("sans-bold", 11), _font("serif", 11)
    lines = ["SỔ ĐĂNG KÝ VĂN BẢN ĐẾN NĂM 2025"]
    d.text((1240 - int(d.textlength(lines[0], font=head) / 2), 260), lines[0], font=head, fill=255)
    cols = [200, 420, 700, 1180, 1900, 2280]
    names = ["Số đến", "Ngày", "Tác giả", "Trích yếu nội dung", "Người nhận"]
    y0, row_h = 420, 150
    rows = 18
    for x in cols:
        d.line((x, y0, x, y0 + row_h * (rows + 1)), fill=255, width=4)
    for r in range(rows + 2):
        d.line((cols[0], y0 + r * row_h, cols[-1], y0 + r * row_h), fill=255, width=4)
    subjects = ["V/v rà soát hộ nghèo", "Kế hoạch tiêm chủng", "Báo cáo ngân sách xã",
                "Giấy mời họp giao ban", "Hướng dẫn chuyển đổi số", "Thông báo lịch tiếp dân"]
    senders = ["UBND tỉnh", "Sở Nội vụ", "Sở Y tế", "Công an tỉnh", "BHXH tỉnh"]
    people = ["Chủ tịch", "Văn phòng", "Địa chính", "Tư pháp"]
    for c, name in enumerate(names):
        d.text((cols[c] + 16, y0 + 40), name, font=head, fill=255)
    lines.append(" ".join(names))
    for r in range(1, rows + 1):
        cells = [str(r + 40), f"{rnd.randint(1, 28):02d}/09", rnd.choice(senders),
                 rnd.choice(subjects), rnd.choice(people)]
        for c, text in enumerate(cells):
            d.text((cols[c] + 16, y0 + r * row_h + 44), text, font=serif, fill=255)
        lines.append(" ".join(cells))
    return _ink(img, layer, (30, 30, 36)), lines


def photo(size: tuple[int, int], seed: int) -> Image.Image:
    """A continuous-tone 'photograph': sky, hills, a building, leaves; noise like film grain."""
    rnd = random.Random(seed)
    w, h = size
    sky = Image.linear_gradient("L").resize((w, h))
    img = Image.merge("RGB", (sky.point(lambda v: 120 + v // 3), sky.point(lambda v: 160 + v // 4),
                              sky.point(lambda v: 230 - v // 6)))
    d = ImageDraw.Draw(img)
    for k in range(4):
        base = int(h * (0.45 + 0.12 * k))
        pts = [(x, base - int(60 * math.sin(x / (90 + 40 * k) + k) + rnd.randint(-8, 8)))
               for x in range(0, w + 20, 20)]
        d.polygon([*pts, (w, h), (0, h)], fill=(40 + 25 * k, 110 - 10 * k, 50 + 8 * k))
    d.rectangle((w * 0.55, h * 0.35, w * 0.8, h * 0.7), fill=(190, 170, 140))
    d.polygon([(w * 0.52, h * 0.36), (w * 0.675, h * 0.22), (w * 0.83, h * 0.36)],
              fill=(150, 50, 40))
    for _ in range(900):
        x, y, r = rnd.randrange(w), rnd.randrange(int(h * 0.5), h), rnd.randint(4, 16)
        g = rnd.randint(70, 160)
        d.ellipse((x - r, y - r, x + r, y + r), fill=(g // 3, g, g // 3))
    img = img.filter(ImageFilter.GaussianBlur(1.6))
    grain = noise((w, h), 10.0, seed + 3)
    return ImageChops.add(img, Image.merge("RGB", (grain, grain, grain)), 1.0, -128)


PHOTO_BOX = (290, 900, 2190, 2250)  # where the photograph page's photograph is (300 dpi)


def _photo_page(seed: int) -> tuple[Image.Image, list[str]]:
    img = paper(seed)
    x0, y0, x1, y1 = PHOTO_BOX
    img.paste(photo((x1 - x0, y1 - y0), seed), (x0, y0))
    layer = Image.new("L", img.size, 0)
    d = ImageDraw.Draw(layer)
    head, serif = _font("sans-bold", 12), _font("serif", 12)
    lines = ["HÌNH ẢNH HIỆN TRƯỜNG", "Ảnh 1. Khu dân cư ven sông thôn Bình An, tháng 9 năm 2025.",
             "Người chụp: Trần Thị Lan, công chức Văn phòng - Thống kê."]
    d.text((1240 - int(d.textlength(lines[0], font=head) / 2), 500), lines[0], font=head, fill=255)
    d.text((290, 2350), lines[1], font=serif, fill=255)
    d.text((290, 2450), lines[2], font=serif, fill=255)
    return _ink(img, layer, (36, 34, 38)), lines


KINDS = {"text": _letter, "table": _table, "photo": _photo_page}


def make(kind: str, seed: int = 1) -> SyntheticPage:
    """One page of ``kind`` ("text", "table", "photo")."""
    img, lines = KINDS[kind](seed)
    return SyntheticPage(kind, img, "\n".join(lines))
