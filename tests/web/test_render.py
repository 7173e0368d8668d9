"""Rendering helpers (web_ui/render.py): every value a page shows is HTML-escaped, whether
it goes through Jinja or through the hand-built document table; dates and numbers read as
people write them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest

from web_ui.render import (
    _isotime,
    _number,
    _vndate,
    doc_table,
    escape_all,
    make_envs,
    options,
    section_of,
)

NASTY = ['<script>alert(1)</script>', '" onmouseover="x', "a & b", "\x1f", "'quoted'", ""]


def test_escape_all_escapes_each_value_even_one_holding_the_separator() -> None:
    """The batched escape gives what markupsafe gives one by one, in order."""
    from markupsafe import escape

    assert escape_all(NASTY) == [str(escape(v)) for v in NASTY]
    assert escape_all(["a", "b"]) == ["a", "b"] and escape_all([]) == []


@dataclass
class Doc:
    id: str
    data: dict[str, Any]


def test_the_document_table_escapes_every_cell_and_marks_classified_rows() -> None:
    """A subject, organ or id carrying markup is shown as text; mật rows get their tag."""
    docs = [
        Doc('x"><img src=y>', {"Direction": "incoming", "ArrivalNumber": 7,
                                "Subject": "<script>alert(1)</script>", "TypeName": "Công văn",
                                "OrganName": "A & B", "IssuedDate": "2025-09-03"}),
        Doc("d2", {"Direction": "outgoing", "CodeNumber": "05", "CodeNotation": "QĐ-UBND",
                   "Subject": "Mật", "Mode": "03", "TypeName": "Quyết định"}),
    ]
    html = str(doc_table(docs, "Đến", "Đi", "Mật <b>", ["Số", "<i>Ngày</i>"]))
    assert "<script>" not in html and "<img" not in html and "<i>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "A &amp; B" in html
    assert 'href="/documents/x&#34;&gt;&lt;img src=y&gt;"' in html
    assert html.count('class="tag secret"') == 1 and "Mật &lt;b&gt;" in html
    assert "05/QĐ-UBND" in html and "03/09/2025" in html and "Đến 7" in html
    assert html.count("<tr>") == 3  # the header and two rows


def test_options_escape_and_mark_the_selected_one() -> None:
    """<option>s are escaped; only the selected value is marked."""
    html = str(options(["Công văn", "<Tờ trình>"], "<Tờ trình>"))
    assert html == "<option >Công văn</option><option selected>&lt;Tờ trình&gt;</option>"


@pytest.mark.parametrize(
    ("value", "shown"),
    [("2025-09-03", "03/09/2025"), (dt.date(2025, 9, 3), "03/09/2025"),
     ("2025-09-03T08:00:00+07:00", "03/09/2025"), ("", "—"), (None, "—"),
     ("khoảng năm 1990", "khoảng năm 1990")],
)
def test_dates_show_day_first_and_survive_legacy_values(value: Any, shown: str) -> None:
    """dd/mm/yyyy; an empty value is a dash; a value that is no date is shown as it is."""
    assert _vndate(value) == shown


def test_times_numbers_and_sections() -> None:
    """Times as people read them (dd/mm/yyyy HH:MM, Vietnam time, never ISO); số/ký hiệu
    joined, a received document without one marked; the menu section of a path."""
    assert _isotime("2025-09-15T09:30:15.120+07:00") == "15/09/2025 09:30"
    assert _isotime("2025-09-15T02:30:15+00:00") == "15/09/2025 09:30"
    assert _isotime(None) == "—"
    assert _number({"CodeNumber": "05", "CodeNotation": "QĐ-UBND"}) == "05/QĐ-UBND"
    assert _number({"CodeNotation": "UBND-VP"}) == "UBND-VP" and _number({}) == "—"
    assert _number({"Direction": "incoming"}) == "Không số"
    assert [section_of(p) for p in ("/", "/documents/incoming/new", "/files/x", "/about")] == [
        "home", "incoming", "files", ""]


def test_templates_autoescape_in_every_language() -> None:
    """Each language's environment escapes HTML by default and has the filters."""
    envs = make_envs()
    assert envs
    for env in envs.values():
        tpl = env.from_string("{{ v }}|{{ d | vndate }}")
        assert tpl.render(v="<b>", d="2025-01-02") == "&lt;b&gt;|02/01/2025"
        assert env.autoescape("page.html") is True  # type: ignore[operator]
