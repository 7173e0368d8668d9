"""The centre's content: a blob store seam and its folder implementation.

Blobs live at ``sha256/ab/cd/<hex>`` and become visible only by rename after an fsync; an
upload in progress is a ``.part`` file that grows only by whole, verified chunks. An upload
may have a second lane (bytes [start, length) sent on another connection at the same time):
``<hex>.lane-<start>``, which grows the same way; the finished file is the part followed by
the lane, copied into a new file, checked and renamed in (a crash before the rename changes
nothing).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from contextlib import suppress
from pathlib import Path
from typing import BinaryIO, Protocol

from appliance.fsutil import durable_dirs, fsync_dir

from ..errors import ContentError

READ = 1 << 20


class BlobStore(Protocol):
    def has(self, sha256: str) -> bool: ...

    def open(self, sha256: str) -> BinaryIO: ...

    def partial_size(self, sha256: str) -> int: ...

    def append_partial(self, sha256: str, offset: int, data: bytes) -> int:
        """Append ``data`` at ``offset`` (which must be the partial's size); returns the size."""
        ...

    def finish_partial(self, sha256: str) -> bool:
        """Promote a complete partial if its SHA-256 matches; else discard it and return False."""
        ...

    def discard_partial(self, sha256: str) -> None: ...

    def lane(self, sha256: str) -> tuple[int, int] | None:
        """(start, absolute end) of the upload's second lane, if it has one."""
        ...

    def lanes(self, shas: Iterable[str]) -> dict[str, tuple[int, int]]:
        """``lane`` of each of ``shas`` that has a second lane, in one pass."""
        ...

    def open_lane(self, sha256: str, start: int) -> None: ...

    def append_lane(self, sha256: str, start: int, offset: int, data: bytes) -> int:
        """Append ``data`` at absolute ``offset`` (the lane's end); returns the new end."""
        ...

    def finish_lanes(self, sha256: str) -> bool:
        """Promote part + lane if their SHA-256 matches; else discard both, return False."""
        ...

    def put_stream(self, sha256: str, src: BinaryIO) -> bool:
        """Copy a whole file in; keep it only if its SHA-256 is ``sha256``."""
        ...


class FolderBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._uploads = root / "uploads"
        self._uploads.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ContentError(f"{sha256!r} is not a lower-case hex SHA-256")
        return self.root / "sha256" / sha256[:2] / sha256[2:4] / sha256

    def _part(self, sha256: str) -> Path:
        self.path(sha256)  # validates the name
        return self._uploads / f"{sha256}.part"

    def has(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def remove(self, sha256: str) -> bool:
        """Delete a blob and any upload of it in progress (a purge); whether it was held."""
        self.discard_partial(sha256)
        path = self.path(sha256)
        try:
            path.chmod(0o600)
            path.unlink()
        except FileNotFoundError:
            return False
        fsync_dir(path.parent)
        return True

    def open(self, sha256: str) -> BinaryIO:
        return self.path(sha256).open("rb")

    def partial_size(self, sha256: str) -> int:
        try:
            return self._part(sha256).stat().st_size
        except FileNotFoundError:
            return 0

    def append_partial(self, sha256: str, offset: int, data: bytes) -> int:
        return _append(self._part(sha256), 0, offset, data, f"upload of {sha256}", create=True)

    def finish_partial(self, sha256: str) -> bool:
        part = self._part(sha256)
        digest = hashlib.sha256()
        with part.open("rb") as fh:
            while chunk := fh.read(READ):
                digest.update(chunk)
        if digest.hexdigest() != sha256:
            part.unlink(missing_ok=True)
            return False
        self._promote(part, sha256)
        return True

    def discard_partial(self, sha256: str) -> None:
        self._part(sha256).unlink(missing_ok=True)
        if (ln := self.lane(sha256)) is not None:
            self._lane(sha256, ln[0]).unlink(missing_ok=True)

    # the second lane ------------------------------------------------------------------

    def _lane(self, sha256: str, start: int) -> Path:
        self.path(sha256)
        return self._uploads / f"{sha256}.lane-{start}"

    def lane(self, sha256: str) -> tuple[int, int] | None:
        self.path(sha256)
        for p in self._uploads.glob(f"{sha256}.lane-*"):
            start = int(p.name.rsplit("-", 1)[1])
            try:
                return start, start + p.stat().st_size
            except FileNotFoundError:
                return None
        return None

    def lanes(self, shas: Iterable[str]) -> dict[str, tuple[int, int]]:
        wanted = set(shas)
        out: dict[str, tuple[int, int]] = {}
        with os.scandir(self._uploads) as it:
            for e in it:
                sha, dot, rest = e.name.partition(".lane-")
                if dot and sha in wanted and rest.isdigit():
                    with suppress(FileNotFoundError):
                        out[sha] = (int(rest), int(rest) + e.stat().st_size)
        return out

    def open_lane(self, sha256: str, start: int) -> None:
        if start <= 0:
            raise ContentError(f"a second lane cannot start at {start}")
        fd = os.open(self._lane(sha256, start), os.O_WRONLY | os.O_CREAT, 0o640)
        os.close(fd)
        fsync_dir(self._uploads)

    def append_lane(self, sha256: str, start: int, offset: int, data: bytes) -> int:
        return _append(self._lane(sha256, start), start, offset, data,
                       f"lane {start} of {sha256}", create=False)

    def finish_lanes(self, sha256: str) -> bool:
        ln = self.lane(sha256)
        if ln is None:
            return self.finish_partial(sha256)
        part, lane = self._part(sha256), self._lane(sha256, ln[0])
        with part.open("rb") as a, lane.open("rb") as b:
            ok = self._copy_in(sha256, (a, b))
        part.unlink(missing_ok=True)
        lane.unlink(missing_ok=True)
        return ok

    def put_stream(self, sha256: str, src: BinaryIO) -> bool:
        final = self.path(sha256)
        if final.is_file():
            return True
        return self._copy_in(sha256, (src,))

    def _copy_in(self, sha256: str, sources: Iterable[BinaryIO]) -> bool:
        """Copy ``sources`` one after the other into a new file and rename it in if its
        SHA-256 is ``sha256``; else drop the copy and return False."""
        fd, tmp = tempfile.mkstemp(dir=self._uploads, prefix="in-")
        digest = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as out:
                for src in sources:
                    while chunk := src.read(READ):
                        digest.update(chunk)
                        out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if digest.hexdigest() != sha256:
                os.unlink(tmp)
                return False
            self._promote(Path(tmp), sha256)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return True

    def _promote(self, src: Path, sha256: str) -> None:
        final = self.path(sha256)
        durable_dirs(final.parent)  # an accepted file must survive a power cut
        os.chmod(src, 0o444)
        os.replace(src, final)
        fsync_dir(final.parent)


def _append(path: Path, base: int, offset: int, data: bytes, what: str, *, create: bool) -> int:
    """Append ``data`` to ``path``, whose first byte is the file's byte ``base``, at the
    file's byte ``offset`` (which must be where ``path`` ends); fsync; the new end."""
    fd = os.open(path, os.O_WRONLY | (os.O_CREAT if create else 0), 0o640)
    try:
        end = base + os.fstat(fd).st_size
        if end != offset:
            raise ContentError(f"{what} is at {end}, not {offset}", end)
        os.lseek(fd, offset - base, os.SEEK_SET)
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        os.fsync(fd)
        return offset + len(data)
    finally:
        os.close(fd)
