"""The validation report as people read it: one Vietnamese HTML page, printable, every value
escaped (it quotes what a stranger wrote into a package). Its machine form is
``verify.Report.to_json``; both are stored as content of the document."""

from __future__ import annotations

import datetime as dt
import json
from html import escape
from typing import Any

from .verify import LABELS, Verdict

_STATUS = {
    "valid": "hợp lệ",
    "unverified": "không kiểm tra được",
    "invalid": "không hợp lệ",
}
_CSS = """
body{font-family:"Liberation Serif","Times New Roman",serif;max-width:52rem;margin:1rem auto;
padding:0 1rem;line-height:1.45;color:#111}
h1{font-size:1.35rem}h2{font-size:1.1rem;margin-top:1.5rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0}
td,th{border:1px solid #999;padding:.3rem .45rem;text-align:left;vertical-align:top;
overflow-wrap:anywhere}
th{background:#eee;width:34%}.verdict{font-size:1.2rem;font-weight:bold;padding:.5rem;
border:2px solid}.valid{border-color:#176b2c;color:#176b2c}.unverified{border-color:#8a5a00;
color:#8a5a00}.invalid{border-color:#a11;color:#a11}
@media print{body{margin:0}}
"""


def vn_time(iso: str) -> str:
    """An ISO time as dd/mm/yyyy hh:mm (Vietnam time); '' stays ''."""
    if not iso:
        return ""
    try:
        from .status import VN

        return dt.datetime.fromisoformat(iso).astimezone(VN).strftime("%d/%m/%Y %H:%M")
    except ValueError:
        return iso


def vn_date(iso: str) -> str:
    try:
        return dt.date.fromisoformat(iso).strftime("%d/%m/%Y") if iso else ""
    except ValueError:
        return iso


def _row(label: str, value: Any) -> str:
    return f"<tr><th>{escape(label)}</th><td>{escape(str(value or '—'))}</td></tr>"


def render_html(report: dict[str, Any], summary: dict[str, Any]) -> bytes:
    """The report page for a package (``report``: Report.to_json; ``summary``: its header)."""
    verdict = str(report["verdict"])
    sender = summary.get("From", {})
    rows = [
        _row("Cơ quan gửi", f"{sender.get('OrganName', '')} ({sender.get('OrganId', '')})"),
        _row("Số, ký hiệu",
             "/".join(x for x in (summary.get("CodeNumber"), summary.get("CodeNotation")) if x)),
        _row("Ngày ban hành", vn_date(str(summary.get("PromulgationDate") or ""))),
        _row("Loại văn bản", summary.get("TypeName")),
        _row("Trích yếu", summary.get("Subject")),
        _row("Nơi nhận", "; ".join(f"{t.get('OrganName', '')} ({t.get('OrganId', '')})"
                                   for t in summary.get("To", []))),
        _row("Thời điểm kiểm tra chứng thư", vn_time(str(report.get("checked_at", "")))),
        _row("Kiểm tra trực tuyến (OCSP/CRL)", "có" if report.get("online") else
             "không (dùng dữ liệu thu hồi đã lưu)"),
        _row("Mã băm SHA-256 của gói tin", report.get("package_sha256")),
    ]
    parts = [
        "<!DOCTYPE html><html lang='vi'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width,initial-scale=1'>",
        f"<title>Kết quả kiểm tra chữ ký số</title><style>{_CSS}</style></head><body>",
        "<h1>Kết quả kiểm tra tính toàn vẹn và xác thực văn bản điện tử đến</h1>",
        "<p>Theo Nghị định 30/2020/NĐ-CP, Điều 21 khoản 2: kiểm tra trước khi đăng ký văn bản "
        "đến.</p>",
        f"<p class='verdict {escape(verdict)}'>{escape(LABELS[Verdict(verdict)])}</p>",
    ]
    if report.get("misaddressed"):
        parts.append(
            f"<p class='verdict invalid'>Gửi nhầm nơi nhận: mã định danh của cơ quan "
            f"({escape(str(report.get('our_org', '')))}) không có trong danh sách nơi nhận.</p>"
        )
    parts.append(f"<table>{''.join(rows)}</table>")
    parts.append("<h2>Các chữ ký số</h2>")
    if not report.get("signatures"):
        parts.append("<p>Gói tin không có chữ ký số nào.</p>")
    for i, s in enumerate(report.get("signatures", []), 1):
        parts.append(f"<h3>{i}. {escape(str(s['target']))}</h3><table>")
        parts.append(_row("Kết quả", _STATUS.get(str(s["status"]), s["status"])))
        parts.append(_row("Toàn vẹn (không bị sửa đổi)", "có" if s["intact"] else "không"))
        parts.append(_row("Bao toàn bộ tệp", "có" if s["whole"] else "không"))
        parts.append(_row("Chứng thư được tin cậy", "có" if s["trusted"] else "không"))
        parts.append(_row("Chứng thư đã bị thu hồi", "có" if s["revoked"] else "không"))
        parts.append(_row("Người / cơ quan ký", s.get("signer_name") or s.get("signer")))
        parts.append(_row("Chủ thể chứng thư", s.get("signer")))
        parts.append(_row("Mã định danh trong chứng thư", s.get("organ_id")))
        parts.append(_row("Tổ chức cấp chứng thư", s.get("issuer")))
        parts.append(_row("Số hiệu chứng thư", s.get("serial")))
        parts.append(_row("Hiệu lực", f"{vn_time(s.get('not_before', ''))} – "
                                      f"{vn_time(s.get('not_after', ''))}"))
        parts.append(_row("Thời điểm ký (theo chữ ký)", vn_time(s.get("signing_time", ""))))
        parts.append(_row("Lý do", " ".join(s.get("reasons") or []) or "—"))
        parts.append("</table>")
    parts.append("<h2>Tệp đính kèm</h2><table><tr><th>Tệp</th><td>SHA-256 · kích thước · "
                 "chữ ký bao phủ</td></tr>")
    for a in report.get("attachments", []):
        covered = ", ".join(a.get("covered_by") or []) or "không có chữ ký hợp lệ"
        parts.append(f"<tr><th>{escape(str(a['name']))}</th><td>{escape(str(a['sha256']))} · "
                     f"{int(a['size']):,} byte · {escape(covered)}</td></tr>")
    parts.append("</table>")
    if report.get("warnings"):
        parts.append("<h2>Ghi chú</h2><ul>")
        parts.extend(f"<li>{escape(str(w))}</li>" for w in report["warnings"])
        parts.append("</ul>")
    parts.append("<h2>Dữ liệu dùng để kiểm tra</h2><ul>")
    parts.extend(f"<li>{escape(str(r['kind']).upper())} {escape(str(r['sha256']))}</li>"
                 for r in report.get("revocation", []))
    parts.extend(f"<li>Chứng thư gốc tin cậy {escape(str(fp))}</li>"
                 for fp in report.get("trust_roots", []))
    parts.append("</ul></body></html>")
    return "".join(parts).encode("utf-8")


def report_json(report: dict[str, Any]) -> bytes:
    return json.dumps(report, ensure_ascii=False, indent=1, sort_keys=True).encode("utf-8")
