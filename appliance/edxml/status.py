"""Status messages to the sender (QCVN 102:2016 ``Status``): received, accepted, returned.

Codes as spec §7.1 records them from a public VXP/iOffice gateway (01 đã đến, 02 từ chối,
03 đã tiếp nhận/vào sổ, 04 phân công, 05 đang xử lý, 06 hoàn thành, 13 thu hồi, 15/16 đồng ý /
từ chối cập nhật). The text of QCVN 102 could not be read to confirm them [recalled]; they are
data here, one place to correct. The box sends 01 on receipt, then 03 or 02 (02 also for a
package refused for its structure whose sender can be read: ``refusal``).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from .dsig import XmlSigningKey
from .model import NS_2016, Organ, StatusMessage

if TYPE_CHECKING:
    from ..store import Store

VN = ZoneInfo("Asia/Ho_Chi_Minh")
RECEIVED = "01"
RETURNED = "02"
ACCEPTED = "03"
CODES = {
    "01": "Đã đến",
    "02": "Từ chối tiếp nhận",
    "03": "Đã tiếp nhận (vào sổ)",
    "04": "Phân công",
    "05": "Đang xử lý",
    "06": "Hoàn thành",
    "13": "Thu hồi",
    "15": "Đồng ý cập nhật",
    "16": "Từ chối cập nhật",
}


def timestamp(when: dt.datetime) -> str:
    """YYYY/MM/DD hh:mm:ss in Vietnam time, as QCVN 102 writes times."""
    return when.astimezone(VN).strftime("%Y/%m/%d %H:%M:%S")


def make_status(
    summary: dict[str, Any],
    us: Organ,
    code: str,
    description: str,
    when: dt.datetime,
    staff: str = "",
) -> StatusMessage:
    """The status of the document ``summary`` (a package's header as the inbox keeps it)."""
    if code not in CODES:
        raise ValueError(f"unknown status code {code}")
    number, notation = summary.get("CodeNumber", ""), summary.get("CodeNotation", "")
    code_text = f"{number}/{notation}" if number and notation else (number or notation)
    return StatusMessage(
        namespace=NS_2016,
        sender=us,
        response_for_organ=str(summary.get("From", {}).get("OrganId", "")),
        response_for_code=code_text,
        response_for_date=str(summary.get("PromulgationDate", "")).replace("-", "/"),
        response_for_document=str(summary.get("DocumentId", "")),
        status_code=code,
        description=description or CODES[code],
        timestamp=timestamp(when),
        staff=staff,
        department="Văn thư",
    )


def stored_status(store: Store, item_id: str, summary: dict[str, Any], code: str,
                  description: str, actor: str, key: XmlSigningKey | None) -> dict[str, Any]:
    """The status message ``code`` about ``summary``, signed and stored; what the outbox
    keeps of it (its SHA-256, code and file name)."""
    from .build import status_package

    now = store.clock.now()
    us = Organ(store.config.org_id, store.config.org_name)
    raw = status_package(make_status(summary, us, code, description, now, actor), key, now)
    stored = store.content.put_bytes(raw)
    stamp = now.astimezone(VN).strftime("%Y%m%d%H%M%S")
    return {"sha256": stored.sha256, "code": code,
            "name": f"trang-thai-{code}-{stamp}-{item_id[:8]}.edxml"}
