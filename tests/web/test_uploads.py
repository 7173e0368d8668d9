"""Uploads (web form and API) refuse PDFs with active content: 422, a clear message in the
user's language, and nothing stored (web_ui/uploads.py over appliance/pdfcheck.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from appliance.accounts import Role
from tests import active_pdfs
from tests.conftest import incoming

from .conftest import ROLE_USERS, as_role, services_of
from .test_documents import FORM, _multipart

pytestmark = pytest.mark.asyncio
CASES = sorted(active_pdfs.ACTIVE)


def _stored(client: TestClient) -> tuple[set[str], int, int]:
    s = services_of(client)
    return set(s.store.content.iter_hashes()), s.store.tree_head()[0], s.store.count("document")


@pytest.mark.parametrize("case", CASES)
async def test_web_upload_refuses_active_pdf(client: TestClient, case: str) -> None:
    """The register form answers 422 in Vietnamese naming what was found; nothing is kept."""
    maker, word = active_pdfs.ACTIVE[case]
    csrf = await as_role(client, Role.CLERK)
    before = _stored(client)
    resp = await client.post("/documents/incoming", data=_multipart(
        {**FORM, "csrf_token": csrf}, {"scan": ("scan.pdf", maker(), "application/pdf")}))
    assert resp.status == 422
    html = await resp.text()
    assert "Tệp PDF chứa nội dung tự chạy" in html and word in html
    assert _stored(client) == before
    assert not list((services_of(client).store.data_dir / "content" / "tmp").iterdir())


@pytest.mark.parametrize("case", CASES)
async def test_api_upload_refuses_active_pdf(client: TestClient, case: str) -> None:
    maker, word = active_pdfs.ACTIVE[case]
    s = services_of(client)
    doc = s.store.register_incoming(incoming()).record
    _, token = s.accounts.create_token(ROLE_USERS[Role.CLERK], "t", "test")
    before = _stored(client)
    resp = await client.post(f"/api/v1/documents/{doc.id}/content?name=x.pdf", data=maker(),
                             headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 422
    message = (await resp.json())["error"]["message"]
    assert message.startswith("Tệp PDF chứa nội dung tự chạy") and word in message
    assert _stored(client) == before
    assert s.store.get("document", doc.id).version == doc.version


async def test_refusal_is_in_english_when_the_ui_is(client: TestClient) -> None:
    csrf = await as_role(client, Role.CLERK)
    client.session.cookie_jar.update_cookies({"luutru_lang": "en"})
    resp = await client.post("/documents/incoming", data=_multipart(
        {**FORM, "csrf_token": csrf},
        {"scan": ("scan.pdf", active_pdfs.launch(), "application/pdf")}))
    assert resp.status == 422
    html = await resp.text()
    assert "The PDF carries active content" in html and "/Launch" in html
    assert "Tệp PDF chứa nội dung tự chạy" not in html


@pytest.mark.parametrize("case", sorted(active_pdfs.HARMLESS))
async def test_pdfs_with_links_inside_the_document_are_accepted(
    client: TestClient, case: str
) -> None:
    csrf = await as_role(client, Role.CLERK)
    resp = await client.post("/documents/incoming", allow_redirects=False, data=_multipart(
        {**FORM, "csrf_token": csrf},
        {"scan": ("scan.pdf", active_pdfs.HARMLESS[case](), "application/pdf")}))
    assert resp.status == 303, await resp.text()


async def test_the_checker_tells_computer_made_pdfs_from_scans(tmp_path: Path) -> None:
    """What decides capture (appliance/capture/intake.py): text on a page or a signature
    inside makes a PDF computer-made (kept as sent); a PDF of page images and every photo are
    scans. A signed scan (an e-office's signed PDF of page images) is kept too."""
    from appliance.pdfsign import sign_pdf
    from tests.archive.conftest import pdf_bytes
    from tests.pki import SoftwareAgencyKey
    from web_ui.uploads import check_file

    from . import samples

    key = SoftwareAgencyKey.make()
    cases = {
        "typed.pdf": (pdf_bytes("Báo cáo tổng kết năm"), True),
        "scan.pdf": (samples.pdf(), False),
        "signed-scan.pdf": (await asyncio.to_thread(sign_pdf, samples.pdf(), key,
                                                    agency_name="UBND xã"), True),
        "photo.jpg": (samples.jpeg(), False),
        "pages.tiff": (samples.tiff(), False),
    }
    for name, (data, made) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        assert check_file(path, 50 << 20, 100_000_000, 500).born_digital is made, name
