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

from appliance import classified
from appliance import clock as clockmod
from appliance.config import SyncConfig
from appliance.keys.base import KeyProvider
from appliance.retry import backoff, retryable
from appliance.store import Store

from .. import wire
from ..errors import (
    AuthError,
    CentreRefusedError,
    ContentError,
    NotEnrolledError,
    QuarantinedError,
    SyncError,
    TransportError,
    WireError,
)
from .http import CentreClient, Counters, RunAhead, TokenBucket
from .outbox import build_batch, uploadable
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

log = logging.getLogger(__name__)
MAX_ROUNDS = 10_000
# Streamed uploads commit in pieces of a quarter chunk. Two files may be in flight at once
# (the next starts when the previous one's last byte is on its way, so the link never idles
# while an answer travels back), and together they keep at most half a chunk unacknowledged.
# A cut therefore resends less than one chunk (config ``chunk_bytes``): a partial piece per
# request at the centre plus what the link still held.
PIECES_PER_CHUNK = 4
IN_FLIGHT = 2
# A file with at least a chunk left goes up in two lanes at once, on two connections, when the
# centre says it takes that file in lanes: lane 0 from the start, and a second lane with the
# file's last LANE_SHARE that sends only into the gaps lane 0 leaves on the link
# (client.RunAhead: BBR's RTT probe idles one connection about a second in every ten, a lost
# retransmission or an RTO stalls it longer). The lanes are requests like any other: with the
# file before or after them, never more than IN_FLIGHT are alive at once.
LANES = 2
# What lane 0 leaves idle is about a tenth of the time on a 3G link (tests/bench/sync.py);
# a lane that runs out early leaves the rest uncovered, one too long is finished alone.
LANE_SHARE = 0.25


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


