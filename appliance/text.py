"""Text rules: everything stored is NFC and trimmed; search folds diacritics and đ/Đ."""

from __future__ import annotations

import re
import unicodedata

_FOLD_TABLE = str.maketrans({"đ": "d", "Đ": "D"})
_TOKEN = re.compile(r"\w+", re.UNICODE)


def nfc(value: str) -> str:
    """NFC-normalise and trim; internal runs of white space become one space."""
    return " ".join(unicodedata.normalize("NFC", value).split())


def nfc_multiline(value: str) -> str:
    """NFC-normalise and trim, keeping line breaks (notes, histories)."""
    lines = [" ".join(line.split()) for line in unicodedata.normalize("NFC", value).splitlines()]
    return "\n".join(lines).strip()


def fold(value: str) -> str:
    """Fold case, tone marks and đ/Đ so that 'quyet dinh' matches 'Quyết định'."""
    decomposed = unicodedata.normalize("NFD", value.translate(_FOLD_TABLE))
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return unicodedata.normalize("NFC", stripped).lower()


def tokens(value: str) -> list[str]:
    """Folded word tokens, as the search index sees them."""
    return _TOKEN.findall(fold(value))
