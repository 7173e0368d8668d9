"""The appliance's sync state (sync/agent/state.py): state.json and enrolment.json round trips and
malformed files, one agent at a time, sequence numbers that are never reused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sync.agent.state import (
    SEQ_BLOCK,
    AgentBusyError,
    AgentLock,
    AgentState,
    Enrolment,
    Sequencer,
    device_dir,
    load_enrolment,
    load_state,
    save_enrolment,
    save_state,
    sync_dir,
)
from sync.errors import NotEnrolledError, SyncError

ENROLMENT = Enrolment("http://centre:8470", "-----BEGIN PUBLIC KEY-----\n…", "luutru-centre/x",
                      "Trung tâm tỉnh", "ab" * 16, "000.21.08.H49", "2025-09-15T09:30:00+07:00")


def test_state_round_trips_and_a_missing_file_is_the_initial_state(tmp_path: Path) -> None:
    """load_state(save_state(s)) == s; no file means nothing sent yet; unknown keys ignored."""
    assert load_state(tmp_path) == AgentState()
    st = AgentState(centre_url="http://c", acknowledged_size=7, confirmed_size=5,
                    missing=["ab" * 32], quarantined=True, clock_skew_s=-3)
    save_state(tmp_path, st)
    assert load_state(tmp_path) == st
    path = sync_dir(tmp_path) / "state.json"
    raw = json.loads(path.read_text("utf-8"))
    path.write_text(json.dumps({**raw, "from_a_newer_version": 1}), "utf-8")
    assert load_state(tmp_path) == st


def test_a_damaged_state_file_is_a_sync_error(tmp_path: Path) -> None:
    """Truncated JSON is reported, not taken for an empty state."""
    save_state(tmp_path, AgentState(acknowledged_size=3))
    path = sync_dir(tmp_path) / "state.json"
    path.write_text(path.read_text("utf-8")[:10], "utf-8")
    with pytest.raises(SyncError, match=r"cannot read state\.json"):
        load_state(tmp_path)


def test_enrolment_round_trips_and_its_absence_or_damage_is_said(tmp_path: Path) -> None:
    """No enrolment.json: NotEnrolledError naming `luutru enrol`; a damaged one: SyncError."""
    with pytest.raises(NotEnrolledError, match="run `luutru enrol`"):
        load_enrolment(tmp_path)
    save_enrolment(tmp_path, ENROLMENT)
    assert load_enrolment(tmp_path) == ENROLMENT
    path = sync_dir(tmp_path) / "enrolment.json"
    assert path.stat().st_mode & 0o777 == 0o640
    path.write_text(json.dumps({"centre_url": "x"}), "utf-8")
    with pytest.raises(SyncError, match=r"cannot read enrolment\.json"):
        load_enrolment(tmp_path)
    path.write_text("{", "utf-8")
    with pytest.raises(SyncError, match=r"cannot read enrolment\.json"):
        load_enrolment(tmp_path)


def test_one_agent_at_a_time_even_across_processes(tmp_path: Path) -> None:
    """A second lock in this process, or in another process, is refused while one is held;
    released, it can be taken again."""
    with AgentLock(tmp_path):
        with pytest.raises(AgentBusyError, match="another sync agent is running"):
            AgentLock(tmp_path).__enter__()
        code = (
            "import sys; from pathlib import Path; from sync.agent.state import AgentLock, "
            "AgentBusyError\n"
            "try:\n    AgentLock(Path(sys.argv[1])).__enter__()\n"
            "except AgentBusyError:\n    sys.exit(3)\n"
        )
        other = subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=False)
        assert other.returncode == 3
    with AgentLock(tmp_path):
        pass
    assert AgentBusyError.retryable and AgentBusyError.code == "busy"


def test_sequence_numbers_are_reserved_in_blocks_and_never_reused(tmp_path: Path) -> None:
    """Numbers come from a block saved before use: a crash (a new Sequencer from the saved
    state) skips the rest of the block instead of reusing any number."""
    st = AgentState()
    seq = Sequencer(tmp_path, st)
    used = [seq.next() for _ in range(5)]
    assert used == [1, 2, 3, 4, 5]
    assert load_state(tmp_path).seq_reserved == 1 + SEQ_BLOCK
    after_crash = Sequencer(tmp_path, load_state(tmp_path))
    n = after_crash.next()
    assert n == SEQ_BLOCK + 2 and n not in used
    assert load_state(tmp_path).seq_reserved == n + SEQ_BLOCK


def test_skip_past_moves_forward_only(tmp_path: Path) -> None:
    """The centre's last number moves the next one past it; an older one changes nothing."""
    seq = Sequencer(tmp_path, AgentState())
    seq.next()
    seq.skip_past(40)
    assert seq.next() == 41
    seq.skip_past(10)
    assert seq.next() == 42
    seq.skip_past(5000)  # beyond the reserved block: a new block is saved before it is used
    assert seq.next() == 5001 and load_state(tmp_path).seq_reserved == 5001 + SEQ_BLOCK


def test_device_dir_is_per_key_on_the_stick(tmp_path: Path) -> None:
    """A USB stick holds one folder per appliance, named by its key id."""
    assert device_dir(tmp_path, b"\xab\xcd") == tmp_path / "luutru-sync" / "abcd"
