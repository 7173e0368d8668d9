"""`luutru serve` runs the scan sources of capture.json: a barcode read on a serial reader
routes the next file dropped in the watch folder into that hồ sơ, as a real process."""

from __future__ import annotations

import json
import os
import sqlite3
import time
import tty
from collections.abc import Callable
from pathlib import Path

from appliance.store import Store
from tests.capture.images import encode, text_page

from .server import serve


def test_serve_files_a_routed_scan_from_the_watch_folder(
    data_dir: Path, open_store: Callable[..., Store], tmp_path: Path
) -> None:
    s = open_store()
    code = s.open_file(
        {"FileCatalog": 2026, "FileNotation": "03.VP", "Title": "Hồ sơ tiếp dân",
         "Maintenance": "05"}
    ).data["FileCode"]
    s.close()
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    master, slave = os.openpty()
    tty.setraw(master)
    (data_dir / "capture.json").write_text(
        json.dumps({"watch_folder": str(inbox), "serial_port": os.ttyname(slave)}), "utf-8"
    )
    try:
        with serve(data_dir) as srv:
            time.sleep(1.0)  # the reader opens its port in the background
            os.write(master, code.encode() + b"\r\n")
            time.sleep(0.5)
            (inbox / "scan-0001.png").write_bytes(encode(text_page(["Đơn đề nghị"]), "PNG"))
            db = sqlite3.connect(data_dir / "luutru.db")
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                row = db.execute(
                    'SELECT "FileCode", "PageAmount" FROM documents WHERE "FileCode" = ?',
                    (code,),
                ).fetchone()
                if row:
                    break
                time.sleep(0.3)
            assert srv.proc.poll() is None
        assert row == (code, 1), f"the scan was not filed into {code}"
        assert (inbox / "processed" / "scan-0001.png").exists()
    finally:
        os.close(master)
        os.close(slave)


def test_archive_pass_runs_in_a_child_and_is_logged(
    data_dir: Path, open_store: Callable[..., Store]
) -> None:
    """The archive pass serve starts (a niced child) audits and logs it; the log stays sound."""
    import subprocess
    import sys

    from appliance.verify import verify_data_dir

    open_store().close()
    proc = subprocess.run(
        [sys.executable, "-m", "web_ui.background", "archive-once", str(data_dir)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["errors"] == [] and result["audit"]["ok"] is True
    db = sqlite3.connect(data_dir / "luutru.db")
    kinds = [k for (k,) in db.execute("SELECT entry FROM log")]
    assert any(b"archive.fixity_audit" in k for k in kinds)
    assert verify_data_dir(data_dir).ok
