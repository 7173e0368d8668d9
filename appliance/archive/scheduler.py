"""What the serve process runs periodically for the archive: backups and the fixity audit.

Configuration is ``<data>/archive.json`` (optional)::

    {"backup_media": ["/mnt/usb-luutru"], "fixity_interval_days": 365}

``run_once(store, config)`` is safe to call as often as wanted (e.g. hourly): a backup set is
made once a day per medium (full on the first of a month), the audit once per interval.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, LuutruError

if TYPE_CHECKING:
    from ..store import Store

CONFIG_NAME = "archive.json"


@dataclass(frozen=True)
class ArchiveConfig:
    backup_media: tuple[Path, ...] = ()
    fixity_interval_days: int = 365


def load_archive_config(data_dir: Path) -> ArchiveConfig:
    path = data_dir / CONFIG_NAME
    if not path.is_file():
        return ArchiveConfig()
    try:
        raw = json.loads(path.read_text("utf-8"))
        if not isinstance(raw, dict):
            raise ValueError("it is not a JSON object")
        media = raw.get("backup_media", [])
        if not isinstance(media, list):  # a lone path would be read letter by letter
            raise ValueError("backup_media must be a list of folders")
        return ArchiveConfig(
            tuple(Path(p) for p in media),
            int(raw.get("fixity_interval_days", 365)),
        )
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"{path} is malformed: {exc}") from exc


def run_once(store: Store, config: ArchiveConfig, actor: str = "luutru serve") -> dict[str, Any]:
    """One pass: due backups, then a due audit. Errors are reported, not raised (retry later)."""
    from . import backup, fixity

    out: dict[str, Any] = {"backups": [], "audit": None, "errors": []}
    for medium in config.backup_media:  # one failing medium must not cost the others their set
        try:
            out["backups"] += [
                r.to_json() for r in backup.run_scheduled(store, [medium], actor=actor)
            ]
        except LuutruError as exc:
            out["errors"].append(f"backup to {medium}: {exc}")
    try:
        res = fixity.run_scheduled(store, list(config.backup_media),
                                   interval_days=config.fixity_interval_days, actor=actor)
        out["audit"] = res.to_json() if res else None
    except LuutruError as exc:
        out["errors"].append(f"fixity: {exc}")
    return out
