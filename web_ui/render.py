"""Jinja2 rendering: one environment per language (gettext installed), filters for people."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from appliance import clock as clockmod

from . import i18n
from .reqkeys import LANG

TEMPLATES = Path(__file__).parent / "templates"


def _vndate(value: Any) -> str:
    if not value:
        return "—"
    try:
        return clockmod.vn_date(value if isinstance(value, dt.date) else str(value)[:10])
    except Exception:  # a page must render even around a bad legacy value
        return str(value)


def _isotime(value: Any) -> str:
    """ISO 8601 in Vietnam time, seconds precision: 2025-09-15T09:30:15+07:00."""
    if not value:
        return "—"
    text = str(value)
    if "." in text and "+" in text:
        head, _, tail = text.partition(".")
        text = head + "+" + tail.partition("+")[2]
    return text


def _number(data: dict[str, Any]) -> str:
    if data.get("CodeNumber") and data.get("CodeNotation"):
        return f"{data['CodeNumber']}/{data['CodeNotation']}"
    return data.get("CodeNotation") or "—"


def make_envs() -> dict[str, jinja2.Environment]:
    envs = {}
    for lang in i18n.LANGUAGES:
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(TEMPLATES)),
            autoescape=jinja2.select_autoescape(("html",)),
            extensions=["jinja2.ext.i18n"],
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
        )
        env.install_gettext_translations(i18n.translations(lang), newstyle=True)  # type: ignore[attr-defined]
        env.filters["vndate"] = _vndate
        env.filters["isotime"] = _isotime
        env.globals["number_of"] = _number
        env.globals["lang"] = lang
        envs[lang] = env
    return envs


def gettext_for(request: web.Request) -> Any:
    return i18n.translations(request.get(LANG, i18n.DEFAULT)).gettext
