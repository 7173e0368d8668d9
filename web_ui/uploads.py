"""Checking an uploaded file before anything is stored: type by magic bytes, full decode.

Accepted: PDF, JPEG, PNG, TIFF. The browser's declared type and the file name are ignored;
the bytes decide. Images are decoded completely with a pixel limit (decompression bombs are
refused before decoding), PDFs are parsed completely and refused when encrypted, when they
carry active content (``appliance.pdfcheck``: scripts, actions other than links, attached
files). Every refusal is a clear Vietnamese message (with English after it, or English alone
for active content when the UI is in English) and leaves nothing behind.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.errors import UnsafeContentError
from appliance.pdfcheck import refuse_active

from .errors import UploadError

PDF, JPEG, PNG, TIFF = "application/pdf", "image/jpeg", "image/png", "image/tiff"
ACCEPTED = (PDF, JPEG, PNG, TIFF)
_PIL_FORMATS = {JPEG: "JPEG", PNG: "PNG", TIFF: "TIFF"}
_EXT = {PDF: ".pdf", JPEG: ".jpg", PNG: ".png", TIFF: ".tif"}


@dataclass(frozen=True)
class CheckedFile:
    mime: str
    size: int
    pages: int
    # A PDF made by a computer (text on its pages, or a digital signature): kept byte for
    # byte. Anything else (photos, scans, a PDF of page images) is a scan for capture.
    born_digital: bool = False

    def safe_name(self, declared: str) -> str:
        """The declared name without folders, with the extension of the real type."""
        base = os.path.basename(declared.replace("\\", "/")).strip() or "tep"
        stem = os.path.splitext(base)[0][:120] or "tep"
        return stem + _EXT[self.mime]


def sniff(head: bytes) -> str | None:
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return TIFF
    if b"%PDF-" in head[:1024]:
        return PDF
    return None


def check_file(path: Path, max_bytes: int, max_pixels: int, max_pages: int) -> CheckedFile:
    """Return what the file is if it is acceptable; raise UploadError otherwise."""
    size = path.stat().st_size
    if size == 0:
        raise UploadError("Tệp rỗng (the file is empty).")
    if size > max_bytes:
        raise UploadError(
            f"Tệp quá lớn: {size / 1048576:.1f} MB, tối đa {max_bytes / 1048576:.0f} MB "
            f"(file too large)."
        )
    with path.open("rb") as fh:
        head = fh.read(1024)
    mime = sniff(head)
    if mime is None:
        raise UploadError(
            "Chỉ nhận tệp PDF, JPEG, PNG hoặc TIFF; tệp này không phải một trong các loại đó "
            "(only PDF, JPEG, PNG or TIFF files are accepted)."
        )
    if mime == PDF:
        pages, born_digital = _check_pdf(path, max_pages, max_pixels)
        return CheckedFile(mime, size, pages, born_digital)
    return CheckedFile(mime, size, _check_image(path, mime, max_pixels))


def _check_image(path: Path, mime: str, max_pixels: int) -> int:
    import warnings

    from PIL import Image, ImageSequence

    # Our own limit is checked on the header before decoding; Pillow's is a second fence.
    Image.MAX_IMAGE_PIXELS = max_pixels
    damaged = UploadError(
        "Tệp ảnh bị hỏng hoặc không đọc được (the image is damaged or cannot be read)."
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                if img.format != _PIL_FORMATS[mime]:
                    raise damaged
                frames = 0
                for frame in ImageSequence.Iterator(img):
                    w, h = frame.size
                    if w * h > max_pixels or w <= 0 or h <= 0:
                        raise UploadError(
                            f"Ảnh quá lớn ({w}×{h} điểm ảnh, tối đa {max_pixels:,} điểm ảnh): "
                            "có thể là tệp nén bất thường (image too large; possibly a "
                            "decompression bomb)."
                        )
                    frame.load()
                    frames += 1
                    if frames > 2000:
                        raise UploadError("Tệp TIFF có quá nhiều trang (too many pages).")
                return frames
    except UploadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UploadError(
            "Ảnh quá lớn: có thể là tệp nén bất thường (possible decompression bomb)."
        ) from exc
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:
        raise damaged from exc


def _decode_stream(obj: Any, max_pixels: int) -> None:
    """Decompress a stream; images are decoded to pixels, within the pixel limit."""
    import pikepdf

    if obj.stream_dict.get("/Subtype") == "/Image":
        w, h = int(obj.stream_dict.get("/Width", 0)), int(obj.stream_dict.get("/Height", 0))
        if w * h > max_pixels:
            raise UploadError(
                f"Ảnh trong tệp PDF quá lớn ({w}×{h} điểm ảnh): có thể là tệp nén bất thường "
                "(an image in the PDF is too large)."
            )
        pikepdf.PdfImage(obj).as_pil_image().load()
        return
    obj.read_bytes()


_TEXT_OPERATORS = frozenset({"Tj", "TJ", "'", '"'})


def _signed(pdf: Any) -> bool:
    """Whether the PDF carries a digital signature (a signature field with a value)."""
    form = pdf.Root.get("/AcroForm")
    fields = list(form.get("/Fields") or []) if form is not None else []
    while fields:
        f = fields.pop()
        if f.get("/FT") == "/Sig" and f.get("/V") is not None:
            return True
        fields.extend(f.get("/Kids") or [])
    return False


def _check_pdf(path: Path, max_pages: int, max_pixels: int) -> tuple[int, bool]:
    import pikepdf
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = max_pixels

    try:
        with pikepdf.open(path) as pdf:
            if pdf.is_encrypted:
                raise UploadError(
                    "Tệp PDF có mật khẩu hoặc bị mã hóa; hãy lưu bản không mã hóa "
                    "(encrypted PDFs are refused)."
                )
            n = len(pdf.pages)
            if n == 0:
                raise UploadError("Tệp PDF không có trang nào (the PDF has no pages).")
            if n > max_pages:
                raise UploadError(f"Tệp PDF có {n} trang, tối đa {max_pages} trang.")
            try:
                refuse_active(pdf)
            except UnsafeContentError as exc:
                raise UploadError(exc.vi, exc.en) from exc
            for obj in pdf.objects:
                if isinstance(obj, pikepdf.Stream):
                    _decode_stream(obj, max_pixels)  # damage and bombs show here
            has_text = False
            for page in pdf.pages:  # and every page's content must parse
                ops = pikepdf.parse_content_stream(page)
                has_text = has_text or any(str(i.operator) in _TEXT_OPERATORS for i in ops)
            return n, has_text or _signed(pdf)
    except UploadError:
        raise
    except pikepdf.PasswordError as exc:
        raise UploadError("Tệp PDF có mật khẩu (password-protected PDFs are refused).") from exc
    except (pikepdf.PdfError, ValueError, KeyError, TypeError, AttributeError, OSError,
            NotImplementedError) as exc:
        raise UploadError(
            "Tệp PDF bị hỏng hoặc không đọc được (the PDF is damaged or cannot be read)."
        ) from exc


# -- isolation: the checks run in a child process with memory and CPU limits ------------------

CHILD_MEMORY = 1536 * 1048576
CHILD_CPU_SECONDS = 120


def check_file_isolated(
    path: Path, max_bytes: int, max_pixels: int, max_pages: int, timeout: float = 180.0
) -> CheckedFile:
    """``check_file`` in a child process: a bomb that gets past the checks hits the child's
    memory limit, never the service's; and the image/PDF libraries stay out of its memory."""
    import json
    import subprocess
    import sys

    def limits() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (CHILD_MEMORY, CHILD_MEMORY))
        resource.setrlimit(resource.RLIMIT_CPU, (CHILD_CPU_SECONDS, CHILD_CPU_SECONDS))

    args = [str(path), str(max_bytes), str(max_pixels), str(max_pages)]
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "web_ui.uploads", *args],
            capture_output=True,
            timeout=timeout,
            preexec_fn=limits,
            cwd=str(Path(__file__).resolve().parents[1]),
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise UploadError(
            "Tệp quá phức tạp, kiểm tra quá lâu nên không được nhận (the file took too long "
            "to check)."
        ) from exc
    try:
        out = json.loads(proc.stdout.decode("utf-8"))
    except ValueError:
        out = None
    if proc.returncode == 0 and isinstance(out, dict) and "mime" in out:
        return CheckedFile(str(out["mime"]), int(out["size"]), int(out["pages"]),
                           out.get("born_digital") is True)
    if isinstance(out, dict) and "error" in out:
        english = out.get("english")
        raise UploadError(str(out["error"]), english if isinstance(english, str) else None)
    raise UploadError(
        "Tệp vượt quá giới hạn bộ nhớ khi giải nén: có thể là tệp nén bất thường hoặc bị hỏng "
        "(the file exhausted the checker's memory: a decompression bomb or damage)."
    )


def _main(argv: list[str]) -> int:
    import json
    import sys

    path, max_bytes, max_pixels, max_pages = Path(argv[0]), *map(int, argv[1:4])
    try:
        res = check_file(path, max_bytes, max_pixels, max_pages)
    except UploadError as exc:
        sys.stdout.write(json.dumps({"error": str(exc), "english": exc.english},
                                    ensure_ascii=False))
        return 1
    except MemoryError:
        return 2
    sys.stdout.write(json.dumps({"mime": res.mime, "size": res.size, "pages": res.pages,
                                 "born_digital": res.born_digital}))
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(_main(sys.argv[1:]))
