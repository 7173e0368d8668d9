"""The archive commands as a clerk runs them: thin adapters with clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from appliance.store import Store
from tests.archive.conftest import Hoso


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "luutru", *args], capture_output=True,
                          text=True, timeout=300)


def test_due_package_and_errors(
    store: Store, make_hoso: Callable[..., Hoso], tmp_path: Path
) -> None:
    """due --json lists the file; transfer package writes a checked ZIP; bad input is a
    one-line error that changes nothing."""
    h = make_hoso(n=2, close=True)
    limited = make_hoso(n=1, maintenance="06", close=True)
    store.wait_sealed()
    data = str(store.data_dir)
    store.close()
    due = _run("due", "--data", data, "--json", "--today", "01/12/2025")
    assert due.returncode == 0, due.stderr
    items = [json.loads(x) for x in due.stdout.splitlines()]
    assert {i["file_code"] for i in items} >= {h.code, limited.code}
    assert all(i["stage"] == "current_archive" for i in items)
    out = tmp_path / "1.zip"
    pkg = _run("transfer", "package", "--data", data, "--file", h.code, "--out", str(out))
    assert pkg.returncode == 0, pkg.stderr
    assert json.loads(pkg.stdout)["check"]["ok"] is True
    chk = _run("transfer", "check", str(out))
    assert chk.returncode == 0
    bad = _run("transfer", "package", "--data", data, "--file", limited.code, "--out",
               str(tmp_path / "2.zip"))
    assert bad.returncode == 1 and "only permanent" in bad.stderr
    assert "Traceback" not in bad.stderr and not (tmp_path / "2.zip").exists()
    exp = _run("transfer", "export", "--data", data, "--file", h.code, "--out",
               str(tmp_path / "exp"))
    assert exp.returncode == 0 and json.loads(exp.stdout)["documents"] == 2
    bk = _run("backup", "--data", data, "--to", str(tmp_path / "usb"), "--label", "USB-01")
    assert bk.returncode == 0 and json.loads(bk.stdout)["kind"] == "full"
    none = _run("restore", "--data", str(tmp_path / "r"))
    assert none.returncode == 2 and "--from-backup" in none.stderr
    verify = _run("verify", "--data", data)
    assert verify.returncode == 0, verify.stdout
