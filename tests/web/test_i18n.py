"""The Vietnamese catalog translates every message the templates use; English is switchable."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from appliance.accounts import Role
from web_ui import i18n

from .conftest import as_role

WEB = Path(__file__).resolve().parents[2] / "web_ui"


def template_messages() -> set[str]:
    out: set[str] = set()
    # The appliance's pages and the province's public catalogue share the catalogs.
    for folder in (WEB / "templates", WEB / "catalogue" / "templates"):
        found = extract_from_dir(
            str(folder),
            method_map=[("**.html", "jinja2")],
            options_map={"**.html": {"extensions": "jinja2.ext.i18n"}},
        )
        out |= {msg[2] if isinstance(msg[2], str) else msg[2][0] for msg in found}
    return out


def test_every_template_message_has_a_vietnamese_translation() -> None:
    with i18n.po_path("vi").open("rb") as fh:
        catalog = read_po(fh, locale="vi")
    missing = sorted(m for m in template_messages() if not (catalog.get(m) and catalog[m].string))
    assert not missing, f"add to web_ui/locale/vi/LC_MESSAGES/messages.po: {missing}"


def test_catalogs_compile_and_translate() -> None:
    vi = i18n.translations("vi")
    assert vi.gettext("Sign in") == "Đăng nhập"
    assert vi.gettext("clerk") == "Văn thư"
    assert i18n.translations("en").gettext("Sign in") == "Sign in"


@pytest.mark.asyncio
async def test_vietnamese_by_default_english_on_request(client: TestClient) -> None:
    page = await (await client.get("/signin")).text()
    assert "Đăng nhập" in page and 'lang="vi"' in page
    csrf = await as_role(client, Role.CLERK)
    resp = await client.post("/lang", data={"lang": "en", "next": "/", "csrf_token": csrf})
    assert resp.status == 200
    page = await resp.text()
    assert 'lang="en"' in page and "Registered today" in page and "Đăng ký hôm nay" not in page


def test_every_role_has_a_name_in_both_languages() -> None:
    """The header shows the role: never its code name (handler, clerk) in either language."""
    from appliance.accounts import Role
    from web_ui import i18n

    for role in Role:
        vi = i18n.translations("vi").gettext(role.value)
        en = i18n.translations("en").gettext(role.value)
        assert vi != role.value and en != role.value and en[0].isupper(), role


def test_the_compiled_catalog_follows_its_source(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A catalog compiled once is reused while its .po is unchanged; an edited .po is compiled
    again and the old compilation goes, so a stale .mo can never be served."""
    import shutil

    shutil.copytree(i18n.LOCALE_DIR, tmp_path / "locale",
                    ignore=shutil.ignore_patterns("*.mo"))
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path / "locale")
    i18n.translations.cache_clear()
    try:
        first = i18n.translations("vi")
        assert first.gettext("Search") == "Tìm kiếm"
        kept = sorted((tmp_path / "locale/vi/LC_MESSAGES").glob("messages-*.mo"))
        assert len(kept) == 1
        po = i18n.po_path("vi")
        po.write_text(po.read_text().replace('msgstr "Tìm kiếm"', 'msgstr "Tra cứu"', 1))
        i18n.translations.cache_clear()
        assert i18n.translations("vi").gettext("Search") == "Tra cứu"
        now = sorted((tmp_path / "locale/vi/LC_MESSAGES").glob("messages-*.mo"))
        assert len(now) == 1 and now != kept
    finally:
        i18n.translations.cache_clear()


def test_every_step_a_document_history_shows_is_named_in_vietnamese() -> None:
    """A document's history names each step (no "Thay đổi khác" for a signature, a delivery's
    status or an answer from the addressee): every kind that can name a document or hồ sơ."""
    from appliance.kinds import Kind
    from web_ui.fieldview import KIND_LABELS, kind_label

    vi = i18n.translations("vi").gettext
    shown = [k for k in Kind if k.value.split(".")[0] in ("document", "file", "edxml", "use",
                                                           "postal", "copy")
             and k not in (Kind.EDXML_TRUST,)]
    missing = [k.value for k in shown if k not in KIND_LABELS]
    assert missing == []
    for k in KIND_LABELS:
        assert vi(KIND_LABELS[k]) != KIND_LABELS[k], k
        assert kind_label(k, vi) != vi("Other change"), k
