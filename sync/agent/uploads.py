"""Content going up: the tus-like PATCHes of a sync cycle, two in flight, a large file in two
lanes, each piece hashed so the centre commits what fully arrived (the centre's side is
sync/central/uploads.py). A cycle (cycle.py) is an ``Uploads``."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from appliance.config import SyncConfig
from appliance.keys.base import KeyProvider
from appliance.store import Store

from .. import wire
from ..errors import (
    AuthError,
    CentreRefusedError,
    ContentError,
    QuarantinedError,
    TransportError,
    WireError,
)
from .http import RunAhead
from .state import AgentState, Enrolment, Sequencer
from .transport import Transport

log = logging.getLogger(__name__)

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


class Uploads:
    """The upload half of a cycle; the cycle provides what these attributes name."""

    client: Transport
    key: KeyProvider
    store: Store
    state: AgentState
    enrolment: Enrolment
    seq: Sequencer
    cfg: SyncConfig

    def now(self) -> str:
        raise NotImplementedError

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
        size = self.store.content.size(sha)
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

    # Long on purpose: one PATCH's whole life (sign, stream, read the answer, every status the
    # centre can give), kept in one place so that its order can be read.
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
        path = await asyncio.to_thread(self.store.content.readable_path, sha)
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
