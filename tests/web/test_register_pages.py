"""The register on screen, page by page: the same rows and cells as the printed register,
escaped, from pages cached per documents version (views do not invalidate them, changes do)."""

from __future__ import annotations

import datetime as dt
import html
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from aiohttp.test_utils import TestClient
from markupsafe import escape

from appliance import registers as regs
from appliance.accounts import Role
from tests.conftest import incoming, outgoing
from web_ui.changes import DocumentsVersion
from web_ui.config import WebConfig
from web_ui.render import doc_table, escape_all

from .conftest import as_role, services_of

PAGE = 3
_ROW = re.compile(r"<tr>(.*?)</tr>", re.S)
_CELL = re.compile(r"<td>(.*?)</td>", re.S)
_LINK = re.compile(r'<a href="/documents/([^"]+)">(.*)</a>', re.S)


@pytest.fixture
def web_config(data_dir: Path) -> WebConfig:
    return WebConfig(data_dir=data_dir, mdns=False, register_page_size=PAGE)


def page_rows(page_html: str) -> list[tuple[str, list[str]]]:
    """(document id, the ten cells unescaped) of each row of the register table's body."""
    body = page_html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    out = []
    for row in _ROW.findall(body):
        cells, doc_id = [], ""
        for cell in _CELL.findall(row):
            link = _LINK.fullmatch(cell)
            if link:
                doc_id, cell = link.group(1), link.group(2)
            cells.append(html.unescape(cell))
        if doc_id:
            out.append((doc_id, cells))
    return out


def printed(client: TestClient, direction: str) -> list[tuple[str, list[str]]]:
    s = services_of(client)
    conn = s.store.reader()
    rows = regs.rows(conn, s.store.config.org_id, direction, regs.Period.of(2025), False,
                     s.store.clock.now().date())
    return [(doc_id, regs.display(direction, cells)) for doc_id, cells in rows]


async def all_pages(client: TestClient, direction: str) -> tuple[list[tuple[str, list[str]]],
                                                                  str]:
    rows: list[tuple[str, list[str]]] = []
    first = await (await client.get(f"/registers/{direction}/2025")).text()
    page = 1
    while True:
        resp = await client.get(f"/registers/{direction}/2025?page={page}")
        assert resp.status == 200
        found = page_rows(await resp.text())
        if not found:
            break
        assert len(found) <= PAGE
        rows += found
        page += 1
    return rows, first


@pytest.mark.asyncio
async def test_pages_show_the_printed_rows_escaped(client: TestClient) -> None:
    s = services_of(client)
    tricky = 'V/v <b>"đất" & nhà</b> \'ở\''
    for i in range(7):
        subject = tricky if i == 4 else f"V/v việc thứ {i}"
        s.store.register_incoming(incoming(CodeNumber=str(300 + i), Subject=subject,
                                           ToPlaces="Chủ tịch <UBND>"))
    s.store.register_incoming(incoming(CodeNumber="399", Mode="03", Subject="Mật: không ở đây"))
    await as_role(client, Role.CLERK)
    rows, first = await all_pages(client, "incoming")
    assert rows == printed(client, "incoming")
    assert len(rows) == 7 and "Mật: không ở đây" not in first
    second = await (await client.get("/registers/incoming/2025?page=2")).text()
    assert '<b>"đất"' not in second and "&lt;b&gt;&#34;đất&#34; &amp; nhà" in second
    assert "Chủ tịch &lt;UBND&gt;" in second
    assert "7 dòng" in first and "Trang 1 / 3" in first
    # A page past the end is an empty register page, not an error.
    beyond = await client.get("/registers/incoming/2025?page=9")
    assert beyond.status == 200 and page_rows(await beyond.text()) == []


