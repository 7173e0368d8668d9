"""Content files stored once by SHA-256 in a folder; written atomically, linked by the log.

A version that another version contains (the unsigned PDF inside its signed version, a signed
PDF inside the copy the centre upgraded) can be kept as a *derived* entry instead of a file of
its own: ``derived/ab/cd/<sha256>``, a small compressed record naming the version it lives in,
its length, and the few byte ranges that differ (none for a prefix). Reading it rebuilds the
bytes from that version and checks them against the SHA-256 (``appliance/versions.py`` says
which versions are related; this module only stores bytes).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from .errors import DiskFullError, NotFoundError
from .fsutil import fsync_dir, private_dirs

CHUNK = 1 << 20
CONTENT_MODE = 0o440  # read-only for its owner (and group), in a 0700 tree
BLOCK = 512  # granularity of the differing ranges kept for a derived version
MAX_DEPTH = 8  # a derived version's base may itself be derived, this deep at most


class DerivedError(NotFoundError):
    """A derived version cannot be rebuilt (its base is gone, or the bytes do not hash)."""


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

    def derived_path(self, sha256: str) -> Path:
        return self.root / "derived" / sha256[:2] / sha256[2:4] / sha256

    def exists(self, sha256: str) -> bool:
        """Whether the bytes can be read: a file of their own, or derived from another."""
        return self.path(sha256).is_file() or self.derived_path(sha256).is_file()

    def has_file(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def size(self, sha256: str) -> int:
        if self.path(sha256).is_file():
            return self.path(sha256).stat().st_size
        return int(self._derivation(sha256)["length"])

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
            if not self.derived_path(sha256).is_file():
                raise NotFoundError(f"content {sha256} is not in the store") from None
        return io.BytesIO(self.read(sha256))

    def read(self, sha256: str, _depth: int = 0) -> bytes:
        """The whole content (rebuilt and checked when it is derived)."""
        own = self.path(sha256)
        if own.is_file():
            return own.read_bytes()
        if _depth > MAX_DEPTH:
            raise DerivedError(f"content {sha256}: derived too deep (a loop?)")
        d = self._derivation(sha256)
        base = self.read(str(d["base"]), _depth + 1)
        length = int(d["length"])
        if len(base) < length:
            raise DerivedError(f"content {sha256}: its base {d['base']} is too short")
        out = bytearray(base[:length])
        for offset, data in d["patches"]:
            out[int(offset) : int(offset) + len(data)] = data
        data = bytes(out)
        if hashlib.sha256(data).hexdigest() != sha256:
            raise DerivedError(f"content {sha256} rebuilt from {d['base']} does not hash")
        return data

    def _derivation(self, sha256: str) -> dict[str, Any]:
        from . import cbor

        try:
            raw = self.derived_path(sha256).read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"content {sha256} is not in the store") from None
        d = cbor.loads(zlib.decompress(raw))
        if not isinstance(d, dict):
            raise DerivedError(f"content {sha256}: a damaged derived record")
        return d

    @contextlib.contextmanager
    def as_file(self, sha256: str) -> Iterator[Path]:
        """A path to the content: its own file, or a temporary copy of a derived one."""
        own = self.path(sha256)
        if own.is_file():
            yield own
            return
        data = self.read(sha256)
        private_dirs(self._tmp)
        fd, tmp = tempfile.mkstemp(dir=self._tmp, prefix="out-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            yield Path(tmp)
        finally:
            Path(tmp).unlink(missing_ok=True)

    def readable_path(self, sha256: str) -> Path:
        """A file with the content: its own, or for a derived one a copy rebuilt (and checked)
        under tmp/, kept until ``drop_copies`` (an upload reads it over several requests)."""
        own = self.path(sha256)
        if own.is_file():
            return own
        copy = self._tmp / f"copy-{sha256}"
        if not copy.is_file():
            from .fsutil import write_atomic

            write_atomic(copy, self.read(sha256), mode=0o600)
        return copy

    def drop_copies(self) -> None:
        if self._tmp.is_dir():
            for p in self._tmp.glob("copy-*"):
                p.unlink(missing_ok=True)

    def derive(self, sha256: str, base: str, max_patch: int | None = None) -> bool:
        """Keep ``sha256`` as the first bytes of ``base`` with a few ranges patched, and drop
        its own file; False (nothing changed) if the two differ too much or ``base`` is
        shorter. The record is written, and read back through the hash, before the file goes."""
        from . import cbor

        if not self.path(sha256).is_file():
            return self.derived_path(sha256).is_file()
        old = self.path(sha256).read_bytes()
        new = self.read(base)
        if base == sha256 or len(new) < len(old):
            return False
        limit = max(64 * 1024, len(old) // 4) if max_patch is None else max_patch
        patches: list[list[Any]] = []
        total = 0
        for start in range(0, len(old), BLOCK):
            a, b = old[start : start + BLOCK], new[start : start + BLOCK]
            if a == b:
                continue
            if patches and patches[-1][0] + len(patches[-1][1]) == start:
                patches[-1][1] += a
            else:
                patches.append([start, bytearray(a)])
            total += len(a)
            if total > limit:
                return False
        record = {"base": base, "length": len(old),
                  "patches": [[o, bytes(d)] for o, d in patches]}
        final = self.derived_path(sha256)
        private_dirs(final.parent)
        from .fsutil import write_atomic

        write_atomic(final, zlib.compress(cbor.dumps(record), 9), mode=0o600)
        fsync_dir(final.parent)  # durable before the file it replaces goes
        try:
            self.read(sha256)
        except DerivedError:
            final.unlink(missing_ok=True)
            raise
        self.release(sha256)
        return True

    def record_prefix(self, sha256: str, base: str, length: int) -> None:
        """Keep ``sha256`` as the first ``length`` bytes of ``base`` without ever having had
        its own file (a box restored from the centre, which holds only the longer version);
        raises DerivedError if those bytes do not hash to it."""
        from . import cbor
        from .fsutil import write_atomic

        head = self.read(base)[:length]
        if len(head) != length or hashlib.sha256(head).hexdigest() != sha256:
            raise DerivedError(f"the first {length} bytes of {base} are not {sha256}")
        final = self.derived_path(sha256)
        private_dirs(final.parent)
        record = {"base": base, "length": length, "patches": []}
        write_atomic(final, zlib.compress(cbor.dumps(record), 9), mode=0o600)

    def release(self, sha256: str) -> None:
        """Delete the content's own file (after the commit that says where else it is)."""
        own = self.path(sha256)
        if own.is_file():
            own.unlink()
            fsync_dir(own.parent)

    def stored_bytes(self) -> int:
        """Bytes the content store takes on disk (files and derived records)."""
        total = 0
        for sub in ("sha256", "derived"):
            base = self.root / sub
            if base.is_dir():
                total += sum(p.stat().st_size for p in base.glob("*/*/*"))
        return total

    def hash_file(self, sha256: str) -> str:
        digest = hashlib.sha256()
        if not self.path(sha256).is_file():
            try:
                return hashlib.sha256(self.read(sha256)).hexdigest()
            except DerivedError:
                return ""
        with self.open(sha256) as fh:
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
        return digest.hexdigest()

    def iter_hashes(self) -> Iterator[str]:
        """The content held as files of their own."""
        base = self.root / "sha256"
        if base.is_dir():
            for p in base.glob("*/*/*"):
                yield p.name

    def iter_derived(self) -> Iterator[str]:
        base = self.root / "derived"
        if base.is_dir():
            for p in base.glob("*/*/*"):
                if not p.name.startswith(".tmp"):
                    yield p.name
