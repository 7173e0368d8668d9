"""The one font kit for every PDF the appliance writes (minutes, covers, registers, setup
sheets, separator sheets): DejaVu Sans, which has every Vietnamese letter, from Debian's
fonts-dejavu-core."""

from __future__ import annotations

from pathlib import Path

from .errors import ConfigError

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))
REGULAR, BOLD = "DejaVuSans", "DejaVuSans-Bold"


def font_file(bold: bool = False) -> Path:
    """The TrueType file of DejaVu Sans (or its bold); a clear error when not installed."""
    name = f"{BOLD if bold else REGULAR}.ttf"
    for d in FONT_DIRS:
        if (d / name).is_file():
            return d / name
    raise ConfigError(f"{name} is not installed (Debian package fonts-dejavu-core)")


def register_reportlab() -> tuple[str, str]:
    """Register DejaVu Sans and its bold with reportlab (once); their font names."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    if REGULAR not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont(REGULAR, str(font_file())))
        pdfmetrics.registerFont(TTFont(BOLD, str(font_file(bold=True))))
    return REGULAR, BOLD
