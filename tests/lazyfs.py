"""LazyFS for power-cut tests: a FUSE file system with its own page cache that drops every
write not yet fsynced on command (``../shared/vendor/lazyfs``, built once from Debian packages
into ``var/lazyfs/``, as the image test caches its root file system in ``var/``).

``PowerCut`` mounts a folder through LazyFS; ``cut()`` is the power going off: the processes
writing there are killed, every write not yet fsynced is dropped, and the file system is
unmounted, leaving on the folder underneath exactly what had reached the disk. ``crash_on``
arms a ``lazyfs::crash`` fault point instead: LazyFS dies (and with it everything it had not
written) at the chosen operation, e.g. right after a file is renamed into place.

SIGKILL is not a power cut (the kernel's page cache survives it); this is.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
VENDOR = REPO.parent / "shared" / "vendor" / "lazyfs"
if not VENDOR.exists():
    VENDOR = Path(__file__).resolve().parents[2] / "shared" / "vendor" / "lazyfs"
CACHE = REPO / "var" / "lazyfs"
PACKAGES = "scripts/apt-packages.d/powercut.txt"


def lazyfs_binary() -> Path:
    """The LazyFS binary, built on first use (a few minutes) and cached under var/lazyfs/.

    Skips only where FUSE cannot exist (no /dev/fuse, or one this user may not open); a
    missing build dependency is a failure: CI installs them (apt-packages.d/powercut.txt)."""
    try:
        os.close(os.open("/dev/fuse", os.O_RDWR))
    except OSError as exc:
        pytest.skip(f"FUSE file systems cannot be mounted here (/dev/fuse: {exc.strerror})")
    binary = CACHE / "build" / "lazyfs"  # linked to build/pcache/libpcache.so beside it
    stamp = CACHE / "source.stamp"
    source = (VENDOR / "build.sh").read_bytes()
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time
        if binary.exists() and stamp.exists() and stamp.read_bytes() == source:
            return binary
        for tool in ("cmake", "g++", "fusermount3"):
            assert shutil.which(tool), f"{tool} is missing: install {PACKAGES}"
        done = subprocess.run(["bash", str(VENDOR / "build.sh"), str(CACHE / "build")],
                              capture_output=True, text=True, timeout=1800)
        assert done.returncode == 0, f"LazyFS did not build:\n{done.stderr[-3000:]}"
        stamp.write_bytes(source)
    return binary


class PowerCut:
    """``root`` (the disk) seen through LazyFS at ``mount`` (what the appliance writes to)."""

    def __init__(self, root: Path, mount: Path, work: Path) -> None:
        self.root, self.mount, self.work = root, mount, work
        self.binary = lazyfs_binary()
        self.proc: subprocess.Popen[bytes] | None = None
        self.fifo = work / "faults.fifo"
        self.done_fifo = work / "done.fifo"
        self.log = work / "lazyfs.log"
        for d in (root, mount, work):
            d.mkdir(parents=True, exist_ok=True)

    # -- mounting ---------------------------------------------------------------------------

    def start(self) -> PowerCut:
        if shutil.which("fusermount3") is None:
            pytest.fail(f"fusermount3 is missing: install {PACKAGES}")
        # LazyFS takes an argument holding "-o" (any case) after --config-path for a FUSE
        # option and falls back to config/default.toml: pytest's folders ("pytest-of-root")
        # do, so the file goes where the path cannot.
        config = Path(tempfile.mkdtemp(prefix="lzfs", dir="/tmp")) / "lazyfs.toml"
        assert "-o" not in str(config).lower()
        self._config = config
        config.write_text(
            "[faults]\n"
            f'fifo_path="{self.fifo}"\n'
            f'fifo_path_completed="{self.done_fifo}"\n'
            "[cache]\napply_eviction=false\n"
            '[cache.simple]\ncustom_size="512mb"\nblocks_per_page=1\n'
            "[filesystem]\nlog_all_operations=false\n"
            f'logfile="{self.log}"\n'
        )
        for f in (self.fifo, self.done_fifo):
            f.unlink(missing_ok=True)
            os.mkfifo(f)
        # allow_other (processes of other users may use the mount) needs root, or
        # user_allow_other in /etc/fuse.conf; the tests' processes are all this user's.
        other = ["-o", "allow_other"] if os.geteuid() == 0 else []
        self.proc = subprocess.Popen(
            [str(self.binary), str(self.mount), "--config-path", str(config), *other,
             "-o", "modules=subdir", "-o", f"subdir={self.root}", "-f"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while not os.path.ismount(self.mount):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log = self.log.read_text()[-2000:] if self.log.exists() else "(no log)"
                raise RuntimeError(f"LazyFS did not mount (exit {self.proc.poll()}): {log}")
            time.sleep(0.02)
        # The fault fifo is opened by LazyFS's worker thread once it runs.
        self._done = os.open(self.done_fifo, os.O_RDONLY | os.O_NONBLOCK)
        return self

    def _command(self, line: str) -> None:
        fd = os.open(self.fifo, os.O_WRONLY)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)

    def clear_cache(self, timeout: float = 30) -> None:
        """Drop every write not yet fsynced; returns once LazyFS says it is done."""
        self._command("lazyfs::clear-cache")
        deadline = time.monotonic() + timeout
        got = b""
        while b"finished::clear-cache" not in got:
            if time.monotonic() > deadline:
                raise RuntimeError("LazyFS did not confirm the cleared cache")
            try:
                got += os.read(self._done, 256)
            except BlockingIOError:
                time.sleep(0.005)

    def crash_on(self, op: str, timing: str = "after", *, from_rgx: str | None = None,
                 to_rgx: str | None = None) -> None:
        """Arm a ``lazyfs::crash`` fault point: LazyFS dies at the first ``op`` matching."""
        parts = [f"lazyfs::crash::timing={timing}::op={op}"]
        if to_rgx and not from_rgx:
            # LazyFS checks a rename's to_rgx only when a from_rgx is given (and then checks
            # the to_rgx alone, lazyfs.cpp trigger_crash_fault): any from_rgx will do.
            from_rgx = "/"
        if from_rgx:
            parts.append(f"from_rgx={from_rgx}")
        if to_rgx:
            parts.append(f"to_rgx={to_rgx}")
        self._command("::".join(parts))
        time.sleep(0.05)  # the worker thread registers it

    @property
    def crashed(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def unmount(self) -> None:
        subprocess.run(["fusermount3", "-u", "-z", str(self.mount)], capture_output=True)
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if hasattr(self, "_done"):
            os.close(self._done)
            del self._done
        if hasattr(self, "_config"):
            shutil.rmtree(self._config.parent, ignore_errors=True)
            del self._config

    # -- the cut ----------------------------------------------------------------------------

    def cut(self, *procs: subprocess.Popen[str] | subprocess.Popen[bytes]) -> None:
        """The power goes: the writers stop at once, then whatever they had not fsynced is
        gone. Unmounted afterwards; ``root`` holds what reached the disk."""
        for p in procs:
            if p.poll() is None:
                p.kill()
        for p in procs:
            _reap(p)
        if not self.crashed:
            self.clear_cache()
        self.unmount()


def _reap(p: subprocess.Popen[str] | subprocess.Popen[bytes]) -> None:
    """Wait for a killed process; a FUSE request of a dead file system may hold it a moment."""
    t = threading.Thread(target=p.wait, daemon=True)
    t.start()
    t.join(30)
