"""The sync agent: ships the log after the acknowledged size, then content, then keeps the
receipt. ``run_once`` is one cycle (also `luutru sync --once`); ``run_agent`` is the
background loop that `luutru serve` starts, with capped exponential backoff and jitter,
time windows and a bandwidth cap from the appliance configuration.

A cycle: (1) batches of entries [acked, latest checkpoint) with the signed checkpoint and a
consistency proof, until the centre holds them all; (2) the last batch answer (or a status
request when no batch went) lists content the centre lacks and where each upload stands; it
goes up by tus, one streamed PATCH per file from that offset (HEAD only when the offset is
not given), a large file with a second lane that fills the gaps the first leaves on the link,
two requests in flight; (3) once nothing is missing (the PATCH completing the last file says
so, signed), the centre's receipt for the acknowledged size is checked and appended to the
log, and state.json's ``confirmed_size`` moves.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance import anchors, classified
from appliance import clock as clockmod
from appliance.config import SyncConfig
from appliance.diskspace import is_disk_full
from appliance.errors import DiskFullError
from appliance.keys.base import KeyProvider
from appliance.retry import backoff, retryable
from appliance.store import Store

from .. import wire
from ..errors import (
    BehindCentreError,
    CentreRefusedError,
    NotEnrolledError,
    QuarantinedError,
    SyncError,
    TransportError,
    WireError,
)
from .http import CentreClient, Counters, TokenBucket
from .outbox import build_batch, held_back, uploadable
from .receipts import check_receipt, store_receipt
from .state import (
    USB_CENTRE,
    AgentBusyError,
    AgentLock,
    AgentState,
    Enrolment,
    Sequencer,
    load_enrolment,
    load_state,
    save_state,
)
from .transport import Transport
from .upgrades import take_upgrades
from .uploads import Uploads

log = logging.getLogger(__name__)
MAX_ROUNDS = 10_000


@dataclass
class CycleReport:
    batches: int = 0
    entries_sent: int = 0
    withheld_sent: int = 0
    uploaded_files: int = 0
    content_unavailable: int = 0
    acknowledged_size: int = 0
    confirmed_size: int = 0
    pending_content: int = 0
    receipt_index: int | None = None
    bytes_sent: int = 0
    content_bytes_sent: int = 0
    metadata_seconds: float = 0.0
    content_seconds: float = 0.0  # status, HEAD and PATCH requests: what the link was busy with
    congestion: str = ""  # TCP congestion control of the connections (client.CONGESTION)
    upgrades_recorded: int = 0  # signed PDFs the centre made long-term valid (upgrades.py)
    upgrades_refused: int = 0
    content_held: int = 0  # not sent now: inside another version, or a scan not final yet
    outcomes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


# -- schedule -------------------------------------------------------------------------------


def parse_window(text: str) -> tuple[dt.time, dt.time]:
    try:
        a, b = text.split("-")
        return dt.time.fromisoformat(a.strip()), dt.time.fromisoformat(b.strip())
    except ValueError as exc:
        raise SyncError(f"sync window {text!r} is not HH:MM-HH:MM") from exc


def seconds_until_window(windows: tuple[str, ...], now: dt.datetime) -> float:
    """0 inside a window (or with none configured), else seconds to the next one's start."""
    if not windows:
        return 0.0
    best: float | None = None
    t = now.time()
    for w in windows:
        start, end = parse_window(w)
        inside = start <= t < end if start <= end else (t >= start or t < end)
        if inside:
            return 0.0
        nxt = dt.datetime.combine(now.date(), start, tzinfo=now.tzinfo)
        if nxt <= now:
            nxt += dt.timedelta(days=1)
        wait = (nxt - now).total_seconds()
        best = wait if best is None else min(best, wait)
    return best or 0.0


# -- one cycle ------------------------------------------------------------------------------


