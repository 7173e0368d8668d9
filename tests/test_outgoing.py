"""Văn bản đi from draft to issue (appliance/outgoing): a lawful signature order, judged by
pyHanko and pdfsig; the number on the page equals the register's; gap-free numbering."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from appliance.errors import ConflictError, ForbiddenActionError, ValidationError
from appliance.outgoing import deliveries, drafting, issuing, pdfform, signers, signing
from appliance.outgoing.errors import SigningError, WorkflowError
from appliance.store import Store
from tests import outgoing_kit as kit
from tests.edxml_field import flip_signed_byte
from tests.pki import CA, SoftHsmToken, SoftwareAgencyKey, pem, softhsm_token
from tests.swtpm import Swtpm, swtpm, swtpm_factory

__all__ = ["softhsm_token", "swtpm", "swtpm_factory"]
ART = Path(__file__).resolve().parents[1] / "var" / "test-artefacts" / "outgoing"


def _draft(store: Store, **over: Any) -> str:
    src = drafting.from_template(store, {"body": kit.TEMPLATE_BODY,
                                         "authority": "TM. Ủy ban nhân dân"}, kit.meta(**over))
    return drafting.create(store, kit.meta(**over), src, "vanthu").record.id


def _approved(store: Store, **over: Any) -> str:
    doc = _draft(store, **over)
    drafting.submit(store, doc, "lanhdao", "vanthu")
    drafting.approve(store, doc, "lanhdao")
    return doc


def _content(store: Store, doc_id: str, i: int = 0) -> bytes:
    sha = store.get("document", doc_id).data["Content"][i]["sha256"]
    with store.content.open(sha) as fh:
        return fh.read()


@pytest.fixture
def office(store: Store, swtpm: Swtpm, softhsm_token: SoftHsmToken) -> Iterator[tuple[Store, CA]]:
    """Users, the agency key in swtpm, the leader's key on SoftHSM2, all from one CA."""
    ca = kit.make_ca()
    kit.users(store)
    kit.setup_agency(store, ca, swtpm.tcti)
    kit.setup_pkcs11_signer(store, ca, softhsm_token)
    yield store, ca


def test_issued_pdf_carries_signer_then_agency_valid_for_pyhanko_and_pdfsig(
    office: tuple[Store, CA], softhsm_token: SoftHsmToken,
) -> None:
    """Signed on SoftHSM2 with the leader's PIN, numbered, then sealed in swtpm: two
    signatures in order, both intact and valid for pyHanko and pdfsig, the agency's over
    the whole file; the number and date on the page are the register's; one flipped byte
    fails both validators."""
    store, ca = office
    doc = _approved(store)
    signing.sign_on_box(store, doc, "lanhdao", softhsm_token.pin)
    res = issuing.issue(store, doc, "vanthu")
    rec = res.record
    pdf = _content(store, doc)
    ART.mkdir(parents=True, exist_ok=True)
    (ART / "issued.pdf").write_bytes(pdf)

    first, second = kit.pyhanko_report(pdf, ca.cert)
    assert first.signing_cert.subject.native["common_name"] == kit.SIGNER_NAME
    assert second.signing_cert.subject.native["common_name"] == store.config.org_name
    for status in (first, second):
        assert status.intact and status.valid and status.trusted and status.docmdp_ok
    assert first.coverage.name == "ENTIRE_REVISION"
    assert first.modification_level.name == "FORM_FILLING"
    assert second.coverage.name == "ENTIRE_FILE"
    report = kit.pdfsig(pdf)
    assert report.count("Signature is Valid.") == 2
    assert report.index(pdfform.SIGNER_FIELD) < report.index(pdfform.AGENCY_FIELD)
    assert "Total document signed" in report.split("Signature #2")[1]

    text = kit.pdftotext(pdf, 1)
    assert rec.data["CodeNumber"] == "01" and rec.data["IssuedDate"] == "2025-09-15"
    assert f"Số: {rec.data['CodeNumber']}/{rec.data['CodeNotation']}" in text
    assert "Đông Hải, ngày 15 tháng 9 năm 2025" in text
    row = store.reader().execute(
        'SELECT "CodeNumber", "IssuedDate" FROM documents WHERE id = ?', (doc,)).fetchone()
    assert tuple(row) == ("01", "2025-09-15")

    bad = flip_signed_byte(pdf)
    assert not all(s.intact for s in kit.pyhanko_report(bad, ca.cert))
    assert "Signature is Valid." not in kit.pdfsig(bad).split("Signature #2")[1]
    assert "Digest Mismatch" in kit.pdfsig(bad)


