"""An exchange folder (or a USB stick) shared with the provincial e-office system.

Layout under the folder (names configurable)::

    den/          packages for us (*.edxml, *.xml), written by the e-office system
    di/           what we send: status messages, exported documents
    da-nhan/      packages taken into the inbox (moved here after the commit)
    tu-choi/      packages refused, each with NAME.ly-do.txt saying why

Each package is taken exactly once and never lost: it is moved out of ``den/`` only after
the inbox transaction that holds it is durable (a crash in between offers it again, and the
inbox knows it by its SHA-256, so it is not taken twice); a refused one is moved aside with
its reason, never deleted. A file still being written (changed in the last
``settle_s`` seconds) waits for the next poll. What we send is written to a temporary name,
fsynced and renamed, so the other side never reads half a file.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

from appliance.fsutil import fsync_dir, write_atomic

from .connector import Waiting

SUFFIXES = (".edxml", ".xml")


class FolderConnector:
    """A connector over a folder (see the module docstring)."""

    def __init__(self, root: Path, incoming: str = "den", outgoing: str = "di",
                 processed: str = "da-nhan", refused: str = "tu-choi",
                 settle_s: float = 2.0) -> None:
        self.root = root
        self.incoming = root / incoming
        self.outgoing = root / outgoing
        self.processed = root / processed
        self.refused = root / refused
        self.settle_s = settle_s
        self.name = f"folder:{root}"

    def _ensure(self) -> None:
        for d in (self.incoming, self.outgoing, self.processed, self.refused):
            d.mkdir(parents=True, exist_ok=True)

    def fetch(self, max_bytes: int) -> Iterator[Waiting]:
        self._ensure()
        now = time.time()
        files = sorted(
            (p for p in self.incoming.iterdir()
             if p.is_file() and p.suffix.lower() in SUFFIXES and not p.name.startswith(".")),
            key=lambda p: (p.stat().st_mtime, p.name),
        )
        for path in files:
            st = path.stat()
            if now - st.st_mtime < self.settle_s:
                continue  # still being written
            item = Waiting(path.name, b"", path)
            if st.st_size > max_bytes:
                self.refuse(item, f"Gói tin quá lớn: {st.st_size / 1048576:.1f} MB, tối đa "
                                  f"{max_bytes / 1048576:.0f} MB.")
                continue
            yield Waiting(path.name, path.read_bytes(), path)

    def _move(self, path: Path, into: Path) -> Path:
        target = into / path.name
        n = 1
        while target.exists():
            target = into / f"{path.stem}.{n}{path.suffix}"
            n += 1
        os.replace(path, target)
        fsync_dir(into)
        fsync_dir(path.parent)
        return target

    def done(self, item: Waiting) -> None:
        path = Path(item.handle)
        if path.exists():
            self._move(path, self.processed)

    def refuse(self, item: Waiting, reason: str) -> None:
        path = Path(item.handle)
        if not path.exists():
            return
        target = self._move(path, self.refused)
        write_atomic(target.with_name(target.name + ".ly-do.txt"),
                     (reason + "\n").encode("utf-8"), mode=0o644)

    def send(self, name: str, data: bytes) -> None:
        self._ensure()
        safe = Path(name).name
        write_atomic(self.outgoing / safe, data, mode=0o644)
