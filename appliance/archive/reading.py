"""Reading a record on screen under a use request (đọc tại chỗ): what the reader is shown.

The "read" form of a use request is delivered on screen (``use.deliver`` logs it); this is
what the screen shows afterwards: the record's digitised pages with the reading mark
(``readmark.py``: the reader, the request's number, the time) drawn into them. Only the desk
(văn thư, lưu trữ), or the member of staff who asked for it, opens it, only for an item that
was approved and delivered on screen, and only while the request stands approved: the rules
of ``use.deliver``, checked again at every page, since a page is shown long after the
delivery was logged.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import NotFoundError
from ..readmark import ReadingMark, mark_reading
from .use import Actor, Form, Medium, UseError, UseForbidden, get_request, visible

if TYPE_CHECKING:
    from ..store import Store

IMAGES = ("image/tiff", "image/jpeg", "image/png")


@dataclass(frozen=True)
class Reading:
    """One approved, delivered item as the reader sees it: the marked PDF to draw."""

    request: dict[str, Any]
    item: int
    document: str
    title: str
    mark: ReadingMark
    pdf: bytes


def check_reading(store: Store, actor: Actor, request_id: str, item: int) -> dict[str, Any]:
    """The request, if ``actor`` may be shown item ``item`` on screen now; else raise."""
    req = get_request(store.reader(), request_id)
    if not visible(req, actor):
        raise NotFoundError(f"không có phiếu yêu cầu {request_id}")
    if not (actor.desk or req["created_by"] == actor.username):
        raise UseForbidden("văn thư, lưu trữ giao tài liệu cho người khai thác")
    if not 0 <= item < len(req["items"]):
        raise NotFoundError(f"phiếu {request_id} không có mục {item + 1}")
    approved = (req["decision"] or {}).get("items", ())
    if req["status"] != "approved" or item not in approved:
        raise UseError("tài liệu này chưa được duyệt cho khai thác (no approved request)")
    if req["items"][item]["form"] != Form.READ:
        raise UseError("mục này là bản sao, không đọc trên màn hình")
    if not any(d["item"] == item and d["medium"] == Medium.SCREEN for d in req["deliveries"]):
        raise UseError("tài liệu chưa được giao để đọc (bấm “Đọc trên màn hình” trước)")
    return req


def _pdf_of(store: Store, doc: dict[str, Any]) -> bytes:
    """The record's first PDF, else its first scanned image as a PDF."""
    content = list(doc.get("Content") or ())
    for wanted in (("application/pdf",), IMAGES):
        for c in content:
            if c.get("mime") in wanted:
                with store.content.open(c["sha256"]) as fh:
                    body = fh.read()
                if c["mime"] == "application/pdf":
                    return bytes(body)
                import img2pdf

                return bytes(img2pdf.convert(body))
    raise UseError("tài liệu chưa có bản số hóa để đọc trên màn hình")


def open_reading(store: Store, actor: Actor, request_id: str, item: int,
                 at: dt.datetime | None = None) -> Reading:
    """Item ``item`` of the request, marked for its reader at ``at`` (now by default)."""
    req = check_reading(store, actor, request_id, item)
    it = req["items"][item]
    doc = store.get("document", it["document"])
    reader = str(req["reader"].get("name") or req["created_by"])
    mark = ReadingMark(reader, f"{req['number']:02d}/{req['year']}", at or store.clock.now())
    pdf = mark_reading(_pdf_of(store, doc.data), mark)
    return Reading(req, item, it["document"], str(it.get("title") or it["code"]), mark, pdf)
