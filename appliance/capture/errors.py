"""Errors of capture: each says what the clerk or operator should do, and whether a retry helps."""

from __future__ import annotations

from ..errors import LuutruError


class CaptureError(LuutruError):
    """Base class for capture errors."""


class ImageRejected(CaptureError):
    """An input file is not an image or PDF the pipeline can take (corrupt, empty, unsafe)."""

    def __init__(self, message: str, name: str = "") -> None:
        super().__init__(f"{name}: {message}" if name else message)
        self.name = name


class LowResolution(ImageRejected):
    """A page is below the legal minimum of 200 dpi."""


class DecompressionBomb(ImageRejected):
    """An image claims more pixels than any real page could have."""


class UnsafePdf(ImageRejected):
    """A PDF carries scripts, actions or attachments."""


class SourceError(CaptureError):
    """The scanner or source failed; pages already received are kept."""

    retryable = True


class ScannerInterrupted(SourceError):
    """The scanner stopped mid-batch (unplugged, jammed, powered off); the batch can be resumed."""


class DiskFull(CaptureError):
    """No space left for the spool or the content store; what is already captured is kept."""

    retryable = True


class OcrFailed(CaptureError):
    """OCR crashed, timed out or ran out of memory; it is retried later."""

    retryable = True


class SigningUnavailable(CaptureError):
    """The agency key cannot sign now (not set up, token absent); signing is retried later."""

    retryable = True


class BatchNotFound(CaptureError):
    """No capture batch has that id."""
