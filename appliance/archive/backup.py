"""Backups to a second medium: daily incremental, monthly full (TT 05/2025, Điều 27).

The database is copied with SQLite's online backup API, so a backup runs beside a working
appliance. A full set keeps the whole snapshot and re-checks every content file on the
medium; an incremental set keeps only the database pages that changed since the previous
set (compared by per-page SHA-256) and the content files that are new. Content files are
stored once by SHA-256 on the medium too. Restoring the full set and then each incremental
in order gives back the snapshot byte for byte; each set records the snapshot's SHA-256.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import sqlite3
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import writes
from ..clock import iso
from ..config import CONFIG_NAME
from ..errors import LuutruError
from ..fsutil import fsync_dir, write_atomic
from ..kinds import Kind
from . import paperwork, state
from .medium import Medium, copy_verified, open_medium

if TYPE_CHECKING:
    from ..store import Store

DB_FULL = "db.sqlite"
DB_PAGES = "db.pages"
PAGE_HASHES = "pages.sha256"
# Files of the data folder that a restore needs beside the database and the content.
CONFIG_FILES = (CONFIG_NAME, "due_rules.json")
PAGES_MAGIC = b"LUUTRU-PAGES-1\n"


class SetKind(StrEnum):
    FULL = "full"
    INCREMENTAL = "incremental"


@dataclass
class BackupResult:
    medium: str
    set_id: str
    kind: SetKind
    tree_size: int
    db_sha256: str
    db_size: int
    pages_written: int
    content_new: int
    content_bytes: int
    content_total: int
    healed_on_medium: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "medium": self.medium,
            "set_id": self.set_id,
            "kind": self.kind.value,
            "tree_size": self.tree_size,
            "db_sha256": self.db_sha256,
            "db_size": self.db_size,
            "pages_written": self.pages_written,
            "content_new": self.content_new,
            "content_bytes": self.content_bytes,
            "content_total": self.content_total,
            "healed_on_medium": self.healed_on_medium,
        }


def _snapshot(db_path: str, dest: Path) -> tuple[int, int]:
    """A consistent copy of the live database (online backup API); (page size, pages)."""
    src = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(str(dest))
        try:
            src.backup(dst)
            page_size = int(dst.execute("PRAGMA page_size").fetchone()[0])
        finally:
            dst.close()
    finally:
        src.close()
    size = dest.stat().st_size
    return page_size, size // page_size


def _page_hashes(path: Path, page_size: int) -> tuple[bytes, str]:
    """(concatenated SHA-256 of every page, SHA-256 of the whole file)."""
    whole = hashlib.sha256()
    out = bytearray()
    with path.open("rb") as fh:
        while page := fh.read(page_size):
            whole.update(page)
            out += hashlib.sha256(page).digest()
    return bytes(out), whole.hexdigest()


def _file_sha(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _new_set_id(medium: Medium, now: dt.datetime, kind: SetKind) -> str:
    base = now.strftime("%Y%m%dT%H%M%S") + f"-{kind.value}"
    existing = set(p.name for p in medium.sets_dir.iterdir()) if medium.sets_dir.is_dir() else set()
    set_id, n = base, 1
    while set_id in existing:
        n += 1
        set_id = f"{base}-{n}"
    return set_id


def choose_kind(medium: Medium, now: dt.datetime) -> SetKind:
    """Monthly full (the first backup of each month), daily incremental otherwise."""
    for set_id in reversed(medium.set_ids()):
        m = medium.manifest(set_id)
        if m.get("kind") == SetKind.FULL.value:
            made = dt.datetime.fromisoformat(m["created"])
            return SetKind.INCREMENTAL if (made.year, made.month) == (now.year, now.month) \
                else SetKind.FULL
    return SetKind.FULL


def _copy_config(data_dir: Path, dest: Path) -> dict[str, str]:
    """Configuration and the device-key folder; returns {relative path: SHA-256}."""
    out: dict[str, str] = {}
    names = [n for n in CONFIG_FILES if (data_dir / n).is_file()]
    keys = data_dir / "keys"
    if keys.is_dir():
        names += [str(p.relative_to(data_dir)) for p in sorted(keys.rglob("*")) if p.is_file()]
    for rel in names:
        body = (data_dir / rel).read_bytes()
        write_atomic(dest / "files" / rel, body, mode=0o600)
        out[rel] = hashlib.sha256(body).hexdigest()
    return out


def _copy_content(
    store: Store, medium: Medium, shas: Iterable[str], recheck: bool
) -> tuple[list[str], int, list[str]]:
    """Copy content files missing on the medium; a full set also re-hashes those present."""
    new: list[str] = []
    nbytes = 0
    healed: list[str] = []
    tmp = medium.path / "tmp"
    for sha in shas:
        dest = medium.content_path(sha)
        if dest.is_file():
            if not recheck or _file_sha(dest) == sha:
                continue
            healed.append(sha)  # rotted on the medium: replaced from the appliance below
        with store.content.open(sha) as src:
            nbytes += copy_verified(src, dest, sha, tmp)
        if sha not in healed:
            new.append(sha)
    return new, nbytes, healed


def backup(
    store: Store,
    medium_path: Path,
    *,
    full: bool | None = None,
    label: str | None = None,
    actor: str = "system",
    rated_years: int | None = None,
) -> BackupResult:
    """Make one backup set on the medium at ``medium_path``; ``full=None`` follows the policy.
    The set carries its paperwork: the records' metadata as XML and the backup minutes; the
    medium its label (rated lifetime ``rated_years``, recorded the first time it is given)."""
    now = store.clock.now()
    medium = open_medium(medium_path, label=label, origin=store.config.origin, create=True)
    medium.set_life(now.date().isoformat(), rated_years)
    kind = (SetKind.FULL if full else SetKind.INCREMENTAL) if full is not None else \
        choose_kind(medium, now)
    sets = medium.set_ids()
    base_id = sets[-1] if sets else None
    if kind is SetKind.INCREMENTAL and base_id is None:
        kind = SetKind.FULL
    set_id = _new_set_id(medium, now, kind)
    work = medium.path / "tmp" / f"set-{set_id}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        tree_size, root = store.tree_head()
        snap = work / DB_FULL
        page_size, pages = _snapshot(store.db_path, snap)
        hashes, db_sha = _page_hashes(snap, page_size)
        pages_written = pages
        if kind is SetKind.INCREMENTAL:
            assert base_id is not None
            pages_written = _write_increment(medium, base_id, snap, page_size, hashes, work)
            snap.unlink()
        (work / PAGE_HASHES).write_bytes(hashes)
        # A version kept inside another on the box (appliance/versions.py) goes to the medium
        # whole: a backup restores without rebuilding anything.
        shas = sorted(set(store.content.iter_hashes()) | set(store.content.iter_derived()))
        new, nbytes, healed = _copy_content(store, medium, shas, kind is SetKind.FULL)
        files = _copy_config(store.data_dir, work)
        manifest = {
            "format": 1,
            "kind": kind.value,
            "set_id": set_id,
            "base": base_id if kind is SetKind.INCREMENTAL else None,
            "created": iso(now),
            "origin": store.config.origin,
            "org_id": store.config.org_id,
            "tree_size": tree_size,
            "root_hash": root.hex(),
            "db": {"sha256": db_sha, "size": pages * page_size, "page_size": page_size,
                   "pages": pages, "pages_written": pages_written,
                   "part_sha256": _file_sha(work / (DB_FULL if kind is SetKind.FULL
                                                    else DB_PAGES))},
            "content": shas if kind is SetKind.FULL else new,
            "files": files,
        }
        manifest["paperwork"] = _paperwork(store, medium, manifest, work, len(new), nbytes,
                                           len(shas), actor)
        write_atomic(work / "manifest.json",
                     json.dumps(manifest, ensure_ascii=False, indent=1).encode())
        for p in work.rglob("*"):
            if p.is_file():
                with p.open("rb") as fh:
                    os.fsync(fh.fileno())
        os.replace(work, medium.sets_dir / set_id)
        fsync_dir(medium.sets_dir)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    paperwork.write_label(store, medium)
    result = BackupResult(medium.label, set_id, kind, tree_size, db_sha, pages * page_size,
                          pages_written, len(new), nbytes, len(shas), healed)
    medium.log({"event": "backup", "at": iso(now), "actor": actor, **result.to_json()})
    _log_event(store, Kind.ARCHIVE_BACKUP, "backup", True, result.to_json(), actor)
    return result


def _paperwork(store: Store, medium: Medium, manifest: dict[str, Any], work: Path,
               content_new: int, content_bytes: int, content_total: int,
               actor: str) -> dict[str, str]:
    """metadata.xml (the records changed since the base set, all of them in a full set) and
    the backup minutes, into the set's folder; their SHA-256 for the manifest."""
    since = 0
    if manifest.get("base"):
        since = int(medium.manifest(str(manifest["base"]))["tree_size"])
    xml = paperwork.metadata_xml(store, manifest, since)
    write_atomic(work / paperwork.METADATA_FILE, xml)
    records = xml.count(b" log_index=")
    facts = {**manifest, "content_new": content_new, "content_bytes": content_bytes,
             "content_total": content_total}
    pdf = paperwork.minutes_pdf(store, medium, facts, actor, records)
    write_atomic(work / paperwork.MINUTES_FILE, pdf)
    return {paperwork.METADATA_FILE: hashlib.sha256(xml).hexdigest(),
            paperwork.MINUTES_FILE: hashlib.sha256(pdf).hexdigest()}


