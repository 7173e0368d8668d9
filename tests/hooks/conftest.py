"""Helpers for the lifecycle-hook tests: run a hook in-process on a temporary data folder."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from appliance.config import DB_NAME
from firmware_hooks.result import HookResult
from firmware_hooks.runner import HookConfig, run_hook

RunHook = Callable[..., HookResult]


@pytest.fixture
def hook_config(data_dir: Path, tmp_path: Path) -> HookConfig:
    plugins = tmp_path / "hooks.d"
    plugins.mkdir()
    return HookConfig(data_dir, (plugins,), entry_points=False, plugin_timeout_s=5.0)


@pytest.fixture
def run(hook_config: HookConfig) -> RunHook:
    """run(name, body) -> HookResult, with the province plug-ins folder of the test."""

    def call(name: str, body: Callable[[HookConfig], HookResult]) -> HookResult:
        result = run_hook(name, hook_config, body)
        json.loads(result.dumps())  # what is printed is always valid JSON
        return result

    return call


def log_size(data_dir: Path) -> int:
    conn = sqlite3.connect(f"file:{data_dir / DB_NAME}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT max(idx) FROM log").fetchone()
        return 0 if row[0] is None else int(row[0]) + 1
    finally:
        conn.close()


def write_sync_state(data_dir: Path, **state: Any) -> None:
    """The sync agent's state file as sync/state.py writes it."""
    from sync.agent.state import AgentState, save_state

    save_state(data_dir, AgentState(**state))


def check(result: HookResult, name: str) -> Any:
    for c in result.checks:
        if c.name == name:
            return c
    raise AssertionError(f"no check {name} in {result.to_json()}")
