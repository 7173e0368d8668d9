"""Choosing and opening the device key (appliance/keys/loader.py): the configuration says
which backing, opening never falls back to another, and options are checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.errors import ConfigError, KeyUnavailableError
from appliance.keys.base import Backing
from appliance.keys.errors import TpmBlobCorruptedError
from appliance.keys.loader import (
    SOFTWARE_KEY_PATH,
    TPM_KEY_PATH,
    KeyConfig,
    create_key,
    open_key,
)
from appliance.keys.software import SoftwareKey
from tests.swtpm import Swtpm, free_port_pair, swtpm, swtpm_factory

__all__ = ["swtpm", "swtpm_factory"]


def test_key_config_round_trips_and_refuses_malformed_json() -> None:
    """to_json/from_json are inverse; no backing or an unknown one is a ConfigError."""
    cfg = KeyConfig(Backing.TPM, TPM_KEY_PATH, {"tcti": "swtpm:port=1", "kid": "ab"})
    assert KeyConfig.from_json(cfg.to_json()) == cfg
    assert KeyConfig.from_json({"backing": "software", "path": "k"}).options == {}
    for bad in ({"path": "k"}, {"backing": "hsm", "path": "k"}, {"backing": "software"},
                {"backing": "software", "path": "k", "options": "x"}):
        with pytest.raises(ConfigError, match="key configuration is malformed"):
            KeyConfig.from_json(bad)


def test_a_software_key_is_created_and_opened(tmp_path: Path) -> None:
    """create_key("software") writes the seed where the config says; open_key loads it."""
    cfg = create_key(tmp_path, "software")
    assert cfg == KeyConfig(Backing.SOFTWARE, SOFTWARE_KEY_PATH, {})
    key = open_key(tmp_path, cfg)
    assert isinstance(key, SoftwareKey)
    assert key.kid == SoftwareKey.load(tmp_path / SOFTWARE_KEY_PATH).kid


def test_unknown_kinds_and_options_are_refused(tmp_path: Path) -> None:
    """A kind other than software/tpm/auto, or a TPM option nobody knows, is a ConfigError
    before anything is created."""
    with pytest.raises(ConfigError, match="unknown key kind 'hsm'; use one of software, tpm"):
        create_key(tmp_path, "hsm")
    with pytest.raises(ConfigError, match="unknown TPM key options: pin"):
        create_key(tmp_path, "tpm", {"pin": "1234"})
    assert not (tmp_path / "keys").exists()


def test_auto_without_a_tpm_falls_back_to_software_at_creation_only(tmp_path: Path) -> None:
    """auto picks software when no TPM answers; a TPM config never opens the software seed
    lying beside it instead (opening never falls back)."""
    dead = f"swtpm:host=127.0.0.1,port={free_port_pair()}"
    cfg = create_key(tmp_path / "a", "auto", {"tcti": dead})
    assert cfg.backing is Backing.SOFTWARE
    tpm_cfg = KeyConfig(Backing.TPM, TPM_KEY_PATH, {"tcti": dead})
    with pytest.raises(TpmBlobCorruptedError, match=r"device-tpm\.pem cannot be read"):
        open_key(tmp_path / "a", tpm_cfg)
    assert not issubclass(TpmBlobCorruptedError, KeyUnavailableError)  # no retry brings it


def test_a_tpm_config_with_a_malformed_key_id_is_a_config_error(
    tmp_path: Path, swtpm: Swtpm
) -> None:
    """kid and srk_name are hex: anything else is refused before the TPM is asked."""
    cfg = create_key(tmp_path, "tpm", {"tcti": swtpm.tcti})
    assert cfg.backing is Backing.TPM and set(cfg.options) == {"tcti", "kid", "srk_name"}
    bad = KeyConfig(Backing.TPM, cfg.path, {**cfg.options, "kid": "not hex"})
    with pytest.raises(ConfigError, match="TPM key configuration is malformed"):
        open_key(tmp_path, bad)
    key = open_key(tmp_path, cfg)
    try:
        assert key.kid.hex() == cfg.options["kid"]
    finally:
        key.close()
