"""The centre's check of versions a box sends inside another (appliance/versions.py).

A box sends a scanned page once: the signed PDF, whose first bytes are the unsigned PDF/A it
extends. The entries name both hashes; when the signed file is stored here, the PDF/A's hash
is checked against that file's prefix. A version that does not hash right is an anomaly
(``content_mismatch``) and is then listed as missing, so the box has to send it itself: no
trust is lost by not sending it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable

from .anomalies import note
from .centre import Centre
from .storage import AnomalyKind

log = logging.getLogger(__name__)


def check_containers(centre: Centre, containers: Iterable[str]) -> tuple[int, int]:
    """Check every unchecked version inside each stored file of ``containers``; returns
    (checked right, mismatched)."""
    good = bad = 0
    for container in dict.fromkeys(containers):
        with centre.storage.view() as v:
            pending = v.links_within(container)
        if not pending or not centre.blobs.has(container):
            continue
        with centre.blobs.open(container) as fh:
            head = fh.read(max(link.size for _, link in pending))
        results = [
            (app_id, link, hashlib.sha256(head[: link.size]).hexdigest() == link.sha256
             and len(head) >= link.size)
            for app_id, link in pending
        ]
        now = centre.now()
        with centre.storage.transaction() as tx:
            for app_id, link, ok in results:
                tx.check_link(app_id, link.sha256, ok, now)
        for app_id, link, ok in results:
            if ok:
                good += 1
                continue
            bad += 1
            detail = (
                f"content {link.sha256} is said to be the first {link.size} bytes of "
                f"{container}, but they do not hash to it; the box must send it itself"
            )
            log.warning("appliance %s: %s", app_id, detail)
            note(centre, app_id, AnomalyKind.CONTENT_MISMATCH, detail)
    return good, bad