def test_appearance_follows_phu_luc_i(office: tuple[Store, CA], softhsm_token: SoftHsmToken,
                                      tmp_path: Path) -> None:
    """On the rendered page: blue ink in box 7c between the position and the name, the red
    seal over the left third of it, the number at the left under the agency, the date at
    the right under the tiêu ngữ."""
    from PIL import Image

    store, _ = office
    doc = _approved(store)
    signing.sign_on_box(store, doc, "lanhdao", softhsm_token.pin)
    issuing.issue(store, doc, "vanthu")
    rec = store.get("document", doc)
    placement = drafting.Placement.from_json(rec.data["Drafting"]["versions"][-1]["placement"])
    dpi = 72
    png = kit.render(_content(store, doc), tmp_path / "page", dpi)[placement.signer_page]
    ART.mkdir(parents=True, exist_ok=True)
    Image.open(png).save(ART / "issued-page.png")
    img = Image.open(png).convert("RGB")
    h = img.height

    def share(rect: tuple[float, float, float, float], colour: str) -> float:
        x1, y1, x2, y2 = (int(v) for v in rect)
        n = hit = 0
        for x in range(x1, x2):
            for y in range(h - y2, h - y1):
                r, g, b = img.getpixel((x, y))  # type: ignore[misc]
                n += 1
                if colour == "blue" and b > 120 and r < 100:
                    hit += 1
                if colour == "red" and r > 150 and g < 90 and b < 90:
                    hit += 1
        return hit / max(n, 1)

    sx1, sy1, sx2, sy2 = placement.signer
    assert share(placement.signer, "blue") > 0.01
    assert share((sx1 - 200, sy1, sx1 - 110, sy2), "blue") == 0  # no ink left of the seal
    seal = placement.seal
    assert share(seal, "red") > 0.02
    third = sx1 + (sx2 - sx1) / 3
    assert abs(seal[2] - third) < 1 and seal[0] < sx1  # overlaps the left third
    assert abs((seal[2] - seal[0]) - 36 * 72 / 25.4) < 1  # 36 mm across, its true size
    number = placement.fields["number"].rect
    date = placement.fields["date"].rect
    assert number[2] <= date[0] and abs(number[1] - date[1]) < 3  # same line, left and right


def test_signing_in_tpm_with_the_signers_pin(store: Store, swtpm: Swtpm) -> None:
    """A signer's key generated in swtpm with their PIN: a wrong PIN signs nothing; the
    right one signs."""
    ca = kit.make_ca()
    kit.users(store)
    kit.setup_agency(store, ca, swtpm.tcti)
    kit.setup_tpm_signer(store, ca, swtpm.tcti)
    doc = _approved(store)
    with pytest.raises(ValidationError) as wrong:  # the PIN field, said as such
        signing.sign_on_box(store, doc, "lanhdao", "000000")
    assert wrong.value.field == "pin"
    assert store.get("document", doc).data["Drafting"]["state"] == "approved"
    signing.sign_on_box(store, doc, "lanhdao", kit.SIGNER_PIN)
    issuing.issue(store, doc, "vanthu")
    statuses = kit.pyhanko_report(_content(store, doc), ca.cert)
    assert [s.intact and s.valid and s.trusted for s in statuses] == [True, True]


