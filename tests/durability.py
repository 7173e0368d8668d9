"""What LazyFS cannot show: a directory entry that is not durable. LazyFS drops file data
not yet fsynced, but passes creates, renames and mkdirs straight to the disk underneath, so
a missing fsync of the folder after a rename looks fine there while on ext4 the renamed file
can vanish in a power cut.

``DurabilityTrace`` watches a process from inside (Python's audit hooks for renames, mkdirs
and files opened with O_CREAT; ``os.fsync`` wrapped to know which folder was synced) and
names every entry under a folder that was made but whose folder was not fsynced after it:
``pending()`` at a moment the caller acknowledges something. SQLite's own files are made in C
(SQLite fsyncs their folder itself) and are not seen. Entries the sealer's thread makes are
left out: it writes the checkpoint's anchor after a write is acknowledged, on its own time
(``write_atomic``: the file fsynced, renamed, its folder fsynced), so at the moment of an
acknowledgement it may be anywhere inside that sequence.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Any

LOCKS = (".lock",)  # lock files hold no data: whether they survive a cut does not matter
ASYNC_THREADS = ("luutru-sealer",)  # works after the acknowledgement, not before it


class DurabilityTrace:
    def __init__(self, root: Path) -> None:
        self.root = str(root.resolve())
        self.events: list[tuple[str, str]] = []  # (made|fsync|gone, absolute path)
        self._fsync = os.fsync
        self._on = True
        sys.addaudithook(self._hook)  # audit hooks cannot be removed: close() silences it
        os.fsync = self._traced_fsync  # type: ignore[assignment]

    def close(self) -> None:
        self._on = False
        os.fsync = self._fsync  # type: ignore[assignment]

    def __enter__(self) -> DurabilityTrace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _mine(self, path: Any) -> str | None:
        if not self._on or not isinstance(path, (str, bytes, os.PathLike)):
            return None
        p = os.path.abspath(os.fsdecode(path))
        return p if p.startswith(self.root) else None

    def _hook(self, event: str, args: tuple[Any, ...]) -> None:
        if threading.current_thread().name in ASYNC_THREADS:
            return
        if event == "os.rename" and len(args) >= 2:  # also os.replace
            src, dst = self._mine(args[0]), self._mine(args[1])
            if src:
                self.events.append(("gone", src))
            if dst:
                self.events.append(("made", dst))
        elif event == "os.mkdir":  # the hook runs first: an existing folder is not made
            if (p := self._mine(args[0])) and not os.path.lexists(p):
                self.events.append(("made", p))
        elif event == "open" and len(args) >= 3 and isinstance(args[2], int):
            p = self._mine(args[0]) if args[2] & os.O_CREAT else None
            if p and not os.path.lexists(p) and not p.endswith(LOCKS):
                self.events.append(("made", p))
        elif event in ("os.remove", "os.rmdir") and (p := self._mine(args[0])):
            self.events.append(("gone", p))

    def _traced_fsync(self, fd: Any) -> None:
        num = fd if isinstance(fd, int) else fd.fileno()
        try:
            path = os.readlink(f"/proc/self/fd/{num}")
        except OSError:
            path = ""
        self._fsync(fd)
        if path:
            self.events.append(("fsync", path))

    def pending(self) -> list[str]:
        """Entries made under the root, still there, whose folder was not fsynced since."""
        out = []
        for i, (kind, path) in enumerate(self.events):
            if kind != "made" or not os.path.lexists(path):
                continue
            if any(k == "gone" and p == path for k, p in self.events[i + 1:]):
                continue
            parent = os.path.dirname(path)
            if not any(k == "fsync" and p == parent for k, p in self.events[i + 1:]):
                out.append(path)
        return out
