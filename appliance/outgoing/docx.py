"""DOCX → PDF on the box with LibreOffice headless (Debian's libreoffice-writer-nogui).

Times New Roman is matched by Liberation Serif (fonts-liberation2: the same metrics, so lines
break where they did in Word). LibreOffice is optional: a box without it takes PDFs and the
templates only, and says so. Each conversion runs in its own throwaway profile, with a time
limit, and the result is checked to be a PDF.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from .errors import ConversionError

DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
TIMEOUT_S = 120.0


def available() -> bool:
    return shutil.which("soffice") is not None


def to_pdf(data: bytes, timeout: float = TIMEOUT_S) -> bytes:
    """The PDF LibreOffice makes of the DOCX ``data``."""
    exe = shutil.which("soffice")
    if exe is None:
        raise ConversionError(
            "Thiết bị này chưa cài LibreOffice nên không chuyển được tệp DOCX: hãy tải lên "
            "bản PDF, hoặc soạn theo mẫu (kỹ thuật viên cài gói libreoffice-writer-nogui).",
            "LibreOffice is not installed, so a DOCX cannot be converted: upload a PDF or use "
            "a template (the technician can install libreoffice-writer-nogui).")
    with tempfile.TemporaryDirectory(prefix="luutru-docx-") as tmp:
        work = Path(tmp)
        src = work / "du-thao.docx"
        src.write_bytes(data)
        cmd = [exe, f"-env:UserInstallation=file://{work / 'profile'}", "--headless",
               "--norestore", "--nolockcheck", "--convert-to", "pdf:writer_pdf_Export",
               "--outdir", str(work / "out"), str(src)]
        try:
            subprocess.run(cmd, capture_output=True, timeout=timeout, check=True,
                           env={"HOME": str(work), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
        except subprocess.TimeoutExpired as exc:
            raise ConversionError("Chuyển DOCX sang PDF quá lâu, đã dừng.",
                                  "Converting the DOCX took too long and was stopped.") from exc
        except (OSError, subprocess.CalledProcessError) as exc:
            raise ConversionError("LibreOffice không chuyển được tệp DOCX này sang PDF.",
                                  f"LibreOffice could not convert this DOCX ({exc}).") from exc
        out = work / "out" / "du-thao.pdf"
        if not out.is_file() or not out.read_bytes().startswith(b"%PDF-"):
            raise ConversionError("LibreOffice không tạo được tệp PDF từ tệp DOCX này.",
                                  "LibreOffice made no PDF of this DOCX.")
        return out.read_bytes()
