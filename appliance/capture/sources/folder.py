"""A watch folder for scan-to-folder multifunction printers.

A file is picked up only when its size and modification time have stayed the same for
``settle_s`` (the printer has finished writing it). Each file is one batch. Nothing is lost
or imported twice: the batch remembers the file's SHA-256 before any work is done, so a file
seen again (a crash before it was moved, or the same scan dropped twice) resumes or skips its
batch; a filed file moves to ``processed/``, a refused one to ``rejected/`` with a note why.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...fsutil import durable_dirs, fsync_dir, write_atomic
from ..batch import Capture, CaptureResult
from ..errors import CaptureError, ImageRejected
from ..queue import BatchState
from ..routing import BarcodeRouter
from ..separator import Target

IGNORED_SUFFIXES = (".tmp", ".part", ".crdownload", "~", ".reason.txt")


@dataclass(frozen=True)
class FolderOutcome:
    name: str
    result: CaptureResult | None = None
    error: str | None = None
    duplicate_of: str | None = None  # the batch that already imported the same bytes


class WatchFolder:
    """Imports the files dropped into ``inbox``; call ``run_once()`` on a timer."""

    def __init__(
        self,
        inbox: Path,
        capture: Capture,
        router: BarcodeRouter | None = None,
        settle_s: float = 2.0,
    ) -> None:
        self.inbox = inbox
        self.processed = inbox / "processed"
        self.rejected = inbox / "rejected"
        self.capture = capture
        self.router = router
        self.settle_s = settle_s
        self._seen: dict[Path, tuple[int, int, float]] = {}

    def _candidates(self) -> list[Path]:
        if not self.inbox.is_dir():
            raise CaptureError(f"the watch folder {self.inbox} does not exist")
        return sorted(
            p
            for p in self.inbox.iterdir()
            if p.is_file() and not p.name.startswith(".") and not p.name.endswith(IGNORED_SUFFIXES)
        )

    def ready(self, settle_s: float | None = None, now: float | None = None) -> list[Path]:
        """Files that stopped growing at least ``settle_s`` ago."""
        settle = self.settle_s if settle_s is None else settle_s
        now = time.monotonic() if now is None else now
        out = []
        current = self._candidates()
        for path in current:
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            sig = (st.st_size, st.st_mtime_ns)
            prev = self._seen.get(path)
            if prev is None or prev[:2] != sig:
                self._seen[path] = (*sig, now)
                if settle > 0:
                    continue
                prev = self._seen[path]
            if now - prev[2] >= settle:
                out.append(path)
        for gone in set(self._seen) - set(current):
            del self._seen[gone]
        return out

    def run_once(
        self,
        target: Target | None = None,
        metadata: dict[str, Any] | None = None,
        settle_s: float | None = None,
    ) -> list[FolderOutcome]:
        """Import every ready file; each outcome says filed, duplicate or refused (and why)."""
        outcomes = []
        for path in self.ready(settle_s):
            outcomes.append(self._import(path, target, metadata or {}))
            self._seen.pop(path, None)
        return outcomes

    def drain(
        self,
        target: Target | None = None,
        metadata: dict[str, Any] | None = None,
        settle_s: float = 1.0,
        timeout_s: float = 120.0,
    ) -> list[FolderOutcome]:
        """Import what is in the folder now, waiting for files still being written."""
        outcomes: list[FolderOutcome] = []
        deadline = time.monotonic() + timeout_s
        while True:
            outcomes += self.run_once(target, metadata, settle_s)
            if not self._candidates() or time.monotonic() > deadline:
                return outcomes
            time.sleep(max(0.05, min(0.5, settle_s / 2)))

    def run_forever(self, stop: threading.Event, poll_s: float = 1.0, **kw: Any) -> None:
        while not stop.is_set():
            # the folder may vanish for a while (an unmounted share): try again next time
            with contextlib.suppress(CaptureError):
                self.run_once(**kw)
            stop.wait(poll_s)

    def _import(self, path: Path, target: Target | None, metadata: dict[str, Any]) -> FolderOutcome:
        data = path.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        queue = self.capture.queue
        batch_id = queue.batch_by_origin(sha)
        if batch_id is not None:
            status = queue.status(batch_id)
            if status.state is BatchState.FILED:
                self._move(path, self.processed)
                return FolderOutcome(path.name, duplicate_of=batch_id)
            if status.pages_scanned == 0:
                queue.add_page(batch_id, path.name, data)
        else:
            routed = self.router.take() if self.router is not None else None
            batch_id = self.capture.start(
                f"folder:{self.inbox}", routed or target, metadata, "watch folder", sha
            )
            queue.add_page(batch_id, path.name, data)
        try:
            result = self.capture.process(batch_id)
        except ImageRejected as exc:
            self._move(path, self.rejected, reason=str(exc))
            queue.discard(batch_id)  # the file itself is kept in rejected/
            return FolderOutcome(path.name, error=str(exc))
        self._move(path, self.processed)
        return FolderOutcome(path.name, result=result)

    def _move(self, path: Path, folder: Path, reason: str | None = None) -> None:
        durable_dirs(folder)  # what is moved into it leaves the watch folder
        dest = folder / path.name
        n = 1
        while dest.exists():
            dest = folder / f"{path.stem}.{n}{path.suffix}"
            n += 1
        if reason is not None:
            write_atomic(dest.with_name(dest.name + ".reason.txt"), (reason + "\n").encode())
        os.replace(path, dest)
        fsync_dir(folder)
        fsync_dir(path.parent)
