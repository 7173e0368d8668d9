"""Routing a batch by a scanned code: a serial (or USB-CDC) barcode/QR reader, or typed.

Scanning the code on a hồ sơ cover sheet (its mã hồ sơ, or our separator QR) or a document's
code sets where the *next* batch goes. The reader is read with pyserial; real readers end a
code with CR, LF or CRLF (a per-device setting), so a code is read up to the configured
terminator and stripped of the rest.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import ValidationError
from ..identifiers import FileCode
from .separator import Target, parse_payload

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@dataclass(frozen=True)
class Route:
    code: str
    target: Target | None
    message: str


def parse_code(code: str) -> Target | None:
    """The target a scanned code names: a separator payload, a mã hồ sơ or a document id."""
    code = code.strip()
    found = parse_payload(code)
    if found is not None:
        return found
    if _UUID.match(code.lower()):
        return Target(document_id=code.lower())
    try:
        return Target(file_code=str(FileCode.parse(code)))
    except ValidationError:
        return None


class BarcodeRouter:
    """Holds the target for the next batch. Thread-safe: the reader thread feeds it."""

    def __init__(self, exists: Callable[[Target], bool] | None = None) -> None:
        self._exists = exists
        self._next: Target | None = None
        self._lock = threading.Lock()

    def feed(self, code: str) -> Route:
        target = parse_code(code)
        if target is None:
            return Route(code, None, f"'{code}' is not a mã hồ sơ, document or separator code")
        if self._exists is not None and not target.is_default and not self._exists(target):
            return Route(code, None, f"{target.describe()} does not exist here")
        with self._lock:
            self._next = target
        return Route(code, target, f"the next batch goes to {target.describe()}")

    def peek(self) -> Target | None:
        with self._lock:
            return self._next

    def take(self) -> Target | None:
        """The target for the batch starting now; later batches go to the default again."""
        with self._lock:
            target, self._next = self._next, None
            return target


def store_exists(store: Any) -> Callable[[Target], bool]:
    """An ``exists`` check against a Store: the hồ sơ or document must be there."""

    def exists(target: Target) -> bool:
        if target.document_id:
            return store.find_one("document", id=target.document_id) is not None
        return store.find_one("file", FileCode=target.file_code) is not None

    return exists


class SerialReader:
    """Reads codes from a serial barcode reader and feeds them to a router."""

    def __init__(
        self,
        port: str,
        router: BarcodeRouter,
        terminator: bytes = b"\r",
        baudrate: int = 9600,
        timeout: float = 0.5,
        on_route: Callable[[Route], None] | None = None,
    ) -> None:
        import serial  # type: ignore[import-untyped]

        self.router = router
        self.terminator = terminator
        self.on_route = on_route
        self.serial = serial.Serial(port, baudrate, timeout=timeout)

    def read_once(self) -> Route | None:
        """One code, or None when the reader sent nothing before the timeout."""
        raw = self.serial.read_until(self.terminator)
        if not raw.endswith(self.terminator):
            if not raw.strip():
                return None
            # a partial code: keep reading until its terminator arrives
            raw += self.serial.read_until(self.terminator)
        code = raw.decode("utf-8", "replace").strip("\r\n\t ")
        if not code:
            return None  # the LF of a CRLF read after its CR
        route = self.router.feed(code)
        if self.on_route is not None:
            self.on_route(route)
        return route

    def run_forever(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.read_once()

    def close(self) -> None:
        self.serial.close()