def test_external_signature_is_checked_against_the_signers_certificate(
    store: Store, swtpm: Swtpm, tmp_path: Path,
) -> None:
    """Signed outside the box: the prepared PDF plus a valid signature by the registered
    person is accepted; another person, a changed byte, or another file are refused."""
    ca = kit.make_ca()
    kit.users(store)
    kit.setup_agency(store, ca, swtpm.tcti)
    outsider = SoftwareAgencyKey.make(kit.SIGNER_NAME)
    signers.configure_external(store.data_dir, "lanhdao")
    signers.import_cert(store.data_dir, "lanhdao", pem(outsider.cert) + pem(outsider.ca.cert))
    doc = _approved(store)
    prepared = _content(store, doc)
    signed = pdfform.sign_field(prepared, outsider.pdf_signer(), pdfform.SIGNER_FIELD,
                                kit.signature_png(), kit.SIGNER_NAME)
    impostor = SoftwareAgencyKey.make("Trần Văn Khác")
    wrong = pdfform.sign_field(prepared, impostor.pdf_signer(), pdfform.SIGNER_FIELD, None, "x")
    with pytest.raises(SigningError, match="không phải"):
        signing.sign_uploaded(store, doc, "lanhdao", wrong)
    with pytest.raises(SigningError, match="không được nhận"):
        signing.sign_uploaded(store, doc, "lanhdao", flip_signed_byte(signed))
    tail = signed.index(b"/ModDate (D", len(prepared)) + 16  # a digit in the signed update
    with pytest.raises(SigningError, match="không hợp lệ"):
        signing.sign_uploaded(store, doc, "lanhdao",
                              signed[:tail] + bytes([signed[tail] ^ 1]) + signed[tail + 1:])
    other = pdfform.sign_field(kit.typed_pdf(), outsider.pdf_signer(), pdfform.SIGNER_FIELD,
                               None, "x")
    with pytest.raises(SigningError):
        signing.sign_uploaded(store, doc, "lanhdao", other)
    with pytest.raises(SigningError):
        signing.sign_uploaded(store, doc, "lanhdao", prepared)  # not signed at all
    signing.sign_uploaded(store, doc, "lanhdao", signed)
    issuing.issue(store, doc, "vanthu")
    pdf = _content(store, doc)
    first, second = kit.pyhanko_report(pdf, outsider.ca.cert)
    assert first.intact and first.valid and first.trusted
    assert second.intact and second.valid and second.coverage.name == "ENTIRE_FILE"


def test_issuing_unapproved_or_unsigned_is_refused_in_vietnamese(
    office: tuple[Store, CA],
) -> None:
    """409 (a conflict) saying why, in Vietnamese; the counter is untouched."""
    store, _ = office
    doc = _draft(store)
    with pytest.raises(WorkflowError, match="chưa được duyệt") as e1:
        issuing.issue(store, doc, "vanthu")
    assert isinstance(e1.value, ConflictError)
    drafting.submit(store, doc, "lanhdao", "vanthu")
    with pytest.raises(WorkflowError, match="chưa được duyệt"):
        issuing.issue(store, doc, "vanthu")
    drafting.approve(store, doc, "lanhdao")
    with pytest.raises(WorkflowError, match="chưa ký"):
        issuing.issue(store, doc, "vanthu")
    with pytest.raises(ConflictError):
        store.issue_outgoing(doc)  # the old path cannot number an electronic draft
    assert store.reader().execute("SELECT count(*) FROM number_counters").fetchone()[0] == 0


def test_review_return_revise_approve_keeps_every_version_and_step(
    office: tuple[Store, CA],
) -> None:
    """A reviewer first, then the approver; a return with its comment; a new version; each
    step in the log; the clerk cannot approve; the approver waits for the reviewer."""
    store, _ = office
    doc = _draft(store)
    drafting.submit(store, doc, "lanhdao", "vanthu", reviewers=["chuyenvien"])
    with pytest.raises(WorkflowError, match="người xem xét"):
        drafting.approve(store, doc, "lanhdao")
    with pytest.raises(ForbiddenActionError):
        drafting.approve(store, doc, "vanthu")
    drafting.return_draft(store, doc, "chuyenvien", "Bổ sung căn cứ Luật Phòng, chống thiên tai")
    with pytest.raises(ValidationError):
        drafting.return_draft(store, doc, "lanhdao", "  ")
    src = drafting.from_template(store, {"body": "Căn cứ Luật Phòng, chống thiên tai năm 2013;"
                                         "\n\n" + kit.TEMPLATE_BODY}, kit.meta())
    drafting.new_version(store, doc, src, "vanthu", "Đã bổ sung căn cứ")
    drafting.submit(store, doc, "lanhdao", "vanthu", reviewers=["chuyenvien"])
    drafting.approve(store, doc, "chuyenvien", "Đồng ý")
    rec = drafting.approve(store, doc, "lanhdao")
    d = rec.data["Drafting"]
    assert d["state"] == "approved" and len(d["versions"]) == 2
    assert [s["action"] for s in d["steps"]] == [
        "create", "submit", "return", "version", "submit", "approve", "approve"]
    assert d["steps"][2]["comment"] == "Bổ sung căn cứ Luật Phòng, chống thiên tai"
    kinds = [h.kind for h in _history(store, doc)]
    assert kinds == ["document.draft", "document.submit", "document.return", "document.version",
                     "document.submit", "document.approve", "document.approve"]
    for v in d["versions"]:
        assert store.content.exists(v["sha256"])
    with pytest.raises(ConflictError):
        store.update_document(doc, {"Subject": "Đổi sau khi duyệt"}, "vanthu")


