"""What the home, device and API status pages show of the box itself: the seal, sync, the
device key and software (no record contents: the technician sees these)."""

from __future__ import annotations

import datetime as dt
import sys
from typing import Any

from appliance.archive.copies import CopiesStatus
from appliance.errors import LuutruError

from .services import Services


def today(s: Services) -> dt.date:
    return s.store.clock.now().date()


def status_summary(s: Services) -> dict[str, Any]:
    """Seal and sync state for the home and device pages (no record contents)."""
    from sync.agent.status import sync_status

    size, _ = s.store.tree_head()
    cp = s.store.latest_checkpoint()
    signed = cp[0] if cp else 0
    sync = sync_status(s.store.data_dir, size)
    return {
        "tree_size": size,
        "signed_size": signed,
        "signed_at": cp[2] if cp else None,
        "unsealed": size - signed,
        "key_backing": s.key_backing,
        "sync": sync,
        "copies": copies_status(s, sync.confirmed_size, sync.pending_content,
                                sync.enrolled).to_json(),
    }


def copies_status(
    s: Services, confirmed: int, pending_content: int, enrolled: bool
) -> CopiesStatus:
    """The two-copies rule (TT 05/2025 Điều 27) for the home page: the backup media of
    <data>/archive.json, and the centre once its receipts cover everything."""
    from appliance.archive.copies import independent_copies
    from appliance.archive.scheduler import load_archive_config

    try:
        media = list(load_archive_config(s.store.data_dir).backup_media)
    except LuutruError:
        media = []
    return independent_copies(s.store, media, centre_confirmed=confirmed,
                              centre_pending_content=pending_content, centre_enrolled=enrolled)


def device_info(s: Services) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    cfg = s.store.config
    pem = s.store.key.public_key_pem() if s.store.key is not None else ""
    kid = s.store.key.kid.hex() if s.store.key is not None else ""
    try:
        ver = version("luutru")
    except PackageNotFoundError:
        ver = "dev"
    cp = None
    try:
        verified = s.seal.checkpoint()
        if verified is not None:
            cp = {"size": verified[0], "time": verified[1].time,
                  "root": verified[1].root_hash.hex(), "verified": True}
    except LuutruError as exc:
        cp = {"verified": False, "error": str(exc)}
    from appliance.capacity import capacity

    storage = capacity(s.store.data_dir, cfg.scans.masters, s.store.clock.now().timestamp())
    return {
        "storage": storage.to_json(),
        "org_id": cfg.org_id,
        "org_name": cfg.org_name,
        "origin": cfg.origin,
        "key_backing": s.key_backing,
        "key_kid": kid,
        "public_key_pem": pem,
        "secrets": s.secrets_description,
        "secrets_sealed": s.secrets_sealed,
        "checkpoint": cp,
        "version": ver,
        "python": sys.version.split()[0],
        "data_dir": str(s.store.data_dir),
        "max_upload": s.config.max_upload,
    }
