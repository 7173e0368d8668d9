"""Vietnamese by default, English on request: gettext catalogs compiled from the .po sources.

The .po files in ``locale/`` are the only source; they are compiled in memory at start (a few
milliseconds), so no binary .mo can go stale. Message ids are English.
"""

from __future__ import annotations

import gettext
import io
from functools import cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = ("vi", "en")
DEFAULT = "vi"
LANG_COOKIE = "luutru_lang"


def po_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"


@cache
def translations(lang: str) -> gettext.NullTranslations:
    """The compiled catalog of ``lang`` (English is the message ids themselves)."""
    path = po_path(lang)
    if lang not in LANGUAGES or not path.exists():
        return gettext.NullTranslations()
    with path.open("rb") as fh:
        catalog = read_po(fh, locale=lang)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


def pick(cookie: str | None, accept_language: str | None = None) -> str:
    """The cookie's choice, else Vietnamese: office PCs often ship English browsers."""
    if cookie in LANGUAGES:
        return cookie
    return DEFAULT
