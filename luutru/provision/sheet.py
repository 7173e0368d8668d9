"""The setup sheet (phiếu cài đặt): one A4 page left with the commune after provisioning.

It carries what a clerk and the next technician need: the appliance's address and a QR code
for it, the TLS fingerprint to compare with the browser's, the device key id (and a loud
note when it is a software key), the centre, and what the self-test found. Never a password.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.clock import vn_date
from appliance.errors import ConfigError
from appliance.fonts import BOLD, REGULAR, register_reportlab
from appliance.fsutil import write_atomic

from .errors import ProvisionError

FONT, FONT_BOLD = REGULAR, BOLD
STATUS_VI = {"pass": "ĐẠT", "warn": "CẦN XEM", "fail": "KHÔNG ĐẠT", "skipped": "BỎ QUA"}
STEP_VI = {"done": "đã làm", "kept": "giữ nguyên", "skipped": "bỏ qua", "failed": "LỖI"}


@dataclass(frozen=True)
class SheetData:
    org_name: str
    org_id: str
    unit_code: str
    url: str
    hostname: str
    tls_fingerprint: str
    key_id: str
    key_backing: str
    centre_url: str | None
    enrolled: bool
    admin_username: str | None
    made_at: dt.datetime
    checks: list[dict[str, Any]] = field(default_factory=list)  # Check.to_json()
    steps: list[dict[str, Any]] = field(default_factory=list)


def _fonts() -> None:
    try:
        register_reportlab()
    except ConfigError as exc:
        raise ProvisionError(str(exc)) from exc


def _wrap(text: str, width: float, size: float) -> list[str]:
    from reportlab.pdfbase.pdfmetrics import stringWidth

    lines: list[str] = []
    line = ""
    for word in text.split():
        trial = f"{line} {word}".strip()
        if stringWidth(trial, FONT, size) <= width or not line:
            line = trial
        else:
            lines.append(line)
            line = word
    if line:
        lines.append(line)
    return lines or [""]


def _spaced(fingerprint: str) -> str:
    """AB:CD:… in groups of 8 bytes, so that the line can break between groups."""
    parts = fingerprint.split(":")
    return " ".join(":".join(parts[i:i + 8]) for i in range(0, len(parts), 8))


def render(data: SheetData) -> bytes:
    """The sheet as PDF bytes; long on purpose: the page laid out from top to bottom."""
    import io

    from reportlab.graphics import renderPDF
    from reportlab.graphics.barcode.qr import QrCodeWidget
    from reportlab.graphics.shapes import Drawing
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.pdfgen import canvas

    _fonts()
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4, invariant=True)
    c.setTitle(f"Phiếu cài đặt thiết bị lưu trữ — {data.org_name}")
    c.setAuthor("luutru provision")
    width, height = A4
    left, y = 18 * mm, height - 20 * mm
    c.setFont(FONT_BOLD, 15)
    c.drawString(left, y, "PHIẾU CÀI ĐẶT THIẾT BỊ LƯU TRỮ (luutru)")
    y -= 7 * mm
    c.setFont(FONT, 9)
    c.drawString(left, y, f"Lập ngày {vn_date(data.made_at.date())} lúc "
                 f"{data.made_at.strftime('%H:%M')} (giờ Việt Nam)")

    qr = QrCodeWidget(data.url)
    x0, y0, x1, y1 = qr.getBounds()
    side = 42 * mm
    drawing = Drawing(side, side, transform=[side / (x1 - x0), 0, 0, side / (y1 - y0), 0, 0])
    drawing.add(qr)
    renderPDF.draw(drawing, c, width - left - side, height - 18 * mm - side)

    rows = [
        ("Cơ quan", data.org_name),
        ("Mã định danh", data.org_id),
        ("Mã đơn vị hành chính", data.unit_code),
        ("Địa chỉ truy cập", data.url),
        ("Tên trên mạng nội bộ", data.hostname),
        ("Dấu vân tay TLS (SHA-256)", _spaced(data.tls_fingerprint)),
        ("Mã khóa thiết bị", data.key_id),
        ("Nơi giữ khóa", "chip TPM của thiết bị" if data.key_backing == "tpm"
         else "KHÓA PHẦN MỀM — không có TPM: có thể bị sao chép cùng ổ đĩa"),
        ("Trung tâm dữ liệu tỉnh", (data.centre_url or "chưa khai báo")
         + (" — đã đăng ký" if data.enrolled else " — CHƯA đăng ký")),
        ("Quản trị viên đầu tiên", data.admin_username or "chưa tạo"),
    ]
    y -= 12 * mm
    label_w = 52 * mm
    text_w = width - 2 * left - label_w - 46 * mm
    for label, value in rows:
        c.setFont(FONT_BOLD, 9.5)
        c.drawString(left, y, label)
        c.setFont(FONT, 9.5)
        w = text_w if y > height - 70 * mm else width - 2 * left - label_w
        for line in _wrap(value, w, 9.5):
            c.drawString(left + label_w, y, line)
            y -= 5 * mm
        y -= 1.5 * mm

    y -= 4 * mm
    c.setFont(FONT_BOLD, 11)
    c.drawString(left, y, "Kết quả tự kiểm tra")
    y -= 6 * mm
    for chk in data.checks:
        status = str(chk.get("status", ""))
        c.setFont(FONT_BOLD, 9)
        c.drawString(left, y, f"{STATUS_VI.get(status, status)}")
        c.drawString(left + 24 * mm, y, str(chk.get("name", "")))
        c.setFont(FONT, 9)
        for line in _wrap(str(chk.get("reason", "")), width - 2 * left - 50 * mm, 9):
            c.drawString(left + 50 * mm, y, line)
            y -= 4.5 * mm
        y -= 1 * mm
    if data.steps:
        y -= 4 * mm
        c.setFont(FONT_BOLD, 11)
        c.drawString(left, y, "Các bước cài đặt")
        y -= 6 * mm
        for step in data.steps:
            c.setFont(FONT, 9)
            state = STEP_VI.get(str(step.get("status")), str(step.get("status")))
            text = f"{step.get('name')}: {state} — {step.get('message', '')}"
            for line in _wrap(text, width - 2 * left, 9):
                c.drawString(left, y, line)
                y -= 4.5 * mm
    c.setFont(FONT, 8)
    c.drawString(left, 12 * mm, "Mật khẩu không được in trên phiếu này. Giữ phiếu cùng hồ sơ "
                 "thiết bị; so dấu vân tay TLS với trình duyệt khi truy cập lần đầu.")
    c.showPage()
    c.save()
    return buf.getvalue()


def write_sheet(path: Path, data: SheetData) -> Path:
    write_atomic(path, render(data), mode=0o644)
    return path
