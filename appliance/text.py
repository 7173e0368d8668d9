"""Text rules: everything stored is NFC and trimmed; search folds diacritics and đ/Đ."""

from __future__ import annotations

import re
import unicodedata


def _fold_slow(value: str) -> str:
    decomposed = unicodedata.normalize("NFD", value.replace("đ", "d").replace("Đ", "D"))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


# One C-level translate instead of a per-character Python loop: every precomposed Latin letter
# (Vietnamese lives in U+00C0–U+024F and U+1E00–U+1EFF) maps to its base letter, and combining
# marks (from NFD input) are dropped.
_FOLD_TABLE: dict[int, str] = {}
for _cp in [*range(0x00C0, 0x0250), *range(0x0300, 0x0370), *range(0x1E00, 0x1F00)]:
    _folded = _fold_slow(chr(_cp))
    if _folded != chr(_cp):
        _FOLD_TABLE[_cp] = _folded
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
    folded = value.translate(_FOLD_TABLE).lower()
    if folded.isascii():
        return folded
    # Rare: letters outside the table (other scripts, compatibility forms).
    return unicodedata.normalize("NFC", _fold_slow(folded)).lower()


def tokens(value: str) -> list[str]:
    """Folded word tokens, as the search index sees them."""
    return _TOKEN.findall(fold(value))