class _Cycle(Uploads):
    def __init__(
        self,
        data_dir: Path,
        store: Store,
        enrolment: Enrolment,
        state: AgentState,
        client: Transport,
    ) -> None:
        if store.key is None:
            raise SyncError("the store was opened read-only; the agent needs the device key")
        self.data_dir = data_dir
        self.store = store
        self.key: KeyProvider = store.key
        self.enrolment = enrolment
        self.state = state
        self.client = client
        self.seq = Sequencer(data_dir, state)
        self.cfg = store.config.sync
        self.report = CycleReport()
        self.last_answer: wire.Response | None = None  # the newest batch answer this cycle

    def now(self) -> str:
        return clockmod.iso(self.store.clock.now())

    async def send(self, path: str, make: Callable[[int], bytes]) -> wire.Response:
        """POST a signed request; re-sign once past the centre's sequence if it says replay."""
        for _ in range(2):
            raw = make(self.seq.next())
            status, body = await self.client.post_cbor(path, raw)
            if status >= 500:
                raise TransportError(f"the centre answered HTTP {status}")
            try:
                resp = wire.verify_response(body, self.enrolment.centre_key, wire.sha256(raw))
            except WireError as exc:
                raise TransportError(f"HTTP {status} without a signed answer: {exc}") from exc
            self.state.last_contact = self.now()
            if "clock_skew_s" in resp.extra:
                self.state.clock_skew_s = int(resp.extra["clock_skew_s"])
            if resp.outcome is wire.Outcome.REFUSED and resp.code == "replay":
                self.seq.skip_past(resp.last_seq)
                continue
            if resp.outcome is wire.Outcome.QUARANTINED:
                self.state.quarantined = True
                raise QuarantinedError(f"quarantined by the centre ({resp.code}): {resp.message}")
            await self.behind(resp)
            if resp.outcome is wire.Outcome.REFUSED:
                raise CentreRefusedError(resp.message, resp.code, resp.retryable)
            self.state.quarantined = False
            return resp
        raise CentreRefusedError("the centre keeps refusing our sequence numbers", "replay")

    async def behind(self, resp: wire.Response) -> None:
        """Raise if the centre accepted more of our log than we hold: the tail was lost here.
        The centre's receipt is kept as an anchor and the store stops writing (numbering
        would give the lost numbers again, appending would fork the log)."""
        size, _ = await asyncio.to_thread(self.store.tree_head)
        if resp.accepted_size <= size:
            return
        if resp.receipt is not None:
            await asyncio.to_thread(self.keep_anchor, resp.receipt, False)
        from appliance.preflight import tail_fault

        message = (
            f"the centre holds {resp.accepted_size} entries of this appliance's log, this box "
            f"only {size}: its tail was lost (a lost write-ahead log, or an older copy of the "
            "disk put back)"
        )
        self.store.halt(tail_fault(
            anchors.TailProblem("log.behind_centre", message, resp.accepted_size,
                                {"log_size": size, "tree_size": resp.accepted_size,
                                 "source": anchors.CENTRE}),
            self.data_dir,
        ))
        raise BehindCentreError(
            f"{message}; writing is stopped: run `luutru restore --data {self.data_dir} "
            "--tail-from-centre` to bring the missing entries back",
            size, resp.accepted_size,
        )

    def keep_anchor(self, raw: bytes, ours: bool = True) -> None:
        """Keep the centre's receipt beside the database (anchors.py) if its checkpoint is
        this appliance's own; ``ours``: its root is this log's too (checked already)."""
        try:
            rc = wire.verify_receipt(raw, self.enrolment.centre_key)
            from appliance.checkpoint import verify_checkpoint
            from appliance.keys.verify import load_public_key

            cp = verify_checkpoint(rc.checkpoint, load_public_key(self.key.public_key_pem()))
            if (cp.tree_size, cp.root_hash) != (rc.tree_size, rc.root_hash):
                return
            anchors.save_anchor(self.data_dir, anchors.Anchor(
                anchors.CENTRE, rc.tree_size, rc.root_hash, rc.checkpoint, rc.accepted_at,
                receipt=raw,
            ))
        except (SyncError, OSError) as exc:
            log.warning("the centre's receipt is not kept as an anchor: %s", exc)
        except Exception as exc:  # a checkpoint of another key (replaced): no anchor
            log.warning("the centre's receipt is not kept as an anchor: %s", exc)

    async def metadata(self) -> None:
        st = self.state
        secret = await asyncio.to_thread(classified.load, self.store.reader())
        for _ in range(MAX_ROUNDS):
            out = await asyncio.to_thread(
                build_batch,
                self.store,
                self.key,
                st.acknowledged_size,
                self.now(),
                self.cfg.max_batch_entries,
                self.cfg.max_batch_bytes,
                secret,
            )
            if out is None:
                return
            if out.bookkeeping_only:
                st.settled_size = out.batch.end
                return
            body = dict(out.batch.to_body(), head=out.head)

            def make(seq: int, body: dict[str, Any] = body) -> bytes:
                return wire.sign_request(
                    self.key, wire.RequestType.BATCH, seq, self.now(), body
                )

            resp = await self.send("/v1/batch", make)
            self.report.batches += 1
            self.report.outcomes.append(resp.outcome.value)
            st.last_batch = f"{out.batch.start}-{out.batch.end}: {resp.outcome.value}"
            if resp.outcome is wire.Outcome.PARKED:
                if resp.accepted_size >= st.acknowledged_size:
                    raise CentreRefusedError(resp.message, "gap", retryable=True)
                st.acknowledged_size = resp.accepted_size  # the centre lost entries: resend
                continue
            if resp.receipt is None:
                raise CentreRefusedError("the centre accepted a batch without a receipt", "bad")
            checked = await asyncio.to_thread(
                check_receipt, resp.receipt, self.enrolment.centre_key, self.store
            )
            if checked.receipt.tree_size != out.batch.end:
                raise CentreRefusedError("the receipt is for another size than the batch", "bad")
            self.report.entries_sent += len(out.batch.items)
            self.report.withheld_sent += out.batch.withheld_count
            st.acknowledged_size = out.batch.end
            st.acknowledged_root = checked.receipt.root_hash.hex()
            st.settled_size = max(st.settled_size, out.batch.end)
            save_state(self.data_dir, st)
            await asyncio.to_thread(self.keep_anchor, resp.receipt)
            self.last_answer = resp

    def _claim(self, always: bool = False) -> bytes | None:
        """Our newest signed checkpoint if the centre has not seen that size yet (``always``:
        whatever it is, for a box that knows it fell behind)."""
        latest = self.store.latest_checkpoint()
        if latest and (always or latest[0] > max(self.state.settled_size,
                                                 self.state.acknowledged_size)):
            return latest[3]  # trailing receipts alone are not a claim
        return None

    async def status(self, always_head: bool = False) -> wire.Response:
        body: dict[str, Any] = {}
        if (head := self._claim(always_head)) is not None:
            body["head"] = head
        return await self.send(
            "/v1/status",
            lambda seq: wire.sign_request(
                self.key, wire.RequestType.STATUS, seq, self.now(), body
            ),
        )

    async def content(self) -> wire.Response:
        """Upload what the centre lacks; the answer to the last batch of this cycle already
        says what that is (and where each upload stands), else a status request asks."""
        resp = self.last_answer
        if resp is None or self._claim() is not None:
            resp = await self.status()
        never = (await asyncio.to_thread(classified.load, self.store.reader())).content
        tried: set[str] = set()
        unavailable: set[str] = set()
        while resp.missing:
            held = await asyncio.to_thread(
                held_back, self.store, resp.missing, float(self.cfg.capture_hold_s)
            )
            self.report.content_held = len(held)
            todo, bad = uploadable(
                [s for s in resp.missing if s not in held], self.store, never
            )
            unavailable.update(bad)
            todo = [s for s in todo if s not in tried]
            if not todo:
                break
            for sha in todo:
                tried.add(sha)
            done, answer = await self.upload_all(
                todo, resp.extra.get("offsets"), resp.extra.get("lanes")
            )
            self.report.uploaded_files += done
            if answer is not None and answer.missing_count == 0:
                resp = answer  # the centre's signed word that nothing is missing any more
                break
            resp = await self.status()
        await asyncio.to_thread(self.store.content.drop_copies)
        self.state.missing = list(resp.missing)
        self.state.content_unavailable = len(unavailable)
        self.report.content_unavailable = len(unavailable)
        return resp

    async def confirm(self, resp: wire.Response) -> None:
        st = self.state
        st.pending_content = resp.missing_count
        if resp.missing_count or resp.receipt is None:
            return
        checked = await asyncio.to_thread(
            check_receipt, resp.receipt, self.enrolment.centre_key, self.store
        )
        size = checked.receipt.tree_size
        if size <= st.confirmed_size:
            return
        index = await asyncio.to_thread(
            store_receipt, self.store, checked, self.enrolment.centre_origin
        )
        await asyncio.to_thread(self.keep_anchor, resp.receipt)
        self.report.receipt_index = index
        st.confirmed_size = size
        st.acknowledged_size = max(st.acknowledged_size, size)
        if index == st.acknowledged_size:  # only this receipt follows what the centre holds
            st.settled_size = index + 1


