"""Fixtures for provisioning tests: a private SANE config, a real centre process, swtpm."""

from __future__ import annotations

import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.swtpm import swtpm, swtpm_factory

__all__ = ["swtpm", "swtpm_factory"]


@pytest.fixture
def sane_dir(tmp_path: Path) -> Path:
    """SANE with only the `test` backend: never the default config, which probes the LAN."""
    if shutil.which("scanimage") is None:
        pytest.skip("scanimage is not installed (sane-utils)")
    d = tmp_path / "sane"
    d.mkdir()
    (d / "dll.conf").write_text("test\n")
    shutil.copy("/etc/sane.d/test.conf", d / "test.conf")
    return d


@pytest.fixture
def centre(tmp_path: Path) -> Iterator[object]:
    """`luutru central serve` as a real process with a fresh centre folder."""
    from tests.sync.procs import CentreServer, run

    folder = tmp_path / "centre"
    run("central", "init", "--data", str(folder), "--name", "Trung tâm dữ liệu tỉnh Quảng Ninh")
    server = CentreServer(folder).start()
    try:
        yield server
    finally:
        server.kill(signal.SIGTERM)
