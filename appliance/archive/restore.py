"""Restoring a data folder onto an empty one, from a source: a backup medium (here), or the
provincial centre (another part adds a source with the same shape).

A source writes a complete data folder (configuration, device key, database, content) into
an empty temporary folder; the common part verifies it with ``luutru verify``'s library,
moves it into place, and logs the restore. Nothing is written to a non-empty target.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .. import writes
from ..clock import SystemClock, iso
from ..config import DB_NAME
from ..errors import LuutruError
from ..fsutil import fsync_dir
from ..kinds import Kind
from .backup import CONFIG_FILES, chain, rebuild_db
from .errors import RestoreError
from .medium import copy_verified, open_medium


class RestoreSource(Protocol):
    """Where a restore comes from; ``materialise`` fills an empty folder with a data folder."""

    label: str

    def materialise(self, target: Path) -> dict[str, Any]:
        """Write config, keys, database and content into ``target``; return provenance."""
        ...


@dataclass
class BackupDirSource:
    """A backup medium (``luutru restore --from-backup DIR [--set ID]``)."""

    path: Path
    set_id: str | None = None
    label: str = ""

    def materialise(self, target: Path) -> dict[str, Any]:
        medium = open_medium(self.path)
        self.label = medium.label
        manifests = chain(medium, self.set_id)
        last = manifests[-1]
        db_sha = rebuild_db(medium, manifests, target / DB_NAME)
        files: dict[str, str] = {}
        for m in manifests:
            files.update(m.get("files", {}))
        src_dir = medium.sets_dir / last["set_id"] / "files"
        for rel, sha in last.get("files", {}).items():
            with (src_dir / rel).open("rb") as fh:
                copy_verified(fh, target / rel, sha, target / ".restore-tmp")
            mode = 0o640 if rel in CONFIG_FILES else 0o600
            os.chmod(target / rel, mode)
        shas: set[str] = set()
        for m in manifests:
            shas.update(m.get("content", []))
        content = target / "content"
        missing = []
        for sha in sorted(shas):
            src = medium.content_path(sha)
            if not src.is_file():
                missing.append(sha)
                continue
            dest = content / "sha256" / sha[:2] / sha[2:4] / sha
            with src.open("rb") as fh:
                try:
                    copy_verified(fh, dest, sha, content / "tmp")
                except LuutruError as exc:
                    raise RestoreError(
                        f"content file {sha} on {medium.label} ({src}) is corrupt; heal the "
                        "medium (luutru fixity --media … --heal) or restore from the other copy"
                    ) from exc
        if missing:
            raise RestoreError(
                f"{len(missing)} content files are missing on {medium.label}, e.g. {missing[0]}"
            )
        shutil.rmtree(target / ".restore-tmp", ignore_errors=True)
        medium.log({"event": "restore", "at": iso(SystemClock().now()), "set_id": last["set_id"],
                    "chain": [m["set_id"] for m in manifests], "content_files": len(shas)})
        return {
            "source": "backup",
            "medium": medium.label,
            "set_id": last["set_id"],
            "chain": [m["set_id"] for m in manifests],
            "db_sha256": db_sha,
            "tree_size": last["tree_size"],
            "content_files": len(shas),
        }


@dataclass
class RestoreResult:
    data_dir: Path
    provenance: dict[str, Any]
    verify: dict[str, Any]
    logged_index: int | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "data_dir": str(self.data_dir),
            "provenance": self.provenance,
            "verify": self.verify,
            "logged_index": self.logged_index,
            "notes": self.notes,
        }


def _empty(target: Path) -> bool:
    return not target.exists() or (target.is_dir() and not any(target.iterdir()))


def restore_data_dir(target: Path, source: RestoreSource, actor: str = "system") -> RestoreResult:
    """Restore onto ``target`` (absent or empty), verify everything, then log the restore."""
    from ..verify import verify_data_dir

    target = Path(target)
    if not _empty(target):
        raise RestoreError(
            f"{target} is not empty: restore only onto an empty data folder (nothing was changed)"
        )
    work = target.parent / f".{target.name}.restoring"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        provenance = source.materialise(work)
        report = verify_data_dir(work)
        if not report.ok:
            problems = "; ".join(f.message for f in report.findings[:5])
            raise RestoreError(f"the restored data folder does not verify: {problems}")
        if target.exists():
            target.rmdir()
        os.replace(work, target)
        fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    result = RestoreResult(target, provenance, report.to_json())
    result.logged_index = _log_restore(target, provenance, actor, result)
    return result


def _log_restore(
    target: Path, provenance: dict[str, Any], actor: str, result: RestoreResult
) -> int | None:
    """Record the restore in the restored log (needs the device key to seal it)."""
    from ..store import Store
    from . import state

    try:
        store = Store.open(target, clock=SystemClock())
    except LuutruError as exc:
        result.notes.append(f"restore not logged in the appliance log: {exc}")
        return None
    try:

        def job(txn: Any) -> int:
            state.ensure_schema(txn.conn)
            data = dict(provenance, at=iso(txn.clock.now()))
            entry = writes.append_event(txn, Kind.ARCHIVE_RESTORE, actor, data)
            state.record_audit(txn, entry, "restore", True, data)
            return entry.index

        index = int(store.writer_or_fail().call(job))
        store.wait_sealed()
        return index
    finally:
        store.close()
