"""Registering, drafting and issuing through the pages; the document page, its seal and history;
content upload (good and bad files) and viewing; classified documents."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

import aiohttp
import cbor2
import pytest
from aiohttp.test_utils import TestClient

from appliance.accounts import Role
from tests.conftest import ORG_NAME, incoming

from . import samples
from .conftest import as_role, services_of

pytestmark = pytest.mark.asyncio

FORM = {
    "TypeName": "Công văn",
    "CodeNumber": "1245",
    "CodeNotation": "UBND-NC",
    "IssuedDate": "03/09/2025",
    "OrganName": "Ủy ban nhân dân tỉnh Quảng Ninh",
    "Subject": "V/v triển khai công tác phòng, chống thiên tai năm 2025",
    "PageAmount": "2",
    "DueDate": "20/09/2025",
    "Mode": "01",
}


def _multipart(
    fields: dict[str, str], files: dict[str, tuple[str, bytes, str]]
) -> aiohttp.FormData:
    form = aiohttp.FormData(quote_fields=False)  # as browsers send names: raw UTF-8
    for k, v in fields.items():
        form.add_field(k, v)
    for k, (name, data, ctype) in files.items():
        form.add_field(k, data, filename=name, content_type=ctype)
    return form


def _doc_id(resp: aiohttp.ClientResponse) -> str:
    m = re.match(r"^/documents/([0-9a-f-]{36})\?done=", resp.headers["Location"])
    assert m, resp.headers.get("Location")
    return m.group(1)


def _content_files(client: TestClient) -> set[str]:
    return set(services_of(client).store.content.iter_hashes())


async def test_register_incoming_with_a_scan(client: TestClient) -> None:
    s = services_of(client)
    csrf = await as_role(client, Role.CLERK)
    scan = samples.pdf()
    resp = await client.post("/documents/incoming", allow_redirects=False, data=_multipart(
        {**FORM, "csrf_token": csrf}, {"scan": ("công văn 1245.pdf", scan, "application/pdf")}))
    assert resp.status == 303, await resp.text()
    doc_id = _doc_id(resp)
    rec = s.store.get("document", doc_id)
    assert rec.data["ArrivalNumber"] == 1
    assert rec.data["ArrivalDate"] == "2025-09-15"  # the clock's date, given automatically
    assert rec.data["IssuedDate"] == "2025-09-03"
    # A PDF of page images is a scan: it joins the capture pipeline like the scanner's pages
    # (assembled anew, OCR and signing queued for the background worker).
    (content,) = rec.data["Content"]
    assert content["mime"] == "application/pdf" and content["name"].startswith("scan-")
    from appliance.capture.queue import JobKind, Queue

    (job,) = Queue(s.store.data_dir).jobs(document_id=doc_id)
    assert job.kind is JobKind.OCR and job.input_sha256 == content["sha256"]
    page = await client.get(f"/documents/{doc_id}?done=registered")
    html = await page.text()
    assert "Đã đăng ký với số đến 1." in html
    assert "20/09/2025" in html  # dates for people are dd/mm/yyyy
    assert "Đang nhận dạng chữ…" in html and 'data-capture-poll="' in html
    poll = await client.get(f"/documents/{doc_id}/capture")
    assert await poll.json() == {"step": "ocr", "retrying": False}
    pdf = await client.get(f"/documents/{doc_id}/content/{content['sha256']}")
    assert pdf.status == 200 and pdf.headers["Content-Type"] == "application/pdf"
    assert (await pdf.read()).startswith(b"%PDF-")  # the marked print copy (test_print_…)


async def test_a_computer_made_pdf_is_kept_as_sent_and_its_text_found(
    client: TestClient,
) -> None:
    """A born-digital PDF (text on its pages) is the record byte for byte: no capture, its
    text indexed at once, so search finds words that are only inside the file."""
    from tests.archive.conftest import pdf_bytes

    s = services_of(client)
    csrf = await as_role(client, Role.CLERK)
    made = pdf_bytes("Kế hoạch tiêm chủng mở rộng cho trẻ em thôn Bến Đò")
    resp = await client.post("/documents/incoming", allow_redirects=False, data=_multipart(
        {**FORM, "csrf_token": csrf}, {"scan": ("kế hoạch.pdf", made, "application/pdf")}))
    doc_id = _doc_id(resp)
    (content,) = s.store.get("document", doc_id).data["Content"]
    assert content["name"] == "kế hoạch.pdf" and content["size"] == len(made)
    raw = await client.get(f"/documents/{doc_id}/content/{content['sha256']}?download=1")
    assert await raw.read() == made
    from appliance.capture.queue import Queue, queue_exists

    assert not queue_exists(s.store.data_dir) or not Queue(s.store.data_dir).jobs(
        document_id=doc_id)
    found = await client.get("/search?q=tiem+chung+ben+do")  # without diacritics, đ folded
    assert doc_id in await found.text()


async def test_print_copies_carry_the_marks_and_downloads_stay_original(
    client: TestClient, tmp_path: Path
) -> None:
    """Opening or printing a record's PDF gives a copy with "TÀI LIỆU LƯU TRỮ CHUYỂN ĐỔI",
    the mã lưu trữ and the converting agency after the last page's content, and "BẢN SAO" on
    every page; it is logged as a print. The download is the signed file, byte for byte,
    its signature still valid (pdfsig)."""
    import shutil
    import subprocess

    from appliance.pdfsign import sign_pdf
    from tests.archive.conftest import pdf_bytes
    from tests.pki import SoftwareAgencyKey

    s = services_of(client)
    f = s.store.open_file({"FileCatalog": 2025, "FileNotation": "01.VP", "Title": "Hồ sơ in",
                           "Maintenance": "01"})
    code = f.data["FileCode"]
    doc = s.store.register_incoming(incoming(FileCode=code)).record
    import asyncio

    signed = await asyncio.to_thread(sign_pdf, pdf_bytes("Quyết định số 12", pages=2),
                                     SoftwareAgencyKey.make(), agency_name=ORG_NAME)
    stored = s.store.content.put_bytes(signed)
    s.store.attach_content(doc.id, [{"sha256": stored.sha256, "size": stored.size,
                                     "name": "qd12.pdf", "mime": "application/pdf"}])
    await as_role(client, Role.LEADER)
    page = await (await client.get(f"/documents/{doc.id}")).text()
    assert f"/content/{stored.sha256}?print=1" in page
    before = s.store.tree_head()[0]
    resp = await client.get(f"/documents/{doc.id}/content/{stored.sha256}?print=1")
    assert resp.status == 200 and "ban-in.pdf" in resp.headers["Content-Disposition"]
    copy = tmp_path / "copy.pdf"
    copy.write_bytes(await resp.read())
    text = subprocess.run(["pdftotext", "-layout", str(copy), "-"], capture_output=True,
                          text=True, check=True).stdout
    pages = text.split("\f")[:-1]
    assert len(pages) == 2 and all("BẢN SAO" in p for p in pages)
    last = pages[-1]
    assert last.index("Quyết định số 12") < last.index("TÀI LIỆU LƯU TRỮ CHUYỂN ĐỔI")
    assert f"Mã lưu trữ: {code}.0000001" in last and ORG_NAME in last
    assert "TÀI LIỆU LƯU TRỮ CHUYỂN ĐỔI" not in pages[0]
    kinds = [cbor2.loads(raw)["kind"] for _, raw in s.store.entries(before)]
    assert "audit.print" in kinds
    raw = await client.get(f"/documents/{doc.id}/content/{stored.sha256}?download=1")
    original = tmp_path / "original.pdf"
    original.write_bytes(await raw.read())
    assert original.read_bytes() == signed
    if shutil.which("pdfsig"):
        ok = subprocess.run(["pdfsig", str(original)], capture_output=True, text=True).stdout
        assert "Total document signed" in ok and "Digest Mismatch" not in ok


async def test_duplicate_triple_warns_before_registering(client: TestClient) -> None:
    s = services_of(client)
    s.store.register_incoming(incoming())
    csrf = await as_role(client, Role.CLERK)
    resp = await client.post("/documents/incoming", data={**FORM, "csrf_token": csrf},
                             allow_redirects=False)
    assert resp.status == 409
    html = await resp.text()
    assert "Trùng số, ký hiệu và cơ quan ban hành" in html and 'name="confirm_duplicate"' in html
    assert s.store.count("document") == 1
    resp = await client.post("/documents/incoming", allow_redirects=False,
                             data={**FORM, "csrf_token": csrf, "confirm_duplicate": "1"})
    assert resp.status == 303
    assert s.store.count("document") == 2


@pytest.mark.parametrize(("field", "value", "said"), [
    ("Subject", "V/v " + "rất dài " * 80, "Trích yếu nội dung có 643 ký tự; tối đa 500 ký tự."),
    ("IssuedDate", "31/02/2025", "Ngày tháng văn bản: không có ngày 31/02/2025."),
    ("IssuedDate", "hôm qua",
     "Ngày tháng văn bản: 'hôm qua' không phải ngày tháng (nhập dd/mm/yyyy)."),
    ("CodeNotation", "QĐ; UBND", "Ký hiệu chỉ gồm chữ, chữ số và các dấu . / - _ ở giữa"),
])
async def test_invalid_fields_are_explained_and_kept_in_the_form(
    client: TestClient, field: str, value: str, said: str
) -> None:
    """In Vietnamese, naming the field as the form labels it, the field marked invalid and
    focused, every value kept; no code name (CodeNotation, IssuedDate) on the page."""
    csrf = await as_role(client, Role.CLERK)
    bad = {**FORM, field: value, "csrf_token": csrf}
    resp = await client.post("/documents/incoming", data=bad)
    assert resp.status == 422
    html = await resp.text()
    assert said in unescape(html)
    assert f'id="f-{field}"' in html and 'aria-invalid="true"' in html
    marked = html[html.index('aria-invalid="true"') - 400:html.index('aria-invalid="true"')]
    assert f'name="{field}"' in marked
    for other in ("OrganName", "Subject", "CodeNumber"):  # the rest of the form is kept
        if other != field:
            assert str(FORM[other]) in html, other
    error = html[html.index('id="error"'):html.index("</p>", html.index('id="error"'))]
    assert field not in error and "Subject" not in error
    assert services_of(client).store.count("document") == 0


async def test_errors_follow_the_pages_language(client: TestClient) -> None:
    csrf = await as_role(client, Role.CLERK)
    await client.post("/lang", data={"lang": "en", "csrf_token": csrf, "next": "/"})
    resp = await client.post("/documents/incoming",
                             data={**FORM, "IssuedDate": "31/02/2025", "csrf_token": csrf})
    assert resp.status == 422
    assert "Document date: there is no day 31/02/2025." in await resp.text()


@pytest.mark.parametrize(
    ("maker", "message"),
    [
        (samples.not_a_scan, "Chỉ nhận tệp PDF, JPEG, PNG hoặc TIFF"),
        (samples.png_bomb, "Ảnh quá lớn"),
        (samples.truncated_jpeg, "Tệp ảnh bị hỏng"),
        (samples.damaged_pdf, "Tệp PDF bị hỏng"),
        (samples.pdf_with_javascript, "JavaScript"),
        (samples.pdf_with_attachment, "tệp đính kèm"),
    ],
)
async def test_bad_uploads_are_refused_and_nothing_is_stored(
    client: TestClient, maker, message: str
) -> None:
    s = services_of(client)
    csrf = await as_role(client, Role.CLERK)
    before_files = _content_files(client)
    size_before, _ = s.store.tree_head()
    resp = await client.post("/documents/incoming", data=_multipart(
        {**FORM, "csrf_token": csrf}, {"scan": ("scan.pdf", maker(), "application/pdf")}))
    assert resp.status == 422
    assert message in await resp.text()
    assert s.store.count("document") == 0
    assert _content_files(client) == before_files
    assert s.store.tree_head()[0] == size_before
    assert not list((s.store.data_dir / "content" / "tmp").glob("up-*"))


async def test_too_large_upload_is_refused_with_a_clear_message(client: TestClient) -> None:
    csrf = await as_role(client, Role.CLERK)
    big = b"%PDF-1.4\n" + b"0" * (3 * 1024 * 1024)  # the test limit is 2 MiB
    resp = await client.post("/documents/incoming", data=_multipart(
        {**FORM, "csrf_token": csrf}, {"scan": ("big.pdf", big, "application/pdf")}))
    assert resp.status == 413
    assert "quá lớn" in await resp.text()
    assert services_of(client).store.count("document") == 0


async def test_photo_from_a_phone_and_tiff_are_accepted(client: TestClient) -> None:
    s = services_of(client)
    csrf = await as_role(client, Role.CLERK)
    resp = await client.post("/documents/incoming", allow_redirects=False, data=_multipart(
        {**FORM, "csrf_token": csrf},
        {"camera": ("IMG_0001.JPG", samples.jpeg(), "image/jpeg")}))
    doc_id = _doc_id(resp)
    up = await client.post(f"/documents/{doc_id}/content", allow_redirects=False, data=_multipart(
        {"csrf_token": csrf}, {"scan": ("trang.tiff", samples.tiff(), "image/tiff")}))
    assert up.status == 303
    # Each went through capture: a PDF of its pages (the TIFF's two as one), OCR queued.
    content = s.store.get("document", doc_id).data["Content"]
    assert [c["mime"] for c in content] == ["application/pdf", "application/pdf"]
    import pikepdf

    with s.store.content.open(content[1]["sha256"]) as fh, pikepdf.open(fh) as tif_pdf:
        assert len(tif_pdf.pages) == 2
    preview = await client.get(f"/documents/{doc_id}/content/{content[1]['sha256']}?preview=png")
    assert preview.status == 200 and (await preview.read()).startswith(b"\x89PNG")


async def test_a_photo_too_coarse_to_read_is_refused_in_vietnamese(client: TestClient) -> None:
    """A thumbnail-sized photo cannot be a page: the document stays as it was, the clerk is
    told why and what to do, in Vietnamese, with the file's name."""
    s = services_of(client)
    csrf = await as_role(client, Role.CLERK)
    doc = s.store.register_incoming(incoming(), "test").record
    up = await client.post(f"/documents/{doc.id}/content", data=_multipart(
        {"csrf_token": csrf}, {"camera": ("anh-nho.jpg", samples.png((320, 450)), "image/png")}))
    assert up.status == 422
    html = unescape(await up.text())
    assert "anh-nho.png có độ phân giải quá thấp" in html and "300 dpi" in html
    assert "Content" not in s.store.get("document", doc.id).data


