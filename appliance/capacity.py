"""How full the box's storage is, how fast it fills, and what each scanned page costs.

``capacity`` reads the disk and the content store (no record contents): bytes used by content
and by the database, the free space, the rate the content store grew over the last
``window_days`` (from the files' own times), the days left at that rate, and what keeping
lossless masters would add at the rate scans were filed (appliance/versions.py, ``keep``).
``page_sizes`` splits a stored PDF's bytes over its pages, for the document page.
"""

from __future__ import annotations

import io
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DAY = 86400.0


@dataclass(frozen=True)
class Capacity:
    content_bytes: int  # the content store (files and derived records)
    database_bytes: int  # luutru.db with its WAL, the capture queue
    disk_total: int
    disk_free: int
    per_day: float  # content bytes added per day over the window
    window_days: float  # how many days the rate is measured over (less for a new box)
    masters: str  # "off", "box" or "sync"
    masters_per_day: float  # what lossless masters add (or would add) per day

    @property
    def days_left(self) -> float | None:
        """Days until the disk is full at the current rate (None: nothing is being added)."""
        return self.disk_free / self.per_day if self.per_day > 0 else None

    @property
    def days_left_with_masters(self) -> float | None:
        extra = self.masters_per_day if self.masters == "off" else 0.0
        rate = self.per_day + extra
        return self.disk_free / rate if rate > 0 else None

    def to_json(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["days_left"] = self.days_left
        out["days_left_with_masters"] = self.days_left_with_masters
        return out


def _files(root: Path) -> list[tuple[int, float]]:
    out = []
    for sub in ("sha256", "derived"):
        base = root / sub
        if base.is_dir():
            for p in base.glob("*/*/*"):
                st = p.stat()
                out.append((st.st_size, st.st_mtime))
    return out


def _first_index_since(db: Any, since: float) -> int:
    """The first log index whose entry was written at or after ``since`` (log order is time
    order): a binary search decoding a few entries."""
    from datetime import datetime

    from . import cbor

    row = db.execute("SELECT max(idx) FROM log").fetchone()
    lo, hi = 0, (int(row[0]) + 1) if row and row[0] is not None else 0
    while lo < hi:
        mid = (lo + hi) // 2
        raw = db.execute("SELECT entry FROM log WHERE idx = ?", (mid,)).fetchone()
        t = cbor.loads(bytes(raw[0])).get("at") if raw and raw[0] else None
        when = datetime.fromisoformat(t).timestamp() if isinstance(t, str) else since
        if when < since:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _released_scans(data_dir: Path, since: float) -> int:
    """Bytes of lossless scans filed since ``since`` that their archival version replaced
    (released, or kept on the box as masters): what masters cost in that time."""
    import sqlite3

    db = sqlite3.connect(f"file:{data_dir / 'luutru.db'}?mode=ro", uri=True)
    try:
        start = _first_index_since(db, since)
        filed = dict(db.execute(
            "SELECT sha256, size FROM content WHERE first_log_index >= ?", (start,)
        ).fetchall())
        total = 0
        seen: set[str] = set()
        for (raw,) in db.execute(
            'SELECT "Content" FROM documents WHERE log_index >= ? AND "Content" LIKE ?',
            (start, '%"keep"%'),
        ):
            for c in json.loads(raw):
                sha = c["sha256"]
                if c.get("keep") in ("none", "box") and sha in filed and sha not in seen:
                    seen.add(sha)
                    total += int(filed[sha])
        return total
    finally:
        db.close()


def capacity(data_dir: Path, masters: str, now: float | None = None,
             window_days: float = 30.0) -> Capacity:
    """The box's storage now and its rate over the last ``window_days``."""
    now = time.time() if now is None else now
    files = _files(data_dir / "content")
    content = sum(size for size, _ in files)
    oldest = min((m for _, m in files), default=now)
    window = max(1.0, min(window_days, (now - oldest) / DAY)) if files else window_days
    since = now - window * DAY
    recent = sum(size for size, m in files if m >= since)
    db = sum(p.stat().st_size for p in data_dir.glob("luutru.db*")) + sum(
        p.stat().st_size for p in (data_dir / "capture").glob("queue.db*")
    )
    disk = shutil.disk_usage(data_dir)
    return Capacity(
        content_bytes=content,
        database_bytes=db,
        disk_total=disk.total,
        disk_free=disk.free,
        per_day=recent / window,
        window_days=window,
        masters=masters,
        masters_per_day=_released_scans(data_dir, since) / window,
    )


def page_sizes(pdf: bytes) -> list[int]:
    """Each page's share of ``pdf``: the streams only it uses (its images, its content), plus
    an equal part of the rest (fonts, colour profile, signature); they add up to the file."""
    import pikepdf

    with pikepdf.open(io.BytesIO(pdf)) as doc:
        own: list[int] = []
        for page in doc.pages:
            n = 0
            for im in page.get_images().values():
                n += len(im.read_raw_bytes())
                mask = im.get("/Mask")
                if isinstance(mask, pikepdf.Stream):
                    n += len(mask.read_raw_bytes())
            contents = page.obj.get("/Contents")
            streams = contents if isinstance(contents, pikepdf.Array) else [contents]
            n += sum(len(s.read_raw_bytes()) for s in streams if isinstance(s, pikepdf.Stream))
            own.append(n)
    if not own:
        return []
    rest = max(0, len(pdf) - sum(own))
    share = [rest // len(own)] * len(own)
    share[0] += rest - sum(share)
    return [a + b for a, b in zip(own, share, strict=True)]