async def run_once(
    data_dir: Path,
    store: Store,
    *,
    counters: Counters | None = None,
    transport: Callable[[Enrolment, Counters], Transport] | None = None,
) -> CycleReport:
    """One sync cycle; raises SyncError (its ``retryable`` says whether to try again).
    ``transport`` makes the link for the enrolled centre (default: HTTP with the configured
    bandwidth cap and timeouts)."""
    enrolment = load_enrolment(data_dir)
    if enrolment.centre_url == USB_CENTRE:
        raise SyncError("this appliance is enrolled for USB only: use `luutru sync --export`")
    with AgentLock(data_dir):
        state = load_state(data_dir)
        state.centre_url = enrolment.centre_url
        cfg = store.config.sync
        counters = counters or Counters()
        client = (transport or _http(cfg))(enrolment, counters)
        before = (counters.request_bytes, counters.response_bytes, counters.content_bytes)
        cycle = _Cycle(data_dir, store, enrolment, state, client)
        try:
            async with client:
                t0 = time.monotonic()
                size, _ = await asyncio.to_thread(store.tree_head)
                if size < max(state.acknowledged_size, state.confirmed_size):
                    # Our own state says the centre had more: show it our head (its alert),
                    # and let its answer say how far behind we are (BehindCentreError).
                    await cycle.status(always_head=True)
                await cycle.metadata()
                t1 = time.monotonic()
                resp = await cycle.content()
                cycle.report.metadata_seconds = round(t1 - t0, 3)
                cycle.report.content_seconds = round(time.monotonic() - t1, 3)
                await cycle.confirm(resp)
                if resp.extra.get("upgrades"):
                    taken = await take_upgrades(
                        store, cycle.key, client, cycle.now, resp.extra["upgrades"]
                    )
                    cycle.report.upgrades_recorded = taken.recorded
                    cycle.report.upgrades_refused = len(taken.refused)
            state.last_error = None
            state.last_error_code = None
        except SyncError as exc:
            state.last_error = str(exc)
            state.last_error_code = exc.code
            raise
        finally:
            state.bytes_sent += counters.request_bytes - before[0]
            state.bytes_received += counters.response_bytes - before[1]
            state.content_bytes_sent += counters.content_bytes - before[2]
            save_state(data_dir, state)
        cycle.report.acknowledged_size = state.acknowledged_size
        cycle.report.confirmed_size = state.confirmed_size
        cycle.report.pending_content = state.pending_content
        cycle.report.bytes_sent = counters.request_bytes - before[0]
        cycle.report.content_bytes_sent = counters.content_bytes - before[2]
        cycle.report.congestion = counters.congestion
        return cycle.report


