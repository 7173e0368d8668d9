"""Grouped checkpoint signing: one signature covers every entry committed since the last.

The writer tells the sealer the new tree head after each commit; the sealer signs the newest
head it knows whenever it is free, so a slow key (a TPM at 10–100 signatures/s) never holds
back ingest: it only makes groups larger.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from . import clock as clockmod
from .checkpoint import Checkpoint, sign_checkpoint
from .clock import Clock
from .errors import KeyUnavailableError
from .keys.base import KeyProvider

log = logging.getLogger(__name__)

StoreCheckpoint = Callable[[int, bytes, str, bytes], None]


class Sealer:
    def __init__(
        self,
        key: KeyProvider,
        origin: str,
        clock: Clock,
        store: StoreCheckpoint,
        signed_size: int,
        min_interval: float = 0.2,
    ) -> None:
        self._key = key
        # Sign at most this often: each checkpoint row is one more durable commit, so sealing
        # every single registration would double the fsyncs; a fifth of a second is invisible.
        self._min_interval = min_interval
        self._origin = origin
        self._clock = clock
        self._store = store
        self._cond = threading.Condition()
        self._pending: tuple[int, bytes | Callable[[], bytes]] | None = None
        self._signed = signed_size
        self._error: BaseException | None = None
        self._stopping = False
        self._waiting = 0  # callers in wait_sealed: the pause between signatures is cut short
        self._thread = threading.Thread(target=self._run, name="luutru-sealer", daemon=True)
        self._thread.start()

    @property
    def signed_size(self) -> int:
        with self._cond:
            return self._signed

    @property
    def error(self) -> BaseException | None:
        return self._error

    def check(self) -> None:
        """Raise if the key failed: no record is accepted that cannot be sealed."""
        if self._error is not None:
            raise KeyUnavailableError(
                f"the device key cannot sign checkpoints ({self._error}); no record is accepted "
                "until it is back"
            ) from self._error

    def notify(self, size: int, root: bytes | Callable[[], bytes]) -> None:
        """A new tree head was committed; ``root`` may be a function computing its root."""
        with self._cond:
            if size > self._signed and (self._pending is None or size > self._pending[0]):
                idle = self._pending is None
                self._pending = (size, root)
                # Only an idle sealer waits for work; a busy or pausing one takes the newest
                # head when it gets to it. Waking it at every commit costs the committing
                # thread a context switch and the GIL.
                if idle:
                    self._cond.notify_all()

    def wait_sealed(self, size: int, timeout: float | None = None) -> bool:
        """Block until a checkpoint covers ``size``; someone waiting cuts the pause short."""
        with self._cond:
            self._waiting += 1
            self._cond.notify_all()
            try:
                ok = self._cond.wait_for(
                    lambda: self._signed >= size or self._error is not None or self._stopping,
                    timeout,
                )
            finally:
                self._waiting -= 1
            return ok and self._signed >= size

    def close(self) -> None:
        """Sign what is pending, then stop."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join()

    def _run(self) -> None:
        last = 0.0
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending is not None or self._stopping)
                if self._pending is None:
                    return
                pause = last + self._min_interval - time.monotonic()
                if pause > 0 and not self._stopping:
                    self._cond.wait_for(lambda: self._stopping or self._waiting > 0, pause)
                if self._pending is None:
                    return
                size, root_of = self._pending
                self._pending = None
            try:
                root = root_of() if callable(root_of) else root_of
                cp = Checkpoint(
                    origin=self._origin,
                    tree_size=size,
                    root_hash=root,
                    time=clockmod.iso(self._clock.now()),
                    backing=self._key.backing,
                    alg=self._key.alg,
                )
                cose = sign_checkpoint(cp, self._key)
                self._store(size, root, cp.time, cose)
            except BaseException as exc:
                log.error("sealing tree size %d failed: %s", size, exc)
                with self._cond:
                    self._error = exc
                    self._cond.notify_all()
                return
            last = time.monotonic()
            with self._cond:
                self._signed = max(self._signed, size)
                self._cond.notify_all()
