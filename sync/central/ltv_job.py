"""The scheduled signature upgrade: find the boxes' signed PDFs, make them B-LTA, renew, report.

``run_once`` is one pass (`luutru central ltv run`; `central serve` runs it every
``ltv.interval_s``): (1) content that reached the centre and was never looked at is read; a
signed PDF of a document becomes *pending*, anything else *not_signed*; (2) each pending (or
retry-due) file is upgraded (``ltv.upgrade``): the new file is a blob of its own, a *version*
row, and the original's ``current_sha256``; (3) an upgraded file whose last time-stamp's
certificate or digest algorithm comes within ``renew_margin_days`` of its end is renewed
(``ltv.renew``) into a newer version. When the TSA or the revocation services cannot be
reached, the file goes to *retry* with capped exponential backoff and the report says why;
nothing is lost and nothing is half-written (a version exists only once its blob is stored).

The box learns of a new version from the ``upgrades`` list in every status and batch answer
(``undelivered``: versions its log does not name yet) and fetches it with a signed
``upgrade`` request (``fetch_version``); its ``document.ltv`` entry is the acknowledgement.
"""

from __future__ import annotations

import io
import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from appliance import cbor
from appliance import clock as clockmod
from appliance.ledger import Entry

from . import ltv
from .centre import Centre
from .storage import ContentRef, LtvRow, LtvState

UNDELIVERED_LISTED = 20  # versions named in one answer
PIECE = 4 << 20  # bytes per fetch answer


@dataclass
class LtvRun:
    """What one pass did."""

    configured: bool = True
    looked_at: int = 0
    pending: int = 0
    not_signed: int = 0
    upgraded: int = 0
    renewed: int = 0
    retry: int = 0
    refused: int = 0
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def context(centre: Centre) -> ltv.LtvContext:
    settings = centre.config.ltv
    return ltv.LtvContext(
        settings, ltv.load_roots(centre.data_dir, settings), centre.clock.now()
    )


def _doc_id(centre: Centre, app_id: str, ref: ContentRef) -> str | None:
    with centre.storage.view() as v:
        rows = v.entries(app_id, ref.first_index, ref.first_index + 1)
    if not rows or rows[0].entry is None:
        return None
    entry = Entry.from_map(cbor.loads(rows[0].entry))
    return str(entry.id) if entry.type == "document" and entry.id else None


def _read(centre: Centre, sha256: str) -> bytes:
    with centre.blobs.open(sha256) as fh:
        return fh.read()


def discover(centre: Centre, run: LtvRun, limit: int) -> None:
    """Classify content never looked at: signed PDFs of documents become pending."""
    with centre.storage.view() as v:
        found = v.ltv_candidates(limit)
    for app_id, ref in found:
        run.looked_at += 1
        now = centre.now()
        with centre.blobs.open(ref.sha256) as fh:
            head = fh.read(8)
            signed = head.startswith(ltv.PDF_MAGIC) and ltv.looks_signed(head + fh.read())
        doc = _doc_id(centre, app_id, ref) if signed else None
        state = LtvState.PENDING if signed and doc else LtvState.NOT_SIGNED
        run.pending += state is LtvState.PENDING
        run.not_signed += state is LtvState.NOT_SIGNED
        with centre.storage.transaction() as tx:
            tx.put_ltv(LtvRow(app_id, ref.sha256, state, now, doc_id=doc))


def _backoff(settings: ltv.LtvSettings, attempts: int) -> float:
    base = settings.retry_base_s * (2 ** max(0, attempts - 1))
    return float(min(settings.retry_cap_s, base) * random.uniform(0.8, 1.2))


def _store_version(centre: Centre, row: LtvRow, up: ltv.Upgraded, previous: str) -> LtvRow:
    """The new file as a blob and a version row; returns the original's updated row."""
    sha = up.sha256
    if not centre.blobs.put_stream(sha, io.BytesIO(up.pdf)):
        raise ltv.LtvError("the upgraded file did not store with its own SHA-256")
    now = centre.now()
    original = LtvRow(
        row.appliance_id, row.sha256, LtvState.UPGRADED, now, doc_id=row.doc_id,
        current_sha256=sha, level=up.level, timestamp_at=clockmod.iso(up.timestamp_at),
        renew_by=clockmod.iso(up.renew_by),
    )
    with centre.storage.transaction() as tx:
        tx.record_blob(sha, len(up.pdf), now)
        tx.put_ltv(LtvRow(
            row.appliance_id, sha, LtvState.VERSION, now, doc_id=row.doc_id,
            source_sha256=row.sha256, previous_sha256=previous, level=up.level,
            timestamp_at=original.timestamp_at, renew_by=original.renew_by,
        ))
        tx.put_ltv(original)
    return original


