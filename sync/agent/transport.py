"""The seam between a sync cycle and the centre: what the cycle asks of a link. The HTTP client
(``http.CentreClient``) is the real one; tests pass a fake with the same methods.

A USB stick is not a transport of a cycle: it answers nothing while the appliance waits (the
answers come back on the stick days later), so ``usb.py`` writes the same batches and content
the cycle would send and reads the answers when they come.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from .http import RunAhead


class Transport(Protocol):
    """A link to the centre, opened for one cycle (``async with``)."""

    async def __aenter__(self) -> Any: ...

    async def __aexit__(self, *exc: object) -> None: ...

    async def post_cbor(self, path: str, body: bytes) -> tuple[int, bytes]:
        """POST a signed CBOR request; (HTTP status, the centre's signed answer)."""
        ...

    async def head(self, sha256: str, auth: str) -> tuple[int, int | None] | None:
        """(offset, length) of an upload, or None if the centre does not expect it."""
        ...

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
        """Send bytes [offset, offset+length) of ``path``; (status, Upload-Offset, headers,
        text)."""
        ...
