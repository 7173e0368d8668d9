"""Purging classified records that reached the centre before the rule covered every entry.

Earlier versions let some entries that name a classified (mật) record travel in full: a hồ sơ's
contents list naming a mật member, a mật hồ sơ's own entries. ``purge_classified`` finds them
in what the centre holds and keeps only their leaf hashes, exactly as if the appliance had
withheld them, so every root and proof still verifies; the projections built from them, the
content files only they referenced, parked batches and fork evidence carrying them go too.
An anomaly records what was purged. Then the storage is compacted so that the deleted bytes do
not linger in free pages or the write-ahead log.

Which records are classified is learnt from the entries themselves: a record whose own version
says Mode/Rights 03, every record inside a map that says so (a contents list's item), and the
documents filed in a classified hồ sơ; then every entry naming any of them (the same rule as
the appliance's outbox, ``appliance.classified``) is purged.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from appliance import cbor
from appliance.classified import CLASSIFIED, ClassifiedSet, classified_maps, named_ids
from appliance.errors import EncodingError

from . import catalogue
from .centre import Centre
from .storage import AnomalyKind, CentreView

CHUNK = 5000  # entries read per query
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass
class PurgeReport:
    appliances: int = 0
    entries_scanned: int = 0
    entries_purged: int = 0
    documents_removed: int = 0
    content_removed: int = 0
    by_appliance: dict[str, int] = field(default_factory=dict)
    dry_run: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "appliances": self.appliances,
            "entries_scanned": self.entries_scanned,
            "entries_purged": self.entries_purged,
            "documents_removed": self.documents_removed,
            "content_removed": self.content_removed,
            "by_appliance": dict(self.by_appliance),
            "dry_run": self.dry_run,
        }


def _entries(
    view: CentreView, appliance_id: str, size: int
) -> Iterator[tuple[int, dict[str, Any]]]:
    for start in range(0, size, CHUNK):
        for row in view.entries(appliance_id, start, min(size, start + CHUNK)):
            if row.entry is None:
                continue
            try:
                m = cbor.loads(row.entry)
            except EncodingError:
                continue
            if isinstance(m, dict):
                yield row.index, m


def _learn(entries: list[tuple[int, dict[str, Any]]]) -> ClassifiedSet:
    """The classified records and content the centre's copy of one log reveals."""
    ids: set[str] = set()
    codes: set[str] = set()
    content: set[str] = set()
    for _idx, m in entries:
        data = m.get("data")
        for marked in classified_maps(data):
            found = named_ids({"data": marked})
            if marked is data and isinstance(m.get("id"), str):
                found.add(m["id"])
                content.update(bytes(r).hex() for r in m.get("refs") or ())
            ids.update(found)
            if marked.get("Rights") == CLASSIFIED and isinstance(marked.get("FileCode"), str):
                codes.add(marked["FileCode"])
            for c in marked.get("Content") or marked.get("content") or ():
                sha = c.get("sha256") if isinstance(c, Mapping) else c
                if isinstance(sha, str) and _SHA256.fullmatch(sha):
                    content.add(sha)
    # Documents filed in a classified hồ sơ are classified too (appliance.classified).
    for _idx, m in entries:
        data = m.get("data")
        if not isinstance(data, Mapping) or data.get("FileCode") not in codes:
            continue
        if m.get("type") == "document" and isinstance(m.get("id"), str):
            ids.add(m["id"])
        if m.get("type") == "membership" and isinstance(data.get("DocumentId"), str):
            ids.add(data["DocumentId"])
    for _idx, m in entries:
        if m.get("id") in ids:
            content.update(bytes(r).hex() for r in m.get("refs") or ())
    return ClassifiedSet.of(ids, codes, content)


def purge_classified(centre: Centre, dry_run: bool = False) -> PurgeReport:
    """Keep only the leaf hash of every held entry that names a classified record."""
    rep = PurgeReport(dry_run=dry_run)
    with centre.storage.view() as view:
        apps = view.appliances()
    for app in apps:
        rep.appliances += 1
        with centre.storage.view() as view:
            entries = list(_entries(view, app.id, app.accepted_size))
        rep.entries_scanned += len(entries)
        secret = _learn(entries)
        doomed = [idx for idx, m in entries if secret.withholds(m)]
        if not doomed:
            continue
        rep.by_appliance[app.id] = len(doomed)
        rep.entries_purged += len(doomed)
        if dry_run:
            continue
        with centre.storage.transaction() as tx:
            docs, shas = tx.withhold_entries(
                app.id, doomed, sorted(secret.ids), sorted(secret.content)
            )
            catalogue.reproject(tx, app, centre.now())  # nothing purged stays published
            tx.record_anomaly(
                app.id, AnomalyKind.CLASSIFIED,
                f"purged {len(doomed)} entries naming classified records that an earlier "
                "version sent in full (leaf hashes kept)",
                centre.now(),
            )
        rep.documents_removed += docs
        for sha in shas:
            if centre.blobs.remove(sha):
                rep.content_removed += 1
    if rep.entries_purged and not dry_run:
        centre.storage.compact()
    return rep
