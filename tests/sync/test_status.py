"""What the UI and the health hook show about sync (sync/agent/status.py), read from state.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sync.agent.state import AgentState, save_state
from sync.agent.status import SyncStatus, sync_status


def test_never_enrolled_shows_every_entry_pending(tmp_path: Path) -> None:
    """Without state.json: not enrolled, the whole log pending, nothing confirmed."""
    st = sync_status(tmp_path, 12)
    assert st == SyncStatus(enrolled=False, pending_entries=12)
    assert not st.confirmed(0)


def test_status_mirrors_the_agents_state(tmp_path: Path) -> None:
    """Each field comes from state.json; confirmed(i) is i < confirmed_size."""
    save_state(tmp_path, AgentState(
        centre_url="http://centre", acknowledged_size=10, confirmed_size=8,
        last_contact="2025-09-15T09:30:00.000+07:00", last_error="the link stalled",
        last_error_code="transport", pending_content=2, quarantined=True, clock_skew_s=-90,
    ))
    st = sync_status(tmp_path, 15)
    assert st == SyncStatus(
        enrolled=True, centre_url="http://centre", acknowledged_size=10, confirmed_size=8,
        last_contact="2025-09-15T09:30:00.000+07:00", last_error="the link stalled",
        pending_entries=5, pending_content=2, quarantined=True, clock_skew_s=-90,
        last_error_code="transport",
    )
    assert st.confirmed(7) and not st.confirmed(8)


@pytest.mark.parametrize(
    ("acked", "settled", "size", "pending"),
    [(10, 0, 15, 5), (10, 11, 11, 0), (10, 11, 12, 1), (20, 0, 15, 0)],
    ids=["behind", "receipt-only", "receipt-then-one", "centre-ahead"],
)
def test_trailing_receipts_are_not_pending(
    tmp_path: Path, acked: int, settled: int, size: int, pending: int
) -> None:
    """Entries below max(acknowledged, settled) need no sending; never a negative count."""
    save_state(tmp_path, AgentState(centre_url="u", acknowledged_size=acked,
                                    settled_size=settled))
    assert sync_status(tmp_path, size).pending_entries == pending


def test_a_state_without_a_centre_url_is_not_enrolled(tmp_path: Path) -> None:
    """A state written before enrolment (a USB request pending) does not claim enrolment."""
    (tmp_path / "sync").mkdir()
    (tmp_path / "sync" / "state.json").write_text(json.dumps({"acknowledged_size": 0}))
    assert sync_status(tmp_path, 3) == SyncStatus(enrolled=False, pending_entries=3)
