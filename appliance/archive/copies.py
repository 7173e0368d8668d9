"""Independent copies (TT 05/2025 Điều 27: ≥ 2 backup sets on independent media): each backup
medium, and the provincial centre once it has confirmed a tree size with a signed receipt."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import LuutruError
from ..kinds import Kind
from ..ledger import Entry
from .medium import open_medium

if TYPE_CHECKING:
    from ..store import Store

REQUIRED = 2


@dataclass
class CopiesStatus:
    tree_size: int
    copies: list[dict[str, Any]] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(1 for c in self.copies if c["tree_size"] > 0)

    @property
    def ok(self) -> bool:
        return self.count >= REQUIRED

    def to_json(self) -> dict[str, Any]:
        return {"tree_size": self.tree_size, "count": self.count, "required": REQUIRED,
                "ok": self.ok, "copies": self.copies}


def independent_copies(store: Store, media: list[Path]) -> CopiesStatus:
    """How many independent copies exist besides the appliance, and how far each reaches."""
    size, _ = store.tree_head()
    out = CopiesStatus(size)
    for path in media:
        try:
            m = open_medium(path)
            ids = m.set_ids()
            last = m.manifest(ids[-1]) if ids else None
        except LuutruError as exc:
            out.copies.append({"kind": "medium", "label": str(path), "tree_size": 0,
                               "error": str(exc)})
            continue
        out.copies.append({
            "kind": "medium",
            "label": m.label,
            "tree_size": int(last["tree_size"]) if last else 0,
            "last_set": last["set_id"] if last else None,
            "created": last["created"] if last else None,
        })
    confirmed = latest_receipt_size(store)
    out.copies.append({"kind": "centre", "label": "Trung tâm dữ liệu tỉnh",
                       "tree_size": confirmed})
    return out


def latest_receipt_size(store: Store, since: int = 0) -> int:
    """The largest tree size the centre's receipts in the log cover (0 if none): the centre's
    copy counts up to there."""
    best = 0
    for _idx, raw in store.entries(since):
        e = Entry.decode(raw, strict=False)
        if e.kind == Kind.SYNC_RECEIPT and e.data:
            best = max(best, int(e.data.get("tree_size", 0)))
    return best