@pytest.mark.asyncio
async def test_outgoing_pages_follow_series_then_number(client: TestClient) -> None:
    s = services_of(client)
    for i in range(5):
        draft = s.store.draft_outgoing(outgoing(Subject=f"Về việc số {i}"))
        s.store.issue_outgoing(draft.record.id)
    await as_role(client, Role.ARCHIVIST)
    rows, _ = await all_pages(client, "outgoing")
    assert rows == printed(client, "outgoing") and len(rows) == 5
    assert [r[1][0].split("/")[0] for r in rows] == ["01", "02", "03", "04", "05"]


@pytest.mark.asyncio
async def test_a_registration_shows_at_once_and_views_keep_the_cache(
    client: TestClient,
) -> None:
    s = services_of(client)
    for i in range(4):
        s.store.register_incoming(incoming(CodeNumber=str(500 + i)))
    await as_role(client, Role.CLERK)
    before, _ = await all_pages(client, "incoming")
    assert len(before) == 4
    conn = s.store.reader()
    version = s.documents_cache.version.at(conn)
    # Views, prints and downloads are log entries that change no document: same version.
    doc_id = before[0][0]
    assert (await client.get(f"/documents/{doc_id}")).status == 200
    assert (await client.get("/registers/incoming/2025/print.xlsx")).status == 200
    assert s.documents_cache.version.at(conn) == version
    # A registration is a new version: the next page load shows it and the new cover data.
    s.store.register_incoming(incoming(CodeNumber="999", Subject="V/v mới đến"))
    assert s.documents_cache.version.at(conn) > version
    after, first = await all_pages(client, "incoming")
    assert after == printed(client, "incoming") and len(after) == 5
    assert any(cells[5].endswith("V/v mới đến") for _, cells in after)
    assert "5 dòng" in first
    # So is an edit of a document already in the register.
    s.store.update_document(doc_id, {"Subject": "V/v đã sửa"}, "test",
                            s.store.get("document", doc_id).version)
    edited, _ = await all_pages(client, "incoming")
    assert edited == printed(client, "incoming")
    assert any(cells[5].endswith("V/v đã sửa") for _, cells in edited)


@pytest.mark.asyncio
async def test_documents_version_reads_only_new_entries(client: TestClient) -> None:
    s = services_of(client)
    version = DocumentsVersion()
    conn = s.store.reader()
    rec = s.store.register_incoming(incoming()).record
    v1 = version.at(conn)
    s.store.audit("view", "test", "document", rec.id)
    s.store.audit("print", "test", "register", "incoming:2025")
    assert version.at(conn) == v1  # inert entries: the same documents
    s.store.register_incoming(incoming(CodeNumber="2"))
    v2 = version.at(conn)
    assert v2 > v1
    # A fresh reader of the same database agrees (the version is the log's, not the cache's).
    assert DocumentsVersion().at(conn) >= v2


def test_escape_all_is_escape_one_by_one() -> None:
    values = ["a<b", "", "x & y", '"q"', "\x1fsep\x1f", "đất"]
    assert escape_all(values) == [str(escape(v)) for v in values]
    assert escape_all(values[:4]) == escape_all(values)[:4]
    assert escape_all([]) == []


def test_doc_table_escapes_and_tags() -> None:
    docs = [
        SimpleNamespace(id="d1", data={"Direction": "incoming", "ArrivalNumber": 7,
                                       "TypeName": "Công văn", "Subject": "<i>x</i>",
                                       "ArrivalDate": "2025-09-03", "Mode": "03"}),
        SimpleNamespace(id="d2", data={"Direction": "outgoing", "CodeNumber": "05",
                                       "CodeNotation": "QĐ-UBND", "IssuedDate": "2025-01-02",
                                       "Subject": "Về việc & cách", "OrganName": "UBND"}),
    ]
    out = str(doc_table(docs, "Đến", "Đi", "Mật", ["A", "B", "C", "D", "E"]))
    assert '<span class="tag in">Đến 7</span>' in out and '<span class="tag secret">Mật' in out
    assert "&lt;i&gt;x&lt;/i&gt;" in out and "<i>" not in out
    assert "05/QĐ-UBND" in out and "02/01/2025" in out and "03/09/2025" in out
    assert "Về việc &amp; cách" in out and out.count("<tr>") == 3


