"""A pytest fixture factory for swtpm: a software TPM 2.0 on a free loopback port, torn down after.

Import the fixtures into a test module: ``from tests.swtpm import swtpm, swtpm_factory``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

# Expected failures (probing, refused blobs) make libtss2 print ERROR lines; keep test output clean.
os.environ["TSS2_LOG"] = "all+none"

START_TIMEOUT_S = 10.0


def _port_pair_free(port: int) -> bool:
    for p in (port, port + 1):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                return False
    return True


def free_port_pair() -> int:
    """A loopback port P such that P and P+1 (swtpm's control channel) are both free."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port < 65534 and _port_pair_free(port):
            return port
    raise RuntimeError("no free loopback port pair for swtpm")


@dataclass
class Swtpm:
    """One swtpm process over a state folder; stop() and start() keep the state (a 'reboot')."""

    state_dir: Path
    port: int
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def tcti(self) -> str:
        return f"swtpm:host=127.0.0.1,port={self.port}"

    def start(self) -> None:
        if self.proc is not None:
            return
        self.state_dir.mkdir(parents=True, exist_ok=True)
        log = self.state_dir / "swtpm.log"
        self.proc = subprocess.Popen(
            [
                "swtpm",
                "socket",
                "--tpm2",
                "--tpmstate",
                f"dir={self.state_dir}",
                "--server",
                f"type=tcp,port={self.port},bindaddr=127.0.0.1",
                "--ctrl",
                f"type=tcp,port={self.port + 1},bindaddr=127.0.0.1",
                "--flags",
                "not-need-init,startup-clear",
                "--log",
                f"file={log},level=1",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.proc.poll() is not None:
                self.proc = None
                raise RuntimeError(f"swtpm exited at start; see {log}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"swtpm did not listen on port {self.port}") from None
                time.sleep(0.005)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()  # SIGTERM makes swtpm write its NV state
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


SwtpmFactory = Callable[..., Swtpm]


@pytest.fixture
def swtpm_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwtpmFactory]:
    """make(state_dir=None) starts a swtpm; a given state_dir reuses that TPM's identity."""
    if shutil.which("swtpm") is None:
        pytest.skip("swtpm is not installed (apt-get install swtpm swtpm-tools)")
    started: list[Swtpm] = []

    def make(state_dir: Path | None = None) -> Swtpm:
        state = state_dir or tmp_path_factory.mktemp("swtpm")
        tpm = Swtpm(state, free_port_pair())
        tpm.start()
        started.append(tpm)
        return tpm

    yield make
    for tpm in started:
        tpm.stop()


@pytest.fixture
def swtpm(swtpm_factory: SwtpmFactory) -> Swtpm:
    """A fresh swtpm with its own state."""
    return swtpm_factory()
