"""The seam every page source implements."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from ..pipeline import InputFile


class Source(Protocol):
    """Yields a batch's files as they arrive.

    A source that fails mid-batch raises ScannerInterrupted *after* yielding every complete
    page it received, so those pages are kept and the batch can be resumed.
    """

    name: str

    def pages(self) -> Iterator[InputFile]: ...


class ListSource:
    """Files already in memory (uploads, tests)."""

    def __init__(self, files: list[InputFile], name: str = "upload") -> None:
        self.files = files
        self.name = name

    def pages(self) -> Iterator[InputFile]:
        yield from self.files
