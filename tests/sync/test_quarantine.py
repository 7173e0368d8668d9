"""Clearing a quarantine (sync/central/quarantine.py): a technician's decision that rolls the
centre's copy back to before the fork, keeps the evidence, and lets the appliance sync on."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from appliance.store import Store
from sync import wire
from sync.central.centre import Centre
from sync.central.quarantine import clear_quarantine
from sync.central.storage import ApplianceStatus
from sync.errors import SyncError
from tests.sync.conftest import Appliance, response


def _status(centre: Centre, app_id: str) -> tuple[ApplianceStatus, int]:
    with centre.storage.view() as v:
        rec = v.appliance(app_id)
        assert rec is not None
        return rec.status, rec.accepted_size


def test_only_a_quarantined_enrolled_appliance_can_be_cleared(
    make_appliance: Callable[..., Appliance], centre: Centre
) -> None:
    """An unknown id, or an appliance in good standing, is refused and nothing changes."""
    app = make_appliance()
    app.add(1)
    response(centre, app.send(0))
    with pytest.raises(SyncError, match="no appliance nope is enrolled here"):
        clear_quarantine(centre, "nope", "kỹ thuật viên")
    with pytest.raises(SyncError, match=f"appliance {app.id} is not quarantined"):
        clear_quarantine(centre, app.id, "kỹ thuật viên")
    assert _status(centre, app.id) == (ApplianceStatus.ACTIVE, app.store.tree_head()[0])


def test_a_quarantine_without_a_fork_keeps_everything_accepted(
    make_appliance: Callable[..., Appliance], centre: Centre
) -> None:
    """Cleared, the appliance is active with its accepted log (to its last checkpoint), its
    alerts closed, and its next batch is accepted."""
    app = make_appliance()
    app.add(3)
    size = response(centre, app.send(0)).accepted_size
    with centre.storage.transaction() as tx:
        tx.set_status(app.id, ApplianceStatus.QUARANTINED)
    app.add(1)
    assert response(centre, app.send(size)).code == "quarantined"
    res = clear_quarantine(centre, app.id, "kỹ thuật viên A")
    assert (res.appliance_id, res.kept_size, res.superseded) == (app.id, size, 0)
    assert res.to_json()["kept_size"] == size
    assert _status(centre, app.id) == (ApplianceStatus.ACTIVE, size)
    with centre.storage.view() as v:
        assert v.alerts() == []
    assert response(centre, app.send(size)).outcome is wire.Outcome.ACCEPTED


def test_after_a_fork_the_centre_goes_back_to_the_common_prefix(
    make_appliance: Callable[..., Appliance], centre: Centre, tmp_path: Path
) -> None:
    """A box restored from an old backup writes other entries: the fork quarantines it;
    clearing keeps the entries before the fork, sets the others aside as evidence, and the
    new history is accepted from there."""
    app = make_appliance()
    app.add(3)
    common = response(centre, app.send(0)).accepted_size
    app.store.close()
    shutil.copytree(app.data_dir, tmp_path / "backup")
    app.store = Store.open(app.data_dir, clock=app.clock)
    app.add(3)
    ahead = response(centre, app.send(common)).accepted_size
    app.store.close()
    shutil.rmtree(app.data_dir)
    shutil.copytree(tmp_path / "backup", app.data_dir)
    app.store = Store.open(app.data_dir, clock=app.clock)
    try:
        app.add(2, Subject="Lịch sử khác sau khi khôi phục")
        assert response(centre, app.send(common)).outcome is wire.Outcome.QUARANTINED
        assert _status(centre, app.id) == (ApplianceStatus.QUARANTINED, ahead)
        res = clear_quarantine(centre, app.id, "kỹ thuật viên B")
        assert res.kept_size == common and res.superseded == ahead - common
        assert _status(centre, app.id) == (ApplianceStatus.ACTIVE, common)
        with centre.storage.view() as v:
            assert len(v.forks(app.id)) == 1  # the evidence stays
            held = [r.entry for r in v.entries(app.id, 0, 1 << 30)]
        assert held == [raw for _, raw in app.store.entries(0, common)]
        assert response(centre, app.send(common)).outcome is wire.Outcome.ACCEPTED
        assert _status(centre, app.id) == (ApplianceStatus.ACTIVE, app.store.tree_head()[0])
    finally:
        app.store.close()
