"""The centre's data folder (sync/central/centre.py): created once with its key and storage,
reopened from centre.json, and a malformed or missing configuration is a clear error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from appliance.errors import ConfigError
from appliance.keys.verify import key_id, load_public_key
from sync import wire
from sync.central.centre import CentreConfig, init_centre, open_centre
from sync.errors import StorageError


def test_a_new_centre_reopens_with_the_same_key_and_origin(tmp_path: Path) -> None:
    """init writes centre.json (0640), the key and its public half; open_centre finds the
    same key, origin and name; responses it signs verify with that key."""
    d = tmp_path / "centre"
    with init_centre(d, name="Trung tâm tỉnh Quảng Ninh") as made:
        origin, pem = made.origin, made.key.public_key_pem()
    assert (d / "centre.json").stat().st_mode & 0o777 == 0o640
    assert (d / "keys" / "centre.pub.pem").read_text() == pem
    with open_centre(d) as c:
        assert (c.origin, c.config.name) == (origin, "Trung tâm tỉnh Quảng Ninh")
        assert c.origin == f"luutru-centre/{key_id(load_public_key(pem)).hex()}"
        assert c.config.db == "sqlite:centre.db" and (d / "centre.db").is_file()
        raw = c.sign_response(wire.Response(b"\x01" * 32, wire.Outcome.STATUS, c.now()))
        assert wire.verify_response(raw, load_public_key(pem), b"\x01" * 32).outcome is (
            wire.Outcome.STATUS)


def test_a_centre_is_initialised_once(tmp_path: Path) -> None:
    """A second init of the same folder is refused."""
    init_centre(tmp_path / "c").close()
    with pytest.raises(ConfigError, match="already holds a centre"):
        init_centre(tmp_path / "c")


def test_a_failed_init_can_be_run_again(tmp_path: Path) -> None:
    """A database URL that fails leaves nothing that stops the corrected command: no
    centre.json, and no key that a second init would refuse to overwrite."""
    d = tmp_path / "c"
    with pytest.raises(StorageError, match="unknown database URL"):
        init_centre(d, db="mysql://province/centre")
    assert not (d / "centre.json").exists()
    with init_centre(d) as c:
        assert c.config.db == "sqlite:centre.db"


def test_missing_or_malformed_configuration(tmp_path: Path) -> None:
    """No centre.json says to run `luutru central init`; a damaged or incomplete one is a
    ConfigError naming it."""
    with pytest.raises(ConfigError, match="run `luutru central init`"):
        open_centre(tmp_path)
    (tmp_path / "centre.json").write_text("{", "utf-8")
    with pytest.raises(ConfigError, match="cannot read"):
        open_centre(tmp_path)
    good = init_centre(tmp_path / "ok")
    raw = good.config.to_json()
    good.close()
    assert CentreConfig.from_json(raw).to_json() == raw
    for bad, match in (({**raw, "format": 9}, "format 9 is not 1"),
                       ({k: v for k, v in raw.items() if k != "origin"}, "malformed"),
                       ({**raw, "token_ttl_hours": "soon"}, "malformed")):
        (tmp_path / "centre.json").write_text(json.dumps(bad), "utf-8")
        with pytest.raises(ConfigError, match=match):
            open_centre(tmp_path)
