"""Resumable content uploads (tus core 1.0.0) addressed by SHA-256, the server's side.

A PATCH may carry one chunk or, streamed, the rest of a file (up to ``wire.MAX_PIECES``
pieces): its signature (``Luutru-Signature``) lists the SHA-256 of every piece. The server
reads the body piece by piece and commits each piece as soon as it has fully arrived, only if
its hash matches the signed one, its offset *still* equals the stored length, and the request
still owns the upload — all under a lock per upload (a thread lock plus ``flock``, so worker
processes agree). A request cut short keeps every piece it completed; a resume resends at most
the piece that was in flight.

That is what stops the corruption in io-recipes §7: after an outage the kernel may deliver the
tail of an abandoned request, whose stale handler must not append anything. Each new PATCH
takes the upload over (``<sha>.owner`` names its nonce), so a superseded request commits
nothing more; it could not append unverified or misplaced bytes anyway. When the last byte
arrives the whole file's SHA-256 is checked; a mismatch discards it.

The PATCH that completes a file answers 204 with a signed status answer in ``Luutru-Answer``
(bound to the PATCH's signed request): how much content is still missing and the receipt for
the accepted size, so the agent needs no status request after its last upload.

Lanes: one large file may go up over two connections at once. A request signed with
``lane: S`` writes the upload's second lane, bytes [S, length); lane 0 (every request without
``lane``, as before) then ends at S. The second lane opens with its first request, at S, only
if lane 0 holds nothing beyond S; it has its own stored length and its own owner, and follows
the same rules: a piece is committed only when it has fully arrived and matches its signed
hash, its offset still equals that lane's stored length, it does not pass that lane's end and
the request still owns that lane. When both lanes are full the file is put together, checked
against its SHA-256 and renamed in (if the centre stopped before that, the next HEAD does
it). ``Luutru-Lane: S-END`` (PATCH and HEAD answers) and ``extra.lanes`` in batch and status
answers (``[S, END]``, or ``[]`` for a file that may have a second lane) say where the second
lane stands.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import TypeVar

from aiohttp import web

from .. import wire
from ..errors import (
    AuthError,
    ContentError,
    QuarantinedError,
    ReplayError,
    SyncError,
    WireError,
)
from .anomalies import note
from .intake import Intake
from .links import check_containers
from .storage import AnomalyKind, ApplianceStatus, CentreTx

TUS_VERSION = "1.0.0"
TUS_HEADERS = {"Tus-Resumable": TUS_VERSION, "Cache-Control": "no-store"}
REORDER = 16  # how far below the last sequence number a chunk request may arrive
IDLE_READ_S = 300.0  # a PATCH body that stops moving this long is dropped (its pieces kept)
_T = TypeVar("_T")


@dataclass(frozen=True)
class UploadState:
    offset: int  # where the request's lane stands (lane 0: the stored length)
    length: int  # -1: not known yet (the first PATCH says)
    finished: bool | None = None  # the whole file is held (None: offset == length says)

    @property
    def complete(self) -> bool:
        if self.finished is not None:
            return self.finished
        return self.length >= 0 and self.offset == self.length


class FileDiscarded(ContentError):
    """The finished upload does not hash to its name; it was thrown away (HTTP 460)."""


class Superseded(ContentError):
    """A newer PATCH took the upload over; this one commits nothing more (HTTP 409)."""


@dataclass(frozen=True)
class Session:
    """One authorised PATCH: what it may write, for whom, and how it owns the upload."""

    app_id: str
    grant: wire.UploadGrant
    length: int  # the file's length (-1 unknown)
    owner: str  # the request's nonce: the upload's owner while this PATCH is current
    digest: bytes  # the signed request's SHA-256 (binds the completion answer)
    seq: int

    @property
    def sha256(self) -> str:
        return self.grant.sha256


class Uploads:
    def __init__(self, intake: Intake) -> None:
        self.intake = intake
        self.c = intake.c
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, sha256: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(sha256, threading.Lock())

    @contextmanager
    def _exclusive(self, sha256: str) -> Iterator[None]:
        """The per-upload lock, across threads and across worker processes (flock)."""
        self.c.blobs.path(sha256)  # validates the name before it names a lock file
        with self._lock(sha256):
            fd = os.open(self._file(sha256, "lock"), os.O_RDWR | os.O_CREAT, 0o640)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)

    def _file(self, sha256: str, suffix: str) -> str:
        return str(self.c.blobs.root / "uploads" / f"{sha256}.{suffix}")

    @staticmethod
    def _owner_suffix(lane: int) -> str:
        return f"owner-{lane}" if lane else "owner"

    def _owner(self, sha256: str, lane: int = 0) -> str:
        try:
            with open(self._file(sha256, self._owner_suffix(lane)), encoding="ascii") as fh:
                return fh.read()
        except FileNotFoundError:
            return ""

    def _take_over(self, sha256: str, owner: str, lane: int = 0) -> None:
        """Make ``owner`` the only request that may commit to ``lane`` (under the upload's
        lock). Not fsynced: after a crash no older handler is alive to be fenced off."""
        tmp = self._file(sha256, "owner.tmp")
        with open(tmp, "w", encoding="ascii") as fh:
            fh.write(owner)
        os.replace(tmp, self._file(sha256, self._owner_suffix(lane)))

    def _release(self, sha256: str, lane: int | None = None) -> None:
        with suppress(FileNotFoundError):
            os.unlink(self._file(sha256, "owner"))
        if lane:
            with suppress(FileNotFoundError):
                os.unlink(self._file(sha256, self._owner_suffix(lane)))

    def lane_header(self, sha256: str) -> dict[str, str]:
        """``Luutru-Lane: START-END`` if the upload has a second lane."""
        try:
            ln = self.c.blobs.lane(sha256)
        except ContentError:
            return {}
        return {wire.LANE_HEADER: f"{ln[0]}-{ln[1]}"} if ln else {}

    def head(self, sha256: str, appliance_id: str) -> UploadState:
        """The tus offset of ``sha256`` as ``appliance_id`` may upload it. A file that the
        appliance's accepted entries do not reference is not found, even if the centre holds
        it from another commune: a HEAD says nothing about other appliances' content."""
        blobs = self.c.blobs
        blobs.path(sha256)  # validates the name
        with self.c.storage.view() as v:
            ref = v.content_expected(appliance_id, sha256)
        if ref is None:
            raise ContentError(f"this appliance's accepted entries do not reference {sha256}")
        if blobs.has(sha256):
            return self._complete(sha256)
        if (ln := blobs.lane(sha256)) is not None and ln[1] == ref.size:
            with self._exclusive(sha256):  # both lanes full, not yet put together (a crash)
                if not blobs.has(sha256) and blobs.partial_size(sha256) == ln[0]:
                    return self._finish(sha256, appliance_id, ref.size, ln[0])
            return self.head(sha256, appliance_id)
        return UploadState(blobs.partial_size(sha256), ref.size)

    def _complete(self, sha256: str) -> UploadState:
        size = self.c.blobs.path(sha256).stat().st_size
        with self.c.storage.view() as v:
            recorded = v.blob_recorded(sha256)
        if not recorded:  # renamed in, but the centre died before recording it
            with self.c.storage.transaction() as tx:
                tx.record_blob(sha256, size, self.c.now())
            check_containers(self.c, [sha256])
        return UploadState(size, size)

    # a PATCH: begin, then commit piece by piece -----------------------------------------

    def begin(
        self, sha256: str, offset: int, body_length: int | None, auth: str
    ) -> tuple[Session, UploadState]:
        """Authorise a PATCH and take the upload over; raises ContentError with the real
        offset (409) when ``offset`` is not where the upload stands."""
        s = self._authorise(sha256, offset, body_length, auth)
        blobs = self.c.blobs
        lane = s.grant.lane
        end = offset + s.grant.length
        with self._exclusive(sha256):
            if blobs.has(sha256):
                return s, self._complete(sha256)
            other = blobs.lane(sha256)
            if lane == 0:
                current = blobs.partial_size(sha256)
                limit = other[0] if other else s.length
            else:
                current, limit = self._lane_current(sha256, lane, other, s.length), s.length
            if offset != current:
                raise ContentError(f"offset {offset} is not the upload's {current}", current)
            if limit >= 0 and end > limit:
                what = "its lane's end" if other else "the file's length"
                raise ContentError(f"the request ends at {end}, beyond {what} {limit}", current)
            if lane and other is None:
                blobs.open_lane(sha256, lane)
            self._take_over(sha256, s.owner, lane)
        return s, UploadState(current, s.length)

    def _lane_current(
        self, sha256: str, lane: int, other: tuple[int, int] | None, length: int
    ) -> int:
        """Where the second lane starting at ``lane`` stands (it opens at ``lane`` if lane 0
        holds nothing beyond it). If that lane cannot be: ContentError (409) with lane 0's stored
        length; the ``Luutru-Lane`` header then says which second lane there is, if any."""
        held = self.c.blobs.partial_size(sha256)
        if other is not None:
            if other[0] != lane:
                raise ContentError(f"this upload's second lane starts at {other[0]}", held)
            return other[1]
        if length < 0 or not held <= lane < length:
            raise ContentError(
                f"a second lane cannot start at {lane}: {held} of {length} bytes are held",
                held,
            )
        return lane

    def commit(self, s: Session, index: int, data: bytes) -> UploadState:
        """Append piece ``index`` of ``s`` if it matches its signed hash, its offset still
        equals the stored length and ``s`` still owns the upload."""
        start, end = s.grant.span(index)
        if len(data) != end - start or wire.sha256(data) != s.grant.hashes[index]:
            note(
                self.c, s.app_id,
                AnomalyKind.BAD_SIGNATURE,
                f"upload piece {start}-{end} of {s.sha256} does not match its signature",
            )
            raise ContentError(
                f"the piece at {start} does not match what its signature covers", None
            )
        blobs = self.c.blobs
        sha = s.sha256
        lane = s.grant.lane
        with self._exclusive(sha):
            if blobs.has(sha):
                return self._complete(sha)
            other = blobs.lane(sha)
            if lane == 0:
                current = blobs.partial_size(sha)
                limit = other[0] if other else s.length
            elif other is None or other[0] != lane:
                raise Superseded("this lane is gone", blobs.partial_size(sha))
            else:
                current, limit = other[1], s.length
            if self._owner(sha, lane) != s.owner:
                raise Superseded("a newer request took this upload over", current)
            if current != start:
                raise ContentError(f"offset {start} is not the upload's {current}", current)
            if limit >= 0 and end > limit:
                raise ContentError(f"the piece ends at {end}, past its lane's end {limit}",
                                   current)
            if lane:
                new = blobs.append_lane(sha, lane, start, data)
            else:
                new = blobs.append_partial(sha, start, data)
            if other is None and new != s.length:
                return UploadState(new, s.length)
            if other is not None:
                held, ln = blobs.partial_size(sha), blobs.lane(sha)
                if ln is None or held != ln[0] or ln[1] != s.length:
                    return UploadState(new, s.length, finished=False)
            return self._finish(sha, s.app_id, s.length, other[0] if other else None)

    def _finish(self, sha: str, app_id: str, length: int, lane: int | None) -> UploadState:
        """Put a fully held upload together (its part, and its second lane if any), check it
        against its SHA-256 and rename it in; under the upload's lock."""
        self._release(sha, lane)
        if not self.c.blobs.finish_lanes(sha):
            with self.c.storage.transaction() as tx:
                tx.record_anomaly(
                    app_id,
                    AnomalyKind.CONTENT_MISMATCH,
                    f"content {sha}: the finished upload has another SHA-256; discarded",
                    self.c.now(),
                )
            raise FileDiscarded(
                f"the uploaded file does not hash to {sha}; it was discarded, send it again", 0
            )
        with self.c.storage.transaction() as tx:
            tx.record_blob(sha, length, self.c.now())
        check_containers(self.c, [sha])  # the versions the box sent inside this file
        return UploadState(length, length)

    def answer(self, s: Session) -> bytes:
        """The signed status answer for the PATCH that completed a file (no missing list)."""
        with self.c.storage.view() as v:
            app = v.appliance(s.app_id)
            assert app is not None
            _, count = v.missing_content(s.app_id, 0)
            cp = v.checkpoint(s.app_id, app.accepted_size)
        resp = wire.Response(
            request=s.digest,
            outcome=wire.Outcome.STATUS,
            centre_time=self.c.now(),
            accepted_size=app.accepted_size,
            accepted_root=app.accepted_root,
            receipt=cp.receipt if cp else None,
            missing_count=count,
            last_seq=s.seq,
        )
        return self.c.sign_response(resp)

    def authorise_head(self, sha256: str, auth: str) -> str:
        """The enrolled appliance whose device key signed this HEAD of ``sha256``, under the
        same replay and quarantine rules as a PATCH; AuthError or WireError otherwise."""
        try:
            req = wire.parse_request(wire.unb64(auth))
            if req.type is not wire.RequestType.HEAD:
                raise WireError("a HEAD is authorised only by a head request")
            if req.body.get("sha256") != sha256:
                raise WireError("the head request is signed for another upload")
        except WireError as exc:
            note(self.c, None, AnomalyKind.MALFORMED, f"HEAD signature: {exc}")
            raise
        app, _ = self.intake.authenticate(req)
        # Its nonce is kept, so it cannot be replayed; it changes nothing, so it need not be
        # in sequence with the PATCHes it comes between.
        self._admit(app.id, req, lambda tx: None, in_sequence=False)
        return app.id

    def _admit(
        self, app_id: str, req: wire.SignedRequest, then: Callable[[CentreTx], _T],
        in_sequence: bool = True,
    ) -> _T:
        """In one transaction: refuse a quarantined appliance or a replayed request (a nonce
        seen before; with ``in_sequence``, a sequence number too far behind), record the nonce
        and the contact, then ``then``; a refusal is recorded as an anomaly."""
        now = self.c.now()
        try:
            with self.c.storage.transaction() as tx:
                fresh = tx.appliance(app_id)
                assert fresh is not None
                if fresh.status is ApplianceStatus.QUARANTINED:
                    raise QuarantinedError("this appliance is quarantined; uploads are refused")
                # The agent keeps two PATCHes in flight on two connections, so they may
                # arrive out of their signing order: a little below the last sequence number
                # is fine for a fresh nonce (every nonce is kept: a replay is still refused).
                behind = in_sequence and req.seq <= fresh.last_seq - REORDER
                if tx.nonce_seen(app_id, req.nonce) or behind:
                    raise ReplayError(f"upload {req.type.value} request replayed", fresh.last_seq)
                if in_sequence and req.seq > fresh.last_seq:
                    tx.set_seq(app_id, req.seq)
                tx.add_nonce(app_id, req.nonce, now)
                tx.touch(app_id, now)
                return then(tx)
        except SyncError as exc:
            with self.c.storage.transaction() as tx:
                kind = {
                    "replay": AnomalyKind.REPLAY,
                    "quarantined": AnomalyKind.QUARANTINED_REQUEST,
                }.get(exc.code, AnomalyKind.MALFORMED)
                tx.record_anomaly(app_id, kind, str(exc), now)
            raise

    def _authorise(
        self, sha256: str, offset: int, body_length: int | None, auth: str
    ) -> Session:
        try:
            req = wire.parse_request(wire.unb64(auth))
            if req.type is not wire.RequestType.CHUNK:
                raise WireError("upload is not authorised by a chunk request")
            grant = wire.UploadGrant.from_body(req.body)
        except WireError as exc:
            note(self.c, None, AnomalyKind.MALFORMED, f"upload signature: {exc}")
            raise
        app, _ = self.intake.authenticate(req)
        if grant.sha256 != sha256 or grant.offset != offset or grant.length != body_length:
            note(
                self.c, app.id,
                AnomalyKind.BAD_SIGNATURE,
                f"upload of {sha256} does not match its signature (offset or length)",
            )
            raise ContentError("the request does not match what its signature covers", None)
        if grant.piece > self.c.config.max_chunk_bytes:
            raise ContentError(
                f"pieces of {grant.piece} bytes exceed this centre's "
                f"{self.c.config.max_chunk_bytes}",
                None,
            )

        def length_of(tx: CentreTx) -> int:
            ref = tx.content_expected(app.id, sha256)
            if ref is None:
                raise ContentError(f"{sha256} is not referenced by this appliance's entries")
            length = ref.size
            if length < 0 and grant.total is not None:
                length = grant.total
            if length >= 0 and grant.total is not None and grant.total != length:
                raise ContentError(
                    f"the appliance's file has {grant.total} bytes; its entry says {length}"
                )
            return length

        length = self._admit(app.id, req, length_of)
        return Session(app.id, grant, length, req.nonce.hex(), req.digest, req.seq)


