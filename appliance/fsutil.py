"""Durable file writes: temp file, fsync, rename, fsync of the folder."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# A data folder holds the commune's records, keys and secrets: its folders are the owner's
# alone and its database files are created private, whatever the process's umask.
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def private_dirs(path: Path) -> None:
    """Make ``path`` and its missing parents as 0700 folders, each new one made durable (its
    own parent fsynced), so that a file renamed into it survives a power cut too."""
    durable_dirs(path, PRIVATE_DIR)


def durable_dirs(path: Path, mode: int | None = None) -> None:
    """Make ``path`` and its missing parents (``mode``, else the umask's), each new one made
    durable: its parent fsynced, as a rename into it would need (``mkdir(parents=True)``
    leaves the new entries in the page cache, where a power cut takes them and what was
    renamed into them)."""
    missing: list[Path] = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir() if mode is None else d.mkdir(mode=mode)
        except FileExistsError:
            continue
        if mode is not None:
            os.chmod(d, mode)  # mkdir's mode passes through the umask
        fsync_dir(d.parent)


def private_file(path: Path) -> None:
    """Create ``path`` empty and 0600 if it does not exist (SQLite then gives its write-ahead
    log and shared-memory files the same mode), its folder fsynced so that the new entry
    survives a power cut (SQLite syncs the folder for its own journals, not for the database
    file it is handed); tighten it if we own it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        st = path.stat()
        if st.st_uid == os.getuid() and st.st_mode & 0o077:
            os.chmod(path, PRIVATE_FILE)
        return
    os.fchmod(fd, PRIVATE_FILE)
    os.close(fd)
    fsync_dir(path.parent)


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path``: a crash leaves the old file or the whole new one."""
    private_dirs(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
