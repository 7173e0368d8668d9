"""The agent's side of the signature upgrade: fetch each version the centre made, check it,
keep it as the document's newest content version.

Every status and batch answer (signed by the centre) may list ``upgrades``: ``{doc, from,
sha256, size, level}``, the versions of this box's signed PDFs that the centre made long-term
valid (``sync/central/ltv_job.py``) and that the box's log does not name yet. The agent
downloads each with signed ``upgrade`` requests (``POST /v1/upgrade``, 4 MiB per answer),
checks the SHA-256 the signed answer gave and that no signed byte of the original moved
(``appliance.signature_upgrade.check_upgrade``), stores it, and appends the ``document.ltv``
entry. That entry reaches the centre with the next batch and ends the listing. A version that
fails a check is refused (logged, counted) and the original stays as it is.

A box that syncs by USB stick only gets the same list in the signed status `luutru central
import` writes on the stick, and the versions beside it (``inbox/upgrades/<sha256>``);
``luutru sync --import-receipts`` checks and records them the same way (``take_from_folder``).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.errors import LuutruError
from appliance.keys.base import KeyProvider
from appliance.signature_upgrade import check_upgrade, record_upgrade
from appliance.store import Store
from appliance.versions import still_referenced

from .. import wire
from ..errors import TransportError
from .transport import Transport

log = logging.getLogger(__name__)
PATH = "/v1/upgrade"
LEVELS = ("B-T", "B-LT", "B-LTA")
MAX_BYTES = 1 << 30


@dataclass
class UpgradesTaken:
    recorded: int = 0
    refused: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Offer:
    doc: str
    source: str
    sha256: str
    size: int
    level: str

    @classmethod
    def parse(cls, item: Any) -> Offer:
        if not isinstance(item, dict):
            raise ValueError("an upgrade is not a map")
        offer = cls(str(item["doc"]), str(item["from"]), str(item["sha256"]),
                    int(item["size"]), str(item["level"]))
        if not re.fullmatch(r"[0-9a-f]{64}", offer.sha256):
            raise ValueError("an upgrade's SHA-256 is not 64 hex digits")
        if offer.level not in LEVELS or not 0 < offer.size <= MAX_BYTES:
            raise ValueError(f"upgrade {offer.sha256[:12]} has level {offer.level!r}, "
                             f"size {offer.size}")
        return offer


async def _download(
    client: Transport, key: KeyProvider, now: Callable[[], str], offer: Offer
) -> bytes:
    data = bytearray()
    while len(data) < offer.size:
        raw = wire.sign_request(
            key, wire.RequestType.UPGRADE, 0, now(), {"sha256": offer.sha256, "offset": len(data)}
        )
        status, body = await client.post_cbor(PATH, raw)
        if status >= 500:
            raise TransportError(f"the centre answered HTTP {status} for an upgrade")
        if status != 200 or not body:
            raise ValueError(f"the centre refused upgrade {offer.sha256[:12]}: HTTP {status}")
        data.extend(body)
    return bytes(data)


def _keep(store: Store, offer: Offer, data: bytes) -> None:
    if hashlib.sha256(data).hexdigest() != offer.sha256 or len(data) != offer.size:
        raise ValueError(f"upgrade {offer.sha256[:12]} does not match its signed SHA-256")
    with store.content.open(offer.source) as fh:
        original = fh.read()
    check_upgrade(original, data)
    stored = store.content.put_bytes(data)
    record_upgrade(
        store, offer.doc, offer.source, {"sha256": stored.sha256, "size": stored.size},
        offer.level,
    )
    # Stored once: the signed original differs from its upgrade only in the /Contents digits
    # the time-stamp went into (check_upgrade made sure of it), so it is kept as those few
    # byte ranges against the upgrade; reading it rebuilds it and checks its SHA-256.
    if not still_referenced(store.reader(), offer.source, except_doc=offer.doc):
        store.content.derive(offer.source, stored.sha256)


def _wanted(store: Store, item: Any) -> Offer | None:
    """The offer of ``item``, or None when the box recorded that version already."""
    offer = Offer.parse(item)
    if not store.content.exists(offer.source):
        raise ValueError(f"this box holds no content {offer.source[:12]}")
    held = store.get("document", offer.doc).data.get("Content") or []
    if any(c.get("sha256") == offer.sha256 for c in held):
        return None  # recorded; the centre learns it from the next batch
    return offer


REFUSABLE = (LuutruError, ValueError, KeyError, TypeError, OSError)


@contextmanager
def _refusing(taken: UpgradesTaken) -> Iterator[None]:
    """One offer's work: a version that fails a check is refused (logged, counted) and the
    next one is taken; the link failing is not a refusal and ends the pass."""
    try:
        yield
    except TransportError:
        raise
    except REFUSABLE as exc:
        log.warning("signature upgrade refused: %s", exc)
        taken.refused.append(str(exc))


async def take_upgrades(
    store: Store, key: KeyProvider, client: Transport, now: Callable[[], str], items: Any
) -> UpgradesTaken:
    """Fetch, check and record every upgrade an answer lists (see the module docstring)."""
    taken = UpgradesTaken()
    for item in items if isinstance(items, list) else []:
        with _refusing(taken):
            offer = _wanted(store, item)
            if offer is None:
                continue
            data = await _download(client, key, now, offer)
            await asyncio.to_thread(_keep, store, offer, data)
            taken.recorded += 1
    return taken


def take_from_folder(store: Store, items: Any, folder: Path) -> UpgradesTaken:
    """Check and record every upgrade a status from a USB stick lists, reading each version
    from ``folder`` (where `luutru central import` put it); one not on the stick yet waits
    for the next stick."""
    taken = UpgradesTaken()
    for item in items if isinstance(items, list) else []:
        with _refusing(taken):
            offer = _wanted(store, item)
            if offer is None:
                continue
            path = folder / offer.sha256
            if not path.is_file():
                log.info("upgrade %s is not on this stick yet", offer.sha256[:12])
                continue
            if path.stat().st_size != offer.size:
                raise ValueError(f"upgrade {offer.sha256[:12]} on the stick has another size")
            _keep(store, offer, path.read_bytes())
            taken.recorded += 1
    return taken
