"""The data folder's configuration (appliance/config.py): appliance.json round-trips into
frozen dataclasses, and a malformed one is a ConfigError naming what is wrong."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from appliance.config import (
    ApplianceConfig,
    NumberingConfig,
    SyncConfig,
    load_config,
    resolve_data_dir,
    save_config,
)
from appliance.errors import ConfigError
from appliance.keys.base import Backing
from appliance.keys.loader import KeyConfig

CONFIG = ApplianceConfig(
    org_id="000.21.08.H49", org_name="Ủy ban nhân dân xã Đông Hải", agency_abbr="UBND",
    origin="luutru/000.21.08.H49/ab", key=KeyConfig(Backing.SOFTWARE, "keys/k", {}),
    numbering=NumberingConfig(("01", "02")),
    sync=SyncConfig(bandwidth_kbit=256, windows=("22:00-05:30",), chunk_bytes=65536),
)


def _json(**over: Any) -> dict[str, Any]:
    return {**CONFIG.to_json(), **over}


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    """load_config(save_config(c)) == c; the file is UTF-8 JSON, 0640."""
    save_config(tmp_path, CONFIG)
    assert load_config(tmp_path) == CONFIG
    path = tmp_path / "appliance.json"
    assert path.stat().st_mode & 0o777 == 0o640
    assert json.loads(path.read_text("utf-8"))["org_name"] == CONFIG.org_name


def test_defaults_fill_what_an_older_file_lacks() -> None:
    """No agency_abbr, numbering or sync: UBND, no own series, the default sync settings."""
    raw = _json()
    for k in ("agency_abbr", "numbering", "sync"):
        del raw[k]
    cfg = ApplianceConfig.from_json(raw)
    assert cfg.agency_abbr == "UBND" and cfg.numbering == NumberingConfig()
    assert cfg.sync == SyncConfig()


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (_json(format=2), "data folder format 2 is not 1"),
        ({k: v for k, v in _json().items() if k != "origin"}, "lacks 'origin'"),
        (_json(key={"path": "k"}), "key configuration is malformed"),
        (_json(key={"backing": "hsm", "path": "k"}), "key configuration is malformed"),
        (_json(sync={"interval_s": "often"}), "sync settings in appliance.json are malformed"),
        (_json(sync={"windows": "22:00-05:30"}), "windows .* must be a list"),
        (_json(numbering={"own_series_types": "02"}), "own_series_types .* must be a list"),
        (_json(numbering=["02"]), "numbering .* must be an object"),
    ],
    ids=["format", "no-origin", "no-backing", "unknown-backing", "sync-type", "windows-text",
         "series-text", "numbering-list"],
)
def test_malformed_configuration_is_a_config_error(raw: dict[str, Any], match: str) -> None:
    """Each malformed part is refused with what is wrong, never half-read."""
    with pytest.raises(ConfigError, match=match):
        ApplianceConfig.from_json(raw)


def test_a_folder_without_configuration_or_with_a_damaged_one(tmp_path: Path) -> None:
    """No appliance.json says to run `luutru init`; unreadable JSON names the file."""
    with pytest.raises(ConfigError, match="run `luutru init` first"):
        load_config(tmp_path)
    (tmp_path / "appliance.json").write_text("{", "utf-8")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path)


def test_data_dir_comes_from_the_flag_then_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--data wins, then $LUUTRU_DATA, then ./var/appliance."""
    monkeypatch.setenv("LUUTRU_DATA", "/srv/luutru")
    assert resolve_data_dir("/data") == Path("/data")
    assert resolve_data_dir(None) == Path("/srv/luutru")
    monkeypatch.delenv("LUUTRU_DATA")
    assert resolve_data_dir("") == Path("var/appliance")
