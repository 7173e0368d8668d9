"""The appliance's HTTP transport to the centre: CBOR POSTs and tus HEAD/PATCH, with a
bandwidth cap (token bucket), a stall watchdog, and byte counters for the benchmarks.

The appliance only ever dials out. Every failure to reach the centre or to finish a request
becomes a retryable TransportError; what the centre *says* is left to the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import socket
import struct
import termios
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

import aiohttp
from aiohttp.abc import AbstractStreamWriter
from aiohttp.payload import Payload

from .. import wire
from ..errors import ContentError, TransportError

T = TypeVar("T")
SLICE = 16 * 1024
# Keeps "accepted by the socket" close to "on the wire" on a slow link: a socket takes more
# only while less than this is waiting in it unsent (TCP_NOTSENT_LOWAT), so the stall watchdog
# and the read timeout see the real link, and a connection stuck in loss recovery takes no
# more data that another could send. Unlike a fixed SO_SNDBUF it leaves the send buffer's
# autotuning on: the data sent but not yet acknowledged (SACKed beyond a hole) does not fill
# it during a long recovery and starve the connection of new data to send.
NOTSENT_LOWAT = SLICE
TCP_NOTSENT_LOWAT = getattr(socket, "TCP_NOTSENT_LOWAT", 25)  # Linux
# Congestion control asked for on every connection. On a 3G link a few per cent of packets are
# lost at random: cubic takes each loss for congestion and keeps about half the link, BBR paces
# at the rate it measures (tests/bench/sync.py). The appliance image makes it the system's
# default (images/rootfs/sysctl-luutru.conf); elsewhere the kernel may refuse it to an
# unprivileged process, and the connection keeps the system's default.
CONGESTION = "bbr"
# A signed request's body (CBOR: log entries, checkpoints, proofs) is deflated on the wire when
# that saves bytes: entries repeat their keys and the hex content hashes of earlier versions,
# and the OCR text they carry is plain text, so a batch takes about half the bytes. The
# centre's aiohttp server inflates a Content-Encoding: deflate body before the handler reads
# it (and holds the inflated body to its request size limit); the signature covers the CBOR.
DEFLATE_FROM = 512  # bytes: below this a request is sent as it is
# aiohttp's own request headers (User-Agent, Accept, Accept-Encoding: ~90 bytes a request)
# carry nothing the centre reads, and its answers are never compressed.
SKIP_HEADERS = ("User-Agent", "Accept", "Accept-Encoding")


@dataclass
class Counters:
    """Bytes this client put on (and took off) the HTTP streams; for benches and state."""

    request_bytes: int = 0  # request lines, headers and bodies
    congestion: str = ""  # the congestion control of the last connection opened
    response_bytes: int = 0
    content_bytes: int = 0  # PATCH bodies sent, including any resent after a cut
    requests: int = 0


def deflated(body: bytes) -> bytes:
    """``body`` deflated (zlib, HTTP's "deflate") if that makes it smaller; else ``body``."""
    if len(body) < DEFLATE_FROM:
        return body
    packed = zlib.compress(body, 6)
    return packed if len(packed) < len(body) else body


class TokenBucket:
    """At most ``rate`` bytes/s on average, bursts up to ``burst`` bytes."""

    def __init__(self, rate: float, burst: int = SLICE * 4) -> None:
        self.rate = rate
        self.burst = max(burst, SLICE)
        self._tokens = float(self.burst)
        self._t = time.monotonic()

    async def take(self, n: int) -> None:
        while True:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._t) * self.rate)
            self._t = now
            if self._tokens >= n:
                self._tokens -= n
                return
            await asyncio.sleep((n - self._tokens) / self.rate)


def _unacked(transport: asyncio.BaseTransport) -> int:
    """Bytes a connection holds that the centre's TCP has not acknowledged yet: asyncio's
    write buffer plus the kernel's send queue (SIOCOUTQ: unsent and unacknowledged)."""
    if transport.is_closing():
        return 0
    n = 0
    if isinstance(transport, asyncio.WriteTransport):
        n += transport.get_write_buffer_size()
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            n += struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0]
    return n


FILL_SLICE = 4 * 1024  # a filling connection's writes: the gaps are a few KiB
FILL_WAIT_S = 30.0  # a filling connection sends a slice at least this often
_INFO_LEN = 168  # struct tcp_info up to tcpi_delivery_rate (Linux 4.9+)


