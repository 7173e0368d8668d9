"""The image recipe: debootstrap a Debian 12 root file system with images/build-rootfs.sh,
then run `luutru --version`, provisioning and the health hook inside it (chroot).

Slow the first time (the Debian packages and Python wheels are downloaded once into
var/image-cache/); later runs unpack the cached tarball and install from the cached wheels.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "images" / "build-rootfs.sh"
UNITS = ("luutru-first-boot", "luutru-shutdown", "luutru-health", "luutru-web", "luutru-sync")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("debootstrap and chroot need root")
    if shutil.which("debootstrap") is None:
        pytest.skip("debootstrap is not installed (scripts/apt-packages.d/image.txt)")
    out = tmp_path_factory.mktemp("image") / "rootfs"
    done = subprocess.run([str(RECIPE), "--out", str(out)], capture_output=True, text=True,
                          cwd=REPO, timeout=3600)
    assert done.returncode == 0, done.stderr[-4000:]
    yield out
    shutil.rmtree(out, ignore_errors=True)


def chroot(root: Path, *cmd: str, user: str | None = None) -> subprocess.CompletedProcess[str]:
    prefix = ["chroot", *(["--userspec", f"{user}:{user}"] if user else []), str(root)]
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C.UTF-8",
           "HOME": "/var/lib/luutru", "TSS2_LOG": "all+none"}
    return subprocess.run([*prefix, *cmd], capture_output=True, text=True, env=env, timeout=600)


def test_luutru_runs_inside_the_image(rootfs: Path) -> None:
    from importlib.metadata import version

    done = chroot(rootfs, "luutru", "--version")
    assert done.returncode == 0, done.stderr
    assert version("luutru") in done.stdout
    stamp = json.loads((rootfs / "etc" / "luutru-image.json").read_text())
    assert stamp["suite"] == "bookworm" and stamp["luutru"] == version("luutru")
    # The TPM library loads against the image's own libtss2.
    tss = chroot(rootfs, "/opt/luutru/bin/python", "-c", "import tpm2_pytss.ESAPI")
    assert tss.returncode == 0, tss.stderr


def test_units_are_installed_enabled_and_hardened(rootfs: Path) -> None:
    wants = rootfs / "etc" / "systemd" / "system" / "multi-user.target.wants"
    for unit in UNITS:
        assert (wants / f"{unit}.service").is_symlink(), unit
    drop_in = (rootfs / "usr/lib/systemd/system/luutru-.service.d/hardening.conf").read_text()
    for line in ("ProtectSystem=strict", "NoNewPrivileges=yes", "DeviceAllow=/dev/tpmrm0 rw",
                 "ReadWritePaths=/var/lib/luutru"):
        assert line in drop_in
    health = (rootfs / "usr/lib/systemd/system/luutru-health.service").read_text()
    assert "WatchdogSec=" in health and "hook health" in health and "Type=notify" in health
    # BBR for the lossy uplink, loaded at boot and made the default (images/rootfs/).
    sysctl = (rootfs / "usr/lib/sysctl.d/60-luutru.conf").read_text()
    assert "net.ipv4.tcp_congestion_control = bbr" in sysctl
    assert "tcp_bbr" in (rootfs / "usr/lib/modules-load.d/luutru.conf").read_text().split()
    passwd = (rootfs / "etc" / "passwd").read_text()
    assert any(line.startswith("luutru:") for line in passwd.splitlines())
    verify = subprocess.run(["systemd-analyze", "verify", "--man=no", f"--root={rootfs}",
                             *(f"{u}.service" for u in UNITS)], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stderr


def test_provision_and_health_hook_inside_the_image(rootfs: Path) -> None:
    """As the service user: provision (software key, no centre), then the health hook."""
    data = "/var/lib/luutru/data"
    prov = chroot(rootfs, "luutru", "provision", "--data", data, "--non-interactive",
                  "--org-id", "000.21.08.H49", "--org-name", "Ủy ban nhân dân xã Đông Hải",
                  "--unit-code", "07123", "--key", "software", "--no-admin", "--no-centre",
                  "--ip", "127.0.0.1", "--skip-check", "scanners", "--skip-check", "mdns",
                  "--json", user="luutru")
    assert prov.returncode == 0, prov.stdout + prov.stderr
    health = chroot(rootfs, "luutru", "hook", "health", "--data", data, user="luutru")
    assert health.returncode == 0, health.stdout + health.stderr
    result = json.loads(health.stdout)
    assert result["status"] == "ok"
    assert {c["name"]: c["status"] for c in result["checks"]}["ledger"] == "pass"
    as_module = chroot(rootfs, "/opt/luutru/bin/python", "-m", "firmware_hooks", "first-boot",
                       "--data", data, user="luutru")
    assert as_module.returncode == 0, as_module.stdout + as_module.stderr