async def test_views_and_downloads_are_logged(client: TestClient) -> None:
    s = services_of(client)
    rec = s.store.register_incoming(
        {**incoming(), "Content": [_put(s, samples.png())]}, "test").record
    await as_role(client, Role.AUDITOR)
    size0, _ = s.store.tree_head()
    assert (await client.get(f"/documents/{rec.id}")).status == 200
    sha = rec.data["Content"][0]["sha256"]
    assert (await client.get(f"/documents/{rec.id}/content/{sha}?download=1")).status == 200
    kinds = [(e["kind"], e["actor"], e.get("id")) for _, raw in s.store.entries(size0)
             for e in [cbor2.loads(raw)]]
    who = "u-auditor"
    assert ("audit.view", who, rec.id) in kinds
    assert ("audit.download", who, rec.id) in kinds


def _put(s, data: bytes) -> dict:
    stored = s.store.content.put_bytes(data)
    return {"sha256": stored.sha256, "size": stored.size, "name": "a.png", "mime": "image/png"}


async def test_outgoing_draft_preview_then_issue(client: TestClient) -> None:
    s = services_of(client)
    csrf = await as_role(client, Role.CLERK)
    resp = await client.post("/documents/outgoing", allow_redirects=False, data={
        "csrf_token": csrf, "TypeName": "Quyết định",
        "Subject": "Về việc thành lập Tổ công tác chuyển đổi số",
        "SignerPosition": "Chủ tịch", "SignerFullName": "Trần Văn Hùng",
        "To": "Các thôn trên địa bàn xã\nVăn phòng HĐND và UBND xã", "IssuedAmount": "5",
        "Mode": "01", "mode": "paper"})  # a paper document: numbered without signatures
    assert resp.status == 303, await resp.text()
    doc_id = _doc_id(resp)
    page = await (await client.get(f"/documents/{doc_id}")).text()
    assert 'id="preview">01/QĐ-UBND<' in page
    assert s.store.get("document", doc_id).data["Status"] == "draft"
    issued = await client.post(f"/documents/{doc_id}/issue", data={"csrf_token": csrf},
                               allow_redirects=False)
    assert issued.status == 303
    data = s.store.get("document", doc_id).data
    assert (data["Status"], data["CodeNumber"], data["IssuedDate"]) == (
        "issued", "01", "2025-09-15")
    page = await (await client.get(f"/documents/{doc_id}?done=issued")).text()
    assert "Đã ban hành số 01/QĐ-UBND ngày 15/09/2025." in page
    again = await client.post(f"/documents/{doc_id}/issue", data={"csrf_token": csrf})
    assert again.status == 409