# -- the HTTP handler -----------------------------------------------------------------------


async def _read_piece(request: web.Request, n: int) -> bytes | None:
    """Exactly ``n`` body bytes, or None if the body ended, broke or stalled first."""
    buf = bytearray()
    try:
        while len(buf) < n:
            part = await asyncio.wait_for(request.content.read(n - len(buf)), IDLE_READ_S)
            if not part:
                return None
            buf += part
    except (TimeoutError, ConnectionError, OSError, asyncio.IncompleteReadError):
        return None
    except Exception as exc:  # aiohttp's payload errors (connection lost mid-body)
        if type(exc).__module__.startswith("aiohttp"):
            return None
        raise
    return bytes(buf)


def _tus_error(exc: SyncError) -> web.Response:
    if isinstance(exc, ContentError):
        headers = dict(TUS_HEADERS)
        if exc.offset is None:
            status = 400
        else:
            headers["Upload-Offset"] = str(exc.offset)
            status = 460 if isinstance(exc, FileDiscarded) else 409
        return web.Response(status=status, headers=headers, text=str(exc))
    if isinstance(exc, (AuthError, ReplayError, QuarantinedError)):
        status = 423 if isinstance(exc, QuarantinedError) else 403
        if isinstance(exc, ReplayError):
            status = 409
        return web.Response(
            status=status,
            headers={**TUS_HEADERS, "Luutru-Error": exc.code, "Luutru-Last-Seq": str(
                exc.last_seq if isinstance(exc, ReplayError) else 0)},
            text=str(exc),
        )
    return web.Response(status=400, headers=TUS_HEADERS, text=str(exc))


