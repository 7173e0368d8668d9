"""Capture fixtures: a private SANE config with only the `test` backend, a hồ sơ to file into."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from appliance.store import Store

FILE_NOTATION = "01.VP"
FILE_CODE = "000.21.08.H49.2025.01.VP"


@pytest.fixture
def sane_env(tmp_path: Path) -> dict[str, str]:
    """SANE_CONFIG_DIR with dll.conf = `test` only: never the default (it probes the LAN)."""
    if shutil.which("scanimage") is None:
        pytest.skip("scanimage is not installed (apt-get install sane-utils)")
    cfg = tmp_path / "sanecfg"
    cfg.mkdir()
    (cfg / "dll.conf").write_text("test\n")
    conf = Path("/etc/sane.d/test.conf").read_text()
    # the default bed is 200 mm wide: too small for A4
    (cfg / "test.conf").write_text(conf.replace("geometry_max 200.0", "geometry_max 300.0"))
    return {"SANE_CONFIG_DIR": str(cfg)}


@pytest.fixture
def hoso(store: Store) -> str:
    """An open hồ sơ of the commune; returns its mã hồ sơ."""
    rec = store.open_file(
        {
            "FileCatalog": 2025,
            "FileNotation": FILE_NOTATION,
            "Title": "Hồ sơ văn bản đến năm 2025",
            "Maintenance": "vinh vien",
        }
    )
    assert rec.data["FileCode"] == FILE_CODE
    return FILE_CODE


@pytest.fixture
def reopen(data_dir: Path, open_store: Callable[..., Store]) -> Callable[[], Store]:
    return lambda: open_store()


ORG_NAME_FOR_SIG = "Ủy ban nhân dân xã Đông Hải"