def _history(store: Store, doc_id: str) -> list[Any]:
    from appliance.ledger import Entry

    return [e for e in (Entry.decode(raw, strict=False) for _, raw in store.entries())
            if e.id == doc_id]


def _agency(key: Any) -> Any:
    @contextmanager
    def opener() -> Iterator[Any]:
        yield key

    return opener


def test_two_issues_at_once_and_a_failed_signature_leave_no_gap_or_duplicate(
    store: Store, swtpm: Swtpm,
) -> None:
    """Two signed drafts issued from two threads get 01 and 02; an agency signature that
    fails half way numbers nothing, and the next issue takes the number it would have had."""
    ca = kit.make_ca()
    kit.users(store)
    kit.setup_agency(store, ca, swtpm.tcti)
    outsider = SoftwareAgencyKey.make(kit.SIGNER_NAME)
    signers.configure_external(store.data_dir, "lanhdao")
    signers.import_cert(store.data_dir, "lanhdao", pem(outsider.cert) + pem(outsider.ca.cert))
    docs = []
    for _ in range(3):
        doc = _approved(store)
        signed = pdfform.sign_field(_content(store, doc), outsider.pdf_signer(),
                                    pdfform.SIGNER_FIELD, kit.signature_png(), "x")
        signing.sign_uploaded(store, doc, "lanhdao", signed)
        docs.append(doc)

    class Broken:
        def pdf_signer(self) -> Any:
            raise RuntimeError("token pulled out")

    with pytest.raises(SigningError, match="chưa được cấp số"):
        issuing.issue(store, docs[2], "vanthu", agency_key=_agency(Broken()))
    assert store.get("document", docs[2]).data["Status"] == "draft"
    assert store.reader().execute("SELECT count(*) FROM number_counters").fetchone()[0] == 0

    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def go(doc: str) -> None:
        barrier.wait()
        try:
            issuing.issue(store, doc, "vanthu")
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(d,)) for d in docs[:2]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    numbers = sorted(store.get("document", d).data["CodeNumber"] for d in docs[:2])
    assert numbers == ["01", "02"]
    issuing.issue(store, docs[2], "vanthu")
    assert store.get("document", docs[2]).data["CodeNumber"] == "03"
    for d in docs:
        n = store.get("document", d).data["CodeNumber"]
        assert f"Số: {n}/QĐ-UBND" in kit.pdftotext(_content(store, d), 1)