class _Cycle:
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
            if resp.outcome is wire.Outcome.REFUSED:
                raise CentreRefusedError(resp.message, resp.code, resp.retryable)
            self.state.quarantined = False
            return resp
        raise CentreRefusedError("the centre keeps refusing our sequence numbers", "replay")

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
            self.last_answer = resp

    def _claim(self) -> bytes | None:
        """Our newest signed checkpoint if the centre has not seen that size yet."""
        latest = self.store.latest_checkpoint()
        if latest and latest[0] > max(self.state.settled_size, self.state.acknowledged_size):
            return latest[3]  # trailing receipts alone are not a claim
        return None

    async def status(self) -> wire.Response:
        body: dict[str, Any] = {}
        if (head := self._claim()) is not None:
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
            todo, bad = uploadable(resp.missing, self.store, never)
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
        self.state.missing = list(resp.missing)
        self.state.content_unavailable = len(unavailable)
        self.report.content_unavailable = len(unavailable)
        return resp

    async def upload_all(
        self, todo: list[str], offsets: Any, lanes: Any = None
    ) -> tuple[int, wire.Response | None]:
        """Upload ``todo``, up to IN_FLIGHT requests at once (a file in two lanes is two);
        the next file starts once the previous one's last bytes are on their way. Returns
        how many files the centre now holds and the freshest signed answer (fewest missing)
        of the PATCHes that completed one."""
        piece = max(1024, self.cfg.chunk_bytes // PIECES_PER_CHUNK)
        window = RunAhead(max(piece, self.cfg.chunk_bytes - IN_FLIGHT * piece))
        running: list[tuple[str, asyncio.Task[tuple[bool, wire.Response | None]]]] = []
        ok: dict[str, bool] = {}
        answers: list[wire.Response] = []

        async def collect() -> None:
            sha, task = running.pop(0)
            done, answer = await task
            ok[sha] = ok.get(sha, True) and done
            if answer is not None:
                answers.append(answer)

        try:
            for sha in todo:
                offset = int(offsets.get(sha, 0)) if isinstance(offsets, dict) else None
                started: list[tuple[asyncio.Task[Any], asyncio.Event]] = []
                plan = self._lanes(sha, offset, lanes, piece)
                for start, lane, end in plan:
                    while len(running) >= IN_FLIGHT or (running and running[0][1].done()):
                        await collect()
                    fill = lane > 0 and len(plan) > 1  # lane 0 goes too: fill its gaps
                    if fill:  # once lane 0 is sending (else the second lane would lead)
                        while not started[0][0].done() and not window.sending():
                            await asyncio.sleep(0.02)
                    handed = asyncio.Event()
                    task = asyncio.create_task(
                        self.upload(sha, start, piece, window, handed, lane, end, fill)
                    )
                    running.append((sha, task))
                    started.append((task, handed))
                ok.setdefault(sha, True)
                for task, handed in started:
                    waiter = asyncio.create_task(handed.wait())
                    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
                    waiter.cancel()
            while running:
                await collect()
        finally:
            for _, t in running:
                t.cancel()
            if running:
                await asyncio.gather(*(t for _, t in running), return_exceptions=True)
        best = min(answers, key=lambda a: a.missing_count) if answers else None
        return sum(1 for v in ok.values() if v), best

    def _lanes(
        self, sha: str, offset: int | None, lanes: Any, piece: int
    ) -> list[tuple[int | None, int, int | None]]:
        """(from, lane, to) of each request stream for ``sha``: one (lane 0 to the end) or,
        when the centre takes this file in lanes and at least a chunk is left, lane 0 and a
        second lane with the file's last LANE_SHARE; a second lane the centre already holds
        is resumed where it stands."""
        held = lanes.get(sha) if isinstance(lanes, dict) else None
        if offset is None or LANES < 2 or not isinstance(held, list):
            return [(offset, 0, None)]
        size = self.store.content.path(sha).stat().st_size
        if len(held) == 2:
            start, end = int(held[0]), int(held[1])
            out: list[tuple[int | None, int, int | None]] = []
            if offset < start:
                out.append((offset, 0, start))
            if end < size:
                out.append((end, start, size))
            # both full (the centre stopped before putting them together): a HEAD does it
            return out or [(None, 0, None)]
        left = size - offset
        if left < max(2 * piece, self.cfg.chunk_bytes):
            return [(offset, 0, None)]
        start = size - max(piece, int(left * LANE_SHARE) // piece * piece)
        return [(offset, 0, start), (start, start, size)]

    async def upload(
        self,
        sha: str,
        offset: int | None,
        piece: int,
        window: RunAhead,
        handed: asyncio.Event | None = None,
        lane: int = 0,
        end: int | None = None,
        fill: bool = False,
    ) -> tuple[bool, wire.Response | None]:
        """Send one content file from the centre's offset (asked by HEAD when not known),
        streamed in PATCHes of up to ``wire.MAX_PIECES`` pieces; ``handed`` is set once its
        last byte is on its way. Returns whether the centre has it all, and the signed answer
        of the PATCH that completed it. With ``end`` (lane 0 of a file in two lanes) or
        ``lane`` (the second lane, from ``lane`` on) it sends just that lane's bytes and
        returns whether that lane is full; ``fill``: only into the gaps the others leave."""
        path = self.store.content.path(sha)
        size = path.stat().st_size
        split = lane > 0 or (end is not None and end < size)
        end = size if end is None else end
        if offset is None:
            raw = wire.sign_request(self.key, wire.RequestType.HEAD, self.seq.next(), self.now(),
                                    wire.head_body(sha))
            st = await self.client.head(sha, wire.b64(raw))
            if st is None:
                return False, None
            offset, length = st
            if length is not None and length != size:
                raise ContentError(
                    f"the centre expects {length} bytes of {sha}; this file has {size}"
                )
        discarded = stuck = 0
        answer: wire.Response | None = None
        while offset < end:
            n = min(end - offset, piece * wire.MAX_PIECES)
            hashes = await asyncio.to_thread(_piece_hashes, path, offset, n, piece)
            body = wire.pieces_body(sha, offset, n, piece, hashes, size, lane)
            raw = wire.sign_request(
                self.key, wire.RequestType.CHUNK, self.seq.next(), self.now(), body
            )
            status, new_off, headers, text = await self.client.patch_file(
                sha, path, offset, n, wire.b64(raw), window,
                handed.set if handed is not None and offset + n == end else None,
                fill=fill,
            )
            self.state.last_contact = self.now()
            log.debug("PATCH %s lane %d [%d, %d): %d, offset %s", sha[:12], lane, offset,
                      offset + n, status, new_off)
            if status == 204 and new_off is not None:
                offset = new_off
                if signed := headers.get(wire.ANSWER_HEADER):
                    answer = self._completion(signed, raw)
            elif status == 409 and headers.get("Luutru-Error") == "replay":
                self.seq.skip_past(int(headers.get("Luutru-Last-Seq", "0")))
            elif status == 409 and new_off is not None:
                if lane and not headers.get(wire.LANE_HEADER, "").startswith(f"{lane}-"):
                    raise CentreRefusedError(  # the next cycle plans from the centre's lanes
                        f"the centre holds {sha} in other lanes than planned", "content",
                        retryable=True,
                    )
                stuck = stuck + 1 if new_off == offset else 0
                if stuck > 2:
                    raise CentreRefusedError(
                        f"upload of {sha} refused at {offset}: {text}", "content", retryable=True
                    )
                offset = new_off  # the centre holds another length: resume from there
            elif status == 460 and split:
                raise CentreRefusedError(  # both lanes were thrown away: start afresh
                    f"{sha} arrived corrupted at the centre", "content", retryable=True
                )
            elif status == 460:
                discarded += 1
                if discarded > 2:
                    raise ContentError(f"{sha} keeps arriving corrupted at the centre")
                offset = 0
            elif status == 423:
                self.state.quarantined = True
                raise QuarantinedError(text)
            elif status >= 500:
                raise TransportError(f"upload of {sha}: HTTP {status}")
            else:
                raise CentreRefusedError(
                    f"upload of {sha} refused: HTTP {status} {text}", "content"
                )
        return True, answer

    def _completion(self, signed: str, request: bytes) -> wire.Response | None:
        """The centre's answer on the PATCH that completed a file, if it checks out."""
        try:
            resp = wire.verify_response(
                wire.unb64(signed), self.enrolment.centre_key, wire.sha256(request)
            )
        except (WireError, AuthError) as exc:
            log.warning("ignoring an upload answer that does not verify: %s", exc)
            return None
        return resp if resp.outcome is wire.Outcome.STATUS else None

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
        self.report.receipt_index = index
        st.confirmed_size = size
        st.acknowledged_size = max(st.acknowledged_size, size)
        if index == st.acknowledged_size:  # only this receipt follows what the centre holds
            st.settled_size = index + 1


def _piece_hashes(path: Path, offset: int, length: int, piece: int) -> list[bytes]:
    out = []
    with path.open("rb") as fh:
        fh.seek(offset)
        while length > 0:
            data = fh.read(min(piece, length))
            if not data:
                raise ContentError(f"{path} is shorter than its upload")
            out.append(wire.sha256(data))
            length -= len(data)
    return out


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
            except Exception:  # a bug must not kill the web server's loop
                attempt += 1
                delay = backoff(attempt, float(cfg.backoff_max_s))
                log.exception("sync agent error; next try in %.0f s", delay)
            await _sleep(stop, delay)
    finally:
        if own:
            await asyncio.to_thread(store.close)