def _tcp_info(transport: asyncio.BaseTransport) -> tuple[int, int, int] | None:
    """(bytes in flight, min RTT in µs, delivery rate in bytes/s) of a connection, from the
    kernel's TCP_INFO; None where it cannot be read."""
    sock = transport.get_extra_info("socket")
    if sock is None or transport.is_closing():
        return None
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _INFO_LEN)
    except OSError:
        return None
    if len(raw) < _INFO_LEN:
        return None
    mss, unacked, sacked, lost, retrans = struct.unpack_from("=I4xIIII", raw, 16)
    (min_rtt,) = struct.unpack_from("=I", raw, 148)
    (rate,) = struct.unpack_from("=Q", raw, 160)
    return max(0, unacked - sacked - lost + retrans) * mss, min_rtt, rate


class RunAhead:
    """At most ``limit`` body bytes handed to sockets and not yet acknowledged by the centre.

    A cut loses what was in flight; with streamed uploads that is what bounds a resume's
    resend (the partial piece at the centre plus this window), so it is kept at a chunk minus
    a piece. It is also what lets the stall watchdog see the link and not the socket buffer.

    A connection added with ``fill=True`` (a file's second lane) sends only into the gap the
    others leave: while what they have in flight is less than the link holds (their best
    delivery rate × their minimum RTT), for instance while one recovers from a loss or BBR
    probes the RTT. So two connections never overfill the link's queue between them.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._live: dict[asyncio.BaseTransport, bool] = {}
        self._rate: dict[asyncio.BaseTransport, int] = {}
        self._queue: list[object] = []  # writers waiting for room, first come first served

    def pending(self) -> int:
        return sum(_unacked(t) for t in self._live)

    def sending(self) -> bool:
        """Whether a connection that does not just fill gaps is sending."""
        return any(not fill for fill in self._live.values())

    def gap(self, mine: asyncio.BaseTransport) -> int | None:
        """Bytes the other (not filling) connections leave free on the link while they
        stall (less than half of what it holds in flight); 0 while they keep it busy, None
        when there is none of them (this one then sends freely)."""
        inflight = bdp = 0
        others = False
        for t, fill in self._live.items():
            if t is mine or fill:
                continue
            info = _tcp_info(t)
            if info is None:
                continue
            others = True
            flight, min_rtt, rate = info
            best = self._rate[t] = max(self._rate.get(t, 0), rate)
            inflight += flight
            bdp = max(bdp, best * min_rtt // 1_000_000)
        if not others:
            return None
        return bdp - inflight if 2 * inflight < bdp else 0

    async def room(self, n: int, transport: asyncio.BaseTransport | None = None) -> None:
        """Wait until ``n`` more bytes fit. Writers take turns (a queue), so two requests
        sharing the window each get their share and none is starved by the other; a filling
        connection waits behind all of them, for a gap."""
        if transport is not None and self._live.get(transport, False):
            since = time.monotonic()
            while self._queue or not self._fits(n) or not self._fills(transport):
                if time.monotonic() - since > FILL_WAIT_S and self._fits(n):
                    break  # keep the request alive at the centre (its idle timeout)
                await asyncio.sleep(0.02)
            return
        ticket = object()
        self._queue.append(ticket)
        try:
            while self._queue[0] is not ticket or not self._fits(n):
                await asyncio.sleep(0.02)
        finally:
            self._queue.remove(ticket)

    def _fits(self, n: int) -> bool:
        p = self.pending()
        return p == 0 or p + n <= self.limit

    def _fills(self, transport: asyncio.BaseTransport) -> bool:
        gap = self.gap(transport)
        return gap is None or _unacked(transport) < gap

    def add(self, transport: asyncio.BaseTransport, fill: bool = False) -> None:
        self._live[transport] = fill

    def discard(self, transport: asyncio.BaseTransport) -> None:
        self._live.pop(transport, None)
        self._rate.pop(transport, None)


class _FileBody(Payload):
    """``length`` bytes of a file from ``offset``, in slices, under the cap and the window."""

    _autoclose = True

    def __init__(
        self,
        client: CentreClient,
        path: Path,
        offset: int,
        length: int,
        window: RunAhead,
        on_sent: Callable[[int], None],
        on_handed: Callable[[], None] | None = None,
        fill: bool = False,
    ) -> None:
        super().__init__(path, content_type="application/offset+octet-stream")
        self.fill = fill
        self._size = length
        self.client, self.path, self.offset = client, path, offset
        self.window, self.on_sent, self.on_handed = window, on_sent, on_handed
        self.transport: asyncio.BaseTransport | None = None

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        raise TypeError("a content upload is not text")

    async def write(self, writer: AbstractStreamWriter) -> None:
        await self.write_with_length(writer, None)

    async def write_with_length(
        self, writer: AbstractStreamWriter, content_length: int | None
    ) -> None:
        transport = self.transport = getattr(writer, "transport", None)
        if transport is not None:
            # until the answer is in: see CentreClient.patch_file
            self.window.add(transport, self.fill)
        c = self.client
        c._sending += 1
        step = max(1024, min(FILL_SLICE if self.fill else SLICE, self.window.limit))
        try:
            with self.path.open("rb") as fh:
                fh.seek(self.offset)
                left = self._size or 0
                while left > 0:
                    piece = fh.read(min(step, left))
                    if not piece:
                        raise ContentError(f"{self.path} is shorter than the upload needs")
                    if c.bucket is not None:
                        await c.bucket.take(len(piece))
                    # the socket took the previous slice: this connection is sending
                    while isinstance(transport, asyncio.WriteTransport) and (
                        transport.get_write_buffer_size() and not transport.is_closing()
                    ):
                        await asyncio.sleep(0.02)
                    await self.window.room(len(piece), transport)
                    c._progress = time.monotonic()
                    await writer.write(piece)
                    c._progress = time.monotonic()
                    self.on_sent(len(piece))
                    left -= len(piece)
            if self.on_handed is not None:
                self.on_handed()
        finally:
            c._sending -= 1


def congestion_control(sock: socket.socket, wanted: str | None = CONGESTION) -> str:
    """Ask for ``wanted`` on a TCP socket if the kernel has it and allows it; returns the one
    the socket uses ("" where it cannot be read)."""
    if wanted:
        with contextlib.suppress(OSError):  # not built, or not allowed to this user
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, wanted.encode())
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16)
    except OSError:
        return ""
    return raw.split(b"\0", 1)[0].decode("ascii", "replace")


class CentreClient:
    def __init__(
        self,
        base_url: str,
        *,
        bucket: TokenBucket | None = None,
        stall_timeout: float = 30.0,
        connect_timeout: float = 20.0,
        read_timeout: float = 60.0,
        counters: Counters | None = None,
    ) -> None:
        self.base = base_url.rstrip("/")
        self.bucket = bucket
        self.stall_timeout = stall_timeout
        self.counters = counters or Counters()
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=connect_timeout, sock_connect=connect_timeout,
            sock_read=read_timeout,
        )
        self._session: aiohttp.ClientSession | None = None
        self._progress = time.monotonic()
        self._sending = 0  # request bodies being written

    async def __aenter__(self) -> CentreClient:
        trace = aiohttp.TraceConfig()
        trace.on_request_headers_sent.append(self._on_headers)
        trace.on_request_chunk_sent.append(self._on_chunk)
        trace.on_response_chunk_received.append(self._on_response_chunk)
        connector = aiohttp.TCPConnector(limit=4, socket_factory=self._socket)
        self._session = aiohttp.ClientSession(
            timeout=self._timeout, connector=connector, trace_configs=[trace],
            skip_auto_headers=SKIP_HEADERS,
        )
        return self

    def _socket(self, addr_info: Any) -> socket.socket:
        family, type_, proto, _, _ = addr_info
        sock = socket.socket(family=family, type=type_, proto=proto)
        if family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):  # not every kernel has it: then the default
                sock.setsockopt(socket.IPPROTO_TCP, TCP_NOTSENT_LOWAT, NOTSENT_LOWAT)
            self.counters.congestion = congestion_control(sock)
            # A request given up (a stall, a cut) is closed with a reset, its unsent bytes
            # dropped: else the kernel keeps sending them when the link comes back, the
            # centre's old handler commits them after the resume was planned, and the resume
            # starts at a stale offset (409) and resends. Every other close follows a
            # complete answer, with nothing left to send.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        return sock

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # byte counting ---------------------------------------------------------------------

    async def _on_headers(self, _s: Any, _c: SimpleNamespace, p: Any) -> None:
        n = len(p.method) + len(str(p.url.raw_path_qs)) + 12
        n += sum(len(k) + len(v) + 4 for k, v in p.headers.items()) + 2
        self.counters.request_bytes += n
        self.counters.requests += 1

    async def _on_chunk(self, _s: Any, _c: SimpleNamespace, p: Any) -> None:
        self.counters.request_bytes += len(p.chunk)

    async def _on_response_chunk(self, _s: Any, _c: SimpleNamespace, p: Any) -> None:
        self.counters.response_bytes += len(p.chunk)

    # streaming with a cap and a watchdog ------------------------------------------------

    async def _stream(
        self, body: bytes, on_sent: Callable[[int], None] | None
    ) -> AsyncIterator[bytes]:
        view = memoryview(body)
        self._sending += 1
        try:
            for i in range(0, len(body), SLICE):
                piece = bytes(view[i : i + SLICE])
                if self.bucket is not None:
                    await self.bucket.take(len(piece))
                self._progress = time.monotonic()
                yield piece
                self._progress = time.monotonic()
                if on_sent is not None:
                    on_sent(len(piece))
        finally:
            self._sending -= 1

    async def _guard(self, make: Callable[[], Awaitable[T]]) -> T:
        """Run one request; cancel it when its body stops moving for ``stall_timeout``."""
        self._progress = time.monotonic()
        task = asyncio.ensure_future(make())
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=1.0)
                if done:
                    return task.result()
                if self._sending and time.monotonic() - self._progress > self.stall_timeout:
                    task.cancel()
                    raise TransportError(
                        f"the link stalled for {self.stall_timeout:.0f} s while sending"
                    )
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise TransportError(f"cannot reach the centre at {self.base}: {exc!r}") from exc
        finally:
            if not task.done():
                task.cancel()

    def _sess(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise TransportError("client is not open")
        return self._session

    # requests --------------------------------------------------------------------------

    async def post_cbor(self, path: str, body: bytes) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/cbor"}
        data = deflated(body)
        if data is not body:
            headers["Content-Encoding"] = "deflate"
        headers["Content-Length"] = str(len(data))

        async def go() -> tuple[int, bytes]:
            async with self._sess().post(
                self.base + path, data=self._stream(data, None), headers=headers
            ) as r:
                return r.status, await r.read()

        return await self._guard(go)

    async def get_json(self, path: str) -> Any:
        async def go() -> Any:
            async with self._sess().get(self.base + path) as r:
                return await r.json()

        return await self._guard(go)

    async def head(self, sha256: str, auth: str) -> tuple[int, int | None] | None:
        """(offset, length) of an upload, or None if the centre does not expect it; ``auth``
        is the signed head request (base64url), as for a PATCH."""

        async def go() -> tuple[int, int | None] | None:
            async with self._sess().head(
                f"{self.base}/v1/content/{sha256}",
                headers={"Tus-Resumable": "1.0.0", wire.AUTH_HEADER: auth},
            ) as r:
                if r.status == 404:
                    return None
                if r.status != 200:
                    raise TransportError(f"HEAD {sha256}: HTTP {r.status}")
                length = r.headers.get("Upload-Length")
                return int(r.headers["Upload-Offset"]), int(length) if length else None

        return await self._guard(go)

    def _content_sent(self, n: int) -> None:
        self.counters.content_bytes += n

    async def patch_file(
        self,
        sha256: str,
        path: Path,
        offset: int,
        length: int,
        auth: str,
        window: RunAhead,
        on_handed: Callable[[], None] | None = None,
        fill: bool = False,
    ) -> tuple[int, int | None, dict[str, str], str]:
        """PATCH bytes [offset, offset+length) of ``path`` streamed in one request; returns
        (status, Upload-Offset, headers, text). ``on_handed`` runs once the last byte is
        handed to the socket; ``fill``: send only into the link's gaps (RunAhead)."""

        async def go() -> tuple[int, int | None, dict[str, str], str]:
            body = _FileBody(
                self, path, offset, length, window, self._content_sent, on_handed, fill
            )
            try:
                return await send(body)
            finally:  # its last bytes count against the window until the centre answers
                if body.transport is not None:
                    window.discard(body.transport)

        async def send(body: _FileBody) -> tuple[int, int | None, dict[str, str], str]:
            async with self._sess().patch(
                f"{self.base}/v1/content/{sha256}",
                data=body,
                headers={
                    "Tus-Resumable": "1.0.0",
                    "Upload-Offset": str(offset),
                    "Content-Type": "application/offset+octet-stream",
                    "Content-Length": str(length),
                    "Luutru-Signature": auth,
                },
            ) as r:
                off = r.headers.get("Upload-Offset")
                return r.status, int(off) if off else None, dict(r.headers), await r.text()

        return await self._guard(go)

    async def patch(
        self, sha256: str, offset: int, chunk: bytes, auth: str
    ) -> tuple[int, int | None, dict[str, str], str]:
        """PATCH one chunk from memory; returns (status, Upload-Offset, headers, text)."""
        sent = self._content_sent

        async def go() -> tuple[int, int | None, dict[str, str], str]:
            async with self._sess().patch(
                f"{self.base}/v1/content/{sha256}",
                data=self._stream(chunk, sent),
                headers={
                    "Tus-Resumable": "1.0.0",
                    "Upload-Offset": str(offset),
                    "Content-Type": "application/offset+octet-stream",
                    "Content-Length": str(len(chunk)),
                    "Luutru-Signature": auth,
                },
            ) as r:
                off = r.headers.get("Upload-Offset")
                return r.status, int(off) if off else None, dict(r.headers), await r.text()

        return await self._guard(go)
