"""A backup medium: a folder on a second disk holding backup sets and a content pool.

Layout under ``<path>/luutru-backup/``::

    medium.json                 label, owner (origin), format
    content/sha256/ab/cd/<hex>  content files, stored once by SHA-256 (immutable)
    sets/<id>/manifest.json     one backup set: full or incremental
    sets/<id>/db.sqlite         full sets: the database snapshot (SQLite online backup)
    sets/<id>/db.pages          incremental sets: the pages that changed since the base set
    sets/<id>/pages.sha256      SHA-256 of every page of this set's snapshot (for the next diff)
    sets/<id>/files/...         configuration and device-key files of the data folder
    backup-log.jsonl            nhật ký sao lưu: one line per backup, audit, heal, restore
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from ..fsutil import durable_dirs, fsync_dir, write_atomic
from .errors import BackupError

ROOT = "luutru-backup"
FORMAT = 1


@dataclass(frozen=True)
class Medium:
    """An opened backup medium."""

    path: Path  # the luutru-backup folder
    label: str
    origin: str

    @property
    def sets_dir(self) -> Path:
        return self.path / "sets"

    def content_path(self, sha256: str) -> Path:
        return self.path / "content" / "sha256" / sha256[:2] / sha256[2:4] / sha256

    def iter_content(self) -> Iterator[str]:
        base = self.path / "content" / "sha256"
        if base.is_dir():
            for p in base.glob("*/*/*"):
                if p.is_file() and len(p.name) == 64:
                    yield p.name

    def set_ids(self) -> list[str]:
        """Complete sets (those with a manifest), oldest first."""
        if not self.sets_dir.is_dir():
            return []
        return sorted(p.name for p in self.sets_dir.iterdir() if (p / "manifest.json").is_file())

    def manifest(self, set_id: str) -> dict[str, Any]:
        path = self.sets_dir / set_id / "manifest.json"
        try:
            value: dict[str, Any] = json.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            raise BackupError(f"backup set {set_id} does not exist on {self.label}") from None
        except (OSError, ValueError) as exc:
            raise BackupError(f"{path} on {self.label} cannot be read: {exc}") from exc
        return value

    def info(self) -> dict[str, Any]:
        """medium.json: label, origin, format, and its life (installed, rated_years)."""
        try:
            value: dict[str, Any] = json.loads((self.path / "medium.json").read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise BackupError(f"medium.json of {self.label} cannot be read: {exc}") from exc
        return value

    def set_life(self, installed: str | None, rated_years: int | None) -> None:
        """Record when the medium came into use and its rated lifetime in years."""
        if rated_years is not None and not 1 <= rated_years <= 100:
            raise BackupError("the rated lifetime of a medium is 1 to 100 years")
        info = self.info()
        if installed and not info.get("installed"):
            info["installed"] = installed
        if rated_years is not None:
            info["rated_years"] = rated_years
        write_atomic(self.path / "medium.json",
                     (json.dumps(info, ensure_ascii=False, indent=2) + "\n").encode())

    def log(self, record: dict[str, Any]) -> None:
        """Append one line to the medium's backup log (nhật ký sao lưu), durably."""
        line = json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n"
        path = self.path / "backup-log.jsonl"
        with path.open("a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())

    def read_log(self) -> list[dict[str, Any]]:
        path = self.path / "backup-log.jsonl"
        if not path.is_file():
            return []
        return [json.loads(x) for x in path.read_text("utf-8").splitlines() if x.strip()]


def open_medium(
    path: Path, *, label: str | None = None, origin: str | None = None, create: bool = False
) -> Medium:
    """Open the medium at ``path`` (the folder given as --to / --from-backup)."""
    path = Path(path)
    root = path if path.name == ROOT else path / ROOT
    info_path = root / "medium.json"
    if info_path.is_file():
        try:
            info = json.loads(info_path.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise BackupError(f"{info_path} cannot be read: {exc}") from exc
        if info.get("format") != FORMAT:
            raise BackupError(f"{info_path}: unknown backup format {info.get('format')}")
        if origin and info.get("origin") and info["origin"] != origin:
            raise BackupError(
                f"{path} holds the backups of another appliance ({info['origin']}); "
                "use a medium of this appliance or an empty one"
            )
        return Medium(root, str(info.get("label") or path.name), str(info.get("origin") or ""))
    if not create:
        raise BackupError(f"{path} is not a luutru backup medium (no {ROOT}/medium.json)")
    try:
        root.mkdir(parents=True, exist_ok=True)
        for sub in ("content", "sets", "tmp"):
            (root / sub).mkdir(exist_ok=True)
        info = {"format": FORMAT, "label": label or path.name, "origin": origin or ""}
        write_atomic(info_path, (json.dumps(info, ensure_ascii=False, indent=2) + "\n").encode())
    except OSError as exc:
        raise BackupError(f"cannot prepare the backup medium {path}: {exc.strerror}") from exc
    return Medium(root, str(info["label"]), str(info["origin"]))


def copy_verified(src: BinaryIO, dest: Path, want_sha256: str | None, tmp_dir: Path) -> int:
    """Copy ``src`` to ``dest`` through a temp file, fsynced; refuse if the SHA-256 differs."""
    import hashlib

    tmp_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    fd, tmp = tempfile.mkstemp(dir=tmp_dir, prefix="cp-")
    try:
        buf = bytearray(1 << 20)
        view = memoryview(buf)
        with os.fdopen(fd, "wb") as out:
            while True:
                n = src.readinto(buf)  # type: ignore[attr-defined]
                if not n:
                    break
                digest.update(view[:n])
                out.write(view[:n])
                size += n
            out.flush()
            os.fsync(out.fileno())
        if want_sha256 is not None and digest.hexdigest() != want_sha256:
            raise BackupError(
                f"copy to {dest} refused: the source does not have SHA-256 {want_sha256}"
            )
        durable_dirs(dest.parent)
        os.chmod(tmp, 0o444)
        os.replace(tmp, dest)
        fsync_dir(dest.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return size
