"""Online requests end to end (mức độ 4): a reader signs up, asks for a copy of a published
document, the archivist approves it in the dashboard, and the reader downloads a copy marked
BẢN SAO and signed by the archive's key (a PKCS#11 token), which pyHanko validates."""

from __future__ import annotations

import asyncio
import io
import re
import shutil
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient

from appliance.keys import agency
from luutru.centre.app import create_app
from sync.central.centre import Centre
from tests.pki import CA, SoftHsmToken, make_ca, pem, softhsm_token
from tests.sync.catalogue_scenario import Expect, build, sync_all
from tests.sync.conftest import Appliance
from web_ui.catalogue import CATALOGUE
from web_ui.central.auth import DashboardUsers

__all__ = ["softhsm_token"]
pytestmark = pytest.mark.asyncio
_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')
ARCHIVE = "Trung tâm Lưu trữ lịch sử tỉnh Quảng Ninh"
GOOD_PASSWORD = "Hồ sơ đất nhà tôi 2025"


def upload_content(centre: Centre, app: Appliance, doc_id: str) -> None:
    """What the agent's tus upload leaves at the centre: the document's file in the blobs."""
    for c in app.store.get("document", doc_id).data["Content"]:
        with app.store.content.open(c["sha256"]) as fh:
            centre.blobs.put_stream(c["sha256"], fh)
        with centre.storage.transaction() as tx:
            tx.record_blob(c["sha256"], c["size"], centre.now())


@pytest.fixture
def archive_key(centre: Centre, softhsm_token: SoftHsmToken) -> CA:
    """The provincial archive's agency key on a token, with a certificate from a test CA."""
    agency.configure_agency_pkcs11(centre.data_dir, softhsm_token.module,
                                   softhsm_token.token_label, softhsm_token.key_label)
    with agency.open_agency_key(centre.data_dir, softhsm_token.pin) as key:
        public = key.public_key()
    ca = make_ca()
    agency.import_agency_cert(centre.data_dir, pem(ca.issue(
        public, agency.agency_subject(ARCHIVE))) + pem(ca.cert), pin=softhsm_token.pin)
    return ca


@pytest_asyncio.fixture
async def site(centre: Centre, make_appliance: Callable[..., Appliance], archive_key: CA,
               softhsm_token: SoftHsmToken,
               aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
               ) -> tuple[TestClient[Any, Any], Expect, CA]:
    app = make_appliance()
    ex = build(app.store)
    sync_all(app)
    upload_content(centre, app, ex.doc)
    web_app = create_app(centre)
    cat = web_app[CATALOGUE]
    cat.open_key = lambda: agency.open_agency_key(centre.data_dir, softhsm_token.pin)
    cat.config = type(cat.config)(archive_name=ARCHIVE)  # type: ignore[misc]
    DashboardUsers(centre.data_dir).set_password("luutru-tinh", "mật khẩu lưu trữ tỉnh")
    return await aiohttp_client(web_app), ex, archive_key


async def _csrf(c: TestClient[Any, Any], url: str) -> str:
    m = _CSRF.search(await (await c.get(url)).text())
    assert m
    return m.group(1)


async def sign_up(c: TestClient[Any, Any], username: str, password: str, nxt: str = ""
                  ) -> Any:
    token = await _csrf(c, "/reader/signup")
    return await c.post("/reader/signup", allow_redirects=False, data={
        "csrf_token": token, "username": username, "password": password, "next": nxt,
        "full_name": "Đặng Văn Đông", "identity_no": "022190001234"})


async def _dashboard_sign_in(c: TestClient[Any, Any]) -> None:
    page = await (await c.get("/signin")).text()
    m = _CSRF.search(page)
    assert m
    r = await c.post("/signin", allow_redirects=False, data={
        "csrf_token": m.group(1), "username": "luutru-tinh",
        "password": "mật khẩu lưu trữ tỉnh", "next": "/online-requests"})
    assert r.status == 303


