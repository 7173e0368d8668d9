"""What verification found: each finding with its code, and the report they make up."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from .handover import Handover


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Finding:
    code: str
    message: str
    severity: Severity = Severity.ERROR
    index: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
        }
        if self.index is not None:
            out["index"] = self.index
        return out


@dataclass
class Report:
    tree_size: int = 0
    entries: int = 0
    checkpoints: int = 0
    content_files: int = 0
    records: int = 0
    findings: list[Finding] = field(default_factory=list)
    withheld_rows: list[int] = field(default_factory=list)  # log rows held as leaf hashes
    numbers_used: dict[tuple[str, str, int], int] = field(default_factory=dict)
    released_content: set[str] = field(default_factory=set)  # keep: none (provenance only)
    handovers: list[Handover] = field(default_factory=list)  # device keys handed over

    @property
    def ok(self) -> bool:
        return not any(f.severity is Severity.ERROR for f in self.findings)

    def add(
        self, code: str, message: str, index: int | None = None, severity: Severity = Severity.ERROR
    ) -> None:
        self.findings.append(Finding(code, message, severity, index))

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "tree_size": self.tree_size,
            "entries": self.entries,
            "checkpoints": self.checkpoints,
            "records": self.records,
            "content_files": self.content_files,
            "withheld": len(self.withheld_rows),
            "handovers": [h.index for h in self.handovers],
            "findings": [f.to_json() for f in self.findings],
        }