def _write_increment(
    medium: Medium, base_id: str, snap: Path, page_size: int, hashes: bytes, work: Path
) -> int:
    """Write the pages of ``snap`` whose hash differs from the base set's (or are new)."""
    base_hashes = (medium.sets_dir / base_id / PAGE_HASHES).read_bytes()
    base_m = medium.manifest(base_id)
    if int(base_m["db"]["page_size"]) != page_size:
        raise LuutruError("the database page size changed: take a full backup")
    written = 0
    with snap.open("rb") as src, (work / DB_PAGES).open("wb") as out:
        out.write(PAGES_MAGIC)
        pages = len(hashes) // 32
        out.write(struct.pack(">II", page_size, pages))
        for n in range(pages):
            h = hashes[32 * n: 32 * n + 32]
            if base_hashes[32 * n: 32 * n + 32] == h:
                continue
            src.seek(n * page_size)
            out.write(struct.pack(">I", n))
            out.write(src.read(page_size))
            written += 1
    return written


def _log_event(
    store: Store, kind: str, audit_kind: str, ok: bool, data: dict[str, Any], actor: str,
    refs: tuple[bytes, ...] = (),
) -> int:
    def job(txn: Any) -> int:
        state.ensure_schema(txn.conn)
        entry = writes.append_event(txn, kind, actor, data, refs=refs)
        state.record_audit(txn, entry, audit_kind, ok, data)
        return entry.index

    return int(store.writer_or_fail().call(job))