async def test_reader_asks_archivist_approves_reader_downloads_a_signed_copy(
    site: tuple[TestClient[Any, Any], Expect, CA], tmp_path: Path
) -> None:
    c, ex, ca = site
    doc_url = f"/catalogue/tailieu/{ex.doc}"
    r = await sign_up(c, "dangvandong", "ngắn", doc_url)
    assert r.status == 400
    page = await r.text()
    assert 'aria-invalid="true"' in page and 'value="dangvandong"' in page  # the form is kept
    r = await sign_up(c, "dangvandong", GOOD_PASSWORD, doc_url)
    assert r.status == 303 and r.headers["Location"] == doc_url
    page = await (await c.get(doc_url)).text()
    token = _CSRF.search(page)
    assert token and 'name="purpose"' in page
    r = await c.post("/reader/requests", allow_redirects=False, data={
        "csrf_token": token.group(1), "id": f"tailieu/{ex.doc}",
        "purpose": "Làm thủ tục cấp đổi giấy chứng nhận quyền sử dụng đất"})
    assert r.status == 303
    mine = await (await c.get("/reader")).text()
    assert "Đang chờ" in mine or "Waiting" in mine or "Chờ" in mine
    # Asking for something unpublished is refused.
    r = await c.post("/reader/requests", data={"csrf_token": token.group(1),
                                               "id": f"tailieu/{ex.restricted_doc}",
                                               "purpose": "Xem tài liệu hạn chế"})
    assert r.status == 404

    await _dashboard_sign_in(c)
    admin = await (await c.get("/online-requests")).text()
    req_id = re.search(r'action="/online-requests/([0-9a-f]+)"', admin)
    assert req_id and "Đặng Văn Đông" in admin
    csrf = _CSRF.search(admin)
    assert csrf
    r = await c.post(f"/online-requests/{req_id.group(1)}", allow_redirects=False,
                     data={"csrf_token": csrf.group(1), "decision": "approve", "note": ""})
    assert r.status == 303, await r.text()

    mine = await (await c.get("/reader")).text()
    link = re.search(r'href="(/reader/requests/[0-9a-f]+/copy\.pdf)"', mine)
    assert link
    r = await c.get(link.group(1))
    assert r.status == 200 and r.headers["Content-Type"] == "application/pdf"
    pdf = await r.read()
    await asyncio.to_thread(_validate, pdf, ca)  # pyHanko runs its own event loop
    text = _text(pdf, tmp_path)
    assert "BẢN SAO" in text and ARCHIVE in text
    assert f"000.21.08.H49.2024.01.DD.{1:07d}" in text

    # Another reader cannot fetch it.
    c.session.cookie_jar.clear()
    await sign_up(c, "nguoikhac", GOOD_PASSWORD)
    assert (await c.get(link.group(1))).status == 404


async def test_refusal_needs_a_reason_and_shows_it(
    site: tuple[TestClient[Any, Any], Expect, CA]
) -> None:
    c, ex, _ = site
    await sign_up(c, "lethihoa", GOOD_PASSWORD)
    page = await (await c.get(f"/catalogue/tailieu/{ex.opened_doc}")).text()
    token = _CSRF.search(page)
    assert token
    await c.post("/reader/requests", data={"csrf_token": token.group(1),
                                           "id": f"tailieu/{ex.opened_doc}",
                                           "purpose": "Nghiên cứu quy hoạch"})
    await _dashboard_sign_in(c)
    admin = await (await c.get("/online-requests")).text()
    req_id = re.search(r'action="/online-requests/([0-9a-f]+)"', admin)
    csrf = _CSRF.search(admin)
    assert req_id and csrf
    r = await c.post(f"/online-requests/{req_id.group(1)}",
                     data={"csrf_token": csrf.group(1), "decision": "refuse", "note": ""})
    assert r.status == 400 and "lý do" in await r.text()
    r = await c.post(f"/online-requests/{req_id.group(1)}", data={
        "csrf_token": csrf.group(1), "decision": "refuse", "note": "Chưa số hóa"})
    assert r.status == 200
    mine = await (await c.get("/reader")).text()
    assert "Chưa số hóa" in mine


async def test_forms_need_their_csrf_token(site: tuple[TestClient[Any, Any], Expect, CA]
                                          ) -> None:
    c, ex, _ = site
    r = await c.post("/reader/signup", data={"username": "x", "password": GOOD_PASSWORD})
    assert r.status == 403
    await sign_up(c, "phamvanan", GOOD_PASSWORD)
    r = await c.post("/reader/requests", data={"id": f"tailieu/{ex.doc}", "purpose": "abcdef"})
    assert r.status == 403


def _validate(pdf: bytes, ca: CA) -> None:
    from asn1crypto import x509 as asn1_x509
    from cryptography.hazmat.primitives.serialization import Encoding
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    root = asn1_x509.Certificate.load(ca.cert.public_bytes(Encoding.DER))
    (sig,) = PdfFileReader(io.BytesIO(pdf), strict=False).embedded_signatures
    status = validate_pdf_signature(sig, ValidationContext(trust_roots=[root]))
    assert status.intact and status.valid and status.bottom_line, status.pretty_print_details()


def _text(pdf: bytes, tmp: Path) -> str:
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext is not installed (poppler-utils)")
    p = tmp / "copy.pdf"
    p.write_bytes(pdf)
    return subprocess.run(["pdftotext", "-l", "1", str(p), "-"], capture_output=True,
                          text=True, check=True).stdout
