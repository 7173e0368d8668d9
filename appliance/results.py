"""What the store's calls return."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Record:
    """One version of a fonds, hồ sơ, document or membership, and the log entry that made it."""

    type: str
    id: str
    version: int
    log_index: int
    data: dict[str, Any]


@dataclass(frozen=True)
class WriteResult:
    record: Record
    warnings: tuple[str, ...] = ()
