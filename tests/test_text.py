"""Text rules (appliance/text.py): stored text is NFC and trimmed; search folds case, tone
marks and đ/Đ, and the fast fold agrees with the slow one on every Vietnamese letter."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.text import _fold_slow, fold, nfc, nfc_multiline, tokens

VIETNAMESE = "aăâbcdđeêghiklmnoôơpqrstuưvxy"
TONES = "\u0300\u0301\u0303\u0309\u0323"  # huyền, sắc, ngã, hỏi, nặng


def test_nfc_composes_and_collapses_white_space() -> None:
    """Decomposed input is stored composed; runs of spaces, tabs and newlines become one."""
    decomposed = unicodedata.normalize("NFD", "Quyết định")
    assert decomposed != "Quyết định"
    assert nfc(f"  {decomposed} \t số\n 05  ") == "Quyết định số 05"
    assert nfc("   ") == ""


def test_nfc_multiline_keeps_line_breaks_only() -> None:
    """Notes keep their lines; each line is trimmed and composed; outer blank lines go."""
    text = "\n  Dòng  một \r\n" + unicodedata.normalize("NFD", "dòng hai") + "  \n\n"
    assert nfc_multiline(text) == "Dòng một\ndòng hai"


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("Quyết định", "quyet dinh"),
        ("ĐẢNG ỦY", "dang uy"),
        ("Ủy ban nhân dân xã Đông Hải", "uy ban nhan dan xa dong hai"),
        ("Nghị quyết 05/NQ-HĐND", "nghi quyet 05/nq-hdnd"),
        ("Ä ñ ç", "a n c"),
    ],
)
def test_fold_drops_case_tones_and_the_bar_of_d(text: str, folded: str) -> None:
    """'quyet dinh' finds 'Quyết định'; the same rule for other Latin letters."""
    assert fold(text) == folded
    assert fold(unicodedata.normalize("NFD", text)) == folded


def test_fold_table_agrees_with_unicode_on_every_vietnamese_letter() -> None:
    """Every base letter with every tone mark, upper and lower case, folds as NFD does."""
    for base in VIETNAMESE + VIETNAMESE.upper():
        for tone in ("", *TONES):
            letter = unicodedata.normalize("NFC", base + tone)
            assert fold(letter) == _fold_slow(letter).lower(), letter
            assert fold(letter).isascii(), letter


@given(st.text(max_size=40))
def test_fold_is_idempotent_on_any_text(text: str) -> None:
    """Folding twice changes nothing (a folded query matches a folded index)."""
    assert fold(fold(text)) == fold(text)


def test_tokens_are_folded_words() -> None:
    """The search index sees folded word tokens, punctuation dropped."""
    assert tokens("V/v triển khai, công tác PCTT-2025!") == [
        "v", "v", "trien", "khai", "cong", "tac", "pctt", "2025"]
