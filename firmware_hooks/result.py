"""What every hook prints: one JSON object with a status, checks and details."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any


class ExitCode(IntEnum):
    """Process exit codes of the hooks (documented in firmware_hooks/__init__.py)."""

    OK = 0
    FAILED = 1
    USAGE = 2
    REFUSED = 3
    DEGRADED = 4
    UNPROVISIONED = 5


class Status(StrEnum):
    OK = "ok"
    FAILED = "failed"
    REFUSED = "refused"
    DEGRADED = "degraded"
    UNPROVISIONED = "unprovisioned"


EXIT_FOR = {
    Status.OK: ExitCode.OK,
    Status.FAILED: ExitCode.FAILED,
    Status.REFUSED: ExitCode.REFUSED,
    Status.DEGRADED: ExitCode.DEGRADED,
    Status.UNPROVISIONED: ExitCode.UNPROVISIONED,
}


class CheckStatus(StrEnum):
    """One check's outcome; ``warn`` degrades, ``fail`` fails, ``skipped`` says why not run."""

    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Check:
    name: str
    status: CheckStatus
    reason: str
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name, "status": self.status.value, "reason": self.reason
        }
        if self.detail:
            out["detail"] = self.detail
        return out


def overall(checks: list[Check]) -> Status:
    """FAILED if any check failed, DEGRADED if any warned, else OK."""
    states = {c.status for c in checks}
    if CheckStatus.FAIL in states:
        return Status.FAILED
    if CheckStatus.WARN in states:
        return Status.DEGRADED
    return Status.OK


@dataclass
class HookResult:
    hook: str
    status: Status
    message: str = ""
    at: str = ""
    data_dir: str = ""
    checks: list[Check] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    plugins: list[dict[str, Any]] = field(default_factory=list)

    @property
    def exit_code(self) -> ExitCode:
        return EXIT_FOR[self.status]

    def to_json(self) -> dict[str, Any]:
        return {
            "hook": self.hook,
            "status": self.status.value,
            "exit_code": int(self.exit_code),
            "message": self.message,
            "at": self.at,
            "data_dir": self.data_dir,
            "checks": [c.to_json() for c in self.checks],
            "details": self.details,
            "plugins": self.plugins,
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), ensure_ascii=False, sort_keys=False)
