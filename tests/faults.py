"""Helpers for the fault tests: a served appliance driven through its API, and the damage a
fault injector does to a data folder (a WAL lost or cut, a database cut short, key files
swapped)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from appliance.anchors import CHECKPOINT, read_anchor
from appliance.config import DB_NAME
from tests.web.server import Served, luutru

PASSWORD = "mật khẩu của văn thư số 1"


def add_clerk(data_dir: Path, username: str = "vanthu") -> str:
    """A clerk and an API token for it (real `luutru user` processes)."""
    added = luutru("user", "add", "--data", str(data_dir), "--username", username,
                   "--role", "clerk", "--password-stdin", stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    token = luutru("user", "token", "--data", str(data_dir), "--username", username)
    assert token.returncode == 0, token.stderr
    return token.stdout.strip()


def call(url: str, token: str | None = None, body: Any = None, method: str | None = None,
         raw: bytes | None = None, ctype: str = "application/json",
         timeout: float = 10) -> tuple[int, Any]:
    """One API request; (status, decoded JSON or text)."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url, data=data, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, payload = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, payload = e.code, e.read()
    try:
        return status, json.loads(payload)
    except ValueError:
        return status, payload.decode("utf-8", "replace")


def register(srv: Served, token: str, n: int, start: int = 1) -> list[dict[str, Any]]:
    """Register ``n`` incoming documents through the API; each answer is an acknowledgement."""
    out = []
    for i in range(start, start + n):
        status, body = call(srv.url + "/api/v1/documents/incoming", token, {
            "TypeName": "Công văn", "CodeNumber": str(i), "CodeNotation": "UBND-VP",
            "IssuedDate": "2025-09-03", "OrganName": "Ủy ban nhân dân tỉnh Quảng Ninh",
            "Subject": f"V/v kiểm tra số {i}", "PageAmount": 1,
        })
        assert status == 201, body
        out.append(body.get("document", body))
    return out


def wait_sealed(srv: Served, size: int, data_dir: Path, timeout: float = 20) -> None:
    """Until the server's newest checkpoint covers ``size`` entries and is mirrored in the
    anchor beside the database. The sealer commits the checkpoint first and writes the anchor
    after it, so /healthz alone can answer in between: a kill there leaves the anchor behind,
    and a lost tail would then go unnoticed by design (the anchor never runs ahead)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _status, body = call(srv.url + "/healthz")
        if isinstance(body, dict) and body.get("signed_tree_size", 0) >= size:
            kept = read_anchor(data_dir, CHECKPOINT)
            if kept is not None and kept.tree_size >= size:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing sealed and mirrored {size} entries within {timeout} s")


def kill(srv: Served) -> None:
    """Pull the plug on the process (its WAL stays as it was)."""
    srv.proc.send_signal(signal.SIGKILL)
    srv.proc.wait(10)


def tree_size(data_dir: Path) -> int:
    import sqlite3

    conn = sqlite3.connect(f"file:{data_dir / DB_NAME}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT max(idx) FROM log").fetchone()
        return 0 if row[0] is None else int(row[0]) + 1
    finally:
        conn.close()


def lose_wal(data_dir: Path, keep: float = 0.0) -> None:
    """The write-ahead log lost (``keep`` 0) or cut to that fraction of its length."""
    wal = data_dir / f"{DB_NAME}-wal"
    assert wal.exists() and wal.stat().st_size > 0, "the WAL held nothing to lose"
    if keep:
        os.truncate(wal, int(wal.stat().st_size * keep))
    else:
        wal.unlink()
    (data_dir / f"{DB_NAME}-shm").unlink(missing_ok=True)


def swap_keys(data_dir: Path, other: Path) -> None:
    """Another box's software device key (and its public copy) put in place of this one's."""
    for name in ("device-ed25519.key", "device.pub.pem"):
        shutil.copy2(other / "keys" / name, data_dir / "keys" / name)


def no_traceback(*texts: str) -> None:
    for t in texts:
        assert "Traceback" not in t, t