def _http(cfg: SyncConfig) -> Callable[[Enrolment, Counters], Transport]:
    def make(enrolment: Enrolment, counters: Counters) -> Transport:
        bucket = TokenBucket(cfg.bandwidth_kbit * 125) if cfg.bandwidth_kbit > 0 else None
        return CentreClient(
            enrolment.centre_url,
            bucket=bucket,
            counters=counters,
            stall_timeout=float(cfg.stall_timeout_s),
            read_timeout=float(cfg.read_timeout_s),
        )

    return make


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=max(0.0, seconds))


async def run_agent(data_dir: Path, stop: asyncio.Event, store: Store | None = None) -> None:
    """The background agent for `luutru serve`: cycles until ``stop`` is set.

    Pass the server's open ``store`` to share its writer and device key; without one the agent
    opens its own. Never raises for sync failures: they are in state.json for the UI.
    """
    own = store is None
    if store is None:
        store = await asyncio.to_thread(Store.open, data_dir)
    attempt = 0
    try:
        while not stop.is_set():
            cfg = store.config.sync
            try:
                wait = seconds_until_window(cfg.windows, store.clock.now())
            except SyncError as exc:
                log.error("%s; syncing at any time", exc)
                wait = 0.0
            if wait > 0:
                await _sleep(stop, min(wait, 300.0))
                continue
            try:
                await run_once(data_dir, store)
                attempt = 0
                delay = float(cfg.interval_s)
            except NotEnrolledError:
                delay = 60.0
            except AgentBusyError:
                delay = float(cfg.interval_s)
            except SyncError as exc:
                attempt += 1
                if retryable(exc):
                    delay = backoff(attempt, float(cfg.backoff_max_s))
                    log.warning("sync failed (%s); next try in %.0f s", exc, delay)
                else:  # the centre refused for a reason no retry mends: try again rarely
                    delay = float(cfg.backoff_max_s)
                    log.error("sync refused (%s: %s); next try in %.0f s", exc.code, exc, delay)
            except Exception as exc:  # a bug must not kill the web server's loop
                attempt += 1
                delay = backoff(attempt, float(cfg.backoff_max_s))
                if isinstance(exc, DiskFullError) or is_disk_full(exc):
                    # Receipts and state.json need a little room: wait for it, quietly.
                    log.warning("sync paused, the disk is full (%s); next try in %.0f s",
                                exc, delay)
                else:
                    log.exception("sync agent error; next try in %.0f s", delay)
            await _sleep(stop, delay)
    finally:
        if own:
            await asyncio.to_thread(store.close)
