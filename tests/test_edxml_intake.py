"""The clerk's decisions on the electronic inbox: register (fields from the envelope, the
signed PDF attached byte for byte), return with a reason; status messages for the sender."""

from __future__ import annotations

import datetime as dt

import pytest
from lxml import etree

from appliance.clock import TZ, ManualClock
from appliance.edxml import inbox, intake
from appliance.edxml.errors import DecisionError
from appliance.edxml.trust import TrustStore
from appliance.store import Store
from tests.edxml_field import NS_2016, FieldAttachment, FieldDoc, field_package, signed_pdf
from tests.pki_services import PkiServices, pki_services

__all__ = ["pki_services"]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(dt.datetime.now(TZ))


@pytest.fixture
def trusting(store: Store, pki_services: PkiServices) -> Store:
    TrustStore(store.data_dir).add(pki_services.trust_roots_pem())
    return store


def _status(store: Store, sha: str) -> dict[str, str]:
    """A status message read back with lxml alone."""
    with store.content.open(sha) as fh:
        root = etree.fromstring(fh.read())
    ns = {"e": NS_2016}
    st = root.find("e:edXMLEnvelope/e:edXMLHeader/e:Status", ns)
    assert st is not None
    return {el: st.findtext(f"e:{el}", namespaces=ns) or "" for el in (
        "StatusCode", "Description", "Timestamp")} | {
        "ResponseFor": st.findtext("e:ResponseFor/e:Code", namespaces=ns) or "",
        "DocumentId": st.findtext("e:ResponseFor/e:DocumentId", namespaces=ns) or "",
        "OrganId": st.findtext("e:ResponseFor/e:OrganId", namespaces=ns) or "",
        "From": st.findtext("e:From/e:OrganId", namespaces=ns) or ""}


def test_register_prefills_every_field_and_keeps_the_signed_pdf_as_received(
    trusting: Store, pki_services: PkiServices
) -> None:
    signer = pki_services.identity("signer")
    pdf = signed_pdf(signer, "Kế hoạch số 88/KH-UBND")
    annex = signed_pdf(signer, "Phụ lục kèm theo")
    doc = FieldDoc(type_name="Kế hoạch", type_code="10", code_number="88",
                   code_notation="KH-UBND", subject="Kế hoạch phòng, chống dịch bệnh năm 2027")
    raw = field_package(signer, doc, [FieldAttachment("88-KH-UBND.pdf", pdf),
                                      FieldAttachment("Phụ lục.pdf", annex)])
    res = intake.import_package(trusting, raw, source="den/88.edxml")
    assert res.report["verdict"] == "valid"
    reg = intake.register(trusting, res.item.id, "vanthu")
    d = reg.record.data
    assert d["Direction"] == "incoming" and d["Status"] == "registered"
    assert d["ArrivalNumber"] == 1 and d["Series"] == "den"
    assert (d["TypeName"], d["TypeCode"]) == ("Kế hoạch", "10")
    assert (d["CodeNumber"], d["CodeNotation"]) == ("88", "KH-UBND")
    assert d["IssuedDate"] == "2026-11-28" and d["DueDate"] == "2026-12-15"
    assert d["OrganName"] == "Ủy ban nhân dân tỉnh Quảng Ninh"
    assert d["Subject"] == doc.subject and d["PageAmount"] == 3 and d["Priority"] == "1"
    assert (d["SignerPosition"], d["SignerFullName"]) == ("Phó Chủ tịch", "Nguyễn Thị Hồng Hạnh")
    assert [t["OrganId"] for t in d["To"]] == ["000.21.08.H49", "000.21.09.H49"]
    assert d["ConfidenceLevel"] == "01" and "000.00.00.H49 2026/11/28" in d["TraceHeaderList"]
    names = [c["name"] for c in d["Content"]]
    assert names == ["88-KH-UBND.pdf", "Phụ lục.pdf", "goi-tin-edxml.xml",
                     "ket-qua-kiem-tra-chu-ky.json", "ket-qua-kiem-tra-chu-ky.html"]
    for c, original in zip(d["Content"][:3], (pdf, annex, raw), strict=True):
        with trusting.content.open(c["sha256"]) as fh:
            assert fh.read() == original  # the bytes received, never re-encoded
    item = inbox.get_item(trusting.reader(), res.item.id)
    assert item is not None and item.status == "registered" and item.document_id == reg.record.id
    codes = [_status(trusting, p.sha256)["StatusCode"] for p in inbox.unsent(trusting.reader())]
    assert codes == ["01", "03"]
    ack = _status(trusting, inbox.unsent(trusting.reader())[1].sha256)
    assert ack["ResponseFor"] == "88/KH-UBND" and ack["OrganId"] == "000.00.00.H49"
    assert ack["From"] == "000.21.08.H49" and ack["DocumentId"] == doc.document_id
    with pytest.raises(DecisionError):
        intake.register(trusting, res.item.id, "vanthu")  # only once


