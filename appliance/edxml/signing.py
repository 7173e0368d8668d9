"""The agency key as the edXML code uses it: to sign exported packages and status messages."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def open_signer(data_dir: Path) -> Iterator[Any]:
    """The agency key with its certificate chain, or None when none is set up yet (status
    messages then go unsigned and the report says so)."""
    from ..keys.agency import AGENCY_CONFIG_PATH, open_agency_key

    if not (data_dir / AGENCY_CONFIG_PATH).exists():
        yield None
        return
    with open_agency_key(data_dir) as key:
        yield key if key.chain else None
