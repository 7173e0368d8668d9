"""Vietnamese by default, English on request: gettext catalogs compiled from the .po sources.

The .po files in ``locale/`` are the only source. Compiling one (babel reads and sorts some
1,700 messages) costs about 0.2 s of a Raspberry Pi class core, at every start; so the compiled
catalog is kept beside its source as ``messages-<SHA-256 of the .po>.mo`` (written by
``scripts/bootstrap.sh`` through ``python -m web_ui.i18n``, or by the first start that may write
there) and used only while its name matches the source: an edited .po is compiled again, and no
.mo can go stale. Message ids are English.
"""

from __future__ import annotations

import gettext
import hashlib
import io
import os
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


def compiled_path(lang: str) -> Path:
    """Where the catalog compiled from the current .po of ``lang`` is kept."""
    source = po_path(lang)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    return source.with_name(f"messages-{digest}.mo")


def compile_catalog(lang: str) -> bytes:
    """The .mo bytes of ``lang``'s .po."""
    with po_path(lang).open("rb") as fh:
        catalog = read_po(fh, locale=lang)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    return buf.getvalue()


def keep_compiled(lang: str) -> Path:
    """Compile ``lang`` beside its source unless done already; older compilations go."""
    target = compiled_path(lang)
    if not target.exists():
        raw = compile_catalog(lang)
        tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        tmp.write_bytes(raw)
        tmp.replace(target)
    for old in target.parent.glob("messages-*.mo"):
        if old != target:
            old.unlink(missing_ok=True)
    return target


@cache
def translations(lang: str) -> gettext.NullTranslations:
    """The compiled catalog of ``lang`` (English is the message ids themselves)."""
    if lang not in LANGUAGES or not po_path(lang).exists():
        return gettext.NullTranslations()
    try:
        raw = compiled_path(lang).read_bytes()
    except FileNotFoundError:
        try:
            raw = keep_compiled(lang).read_bytes()
        except OSError:  # a read-only installation: compile in memory
            raw = compile_catalog(lang)
    return gettext.GNUTranslations(io.BytesIO(raw))


def pick(cookie: str | None, accept_language: str | None = None) -> str:
    """The cookie's choice, else Vietnamese: office PCs often ship English browsers."""
    if cookie in LANGUAGES:
        return cookie
    return DEFAULT


if __name__ == "__main__":
    for code in LANGUAGES:
        if po_path(code).exists():
            keep_compiled(code)
