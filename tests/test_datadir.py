"""Creating a data folder (appliance/datadir.py): identity, device key, public key, schema,
the bundled code lists and the agency's own fonds, sealed; an existing folder is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance import cbor
from appliance.checkpoint import verify_checkpoint
from appliance.codelists import load_bundled
from appliance.config import load_config
from appliance.datadir import PUBLIC_KEY_NAME, init_data_dir
from appliance.errors import ConfigError, ValidationError
from appliance.keys.verify import key_id, load_public_key
from appliance.store import Store

ORG = "000.21.08.H49"


def test_a_new_folder_holds_everything_a_store_needs(tmp_path: Path) -> None:
    """Config with the origin named after the key; the public key beside the seed; two log
    entries (code lists, fonds) covered by a checkpoint the key signed."""
    d = tmp_path / "appliance"
    res = init_data_dir(d, f" {ORG} ", "  Ủy ban nhân dân   xã Đông Hải ", agency_abbr="UBND")
    cfg = load_config(d)
    assert (cfg.org_id, cfg.org_name) == (ORG, "Ủy ban nhân dân xã Đông Hải")
    assert cfg.origin == f"luutru/{ORG}/{res.kid}" and res.backing == "software"
    assert res.codelists_version == load_bundled()[1].version
    pub = load_public_key((d / PUBLIC_KEY_NAME).read_text())
    assert key_id(pub).hex() == res.kid
    assert d.stat().st_mode & 0o777 == 0o700
    with Store.open(d, readonly=True) as store:
        kinds = [cbor.loads(raw)["kind"] for _, raw in store.entries()]
        assert kinds == ["codelists.load", "fonds.create"]
        fonds = store.get("fonds", store.find("fonds")[0].id).data
        assert fonds["FondCode"] == ORG and fonds["Status"] == "open"
        latest = store.latest_checkpoint()
        assert latest is not None and latest[0] == 2
        assert verify_checkpoint(latest[3], pub).root_hash == store.tree_head()[1]


def test_an_existing_folder_is_never_initialised_again(data_dir: Path) -> None:
    """A folder with a configuration or a database is refused, and left as it was."""
    before = (data_dir / "appliance.json").read_bytes()
    with pytest.raises(ConfigError, match="already holds a luutru data folder"):
        init_data_dir(data_dir, ORG, "Xã khác")
    assert (data_dir / "appliance.json").read_bytes() == before
    (data_dir / "appliance.json").unlink()
    with pytest.raises(ConfigError, match="already holds a luutru data folder"):
        init_data_dir(data_dir, ORG, "Xã khác")


def test_a_bad_identity_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    """A malformed mã định danh or an empty or over-long name leaves no folder behind."""
    with pytest.raises(ValidationError, match="is not an agency identifier"):
        init_data_dir(tmp_path / "a", "21.08.H49", "Xã")
    for name in ("   ", "x" * 201):
        with pytest.raises(ConfigError, match="agency name must be 1–200 characters"):
            init_data_dir(tmp_path / "b", ORG, name)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