async def test_sealed_badge_is_a_real_inclusion_proof(client: TestClient) -> None:
    s = services_of(client)
    rec = s.store.register_incoming(incoming()).record
    await as_role(client, Role.LEADER)
    pending_or_sealed = await (await client.get(f"/documents/{rec.id}")).text()
    assert 'id="seal"' in pending_or_sealed
    assert s.store.wait_sealed(10)
    html = await (await client.get(f"/documents/{rec.id}")).text()
    assert "✔ Đã niêm phong" in html
    state = s.seal.check(s.store.get("document", rec.id))
    assert state.status.value == "sealed"
    # A projection row that differs from the sealed entry is shown as broken, not sealed.
    conn = s.store.writer_or_fail()
    conn.call(lambda txn: txn.conn.execute(
        'UPDATE documents SET "Subject" = ? WHERE id = ?', ("Trích yếu bị sửa lén", rec.id)))
    html = await (await client.get(f"/documents/{rec.id}")).text()
    assert "Kiểm tra niêm phong THẤT BẠI" in html and "✔ Đã niêm phong" not in html


async def test_entries_after_the_checkpoint_are_not_yet_sealed(client: TestClient) -> None:
    from web_ui.seal import SealStatus

    s = services_of(client)
    rec = s.store.register_incoming(incoming()).record
    s.store.wait_sealed(10)
    size = s.store.latest_checkpoint()[0]
    assert s.seal.check_entry(rec.log_index).status is SealStatus.SEALED
    assert s.seal.check_entry(size).status is SealStatus.PENDING


