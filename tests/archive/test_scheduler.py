"""The archive's periodic work (appliance/archive/scheduler.py): archive.json read strictly;
each pass makes the backups and the audit that are due and reports failures instead of
raising."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from appliance.archive.scheduler import ArchiveConfig, load_archive_config, run_once
from appliance.errors import ConfigError
from appliance.store import Store
from tests.conftest import incoming


def _write(store: Store, value: object) -> None:
    (store.data_dir / "archive.json").write_text(json.dumps(value), "utf-8")


def test_no_archive_json_means_no_media_and_a_yearly_audit(store: Store) -> None:
    """The file is optional."""
    assert load_archive_config(store.data_dir) == ArchiveConfig((), 365)


def test_archive_json_is_read(store: Store, tmp_path: Path) -> None:
    """Media paths and the audit interval come from the file."""
    _write(store, {"backup_media": [str(tmp_path / "a"), str(tmp_path / "b")],
                   "fixity_interval_days": 30})
    assert load_archive_config(store.data_dir) == ArchiveConfig(
        (tmp_path / "a", tmp_path / "b"), 30)


@pytest.mark.parametrize(
    "value",
    [{"fixity_interval_days": "yearly"}, {"backup_media": 5}],
    ids=["interval-text", "media-number"],
)
def test_a_malformed_archive_json_is_a_config_error(store: Store, value: object) -> None:
    """What cannot be read as media and days is refused, naming the file."""
    _write(store, value)
    with pytest.raises(ConfigError, match=r"archive\.json is malformed"):
        load_archive_config(store.data_dir)


def test_a_pass_backs_up_once_a_day_and_audits_once_an_interval(
    store: Store, tmp_path: Path
) -> None:
    """First pass: a set on the medium and an audit; second pass the same day: nothing."""
    store.register_incoming(incoming())
    cfg = ArchiveConfig((tmp_path / "usb",), 365)
    first = run_once(store, cfg)
    assert [b["kind"] for b in first["backups"]] == ["full"]
    assert first["audit"] is not None and first["audit"]["ok"] is True
    assert first["errors"] == []
    again = run_once(store, cfg)
    assert again == {"backups": [], "audit": None, "errors": []}


@pytest.mark.parametrize(
    "value",
    [{"backup_media": "/mnt/usb-luutru"}, ["/mnt/usb-luutru"]],
    ids=["media-text", "not-an-object"],
)
def test_a_hand_edited_archive_json_of_the_wrong_shape_is_refused(
    store: Store, value: object
) -> None:
    """One path given as text is not read letter by letter as fifteen media (each '/', 'm',
    … a folder to back up into), and a list instead of an object is a ConfigError too."""
    _write(store, value)
    with pytest.raises(ConfigError, match=r"archive\.json is malformed"):
        load_archive_config(store.data_dir)


def test_a_broken_medium_does_not_stop_the_others(store: Store, tmp_path: Path) -> None:
    """TT 05 wants two copies: a medium that fails (here a file where its folder should be)
    is reported, and the next medium still gets its set, in the same pass."""
    store.register_incoming(incoming())
    broken = tmp_path / "unplugged"
    broken.write_text("not a folder")
    good = tmp_path / "hdd"
    out = run_once(store, ArchiveConfig((broken, good), 365))
    assert [b["kind"] for b in out["backups"]] == ["full"]
    assert len(out["errors"]) == 1 and str(broken) in out["errors"][0]
    assert out["audit"] is not None
