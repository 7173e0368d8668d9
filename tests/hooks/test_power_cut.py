"""Pulled power: SIGKILL a process in the middle of writes, then first-boot and health end
clean and `luutru verify` finds nothing wrong."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from firmware_hooks.result import ExitCode

from .conftest import log_size

REPO = Path(__file__).resolve().parents[2]
WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from appliance.store import Store
    from tests.conftest import incoming
    data = Path(sys.argv[1])
    with Store.open(data) as store:
        n = 0
        while True:
            n += 1
            c = store.content.put_bytes(b"%PDF-1.7 scan " + str(n).encode() * 2000)
            rec = store.register_incoming(incoming(CodeNumber=str(n), Subject=f"Văn bản {n}"))
            store.attach_content(rec.record.id, [{"sha256": c.sha256, "size": c.size,
                                                  "mime": "application/pdf"}])
            print(n, flush=True)
""")


def _hook(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "firmware_hooks", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=120)


def test_sigkill_during_writes_then_boot_hooks_end_clean(data_dir: Path, tmp_path: Path) -> None:
    plugins = ("--plugins-dir", str(tmp_path))
    for round_ in range(3):
        before = log_size(data_dir)
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(data_dir)], cwd=REPO,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        target = 15 + 10 * round_
        for line in proc.stdout:
            if int(line) >= target:
                break
        time.sleep(0.003 * round_)  # land the kill at a different point of a transaction
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert log_size(data_dir) > before, "the writer wrote nothing: the test proved nothing"
        boot = _hook("first-boot", "--data", str(data_dir), *plugins)
        assert boot.returncode == ExitCode.OK, boot.stdout + boot.stderr
        health = _hook("health", "--data", str(data_dir), *plugins)
        assert health.returncode == ExitCode.OK, health.stdout + health.stderr
        verify = subprocess.run([sys.executable, "-m", "luutru", "verify", "--data",
                                 str(data_dir)], capture_output=True, text=True, cwd=REPO)
        assert verify.returncode == 0, verify.stdout + verify.stderr