async def test_history_lists_the_documents_log_entries(client: TestClient) -> None:
    s = services_of(client)
    rec = s.store.register_incoming(incoming()).record
    s.store.update_document(rec.id, {"Description": "Đã chuyển Chủ tịch"}, "u-clerk")
    await as_role(client, Role.CLERK)
    await client.get(f"/documents/{rec.id}")
    items, complete = s.log_index.history("document", rec.id)
    assert complete
    assert [i.kind for i in items] == ["document.register", "document.update", "audit.view"]
    s.log_index.catch_up()
    items2, _ = s.log_index.history("document", rec.id)
    assert [i.index for i in items2] == [i.index for i in items]  # index and tail scan agree
    html = await (await client.get(f"/documents/{rec.id}")).text()
    assert "Đăng ký văn bản đến" in html and "Sửa thông tin" in html
    # Who did it, by the name people know them by (the account's full name).
    history = html.split('id="history"', 1)[1]
    assert "<td>Người clerk</td>" in history and "<td>u-clerk</td>" not in history
    assert "<td>Hệ thống</td>" in history and "<td>system</td>" not in history


async def test_classified_documents_are_hidden_from_roles_without_clearance(
    client: TestClient,
) -> None:
    s = services_of(client)
    secret = s.store.register_incoming(incoming(Mode="03", Subject="Văn bản mật về quốc phòng"))
    open_ = s.store.register_incoming(incoming(CodeNumber="77", Subject="Văn bản thường"))
    for role, sees in ((Role.CLERK, True), (Role.LEADER, True), (Role.ARCHIVIST, False),
                       (Role.AUDITOR, False)):
        await as_role(client, role)
        doc = await client.get(f"/documents/{secret.record.id}")
        assert (doc.status == 200) is sees, role
        found = await (await client.get("/search?q=van+ban")).text()
        assert ("Văn bản mật về quốc phòng" in found) is sees, role
        assert "Văn bản thường" in found
        assert (await client.get(f"/documents/{open_.record.id}")).status == 200


