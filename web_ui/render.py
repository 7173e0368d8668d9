"""Jinja2 rendering: one environment per language (gettext installed), filters for people."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web
from markupsafe import Markup, escape

from appliance import clock as clockmod
from appliance.classified import is_classified

from . import i18n
from .messages import field_label
from .reqkeys import LANG

TEMPLATES = Path(__file__).parent / "templates"


def _vndate(value: Any) -> str:
    if not value:
        return "—"
    if isinstance(value, str):
        return _vndate_text(value)
    try:
        return clockmod.vn_date(value if isinstance(value, dt.date) else str(value)[:10])
    except Exception:  # a page must render even around a bad legacy value
        return str(value)


@functools.lru_cache(maxsize=4096)
def _vndate_text(value: str) -> str:
    """A stored date as dd/mm/yyyy (pages show the same few thousand dates over and over)."""
    try:
        return clockmod.vn_date(value[:10])
    except Exception:  # a page must render even around a bad legacy value
        return value


def _isotime(value: Any) -> str:
    """A logged time as people read it, in Vietnam time: 15/09/2025 09:30 (ISO stays in files
    and JSON)."""
    if not value:
        return "—"
    try:
        t = dt.datetime.fromisoformat(str(value)).astimezone(clockmod.TZ)
    except ValueError:
        return str(value)
    return f"{t.day:02d}/{t.month:02d}/{t.year:04d} {t.hour:02d}:{t.minute:02d}"


def _size(value: Any, lang: str = "vi") -> str:
    """Bytes for people: 950 B, 131 KB, 14,1 MB (a decimal comma in Vietnamese)."""
    n = float(value or 0)
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= scale:
            text = f"{n / scale:.1f}" if n / scale < 100 else f"{n / scale:.0f}"
            return (text.replace(".", ",") if lang == "vi" else text) + " " + unit
    return f"{int(n)} B"


def _thousands(value: Any, lang: str = "vi") -> str:
    """A whole number with thousands grouped: 521.273 (vi), 521,273 (en)."""
    text = f"{round(float(value or 0)):,}"
    return text.replace(",", ".") if lang == "vi" else text


def _number(data: dict[str, Any], no_number: str = "Không số") -> str:
    """Số/ký hiệu as printed; a received document without one (an đơn, an invitation) is
    marked as such."""
    if data.get("CodeNumber") and data.get("CodeNotation"):
        return f"{data['CodeNumber']}/{data['CodeNotation']}"
    if data.get("CodeNotation"):
        return str(data["CodeNotation"])
    return no_number if data.get("Direction") == "incoming" else "—"


_SEP = "\x1f"  # joins many values for one escape call; a value holding it goes one by one


def escape_all(values: Sequence[str]) -> list[str]:
    """HTML-escape many short strings at once: one call into markupsafe's C code for a
    whole table rather than one call (and one Markup object) per cell."""
    text = _SEP.join(values)
    if text.count(_SEP) != len(values) - 1:
        return [str(escape(v)) for v in values]
    return str(escape(text)).split(_SEP) if values else []


_DOC_ROW = {
    # (incoming?, classified?) -> the row; {t_in}/{t_out}/{t_secret} are the page's labels
    # and {l0}…{l4} the column heads, repeated on each cell for a phone's stacked rows.
    (True, False): '<tr><td data-label="{l0}"><span class="tag in">{t_in} {{}}</span></td>'
    '<td data-label="{l1}">{{}}</td><td data-label="{l2}">{{}}</td><td data-label="{l3}">'
    '<a href="/documents/{{}}">{{}}: {{}}</a></td><td data-label="{l4}">{{}}</td></tr>\n',
    (False, False): '<tr><td data-label="{l0}"><span class="tag out">{t_out}</span>{{}}</td>'
    '<td data-label="{l1}">{{}}</td><td data-label="{l2}">{{}}</td><td data-label="{l3}">'
    '<a href="/documents/{{}}">{{}}: {{}}</a></td><td data-label="{l4}">{{}}</td></tr>\n',
}
_DOC_ROW[(True, True)] = _DOC_ROW[(True, False)].replace(
    "</a></td>", '</a> <span class="tag secret">{t_secret}</span></td>')
_DOC_ROW[(False, True)] = _DOC_ROW[(False, False)].replace(
    "</a></td>", '</a> <span class="tag secret">{t_secret}</span></td>')


# The fields doc_table reads: a page of hits needs these columns, not whole records.
LIST_FIELDS = ("Direction", "Mode", "ArrivalNumber", "CodeNumber", "CodeNotation", "IssuedDate",
               "ArrivalDate", "TypeName", "Subject", "OrganName")


def doc_table(docs: Sequence[Any], t_in: str, t_out: str, t_secret: str,
              head: Sequence[str]) -> Markup:
    """The table of documents that the search, home and hồ sơ pages show (items with ``.id``
    and ``.data``), built here rather than by a Jinja loop, which cost more than the query
    behind a page of 50. The labels come translated (and trusted) from ``_macros.html``."""
    labels = {"t_in": escape(t_in), "t_out": escape(t_out), "t_secret": escape(t_secret),
              **{f"l{i}": escape(head[i]) if i < len(head) else "" for i in range(5)}}
    rows = {k: v.format(**labels) for k, v in _DOC_ROW.items()}
    values: list[str] = []
    shapes: list[tuple[bool, bool]] = []
    for d in docs:
        x = d.data
        incoming = x.get("Direction") == "incoming"
        shapes.append((incoming, is_classified(x)))
        values += (
            _text(x.get("ArrivalNumber")) if incoming else "", _number(x),
            _vndate(x.get("IssuedDate") or x.get("ArrivalDate")), str(d.id),
            _text(x.get("TypeName")), _text(x.get("Subject")), _text(x.get("OrganName")),
        )
    cells = escape_all(values)
    ths = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join(rows[shape].format(*cells[i * 7:i * 7 + 7])
                   for i, shape in enumerate(shapes))
    return Markup(f'<table class="list stack">\n<thead><tr>{ths}</tr></thead>\n<tbody>\n{body}'
                  "</tbody>\n</table>\n")


def options(values: Sequence[str], selected: str | None) -> Markup:
    """``<option>``s of a long list (the document types), the selected one marked."""
    out = []
    for v, e in zip(values, escape_all(values), strict=True):
        out.append(f"<option selected>{e}</option>" if v == selected else f"<option >{e}</option>")
    return Markup("".join(out))


def _text(value: Any) -> str:
    return "" if value is None else str(value)


_SECTIONS = (
    ("/documents/incoming", "incoming"), ("/documents/outgoing", "outgoing"),
    ("/files", "files"), ("/registers/use", "use"), ("/registers", "registers"),
    ("/use", "use"), ("/users", "users"), ("/signers", "signers"),
    ("/inbox/electronic", "electronic"),
)
_EXACT = {"/": "home", "/search": "search", "/device": "device", "/inbox": "leader-inbox",
          "/tasks": "tasks"}


def section_of(path: str) -> str:
    """The menu item a page belongs to ("" for none)."""
    if path in _EXACT:
        return _EXACT[path]
    return next((name for prefix, name in _SECTIONS if path.startswith(prefix)), "")


class Nav:
    """The main menu, the same for every page of a section seen by a role: rendered from
    ``_nav.html`` once per language, role and section instead of on every page."""

    def __init__(self, env: jinja2.Environment) -> None:
        self._env = env
        self._done: dict[tuple[Any, str, Any], Markup] = {}

    def __call__(self, role: Any, path: str, approvers: Any = None) -> Markup:
        from . import permissions

        approvers = approvers if approvers is not None else permissions.USE_APPROVERS
        key = (role, section_of(path), approvers)
        html = self._done.get(key)
        if html is None:
            html = Markup(self._env.get_template("_nav.html").render(
                section=key[1],
                can=lambda name: permissions.allowed(name, role, approvers)))
            self._done[key] = html
        return html


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
        env.filters["size"] = functools.partial(_size, lang=lang)
        env.filters["thousands"] = functools.partial(_thousands, lang=lang)
        env.globals["number_of"] = _number
        gettext = i18n.translations(lang).gettext
        env.globals["number_of"] = functools.partial(_number, no_number=gettext("No number"))
        env.globals["field_label"] = functools.partial(field_label, gettext=gettext)
        env.filters["vntime"] = _isotime  # the edXML pages' name for the same reading
        env.globals["lang"] = lang
        env.globals["doc_table"] = doc_table
        env.globals["nav"] = Nav(env)
        env.globals["options"] = options
        envs[lang] = env
    return envs


def gettext_for(request: web.Request) -> Any:
    return i18n.translations(request.get(LANG, i18n.DEFAULT)).gettext
