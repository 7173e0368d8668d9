"""Resumable content uploads (tus core 1.0.0) addressed by SHA-256, the server's side.

A PATCH body is read whole before anything is written; it is then committed only if its
signed chunk hash matches and its offset *still* equals the stored length, under a lock per
upload. That is what stops the corruption in io-recipes §7: after an outage the kernel may
deliver the tail of an abandoned request, whose stale handler must not append anything.
When the last byte arrives the whole file's SHA-256 is checked; a mismatch discards it.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from .. import wire
from ..errors import ContentError, QuarantinedError, ReplayError, SyncError, WireError
from .intake import Intake
from .storage import AnomalyKind, ApplianceStatus

TUS_VERSION = "1.0.0"


@dataclass(frozen=True)
class UploadState:
    offset: int
    length: int  # -1: not known yet (the first PATCH says)

    @property
    def complete(self) -> bool:
        return self.length >= 0 and self.offset == self.length


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
            fd = os.open(self.c.blobs.root / "uploads" / f"{sha256}.lock", os.O_RDWR | os.O_CREAT,
                         0o640)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)

    def head(self, sha256: str, appliance_id: str | None) -> UploadState:
        """The tus offset of ``sha256`` as ``appliance_id`` may upload it."""
        blobs = self.c.blobs
        blobs.path(sha256)  # validates the name
        with self.c.storage.view() as v:
            ref = v.content_expected(appliance_id, sha256) if appliance_id else None
            recorded = v.blob_recorded(sha256)
        if blobs.has(sha256):
            size = blobs.path(sha256).stat().st_size
            if not recorded:  # renamed in, but the centre died before recording it
                with self.c.storage.transaction() as tx:
                    tx.record_blob(sha256, size, self.c.now())
            return UploadState(size, size)
        if ref is None:
            raise ContentError(f"no enrolled appliance's accepted entries reference {sha256}")
        return UploadState(blobs.partial_size(sha256), ref.size)

    def patch(self, sha256: str, offset: int, data: bytes, auth: str) -> UploadState:
        """Commit one whole chunk at ``offset``; raises ContentError with the real offset."""
        app_id, length = self._authorise(sha256, offset, data, auth)
        blobs = self.c.blobs
        with self._exclusive(sha256):
            if blobs.has(sha256):
                size = blobs.path(sha256).stat().st_size
                return UploadState(size, size)
            current = blobs.partial_size(sha256)
            if offset != current:
                raise ContentError(f"offset {offset} is not the upload's {current}", current)
            if length >= 0 and offset + len(data) > length:
                raise ContentError(
                    f"chunk ends at {offset + len(data)}, beyond the file's {length} bytes",
                    current,
                )
            new = blobs.append_partial(sha256, offset, data)
            if new != length:
                return UploadState(new, length)
            if not blobs.finish_partial(sha256):
                with self.c.storage.transaction() as tx:
                    tx.record_anomaly(
                        app_id,
                        AnomalyKind.CONTENT_MISMATCH,
                        f"content {sha256}: the finished upload has another SHA-256; discarded",
                        self.c.now(),
                    )
                raise ContentError(
                    f"the uploaded file does not hash to {sha256}; it was discarded, send it again",
                    0,
                )
            with self.c.storage.transaction() as tx:
                tx.record_blob(sha256, length, self.c.now())
            return UploadState(length, length)

    def _authorise(self, sha256: str, offset: int, data: bytes, auth: str) -> tuple[str, int]:
        try:
            req = wire.parse_request(wire.unb64(auth))
        except WireError as exc:
            self.intake._note(None, AnomalyKind.MALFORMED, f"upload signature: {exc}")
            raise
        if req.type is not wire.RequestType.CHUNK:
            raise WireError("upload is not authorised by a chunk request")
        app, _ = self.intake.authenticate(req)
        body = req.body
        if (
            body.get("sha256") != sha256
            or body.get("offset") != offset
            or body.get("length") != len(data)
            or body.get("chunk") != wire.sha256(data)
        ):
            self.intake._note(
                app.id,
                AnomalyKind.BAD_SIGNATURE,
                f"upload chunk of {sha256} does not match its signature",
            )
            raise ContentError("the chunk does not match what its signature covers", None)
        total = body.get("total")
        now = self.c.now()
        try:
            with self.c.storage.transaction() as tx:
                fresh = tx.appliance(app.id)
                assert fresh is not None
                if fresh.status is ApplianceStatus.QUARANTINED:
                    raise QuarantinedError("this appliance is quarantined; uploads are refused")
                if tx.nonce_seen(app.id, req.nonce) or req.seq <= fresh.last_seq:
                    raise ReplayError("upload chunk request replayed", fresh.last_seq)
                tx.set_seq(app.id, req.seq)
                tx.add_nonce(app.id, req.nonce, now)
                tx.touch(app.id, now)
                ref = tx.content_expected(app.id, sha256)
                if ref is None:
                    raise ContentError(f"{sha256} is not referenced by this appliance's entries")
                length = ref.size
                if length < 0 and isinstance(total, int) and total >= 0:
                    length = total
        except SyncError as exc:
            with self.c.storage.transaction() as tx:
                kind = {
                    "replay": AnomalyKind.REPLAY,
                    "quarantined": AnomalyKind.QUARANTINED_REQUEST,
                }.get(exc.code, AnomalyKind.MALFORMED)
                tx.record_anomaly(app.id, kind, str(exc), now)
            raise
        return app.id, length