def _work(centre: Centre, ctx: ltv.LtvContext, row: LtvRow, run: LtvRun) -> None:
    renewing = row.state is LtvState.UPGRADED and row.current_sha256 is not None
    source = row.current_sha256 if renewing and row.current_sha256 else row.sha256
    try:
        pdf = _read(centre, source)
        up = ltv.renew(pdf, ctx) if renewing else ltv.upgrade(pdf, ctx)
        _store_version(centre, row, up, source)
        if renewing:
            run.renewed += 1
        else:
            run.upgraded += 1
        return
    except ltv.LtvUnavailable as exc:
        attempts = row.attempts + 1
        retry_at = centre.clock.now() + timedelta(seconds=_backoff(ctx.settings, attempts))
        new = LtvRow(**{**row.__dict__, "attempts": attempts, "last_error": str(exc),
                        "updated_at": centre.now(), "next_try_at": clockmod.iso(retry_at)})
        if not renewing:
            new = LtvRow(**{**new.__dict__, "state": LtvState.RETRY})
        run.retry += 1
    except (ltv.LtvError, OSError) as exc:
        if renewing:
            new = LtvRow(**{**row.__dict__, "last_error": str(exc), "updated_at": centre.now()})
        else:
            state = LtvState.NOT_SIGNED if isinstance(exc, ltv.NotSigned) else LtvState.REFUSED
            new = LtvRow(**{**row.__dict__, "state": state, "last_error": str(exc),
                            "updated_at": centre.now()})
        run.refused += 1
    run.errors.append(f"{row.appliance_id[:12]} {row.sha256[:12]}: {new.last_error}")
    with centre.storage.transaction() as tx:
        tx.put_ltv(new)


def run_once(centre: Centre, limit: int | None = None) -> LtvRun:
    """One pass of discovery, upgrades and renewals (see the module docstring)."""
    started = datetime.now()
    settings = centre.config.ltv
    if not settings.enabled:
        return LtvRun(configured=False)
    ctx = context(centre)
    run = LtvRun()
    batch = limit or settings.batch
    discover(centre, run, batch)
    with centre.storage.view() as v:
        due = v.ltv_due(centre.now(), batch)
    for row in due:
        _work(centre, ctx, row, run)
    run.seconds = round((datetime.now() - started).total_seconds(), 3)
    return run


def run_forever(centre: Centre, stop: threading.Event) -> None:
    """The job every ``ltv.interval_s`` (``central serve``); errors wait for the next turn."""
    interval = max(60, centre.config.ltv.interval_s)
    while not stop.is_set():
        try:
            run_once(centre)
        except Exception:
            import logging

            logging.getLogger(__name__).exception("signature upgrade pass failed")
        stop.wait(interval * random.uniform(0.9, 1.1))


# -- what the box sees ----------------------------------------------------------------------


def undelivered(centre: Centre, app_id: str, view: Any) -> list[dict[str, Any]]:
    """The ``upgrades`` of an answer: versions the appliance's log does not name yet."""
    out = []
    for row in view.ltv_undelivered(app_id, UNDELIVERED_LISTED):
        version = view.ltv_row(app_id, row.current_sha256)
        if version is None:
            continue
        out.append({
            "doc": row.doc_id or "",
            "from": version.previous_sha256 or row.sha256,
            "sha256": row.current_sha256,
            "size": centre.blobs.path(str(row.current_sha256)).stat().st_size,
            "level": row.level or "",
        })
    return out


def fetch_version(centre: Centre, app_id: str, sha256: str, offset: int) -> bytes:
    """A piece of a version the centre made for this appliance (refused otherwise)."""
    from ..errors import ContentError

    with centre.storage.view() as v:
        row = v.ltv_row(app_id, sha256)
    if row is None or row.state is not LtvState.VERSION or not centre.blobs.has(sha256):
        raise ContentError(f"the centre made no version {sha256} for this appliance")
    with centre.blobs.open(sha256) as fh:
        fh.seek(offset)
        return fh.read(PIECE)


# -- the report -----------------------------------------------------------------------------


@dataclass
class LtvReport:
    configured: bool
    tsa_url: str | None
    states: dict[str, int]
    levels: dict[str, int]
    undelivered: int
    next_renewal: str | None
    retrying: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def report(centre: Centre) -> LtvReport:
    """Counts by state and level, what waits for a box, the next renewal, what is retried."""
    with centre.storage.view() as v:
        rows = v.ltv_rows()
        waiting = sum(len(v.ltv_undelivered(a.id, 1 << 30)) for a in v.appliances())
    originals = [r for r in rows if r.state is not LtvState.VERSION]
    renewals = sorted(r.renew_by for r in originals if r.state is LtvState.UPGRADED and r.renew_by)
    return LtvReport(
        configured=centre.config.ltv.enabled,
        tsa_url=centre.config.ltv.tsa_url,
        states=dict(Counter(r.state.value for r in originals)),
        levels=dict(Counter(r.level for r in originals if r.level)),
        undelivered=waiting,
        next_renewal=renewals[0] if renewals else None,
        retrying=[
            {"appliance": r.appliance_id, "sha256": r.sha256, "attempts": r.attempts,
             "next_try_at": r.next_try_at, "error": r.last_error}
            for r in originals if r.state is LtvState.RETRY or (r.last_error and r.state
                                                                  is LtvState.UPGRADED)
        ],
    )
