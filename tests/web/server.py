"""Start `luutru serve` as a real process on loopback for tests and benchmarks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def luutru(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "luutru", *args], input=stdin, capture_output=True, text=True,
        cwd=ROOT, check=False, timeout=120,
    )


@dataclass
class Served:
    proc: subprocess.Popen[str]
    port: int
    started: float
    first_answer: float

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def serve(data_dir: Path, *extra: str, mdns: bool = False, ready: tuple[int, ...] = (200,),
          env: dict[str, str] | None = None) -> Iterator[Served]:
    """``luutru serve`` on loopback, yielded once /healthz answers with a status in ``ready``
    (503: a halted store still serves its pages)."""
    port = free_port()
    args = [sys.executable, "-m", "luutru", "serve", "--data", str(data_dir),
            "--host", "127.0.0.1", "--port", str(port)]
    if not mdns:
        args.append("--no-mdns")
    t0 = time.perf_counter()
    proc = subprocess.Popen([*args, *extra], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                    if r.status in ready:
                        break
            except urllib.error.HTTPError as e:
                if e.code in ready:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                out = proc.stdout.read() if proc.stdout else ""
                raise RuntimeError(f"serve did not start: {out}") from None
            time.sleep(0.01)
        yield Served(proc, port, t0, time.perf_counter())
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