async def test_a_refused_reason_marks_only_the_form_it_came_from(client: TestClient) -> None:
    """The page has a Reason in the cancel form and one per hồ sơ to take it out of: a refusal
    opens and marks the one the clerk used, not the others."""
    s = services_of(client)
    f = s.store.open_file({"FileCatalog": 2025, "FileNotation": "02.VP", "Maintenance": "01",
                           "Title": "Hồ sơ công văn đến"})
    rec = s.store.register_incoming(incoming(FileCode=f.data["FileCode"])).record
    csrf = await as_role(client, Role.CLERK)
    out = await client.post(f"/documents/{rec.id}/file/remove", data={
        "csrf_token": csrf, "FileCode": f.data["FileCode"], "Reason": " "})
    page = await out.text()
    assert out.status == 422
    assert page.count('aria-invalid="true"') == 1
    assert re.search(r'id="f-Reason-out-1"[^>]*aria-invalid="true"', page)
    assert not re.search(r'id="cancel-box"\s+open', page)
    cancel = await client.post(f"/documents/{rec.id}/cancel",
                               data={"csrf_token": csrf, "Reason": ""})
    page = await cancel.text()
    assert page.count('aria-invalid="true"') == 1
    assert re.search(r'id="f-Reason"[^>]*aria-invalid="true"', page)
    assert re.search(r'id="cancel-box"\s+open', page)
