"""Room on the data disk: when new records are refused, and the reserve that keeps the box
lawful when the disk runs out.

A box whose disk fills up (scans, a backup written to the wrong place, a log gone wild) must
still show its records and log each view, print and download: an unlogged view is unlawful,
a refused view leaves the office without its records. So:

- below ``refuse_mb`` free, new records and files are refused with the space left and what
  to do (``DiskFullError``, 507 on the web), long before SQLite itself fails;
- a reserve file of ``reserve_mb`` is held beside the database and released when the disk
  runs out anyway, so that the few entries that keep the box lawful (audit entries,
  checkpoints, receipts, sign-ins) still fit; it is taken again once there is room;
- below ``warn_mb`` the home page and /healthz say "disk almost full".
"""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
import threading
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from .config import SpaceConfig
from .errors import DiskFullError

log = logging.getLogger(__name__)

MiB = 1 << 20
RESERVE_NAME = ".space-reserve"
# Essential writes release the reserve before they try when less than this is free.
ESSENTIAL_FLOOR = 8 * MiB
UNKNOWN_FREE = 1 << 62


class Level(StrEnum):
    OK = "ok"
    LOW = "low"  # below warn_mb: "disk almost full"
    FULL = "full"  # below refuse_mb: new records refused


@dataclass(frozen=True)
class Limits:
    """The thresholds in bytes for one disk (SpaceConfig's, or its defaults scaled down to a
    small disk)."""

    warn: int
    refuse: int
    reserve: int

    @classmethod
    def of(cls, config: SpaceConfig, total: int) -> Limits:
        def pick(mb: int | None, default_mb: int, share: float) -> int:
            if mb is not None:
                return mb * MiB
            return min(default_mb * MiB, int(total * share)) if total else default_mb * MiB

        return cls(pick(config.warn_mb, 2048, 0.10), pick(config.refuse_mb, 256, 0.02),
                   pick(config.reserve_mb, 32, 0.01))


@dataclass(frozen=True)
class SpaceStatus:
    free_bytes: int
    total_bytes: int
    level: Level
    reserve_held: bool
    limits: Limits

    def to_json(self) -> dict[str, Any]:
        return {"free_bytes": self.free_bytes, "total_bytes": self.total_bytes,
                "level": self.level.value, "reserve_held": self.reserve_held,
                "warn_bytes": self.limits.warn, "refuse_bytes": self.limits.refuse}


def is_disk_full(exc: BaseException) -> bool:
    """An OSError or SQLite error that says the disk is full."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    if isinstance(exc, sqlite3.Error):
        return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
    return False


class DiskSpace:
    """The data folder's disk, as the writer and the web UI see it."""

    def __init__(self, data_dir: Path, config: SpaceConfig, keep_reserve: bool = False) -> None:
        self.data_dir = data_dir
        self.config = config
        self.reserve = data_dir / RESERVE_NAME
        # Only the long-running service keeps a reserve (`luutru serve`): a command that
        # runs for a moment, or a test's throwaway folder, need not hold the disk's blocks.
        self.keep_reserve = keep_reserve
        self._lock = threading.Lock()

    def _stat(self) -> tuple[int, int]:
        """(free, total) bytes; a file system that reports no size at all (some FUSE ones)
        cannot be judged and counts as roomy."""
        st = os.statvfs(self.data_dir)
        if st.f_blocks == 0:
            return UNKNOWN_FREE, 0
        return st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize

    def free(self) -> int:
        return self._stat()[0]

    def limits(self, total: int | None = None) -> Limits:
        return Limits.of(self.config, self._stat()[1] if total is None else total)

    def status(self) -> SpaceStatus:
        free, total = self._stat()
        limits = self.limits(total)
        return SpaceStatus(free, total, self._level(free, limits), self.reserve.exists(),
                           limits)

    @staticmethod
    def _level(free: int, limits: Limits) -> Level:
        if free < limits.refuse:
            return Level.FULL
        if free < limits.warn:
            return Level.LOW
        return Level.OK

    def check_records(self, incoming: int = 0) -> None:
        """Refuse a new record or file (``incoming`` bytes of it) when too little is free."""
        free, total = self._stat()
        limits = self.limits(total)
        if free - incoming < limits.refuse:
            raise DiskFullError(free, incoming)
        if self.keep_reserve and free > limits.refuse + 2 * limits.reserve:
            self.replenish()

    def check_essential(self) -> None:
        """Before an audit entry, checkpoint or receipt: release the reserve if the disk is
        about to run out (SQLite then finds room for the entry)."""
        if self.free() < ESSENTIAL_FLOOR:
            self.release()

    def release(self) -> bool:
        """Give the reserve back to the disk; True if there was one."""
        with self._lock:
            try:
                self.reserve.unlink()
            except FileNotFoundError:
                return False
            except OSError as exc:
                log.error("cannot release the disk reserve %s: %s", self.reserve, exc)
                return False
        log.warning("disk full: the reserve was released for the entries that keep the "
                    "appliance lawful")
        return True

    def replenish(self) -> None:
        """Take the reserve (again) when there is room for it and more."""
        want = self.limits().reserve
        if want <= 0 or not self.keep_reserve:
            return
        with self._lock:
            try:
                if self.reserve.stat().st_size >= want:
                    return
            except FileNotFoundError:
                pass
            try:
                fd = os.open(self.reserve, os.O_WRONLY | os.O_CREAT, 0o600)
            except OSError as exc:
                log.warning("cannot make the disk reserve %s: %s", self.reserve, exc)
                return
            try:
                os.posix_fallocate(fd, 0, want)
            except OSError as exc:
                # No room after all, or a file system without fallocate: no reserve then.
                os.close(fd)
                fd = -1
                self.reserve.unlink(missing_ok=True)
                if not is_disk_full(exc):
                    log.info("no disk reserve on this file system: %s", exc)
            finally:
                if fd >= 0:
                    os.close(fd)
