"""Capture settings, parsed once at the entry point and passed down."""

from __future__ import annotations

from dataclasses import dataclass, field

from .ocr import OcrConfig
from .page import MAX_PIXELS, MIN_DPI


@dataclass(frozen=True)
class CaptureConfig:
    min_dpi: int = MIN_DPI
    max_pixels: int = MAX_PIXELS
    blank_max_ink: float = 0.0003  # share of dark pixels below which a page is an empty back
    split_at_separators: bool = True
    ocr: OcrConfig = field(default_factory=OcrConfig)
    sign: bool = True
    copy_type: str | None = None  # e.g. "SAO Y" for a bản sao điện tử (Decree 30 Điều 25)
    max_attempts: int = 5
    retry_base_s: float = 60.0
