"""Independent copies (TT 05/2025 Điều 27: ≥ 2 backup sets on independent media): each backup
medium holding a set and within its rated life, and the provincial centre once its signed
receipts cover everything. The home page warns while there are fewer than two."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import LuutruError
from ..kinds import Kind
from ..ledger import Entry
from .medium import open_medium
from .paperwork import lifetime

if TYPE_CHECKING:
    from ..store import Store

REQUIRED = 2
MAX_TAIL = 1000  # unconfirmed entries past which the centre is behind without looking


@dataclass
class CopiesStatus:
    tree_size: int
    copies: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(1 for c in self.copies if c.get("counts"))

    @property
    def ok(self) -> bool:
        return self.count >= REQUIRED

    def message(self) -> str | None:
        """The home page's warning (Vietnamese) when fewer than two independent copies exist."""
        if self.ok:
            return None
        return (f"Chỉ có {self.count} bản sao độc lập (cần ít nhất {REQUIRED}: Thông tư 05/2025/"
                "TT-BNV Điều 27). Sao lưu ra vật mang tin thứ hai, hoặc chờ Trung tâm dữ liệu "
                "tỉnh xác nhận đủ toàn bộ dữ liệu.")

    def to_json(self) -> dict[str, Any]:
        return {"tree_size": self.tree_size, "count": self.count, "required": REQUIRED,
                "ok": self.ok, "copies": self.copies, "warnings": self.warnings,
                "message": self.message()}


def independent_copies(
    store: Store, media: list[Path], *, centre_confirmed: int | None = None,
    centre_pending_content: int = 0, centre_enrolled: bool = True,
    today: dt.date | None = None,
) -> CopiesStatus:
    """How many independent copies exist besides the appliance. A medium counts once it holds
    a complete set and is within its rated life; the centre counts only once its receipts
    cover every log entry and it has every content file (``centre_confirmed``: the sync
    agent's confirmed size, else read from the log)."""
    size, _ = store.tree_head()
    today = today or store.clock.now().date()
    out = CopiesStatus(size)
    for path in media:
        try:
            m = open_medium(path)
            ids = m.set_ids()
            last = m.manifest(ids[-1]) if ids else None
            life = lifetime(m)
        except LuutruError as exc:
            out.copies.append({"kind": "medium", "label": str(path), "tree_size": 0,
                               "counts": False, "error": str(exc)})
            out.warnings.append(f"Vật mang tin {path}: {exc}")
            continue
        warning = life.warning(today)
        if warning:
            out.warnings.append(warning)
        expired = life.end is not None and today >= life.end
        out.copies.append({
            "kind": "medium",
            "label": m.label,
            "tree_size": int(last["tree_size"]) if last else 0,
            "last_set": last["set_id"] if last else None,
            "created": last["created"] if last else None,
            "life": life.to_json(),
            "counts": bool(last) and not expired,
        })
    confirmed = latest_receipt_size(store) if centre_confirmed is None else centre_confirmed
    out.copies.append({"kind": "centre", "label": "Trung tâm dữ liệu tỉnh",
                       "tree_size": confirmed, "pending_content": centre_pending_content,
                       "enrolled": centre_enrolled,
                       "counts": centre_enrolled and centre_pending_content == 0
                       and covers_everything(store, confirmed, size)})
    return out


def covers_everything(store: Store, confirmed: int, size: int) -> bool:
    """Whether a receipt for ``confirmed`` entries covers the whole log: every entry after it
    is itself a receipt (bookkeeping the centre cannot have confirmed before it existed)."""
    if confirmed <= 0 or confirmed > size or size - confirmed > MAX_TAIL:
        return False  # (a receipt for more entries than the log holds is not this log's)
    for _idx, raw in store.entries(confirmed, size):
        if Kind.SYNC_RECEIPT.encode() not in raw or Entry.decode(raw, strict=False).kind != \
                Kind.SYNC_RECEIPT:
            return False
    return True


def latest_receipt_size(store: Store, since: int = 0) -> int:
    """The largest tree size the centre's receipts in the log cover (0 if none): the centre's
    copy counts up to there."""
    best = 0
    for _idx, raw in store.entries(since):
        e = Entry.decode(raw, strict=False)
        if e.kind == Kind.SYNC_RECEIPT and e.data:
            best = max(best, int(e.data.get("tree_size", 0)))
    return best
