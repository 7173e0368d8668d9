"""What every hook prints (firmware_hooks/result.py): one JSON object whose status follows
its checks and whose exit code follows its status."""

from __future__ import annotations

import json

import pytest

from firmware_hooks.result import (
    EXIT_FOR,
    Check,
    CheckStatus,
    ExitCode,
    HookResult,
    Status,
    overall,
)

P, W, F, S = (CheckStatus.PASS, CheckStatus.WARN, CheckStatus.FAIL, CheckStatus.SKIPPED)


@pytest.mark.parametrize(
    ("states", "status"),
    [((), Status.OK), ((P, S), Status.OK), ((P, W), Status.DEGRADED), ((W, F, P), Status.FAILED),
     ((F,), Status.FAILED), ((S, S), Status.OK)],
)
def test_overall_is_the_worst_check(states: tuple[CheckStatus, ...], status: Status) -> None:
    """Any fail fails, else any warning degrades; skipped checks count for nothing."""
    assert overall([Check(f"c{i}", s, "") for i, s in enumerate(states)]) is status


def test_every_status_has_its_own_exit_code() -> None:
    """0 ok, 1 failed, 3 refused, 4 degraded, 5 unprovisioned; 2 (usage) is the CLI's."""
    assert {s: int(c) for s, c in EXIT_FOR.items()} == {
        Status.OK: 0, Status.FAILED: 1, Status.REFUSED: 3, Status.DEGRADED: 4,
        Status.UNPROVISIONED: 5}
    assert set(EXIT_FOR) == set(Status) and ExitCode.USAGE == 2
    assert len(set(EXIT_FOR.values())) == len(EXIT_FOR)


def test_a_result_prints_as_one_json_object() -> None:
    """Every field, the check detail only when given, Vietnamese as it is."""
    r = HookResult("health", Status.DEGRADED, "đĩa gần đầy", "2025-09-15T09:30:00.000+07:00",
                   "/var/lib/luutru",
                   [Check("disk", W, "92 % used", {"free_mb": 800}), Check("tpm", P, "ok")],
                   {"tree_size": 12}, [{"plugin": "uplink", "status": "ok"}])
    assert r.exit_code is ExitCode.DEGRADED
    text = r.dumps()
    assert "đĩa gần đầy" in text and "\n" not in text
    assert json.loads(text) == {
        "hook": "health", "status": "degraded", "exit_code": 4, "message": "đĩa gần đầy",
        "at": "2025-09-15T09:30:00.000+07:00", "data_dir": "/var/lib/luutru",
        "checks": [
            {"name": "disk", "status": "warn", "reason": "92 % used",
             "detail": {"free_mb": 800}},
            {"name": "tpm", "status": "pass", "reason": "ok"},
        ],
        "details": {"tree_size": 12}, "plugins": [{"plugin": "uplink", "status": "ok"}],
    }