def test_return_sends_the_reason(trusting: Store, pki_services: PkiServices) -> None:
    res = intake.import_package(trusting, field_package(pki_services.identity("signer")))
    with pytest.raises(DecisionError):
        intake.return_package(trusting, res.item.id, "   ", "vanthu")
    item = intake.return_package(trusting, res.item.id, "Văn bản sai thể thức, đề nghị gửi lại",
                                 "vanthu")
    assert item.status == "returned" and item.reason.startswith("Văn bản sai")  # type: ignore[union-attr]
    last = _status(trusting, inbox.unsent(trusting.reader())[-1].sha256)
    assert last["StatusCode"] == "02" and last["Description"].startswith("Văn bản sai")
    with pytest.raises(DecisionError):
        intake.register(trusting, res.item.id, "vanthu")


def test_invalid_and_misaddressed_cannot_be_registered(
    trusting: Store, pki_services: PkiServices
) -> None:
    bad = intake.import_package(trusting, field_package(pki_services.identity("revoked")))
    with pytest.raises(DecisionError, match="không hợp lệ"):
        intake.register(trusting, bad.item.id, "vanthu", accept_unverified=True)
    wrong = intake.import_package(trusting, field_package(
        pki_services.identity("signer"), FieldDoc(to=(("000.21.99.H49", "UBND xã Khác"),))))
    with pytest.raises(DecisionError, match="nhầm"):
        intake.register(trusting, wrong.item.id, "vanthu")
    assert trusting.count("document") == 0


def test_unverified_needs_the_clerks_confirmation(store: Store,
                                                  pki_services: PkiServices) -> None:
    res = intake.import_package(store, field_package(pki_services.identity("signer")))
    assert res.report["verdict"] == "unverified"
    with pytest.raises(DecisionError, match="xác minh"):
        intake.register(store, res.item.id, "vanthu")
    reg = intake.register(store, res.item.id, "vanthu", accept_unverified=True)
    assert reg.record.data["ArrivalNumber"] == 1


def test_the_same_package_twice_is_one_item(trusting: Store, pki_services: PkiServices) -> None:
    raw = field_package(pki_services.identity("signer"))
    a = intake.import_package(trusting, raw)
    b = intake.import_package(trusting, raw)
    assert b.duplicate and b.item.id == a.item.id
    assert len(inbox.list_items(trusting.reader())) == 1


def test_a_registration_interrupted_before_its_inbox_entry_is_not_repeated(
    trusting: Store, pki_services: PkiServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash after the văn bản đến was written but before edxml.registered: registering
    again finds the document that holds the package and gives no second số đến."""
    res = intake.import_package(trusting, field_package(pki_services.identity("signer")))
    real = intake.writes.append_event
    calls = {"n": 0}

    def crash(*a: object, **k: object) -> object:
        if a[1] == "edxml.registered" and not calls["n"]:
            calls["n"] += 1
            raise RuntimeError("power cut")
        return real(*a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(intake.writes, "append_event", crash)
    with pytest.raises(RuntimeError):
        intake.register(trusting, res.item.id, "vanthu")
    again = intake.register(trusting, res.item.id, "vanthu")
    assert trusting.count("document") == 1 and again.record.data["ArrivalNumber"] == 1


@pytest.mark.parametrize(("number", "notation", "type_name"), [
    ("12", "2025/NQ-HĐND", "Nghị quyết"), ("1234", "CV-CTY", "Công văn"),
    ("15a", "UBND", "Công văn"), ("05", "QĐ-UBND", "Quyết định"), ("", "", "Đơn"),
])
def test_numbers_of_real_packages_are_registered_as_written(
    store: Store, pki_services: PkiServices, number: str, notation: str, type_name: str
) -> None:
    """Real số/ký hiệu through the public registration function (issue 18's rules): a
    resolution's year in its notation, a company's CV, a lettered number, a petition with
    no number at all."""
    doc = FieldDoc(code_number=number, code_notation=notation, type_name=type_name)
    res = intake.import_package(store, field_package(pki_services.identity("signer"), doc))
    reg = intake.register(store, res.item.id, "vanthu", accept_unverified=True)
    data = reg.record.data
    assert (data.get("CodeNumber", ""), data.get("CodeNotation", "")) == (number, notation)


@pytest.mark.parametrize("make", ["open_action_javascript", "launch", "embedded_files"])
def test_a_pdf_with_active_content_is_refused_like_every_pdf_entering_the_box(
    store: Store, make: str
) -> None:
    """The attachments pass pdfcheck, as every upload and scan does: nothing of the package is
    stored; only the answer to its sender (status 02, with the reason) is."""
    from appliance.edxml.errors import PackageRefused
    from tests import active_pdfs

    raw = field_package(None, attachments=[FieldAttachment("cv.pdf", getattr(active_pdfs, make)())])
    before = set(store.content.iter_hashes())
    with pytest.raises(PackageRefused, match="nội dung chủ động"):
        intake.import_package(store, raw)
    new = set(store.content.iter_hashes()) - before
    assert len(new) == 1
    with store.content.open(new.pop()) as fh:
        answer = fh.read()
    assert b"<StatusCode>02</StatusCode>" in answer and b"AttachmentEncoded" not in answer
    assert "nội dung chủ động" in answer.decode("utf-8")
    assert inbox.list_items(store.reader()) == []
    assert [p.code for p in inbox.unsent(store.reader())] == ["02"]
