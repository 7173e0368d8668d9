"""Capture settings, parsed once at the entry point and passed down."""

from __future__ import annotations

from dataclasses import dataclass, field

from .archival import ArchivalProfile
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
    # The archival form of new scans (archival.py): "text" (200 dpi paper, the default) or
    # "drawing" (the scan's resolution everywhere: an office that asks for 300 dpi).
    # None: the office's setting (appliance.json "scans", appliance/config.py ScanConfig).
    profile: ArchivalProfile | None = None
    # Lossless masters (the scan as assembled, before its archival form): "off" (released
    # once the archival PDF exists), "box" (kept on this box, never sent), "sync" (kept, sent).
    masters: str | None = None