def run_scheduled(
    store: Store, media: list[Path], *, actor: str = "luutru serve"
) -> list[BackupResult]:
    """run_once for the serve loop: a set on each medium that has none today (policy kind)."""
    today = store.clock.now().date()
    out = []
    for path in media:
        medium = open_medium(path, origin=store.config.origin, create=True)
        done_today = [
            s for s in medium.set_ids()
            if dt.datetime.fromisoformat(medium.manifest(s)["created"]).date() == today
        ]
        if not done_today:
            out.append(backup(store, path, actor=actor))
    return out


def chain(medium: Medium, set_id: str | None = None) -> list[dict[str, Any]]:
    """Manifests to apply to restore ``set_id`` (default: the latest): its full set first."""
    ids = medium.set_ids()
    if not ids:
        raise LuutruError(f"{medium.label} holds no backup set")
    target = set_id or ids[-1]
    out: list[dict[str, Any]] = []
    current: str | None = target
    while current is not None:
        m = medium.manifest(current)
        out.append(m)
        current = m.get("base") if m["kind"] == SetKind.INCREMENTAL.value else None
    out.reverse()
    return out


def rebuild_db(medium: Medium, manifests: list[dict[str, Any]], dest: Path) -> str:
    """Write the database of the last set in ``manifests`` to ``dest``; returns its SHA-256."""
    from .errors import RestoreError

    first = manifests[0]
    src = medium.sets_dir / first["set_id"] / DB_FULL
    if _file_sha(src) != first["db"]["part_sha256"]:
        raise RestoreError(f"{src} on {medium.label} is corrupt (SHA-256 differs)")
    shutil.copyfile(src, dest)
    for m in manifests[1:]:
        part = medium.sets_dir / m["set_id"] / DB_PAGES
        if _file_sha(part) != m["db"]["part_sha256"]:
            raise RestoreError(f"{part} on {medium.label} is corrupt (SHA-256 differs)")
        with part.open("rb") as fh, dest.open("r+b") as out:
            if fh.read(len(PAGES_MAGIC)) != PAGES_MAGIC:
                raise RestoreError(f"{part} is not a page increment")
            page_size, pages = struct.unpack(">II", fh.read(8))
            while head := fh.read(4):
                (n,) = struct.unpack(">I", head)
                out.seek(n * page_size)
                out.write(fh.read(page_size))
            out.truncate(pages * page_size)
    sha = _file_sha(dest)
    if sha != manifests[-1]["db"]["sha256"]:
        raise RestoreError(
            f"the rebuilt database of set {manifests[-1]['set_id']} does not have the SHA-256 "
            "its manifest records"
        )
    return sha