async def handle_head(uploads: Uploads, request: web.Request) -> web.Response:
    """tus HEAD, signed by the device key (``wire.RequestType.HEAD`` in ``Luutru-Signature``).
    Every request without a valid signature for this upload gets the same bare 403, before
    the centre looks at its content: no offset, length or lane, whatever it holds."""
    sha = request.match_info["sha256"]
    auth = request.headers.get(wire.AUTH_HEADER, "")
    try:
        if not auth:
            raise AuthError(f"{wire.AUTH_HEADER} header is required")
        app_id = await asyncio.to_thread(uploads.authorise_head, sha, auth)
    except (AuthError, WireError):
        return web.Response(status=403, headers=TUS_HEADERS)
    except SyncError as exc:  # replayed, or the appliance is quarantined
        return _tus_error(exc)
    try:
        st = await asyncio.to_thread(uploads.head, sha, app_id)
    except ContentError:
        return web.Response(status=404, headers=TUS_HEADERS)
    headers = {**TUS_HEADERS, "Upload-Offset": str(st.offset)}
    if st.length >= 0:
        headers["Upload-Length"] = str(st.length)
    if not st.complete:
        headers.update(await asyncio.to_thread(uploads.lane_header, sha))
    return web.Response(status=200, headers=headers)


async def handle_patch(uploads: Uploads, request: web.Request) -> web.Response:
    """tus PATCH: authorise, then read and commit the body piece by piece."""
    if request.content_type != "application/offset+octet-stream":
        raise web.HTTPUnsupportedMediaType(text="send application/offset+octet-stream")
    try:
        offset = int(request.headers["Upload-Offset"])
    except (KeyError, ValueError):
        raise web.HTTPBadRequest(text="Upload-Offset header is required") from None
    auth = request.headers.get(wire.AUTH_HEADER, "")
    if not auth:
        raise web.HTTPForbidden(text=f"{wire.AUTH_HEADER} header is required")
    sha = request.match_info["sha256"]
    try:
        s, st = await asyncio.to_thread(uploads.begin, sha, offset, request.content_length, auth)
    except SyncError as exc:
        resp = _tus_error(exc)
        resp.headers.update(await asyncio.to_thread(uploads.lane_header, sha))
        resp.force_close()  # the body is not read: never parse it as the next request
        return resp
    consumed = 0
    try:
        for i in range(len(s.grant.hashes)):
            if st.complete:
                break
            a, b = s.grant.span(i)
            data = await _read_piece(request, b - a)
            if data is None:  # cut short: the complete pieces are kept, the rest is lost
                raise web.HTTPBadRequest(text="the request body ended early")
            consumed += len(data)
            st = await asyncio.to_thread(uploads.commit, s, i, data)
    except SyncError as exc:
        resp = _tus_error(exc)
        resp.headers.update(await asyncio.to_thread(uploads.lane_header, sha))
        resp.force_close()
        return resp
    headers = {**TUS_HEADERS, "Upload-Offset": str(st.offset)}
    if not st.complete:
        headers.update(await asyncio.to_thread(uploads.lane_header, sha))
    if st.complete:
        headers[wire.ANSWER_HEADER] = wire.b64(await asyncio.to_thread(uploads.answer, s))
    resp = web.Response(status=204, headers=headers)
    if consumed < s.grant.length:
        resp.force_close()  # finished before the body was: its rest is never read
    return resp