@pytest.mark.asyncio
async def test_the_cached_menu_follows_role_section_and_language(client: TestClient) -> None:
    await as_role(client, Role.CLERK)
    page = await (await client.get("/registers/incoming/2025")).text()
    nav = page.split('<nav class="main">', 1)[1].split("</nav>", 1)[0]
    assert '<a href="/registers" class="on">Sổ đăng ký</a>' in nav
    assert 'href="/documents/incoming/new"' in nav and 'href="/users"' not in nav
    page = await (await client.get("/search")).text()
    assert '<a href="/search" class="on">' in page and '"/registers" class="on"' not in page
    csrf = await as_role(client, Role.TECHNICIAN)
    page = await (await client.get("/device")).text()
    nav = page.split('<nav class="main">', 1)[1].split("</nav>", 1)[0]
    assert 'href="/search"' not in nav and 'href="/users"' in nav
    assert '<a href="/device" class="on">' in nav
    # Vietnamese on the page, not the library's English description of the secrets.
    assert "KHÔNG niêm phong (không có TPM)" in page and "secrets are NOT sealed" not in page
    english = await client.post("/lang", data={"lang": "en", "next": "/device",
                                               "csrf_token": csrf})
    assert '<a href="/device" class="on">Device</a>' in await english.text()


def test_section_of_paths() -> None:
    from web_ui.render import section_of

    assert section_of("/") == "home" and section_of("/search") == "search"
    assert section_of("/documents/incoming/new") == "incoming"
    assert section_of("/documents/outgoing/new") == "outgoing"
    assert section_of("/files/000.21.08.H49.2025.01") == "files"
    assert section_of("/registers/incoming/2025") == "registers"
    assert section_of("/documents/abc") == "" and section_of("/searching") == ""


FORMULAS = ("=", "+", "-", "@", "\t", "\r")


@pytest.mark.asyncio
async def test_register_xlsx_has_no_formula_cells(client: TestClient) -> None:
    """Text a clerk typed (or an import brought) that starts like a formula stays text."""
    import io

    from openpyxl import load_workbook

    s = services_of(client)
    s.store.register_incoming(incoming(
        OrganName='=HYPERLINK("http://attacker.invalid/","Sở Tài chính")',
        ToPlaces="+cmd|' /C calc'!A0", Description="@SUM(1+1)"))
    d = s.store.draft_outgoing(outgoing(
        SignerInfo={"Position": "-2+3", "FullName": "Trần Văn Hùng"},
        To=[{"OrganName": "=1+1"}], Description="\t=1")).record
    s.store.issue_outgoing(d.id)
    await as_role(client, Role.AUDITOR)
    for direction in ("incoming", "outgoing"):
        resp = await client.get(f"/registers/{direction}/2025/print.xlsx")
        assert resp.status == 200
        wb = load_workbook(io.BytesIO(await resp.read()))
        cells = [c for ws in wb.worksheets for row in ws.iter_rows() for c in row]
        assert not [c.coordinate for c in cells if c.data_type == "f"]
        assert not [c.value for c in cells
                    if isinstance(c.value, str) and c.value.startswith(FORMULAS)]
        rows = list(wb["Sổ"].iter_rows(values_only=True))
        if direction == "incoming":
            assert rows[2][2] == '\'=HYPERLINK("http://attacker.invalid/","Sở Tài chính")'
            assert rows[2][6] == "'+cmd|' /C calc'!A0" and rows[2][9] == "'@SUM(1+1)"
            # Real dates shown dd/mm/yyyy, and the số đến a number (not text).
            assert rows[2][0] == dt.datetime(2025, 9, 15) and rows[2][1] == 1
            assert wb["Sổ"]["A3"].number_format == "DD/MM/YYYY"
        else:
            assert rows[2][3] == "'-2+3, Trần Văn Hùng" and rows[2][4] == "'=1+1"
