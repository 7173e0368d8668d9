"""SANE scanners (USB flatbeds and feeders) through `scanimage`.

`scanimage --batch` writes one PNG per page and opens the next file only after closing the
previous, so page N is complete once page N+1 appears or scanimage has exited. When it dies
mid-batch (scanner unplugged, jam, power), every complete page is still delivered and the
source raises ScannerInterrupted afterwards. SANE reads its backends from SANE_CONFIG_DIR:
tests point it at a folder holding only the `test` backend (the default config loads network
backends that probe the LAN).
"""

from __future__ import annotations

import io
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from ..errors import ScannerInterrupted, SourceError
from ..pipeline import InputFile

ADF_NAMES = ("Automatic Document Feeder", "ADF", "ADF Front", "Feeder")


@dataclass
class SaneSource:
    """One batch from a SANE device; ``device`` as `scanimage -d` takes it (`test`, `test:0`)."""

    device: str
    dpi: int = 300
    mode: str = "Color"
    adf: bool = False
    count: int | None = None  # flatbed: pages to scan (default 1); feeder: until empty
    area_mm: tuple[float, float] | None = (210.0, 297.0)
    options: tuple[str, ...] = ()  # backend options, e.g. ("--test-picture", "Grid")
    adf_source: str = "Automatic Document Feeder"
    env: Mapping[str, str] | None = None
    scanimage: str = "scanimage"
    poll_s: float = 0.05
    # scanimage, or the backend under it, sometimes hangs on exit after the batch has ended
    # (seen with the test backend after a jam): it is stopped after `exit_grace_s`. A scanner
    # that sends nothing for `stall_s` is treated as gone.
    exit_grace_s: float = 3.0
    stall_s: float = 120.0
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def name(self) -> str:
        return f"sane:{self.device}"

    def command(self, pattern: str) -> list[str]:
        cmd = [self.scanimage]
        if self.device:
            cmd += ["-d", self.device]
        cmd += ["--format=png", "--mode", self.mode, "--resolution", str(self.dpi)]
        if self.area_mm is not None:
            cmd += ["-x", f"{self.area_mm[0]:g}", "-y", f"{self.area_mm[1]:g}"]
        if self.adf:
            cmd += ["--source", self.adf_source]
        cmd += list(self.options)
        cmd.append(f"--batch={pattern}")
        if self.count is not None or not self.adf:
            cmd.append(f"--batch-count={self.count or 1}")
        return cmd

    def pages(self) -> Iterator[InputFile]:
        with tempfile.TemporaryDirectory(prefix="sane-") as tmp:
            folder = Path(tmp)
            env = dict(os.environ)
            env.update(self.env or {})
            err_path = folder / "stderr.txt"
            with err_path.open("wb") as err:
                try:
                    self.proc = subprocess.Popen(
                        self.command(str(folder / "page-%04d.png")),
                        stdout=subprocess.DEVNULL,
                        stderr=err,
                        env=env,
                    )
                except FileNotFoundError:
                    raise SourceError(
                        "scanimage is not installed (Debian package sane-utils)"
                    ) from None
                delivered = 0
                progress = time.monotonic()
                seen = (0, 0)
                ended_at: float | None = None
                stopped = False
                while True:
                    done = self.proc.poll() is not None
                    files = sorted(folder.glob("page-*.png"))
                    ready = files if done else files[:-1]
                    for path in ready[delivered:]:
                        data = path.read_bytes()
                        if done and not _complete_png(data):
                            break  # the page being written when scanimage died
                        delivered += 1
                        yield InputFile(f"sane-{delivered:04d}.png", data)
                    if done:
                        break
                    now = time.monotonic()
                    size = err_path.stat().st_size
                    if (len(files), size) != seen:
                        seen, progress = (len(files), size), now
                    if ended_at is None and b"Batch terminated" in err_path.read_bytes():
                        ended_at = now
                    hung = ended_at is not None and now - ended_at > self.exit_grace_s
                    if hung or now - progress > self.stall_s:
                        self.proc.kill()
                        self.proc.wait()
                        stopped = True
                        if not hung:
                            raise ScannerInterrupted(
                                f"the scanner stopped responding after {delivered} page(s)"
                            )
                        continue  # collect the pages, then judge by what scanimage said
                    time.sleep(self.poll_s)
            code = self.proc.returncode
            stderr = err_path.read_text("utf-8", "replace")
            if stopped:
                code = 1 if _says_failed(stderr) else 0
            if code != 0:
                raise _failure(code, stderr, delivered)
            if delivered == 0:
                raise SourceError(f"the scanner sent no page ({_last_line(stderr)})")


def _complete_png(data: bytes) -> bool:
    if not data.endswith(b"IEND\xaeB`\x82"):
        return False
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.verify()
    except Exception:
        return False
    return True


def _says_failed(stderr: str) -> bool:
    low = stderr.lower()
    return any(
        w in low
        for w in ("jammed", "cover", "out of documents", "no docs", "error", "failed", "invalid")
    )


def _last_line(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    return lines[-1] if lines else "no message"


def _failure(code: int, stderr: str, delivered: int) -> SourceError:
    last = _last_line(stderr)
    if code < 0:
        return ScannerInterrupted(
            f"the scanner stopped after {delivered} page(s) (scanimage ended by signal {-code}: "
            "unplugged or switched off?)"
        )
    low = stderr.lower()
    if "out of documents" in low or "no docs" in low:
        if delivered:
            return ScannerInterrupted(f"the feeder ran empty after {delivered} page(s)")
        return SourceError("the document feeder is empty: put the pages in and scan again")
    if "jammed" in low:
        return ScannerInterrupted(f"paper jam after {delivered} page(s): clear the feeder")
    if "cover open" in low or "cover is open" in low:
        return ScannerInterrupted(f"the scanner cover is open after {delivered} page(s)")
    if "no scanners" in low or "open of device" in low or "invalid argument" in low:
        return SourceError(f"the scanner is not available: {last}")
    return ScannerInterrupted(f"the scanner failed after {delivered} page(s): {last}")


def list_devices(env: Mapping[str, str] | None = None, timeout: float = 20.0) -> list[str]:
    """SANE device names, as `scanimage -L` lists them."""
    full = dict(os.environ)
    full.update(env or {})
    try:
        out = subprocess.run(
            ["scanimage", "-L"], capture_output=True, text=True, env=full, timeout=timeout
        ).stdout
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return []
    devices = []
    for line in out.splitlines():
        if line.startswith("device `") and "'" in line:
            devices.append(line[len("device `") : line.index("'")])
    return devices
