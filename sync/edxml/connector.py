"""The seam between the inbox and a transport: a small Protocol and what it hands over."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Waiting:
    """A package waiting at the exchange: its name there, its bytes, the transport's handle."""

    name: str
    data: bytes
    handle: Any = None


class Connector(Protocol):
    """What the exchange loop needs of a transport."""

    name: str  # "folder:/srv/lienthong", "http:https://lgsp…" — logged with each status sent

    def fetch(self, max_bytes: int) -> Iterator[Waiting]:
        """Packages waiting, oldest first, read one at a time; one larger than ``max_bytes``
        is set aside by the connector itself (as ``refuse`` would) rather than read."""
        ...

    def done(self, item: Waiting) -> None:
        """The package is durably in the inbox: it must never be offered again."""
        ...

    def refuse(self, item: Waiting, reason: str) -> None:
        """The package cannot be taken in (the reason is Vietnamese): keep it aside, never lose
        it, never offer it again."""
        ...

    def send(self, name: str, data: bytes) -> None:
        """Hand a package (a status message, an exported document) to the exchange; returns
        only once it is durably there."""
        ...