def test_deliveries_recall_and_correction(office: tuple[Store, CA],
                                          softhsm_token: SoftHsmToken) -> None:
    """Nơi nhận become deliveries (electronic with a mã định danh, else paper; internal to
    colleagues); the paper ones are the Sổ gửi bưu điện's rows. A recall is a new document:
    issuing it freezes the old one, whose signed file is unchanged; a correction names it."""
    store, _ = office
    doc = _approved(store)
    signing.sign_on_box(store, doc, "lanhdao", softhsm_token.pin)
    rec = issuing.issue(store, doc, "vanthu", internal=("chuyenvien",)).record
    channels = [(d["channel"], d["status"]) for d in rec.data["Deliveries"]]
    assert channels == [("paper", "pending"), ("electronic", "pending"), ("internal", "sent")]
    deliveries.set_status(store, doc, 1, "sent", "vanthu", "Gửi qua bưu điện", envelopes=2)
    with pytest.raises(WorkflowError):
        deliveries.set_status(store, doc, 1, "pending", "vanthu")
    rows = deliveries.post_rows(store.reader(), 2025)
    assert [(r.number, r.to, r.envelopes, r.sent_date) for r in rows] == [
        ("01/QĐ-UBND", "Như Điều 2", 2, "2025-09-15")]
    original = _content(store, doc)
    # Signed and issued: never cancelled, its bản lưu never taken off, nothing it says changed.
    signed_sha = rec.data["Content"][-1]["sha256"]
    with pytest.raises(ConflictError, match="thu hồi hoặc đính chính"):
        store.cancel_document(doc, "Ban hành nhầm", "vanthu")
    with pytest.raises(ConflictError, match="thu hồi hoặc đính chính"):
        store.remove_content(doc, signed_sha, "Nhầm tệp", "vanthu")
    with pytest.raises(ValidationError):
        store.update_document(doc, {"Subject": "V/v khác"}, "vanthu", reason="Sửa trích yếu")
    store.update_document(doc, {"Keyword": "đất đai"}, "vanthu", reason="Thêm từ khoá")
    assert _content(store, doc) == original

    src = drafting.from_template(store, {"body": "Thu hồi Quyết định số 01/QĐ-UBND do sai "
                                         "thẩm quyền."}, kit.meta(Subject="Về việc thu hồi "
                                                                  "Quyết định số 01/QĐ-UBND"))
    recall = drafting.create(store, kit.meta(Subject="Về việc thu hồi Quyết định số 01/QĐ-UBND"),
                             src, "vanthu", relation={"type": "recall", "document": doc})
    rid = recall.record.id
    drafting.submit(store, rid, "lanhdao", "vanthu")
    drafting.approve(store, rid, "lanhdao")
    signing.sign_on_box(store, rid, "lanhdao", softhsm_token.pin)
    issuing.issue(store, rid, "vanthu")
    old = store.get("document", doc)
    assert old.data["Status"] == "recalled" and "02/QĐ-UBND" in old.data["Description"]
    assert _content(store, doc) == original
    with pytest.raises(ConflictError):
        store.update_document(doc, {"Keyword": "x"}, "vanthu")

    with pytest.raises(WorkflowError):
        drafting.create(store, kit.meta(), None, "vanthu", paper=True,
                        relation={"type": "correct", "document": doc})  # recalled: not issued
    paper = drafting.create(store, kit.meta(TypeName="Công văn", CodeNotation="UBND-VP",
                                            Subject="V/v đính chính"), None, "vanthu",
                            paper=True, relation={"type": "correct", "document": rid}).record
    out = issuing.issue(store, paper.id, "vanthu").record
    assert out.data["CodeNumber"] == "03" and out.data["Relation"]["document"] == rid
    assert store.get("document", rid).data["Status"] == "issued"


def test_a_draft_uploaded_as_pdf_has_its_places_found(store: Store) -> None:
    """A PDF typed with 'Số:   /QĐ-UBND', the date line and the signer's name: the fields
    go in the gaps and box 7c above the name; one without 'Số:' is refused, naming it."""
    from appliance.outgoing.placement import locate

    pdf = kit.typed_pdf()
    p = locate(pdf, kit.SIGNER_NAME)
    assert set(p.fields) == {"number", "day", "month"}  # the year is typed
    assert p.fields["number"].rect[0] > 80 and p.signer_page == 0
    assert p.signer[1] > 100
    with pytest.raises(ValidationError, match="Số"):
        locate(kit.typed_pdf(number=False), kit.SIGNER_NAME)


def test_docx_is_converted_with_libreoffice(store: Store) -> None:
    """A DOCX becomes a PDF on the box (LibreOffice headless), its text intact."""
    from appliance.outgoing import docx

    if not docx.available():
        pytest.skip("libreoffice-writer-nogui is not installed")
    src = drafting.from_file(kit.docx_bytes(), "du-thao.docx", docx.DOCX_MIME, kit.meta(), False)
    assert src.origin == "docx" and src.pdf.startswith(b"%PDF-")
    assert "ĐÔNG HẢI" in kit.pdftotext(src.pdf)
    assert src.placement is not None and "number" in src.placement.fields
