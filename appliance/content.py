"""Content files stored once by SHA-256 in a folder; written atomically, linked by the log."""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .errors import DiskFullError, NotFoundError
from .fsutil import fsync_dir, private_dirs

CHUNK = 1 << 20
CONTENT_MODE = 0o440  # read-only for its owner (and group), in a 0700 tree


@dataclass(frozen=True)
class StoredContent:
    sha256: str
    size: int


class ContentStore:
    """Immutable blobs at ``sha256/ab/cd/<hex>``; a blob nothing references is garbage."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._tmp = root / "tmp"

    def path(self, sha256: str) -> Path:
        return self.root / "sha256" / sha256[:2] / sha256[2:4] / sha256

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def put_bytes(self, data: bytes) -> StoredContent:
        import io

        return self.put_stream(io.BytesIO(data))

    def put_stream(self, stream: BinaryIO) -> StoredContent:
        """Copy ``stream`` in, fsync it and rename it into place; return its hash and size.
        A full disk raises DiskFullError (and leaves nothing behind)."""
        try:
            return self._put_stream(stream)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                st = os.statvfs(self.root if self.root.exists() else self.root.parent)
                raise DiskFullError(st.f_bavail * st.f_frsize) from exc
            raise

    def _put_stream(self, stream: BinaryIO) -> StoredContent:
        private_dirs(self._tmp)
        digest = hashlib.sha256()
        size = 0
        fd, tmp = tempfile.mkstemp(dir=self._tmp, prefix="in-")
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            sha = digest.hexdigest()
            final = self.path(sha)
            if final.exists():
                os.unlink(tmp)  # stored once: the same bytes are already here
            else:
                private_dirs(final.parent)
                os.chmod(tmp, CONTENT_MODE)
                os.replace(tmp, final)
                fsync_dir(final.parent)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return StoredContent(sha, size)

    def open(self, sha256: str) -> BinaryIO:
        try:
            return self.path(sha256).open("rb")
        except FileNotFoundError:
            raise NotFoundError(f"content {sha256} is not in the store") from None

    def hash_file(self, sha256: str) -> str:
        digest = hashlib.sha256()
        with self.open(sha256) as fh:
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
        return digest.hexdigest()

    def iter_hashes(self) -> Iterator[str]:
        base = self.root / "sha256"
        if base.is_dir():
            for p in base.glob("*/*/*"):
                yield p.name
