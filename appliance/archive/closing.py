"""Closing a hồ sơ (Decree 30 Điều 29): contents list, page counts, retention re-assessed."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

from .. import retention, writes
from ..classified import is_classified
from ..errors import ConflictError, ValidationError
from ..kinds import Kind
from ..results import Record
from ..writer import Txn
from ..writes import WriteContext
from . import state

# Longest first: 01 Vĩnh viễn, 02 70 năm … 06 10 năm. 07 (Khác) cannot be ranked.
RETENTION_ORDER = ("01", "02", "03", "04", "05", "06")
_DOC_COLUMNS = (
    "id",
    "version",
    "Direction",
    "Status",
    "FileCode",
    "DocOrdinal",
    "TypeName",
    "TypeCode",
    "CodeNumber",
    "CodeNotation",
    "IssuedDate",
    "ArrivalDate",
    "OrganName",
    "Subject",
    "PageAmount",
    "Maintenance",
    "Mode",
    "Content",
)


@dataclass(frozen=True)
class ContentsItem:
    """One line of the mục lục văn bản of a hồ sơ."""

    ordinal: int
    document_id: str
    version: int
    direction: str
    status: str
    type_name: str
    code_number: str
    code_notation: str
    date: str  # YYYY-MM-DD: the document's date (arrival date when it has none)
    organ_name: str
    subject: str
    pages: int
    maintenance: str
    classified: bool
    content: tuple[str, ...]  # SHA-256 of its content files
    member: bool  # filed here as well (membership), not as its primary hồ sơ

    def to_json(self) -> dict[str, Any]:
        return {
            "ordinal": self.ordinal,
            "document_id": self.document_id,
            "version": self.version,
            "direction": self.direction,
            "status": self.status,
            "type_name": self.type_name,
            "code_number": self.code_number,
            "code_notation": self.code_notation,
            "date": self.date,
            "organ_name": self.organ_name,
            "subject": self.subject,
            "pages": self.pages,
            "maintenance": self.maintenance,
            "classified": self.classified,
            "content": list(self.content),
            "member": self.member,
        }


@dataclass(frozen=True)
class CloseResult:
    record: Record
    contents: tuple[ContentsItem, ...]
    warnings: tuple[str, ...] = field(default=())
    retention_before: str = ""
    retention_after: str = ""


def _item(row: dict[str, Any], ordinal: int | None, member: bool) -> ContentsItem:
    import json

    content = json.loads(row["Content"]) if row.get("Content") else []
    return ContentsItem(
        ordinal=int(ordinal if ordinal is not None else row.get("DocOrdinal") or 0),
        document_id=str(row["id"]),
        version=int(row["version"]),
        direction=str(row.get("Direction") or ""),
        status=str(row.get("Status") or ""),
        type_name=str(row.get("TypeName") or ""),
        code_number=str(row.get("CodeNumber") or ""),
        code_notation=str(row.get("CodeNotation") or ""),
        date=str(row.get("IssuedDate") or row.get("ArrivalDate") or ""),
        organ_name=str(row.get("OrganName") or ""),
        subject=str(row.get("Subject") or ""),
        pages=int(row.get("PageAmount") or 0),
        maintenance=str(row.get("Maintenance") or ""),
        classified=is_classified(row),
        content=tuple(str(c["sha256"]) for c in content),
        member=member,
    )


def contents_list(conn: sqlite3.Connection, file_code: str) -> list[ContentsItem]:
    """The documents of a hồ sơ (its own and those filed in it too), by ordinal."""
    cols = ", ".join(f'd."{c}"' if c not in ("id", "version") else f"d.{c}" for c in _DOC_COLUMNS)
    out: list[ContentsItem] = []
    cur = conn.execute(f'SELECT {cols} FROM documents d WHERE d."FileCode" = ?', (file_code,))
    for r in cur.fetchall():
        out.append(_item(dict(zip(_DOC_COLUMNS, r, strict=True)), None, False))
    cur = conn.execute(
        f'SELECT m."DocOrdinal", {cols} FROM memberships m JOIN documents d '
        'ON d.id = m."DocumentId" WHERE m."FileCode" = ?',
        (file_code,),
    )
    for r in cur.fetchall():
        out.append(_item(dict(zip(_DOC_COLUMNS, r[1:], strict=True)), r[0], True))
    destroyed = {
        str(x[0])
        for x in state.rows(
            conn,
            "SELECT target_id FROM archive_holds WHERE target_type = 'document' "
            "AND kind = 'destroyed'",
        )
    }
    out = [i for i in out if i.document_id not in destroyed]
    out.sort(key=lambda i: (i.ordinal, i.date, i.document_id))
    return out


def chronological(items: list[ContentsItem]) -> list[ContentsItem]:
    """Decree 30 Phụ lục VI: a whole hồ sơ is exported in chronological order."""
    return sorted(items, key=lambda i: (i.date or "9999", i.ordinal, i.document_id))


def longer_retention(a: str, b: str) -> str:
    """The longer of two maintenance codes (07 'Khác' never wins over a ranked code)."""
    if a in RETENTION_ORDER and b in RETENTION_ORDER:
        return a if RETENTION_ORDER.index(a) <= RETENTION_ORDER.index(b) else b
    return a if a in RETENTION_ORDER else b


def review(items: list[ContentsItem]) -> list[str]:
    """What the clerk must look at before closing: drafts and duplicates (Điều 29)."""
    warnings = []
    for i in items:
        if i.status == "draft":
            warnings.append(
                f"văn bản {i.ordinal} ({i.subject[:60]}) là dự thảo: không tính vào hồ sơ"
            )
    seen: dict[tuple[str, ...], int] = {}
    for i in items:
        keys: list[tuple[str, ...]] = []
        if i.code_number:
            keys.append(("triple", i.code_number, i.code_notation, i.organ_name))
        keys += [("content", c) for c in i.content]
        for key in keys:
            if key in seen and seen[key] != i.ordinal:
                warnings.append(f"văn bản {i.ordinal} trùng với văn bản {seen[key]} ({key[0]})")
            seen.setdefault(key, i.ordinal)
    return warnings


def close_in_txn(
    store: WriteContext,
    txn: Txn,
    file_code: str,
    actor: str,
    maintenance: str | None = None,
    reason: str | None = None,
) -> CloseResult:
    """Close inside the caller's job: the file's new version, then its contents-list entry."""
    rec = writes.current(txn, "file", FileCode=file_code)
    writes.check_writable(txn.conn, rec)
    if rec.data.get("Status") == "closed":
        raise ConflictError(f"hồ sơ {file_code} is already closed")
    items = contents_list(txn.conn, file_code)
    warnings = review(items)
    counted = [i for i in items if i.status != "draft"]
    before = str(rec.data.get("Maintenance") or "")
    after = before
    years = rec.data.get("RetentionYears")
    if maintenance:
        parsed = retention.parse_years(maintenance)
        after = (retention.tt05_code(parsed) if parsed is not None
                 else store.codes["maintenance"].lookup(maintenance).code)
        years = parsed if parsed is not None else retention.code_years(after)
        if not reason and after != before:
            raise ValidationError(
                "changing the retention when closing needs a reason (đánh giá lại thời hạn)",
                "Maintenance",
            )
    for i in counted:
        if i.maintenance and longer_retention(i.maintenance, after) != after:
            warnings.append(
                f"văn bản {i.ordinal} có thời hạn lưu trữ dài hơn hồ sơ ({i.maintenance}): "
                f"thời hạn hồ sơ nâng từ {after} lên {i.maintenance}"
            )
            after = i.maintenance
            years = retention.code_years(after)
    data = dict(
        rec.data,
        Status="closed",
        DocTotal=len(counted),
        PageTotal=sum(i.pages for i in counted),
        Maintenance=after,
        RetentionYears=None if after == retention.PERMANENT else years,
    )
    if data["RetentionYears"] is None:
        data.pop("RetentionYears")
    dates = sorted(i.date for i in counted if i.date)
    if dates:
        data.setdefault("StartDate", dates[0])
        data.setdefault("EndDate", dates[-1])
    if "EndDate" not in data:
        data["EndDate"] = txn.clock.now().date().isoformat()
    out = writes.put(txn, "file", Kind.FILE_CLOSE, actor, data, rec.id, rec.version)
    writes.append_event(
        txn,
        Kind.FILE_CONTENTS,
        actor,
        {
            "FileCode": file_code,
            "contents": [i.to_json() for i in counted],
            "retention": {"before": before, "after": after, "reason": reason or ""},
            "warnings": warnings,
        },
        "file",
        rec.id,
    )
    return CloseResult(out, tuple(counted), tuple(warnings), before, after)


def close_file(
    store: WriteContext,
    file_code: str,
    actor: str = "system",
    *,
    maintenance: str | None = None,
    reason: str | None = None,
) -> CloseResult:
    """Close a hồ sơ: mục lục văn bản, page and document counts, retention re-assessed, logged."""
    return store.writer_or_fail().call(
        lambda txn: close_in_txn(store, txn, file_code, actor, maintenance, reason)
    )
