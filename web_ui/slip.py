"""Phiếu giải quyết văn bản đến (Decree 30 Phụ lục IV) as PDF: the leader's direction, who
leads and helps, by when, the handlers' notes, printed for an office that works on paper."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from appliance.archive.pdf import Doc
from appliance.clock import vn_date
from appliance.results import Record

from .render import _isotime


def slip_pdf(rec: Record, org_name: str, names: Mapping[str, str], now: dt.datetime) -> bytes:
    d = rec.data
    h = d.get("Handling") or {}
    doc = Doc("Phiếu giải quyết văn bản đến")
    doc.header([org_name.upper()], ["CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
                                    "Độc lập - Tự do - Hạnh phúc"])
    doc.space(12)
    doc.heading("PHIẾU GIẢI QUYẾT VĂN BẢN ĐẾN")
    number = f"{d.get('CodeNumber')}/{d.get('CodeNotation')}" if d.get("CodeNumber") \
        else (d.get("CodeNotation") or "không số")
    doc.table(["Số đến", "Ngày đến", "Số, ký hiệu", "Tác giả", "Trích yếu"], [[
        str(d.get("ArrivalNumber", "")), vn_date(d["ArrivalDate"]) if d.get("ArrivalDate")
        else "", number, str(d.get("OrganName", "")), str(d.get("Subject", "")),
    ]], widths=[45, 60, 85, 110, 200])
    doc.space(10)
    doc.para("1. Ý kiến của lãnh đạo cơ quan, tổ chức:")
    doc.para(h.get("direction") or "…" * 40)
    if h:
        lead = names.get(h.get("lead") or "", h.get("lead") or "")
        support = ", ".join(names.get(u, u) for u in h.get("support", [])) or "—"
        if h.get("info"):
            doc.para("Để biết, không giao xử lý.")
        else:
            doc.para(f"Người chủ trì: {lead}.   Người phối hợp: {support}.")
        doc.para("Thời hạn giải quyết: "
                 + (vn_date(h["due"]) if h.get("due") else "không ghi thời hạn"))
        by = names.get(h.get("directed_by", ""), h.get("directed_by", ""))
        doc.para(f"Ngày chỉ đạo: {_isotime(h.get('directed_at'))}   Người chỉ đạo: {by}",
                 small=True)
    doc.space(8)
    doc.para("2. Ý kiến của lãnh đạo đơn vị:")
    doc.para("…" * 40)
    doc.space(8)
    doc.para("3. Ý kiến đề xuất của người giải quyết:")
    rows = [[_isotime(p.get("at")), names.get(p.get("by", ""), p.get("by", "")),
             p.get("note", ""), "xong" if p.get("done") else ""]
            for p in h.get("progress", [])]
    if rows:
        doc.table(["Thời gian", "Người giải quyết", "Nội dung", ""], rows,
                  widths=[85, 110, 270, 35])
    else:
        doc.para("…" * 40)
    doc.space(12)
    doc.para(f"In ngày {vn_date(now.date())}.", small=True)
    return doc.render()
