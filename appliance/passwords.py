"""The password rule for every account, appliance and centre (ASVS 2.1.1, 2.1.7): at least
12 characters, at most 200, and none of the commonly used passwords of a small built-in list.

A password is compared in a folded form (case, tone marks, đ, separators and punctuation
dropped) so that "Mật-khẩu 2025!" counts as "matkhau" followed by digits. The list is small on
purpose: the appliance is offline, so it cannot ask a breach corpus, and the length rule
already refuses most of the lists' entries. It holds what people here actually type: words
for "password", "I love you", the names of the office and its software, keyboard walks.
"""

from __future__ import annotations

import string
from collections.abc import Callable

from .errors import AccountError
from .text import fold, nfc

MIN_PASSWORD = 12
MAX_PASSWORD = 200

_COMMON_WORDS = """
password passw0rd p@ssw0rd p@ssword pass matkhau matkhaucuatoi matkhaumoi mk
anhyeuem emyeuanh yeuem iloveyou loveyou teamo
vietnam hanoi saigon tphcm hochiminh danang haiphong
admin administrator root user guest test demo changeme letmein welcome default
qwerty qwertyuiop asdfgh asdfghjkl zxcvbnm qazwsx qazwsxedc 1qaz2wsx 1qaz2wsx3edc zaq12wsx
1q2w3e4r 1q2w3e4r5t 1q2w3e4r5t6y qwer1234 1234qwer abc abcd abcdef abc123 abcd1234
trustno1 dragon monkey football baseball superman batman princess sunshine master shadow
luutru ubnd uybannhandan vanthu lanhdao luutruvien donghai
"""
_SEQUENCES = (
    "01234567890123456789012345678901", "98765432109876543210987654321098",
    "abcdefghijklmnopqrstuvwxyz", "qwertyuiopasdfghjklzxcvbnm", "1qaz2wsx3edc4rfv5tgb6yhn",
)


def _key(password: str) -> str:
    return "".join(ch for ch in fold(password) if ch.isalnum())


COMMON = frozenset(_key(w) for w in _COMMON_WORDS.split())


class PasswordRuleError(AccountError):
    """A new password breaks the rule; ``msgid`` % ``params`` says why in English (the
    catalogs of web_ui/locale translate it for the pages), and ``str()`` says it in Vietnamese
    and English (the command line)."""

    status = 422

    def __init__(self, msgid: str, **params: int) -> None:
        self.msgid = msgid
        self.params = params
        super().__init__(f"{VIETNAMESE[msgid] % params} ({msgid % params})")

    def translated(self, gettext: Callable[[str], str]) -> str:
        """The message in the language of ``gettext`` (a catalog's gettext function)."""
        return gettext(self.msgid) % self.params


TOO_SHORT = "A password needs at least %(min)d characters, and at most %(max)d."
TOO_COMMON = "This password is too common and easy to guess; choose another."
VIETNAMESE = {  # the same words as web_ui/locale/vi (a test keeps the two equal)
    TOO_SHORT: "Mật khẩu phải có ít nhất %(min)d ký tự, và không quá %(max)d ký tự.",
    TOO_COMMON: "Mật khẩu này quá phổ biến, dễ bị đoán; hãy chọn mật khẩu khác.",
}


def is_common(password: str) -> bool:
    """A listed password, a listed word with digits before or after it, a keyboard or number
    run, or fewer than three different characters."""
    k = _key(password)
    if len(set(k)) < 3 or k in COMMON or k.strip(string.digits) in COMMON:
        return True
    return any(k in seq for seq in _SEQUENCES)


def validate_password(password: str) -> str:
    """The password unchanged, or PasswordRuleError."""
    if not MIN_PASSWORD <= len(nfc(password)) <= MAX_PASSWORD:
        raise PasswordRuleError(TOO_SHORT, min=MIN_PASSWORD, max=MAX_PASSWORD)
    if is_common(password):
        raise PasswordRuleError(TOO_COMMON)
    return password
