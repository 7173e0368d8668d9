"""Use of the archive at the commune: requests, approval, delivery, the register of use."""

from __future__ import annotations

import datetime as dt
import io
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from appliance.archive import use
from appliance.archive.use import Actor, CopyMaker, UseError
from appliance.errors import ConflictError, NotFoundError, ValidationError
from appliance.keys import agency
from appliance.store import Store
from tests.archive.conftest import Hoso, attach_pdf
from tests.pki import CA, SoftHsmToken, make_ca, pem, softhsm_token

__all__ = ["softhsm_token"]

DESK = Actor("vanthu", cleared=True, desk=True)
LEAD = Actor("lanhdao", cleared=True, approver=True)
ARCHIVIST = Actor("luutru", cleared=False, desk=True)  # reading-room desk, no clearance
STAFF = Actor("chuyenvien")


def _req(store: Store, actor: Actor, *docs: tuple[str, str], **over: object) -> dict:  # type: ignore[type-arg]
    raw: dict[str, object] = {
        "purpose": "Xác minh nguồn gốc đất của gia đình", "purpose_code": "03",
        "reader": {"kind": "outside", "name": "Phạm Thị Hoa", "identity": "022190001234",
                   "address": "Thôn 3, xã Đông Hải"},
        "items": [{"document": d, "form": f} for d, f in docs],
    }
    raw.update(over)
    return use.create_request(store, actor, raw)


def _text(pdf: bytes, tmp: Path, page: int = 1) -> str:
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext is not installed (poppler-utils)")
    p = tmp / "t.pdf"
    p.write_bytes(pdf)
    return subprocess.run(["pdftotext", "-f", str(page), "-l", str(page), str(p), "-"],
                          capture_output=True, text=True, check=True).stdout


def test_request_approve_deliver_copy_marked_with_code_and_date(
    store: Store, make_hoso: Callable[..., Hoso], tmp_path: Path
) -> None:
    """A copy is delivered only after approval; its every page says BẢN SAO, the mã lưu trữ
    (TT 05 docCode) and the date; the request records the delivery with the copy's hash."""
    h = make_hoso(2, content=False)
    doc = attach_pdf(store, h.docs[0], "Giấy chứng nhận quyền sử dụng đất", pages=2)
    req = _req(store, DESK, (doc.id, "copy"), (h.docs[1].id, "read"))
    assert req["status"] == "pending" and req["number"] == 1 and req["year"] == 2025
    with pytest.raises(UseError, match="chưa được duyệt"):
        use.deliver(store, DESK, req["id"], 0, "digital")
    with pytest.raises(UseError):
        use.decide(store, DESK, req["id"], True)  # the desk does not approve
    use.decide(store, LEAD, req["id"], True, "Chỉ sao trang 1", items=[0])
    with pytest.raises(UseError, match="chưa được duyệt"):
        use.deliver(store, DESK, req["id"], 1, "screen")  # item 2 was not approved
    with pytest.raises(ValidationError):
        use.deliver(store, DESK, req["id"], 0, "screen")  # a copy is not read on screen
    got = use.deliver(store, DESK, req["id"], 0, "digital")
    assert got.pdf is not None and got.filename == "ban-sao-001-2025-1.pdf"
    code = f"{h.code}.{doc.data['DocOrdinal']:07d}"
    for page in (1, 2):
        text = _text(got.pdf, tmp_path, page)
        assert "BẢN SAO" in text and f"Mã lưu trữ: {code}" in text
        assert "Ngày sao: 15/09/2025" in text
    import hashlib

    (d,) = got.request["deliveries"]
    assert d["sha256"] == hashlib.sha256(got.pdf).hexdigest() and d["pages"] == 2
    assert use.get_request(store.reader(), req["id"])["deliveries"] == [d]


def test_refused_request_delivers_nothing_and_needs_a_reason(
    store: Store, make_hoso: Callable[..., Hoso]
) -> None:
    h = make_hoso(1)
    req = _req(store, DESK, (h.docs[0].id, "read"))
    with pytest.raises(ValidationError):
        use.decide(store, LEAD, req["id"], False)
    use.decide(store, LEAD, req["id"], False, "Không đúng mục đích")
    with pytest.raises(ConflictError):
        use.decide(store, LEAD, req["id"], True)
    with pytest.raises(UseError):
        use.deliver(store, DESK, req["id"], 0, "screen")


def test_restricted_and_classified_are_offered_only_with_clearance(
    store: Store, make_hoso: Callable[..., Hoso]
) -> None:
    """A restricted (02) or classified (03) document is as absent for an actor without
    clearance; an outside reader needs written permission; mật is only read on the spot;
    a request holding one is hidden from, and cannot be decided by, those not cleared."""
    h = make_hoso(1)
    restricted = make_hoso(1, Rights="02").docs[0]  # restricted by its hồ sơ
    secret = store.register_incoming({**h.docs[0].data, "CodeNumber": "900", "Mode": "03",
                                      "FileCode": None, "DocOrdinal": None}).record
    for doc in (restricted, secret):
        with pytest.raises(NotFoundError):
            _req(store, ARCHIVIST, (doc.id, "read"),
                 reader={"kind": "outside", "name": "A", "clearance_ref": "GGT 1"})
        with pytest.raises(NotFoundError):
            _req(store, STAFF, (doc.id, "read"), reader={"kind": "staff"})
    with pytest.raises(ValidationError, match="văn bản cho phép"):
        _req(store, DESK, (restricted.id, "read"))
    with pytest.raises(ValidationError, match="mật"):
        _req(store, DESK, (secret.id, "copy"),
             reader={"kind": "outside", "name": "A", "clearance_ref": "GGT 1"})
    req = _req(store, DESK, (secret.id, "read"), (restricted.id, "copy"),
               reader={"kind": "outside", "name": "Thanh tra", "clearance_ref": "GGT 1/TTr"})
    assert [i["level"] for i in req["items"]] == ["03", "02"]
    assert use.list_requests(store.reader(), ARCHIVIST) == []
    uncleared_head = Actor("phochutich", approver=True)
    with pytest.raises(NotFoundError):
        use.decide(store, uncleared_head, req["id"], True)
    use.decide(store, LEAD, req["id"], True)
    with pytest.raises(NotFoundError):
        use.deliver(store, ARCHIVIST, req["id"], 0, "screen")
    use.deliver(store, DESK, req["id"], 0, "screen")


def test_outside_readers_are_recorded_by_the_desk_only(
    store: Store, make_hoso: Callable[..., Hoso]
) -> None:
    h = make_hoso(1)
    with pytest.raises(UseError):
        _req(store, STAFF, (h.docs[0].id, "read"))
    mine = _req(store, STAFF, (h.docs[0].id, "read"), reader={"kind": "staff"})
    assert mine["reader"] == {"kind": "staff", "name": "chuyenvien"}
    assert [r["id"] for r in use.list_requests(store.reader(), STAFF)] == [mine["id"]]
    other = Actor("khac")
    assert use.list_requests(store.reader(), other) == []


@pytest.fixture
def token_agency(data_dir: Path, softhsm_token: SoftHsmToken) -> CA:
    agency.configure_agency_pkcs11(data_dir, softhsm_token.module, softhsm_token.token_label,
                                   softhsm_token.key_label)
    with agency.open_agency_key(data_dir, softhsm_token.pin) as key:
        public = key.public_key()
    ca = make_ca()
    agency.import_agency_cert(
        data_dir, pem(ca.issue(public, agency.agency_subject("UBND xã Đông Hải"))),
        pin=softhsm_token.pin)
    return ca


def test_certified_copy_is_signed_by_the_agency_key_and_validates(
    store: Store, make_hoso: Callable[..., Hoso], token_agency: CA, tmp_path: Path,
    softhsm_token: SoftHsmToken,
) -> None:
    """A certified copy (chứng thực lưu trữ): marked, then PAdES-signed by the agency key
    (a PKCS#11 token); pyHanko finds it intact and trusted; the signature text says BẢN SAO."""
    from asn1crypto import x509 as asn1_x509
    from cryptography.hazmat.primitives.serialization import Encoding
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    h = make_hoso(1)
    req = _req(store, DESK, (h.docs[0].id, "certified"))
    use.decide(store, LEAD, req["id"], True)
    with pytest.raises(UseError, match="khóa ký số"):
        use.deliver(store, DESK, req["id"], 0, "digital")
    with agency.open_agency_key(store.data_dir, softhsm_token.pin) as key:
        got = use.deliver(store, DESK, req["id"], 0, "paper",
                          CopyMaker(store, key, "Ủy ban nhân dân xã Đông Hải"))
    assert got.pdf is not None
    root = asn1_x509.Certificate.load(token_agency.cert.public_bytes(Encoding.DER))
    (sig,) = PdfFileReader(io.BytesIO(got.pdf), strict=False).embedded_signatures
    status = validate_pdf_signature(sig, ValidationContext(trust_roots=[root]))
    assert status.intact and status.valid and status.bottom_line
    text = _text(got.pdf, tmp_path)
    assert text.count("BẢN SAO") >= 2  # the mark and the signature block
    assert "Ủy ban nhân dân xã Đông Hải" in text and "+07:00" in text


def test_register_of_use_and_statistics(
    store: Store, make_hoso: Callable[..., Hoso], clock: object
) -> None:
    """One register row per decided request; the year's figures by purpose."""
    h = make_hoso(3)
    a = _req(store, DESK, (h.docs[0].id, "read"), (h.docs[1].id, "copy"))
    use.decide(store, LEAD, a["id"], True, "Đọc và sao")
    use.deliver(store, DESK, a["id"], 0, "screen")
    use.deliver(store, DESK, a["id"], 1, "digital")
    b = _req(store, STAFF, (h.docs[2].id, "read"), purpose_code="01",
             reader={"kind": "staff"})
    use.decide(store, LEAD, b["id"], False, "Ngoài phạm vi công việc")
    _req(store, DESK, (h.docs[2].id, "read"))  # still pending: not in the register
    rows = use.register_rows(store.reader(), 2025, LEAD)
    assert len(rows) == 2 and len(rows[0]) == len(use.REGISTER_COLUMNS)
    assert rows[0][0] == "01/2025" and rows[0][2] == "Phạm Thị Hoa"
    assert rows[0][6] == "Đọc; Bản sao" and rows[0][7] == "2" and rows[0][8] == "lanhdao"
    assert rows[1][10] == "Từ chối: Ngoài phạm vi công việc"
    st = use.statistics(store.reader(), 2025, LEAD)
    assert (st["requests"], st["approved"], st["refused"], st["pending"]) == (3, 1, 1, 1)
    assert (st["records_used"], st["reads"], st["copies"], st["pages_copied"]) == (2, 1, 1, 2)
    assert st["by_purpose"]["03"]["requests"] == 2 and st["by_purpose"]["01"]["requests"] == 1
    assert st["readers"] == 2
    assert use.statistics(store.reader(), 2024, LEAD)["requests"] == 0
    _ = dt  # dates are checked through the rows above


def test_a_record_read_on_screen_is_marked_with_its_reader_request_and_time(
    store: Store, make_hoso: Callable[..., Hoso], tmp_path: Path
) -> None:
    """Reading on screen shows the record only after the read was delivered, and every page
    carries the reader's name, the request's number and the time (dd/mm/yyyy HH:MM); a copy
    item, a staff member who did not ask, or a request not yet delivered shows nothing."""
    from appliance.archive.reading import open_reading
    from appliance.clock import TZ

    h = make_hoso(2, content=False)
    doc = attach_pdf(store, h.docs[0], "Giấy chứng nhận quyền sử dụng đất", pages=2)
    copy_doc = attach_pdf(store, h.docs[1], "Biên bản", pages=1)
    req = _req(store, DESK, (doc.id, "read"), (copy_doc.id, "copy"))
    use.decide(store, LEAD, req["id"], True)
    with pytest.raises(UseError, match="chưa được giao"):
        open_reading(store, DESK, req["id"], 0)  # the read must be delivered (logged) first
    use.deliver(store, DESK, req["id"], 0, "screen")
    with pytest.raises(UseError, match="bản sao"):
        open_reading(store, DESK, req["id"], 1)
    with pytest.raises(NotFoundError):
        open_reading(store, STAFF, req["id"], 0)  # neither the desk nor the one who asked
    at = dt.datetime(2025, 9, 15, 14, 5, tzinfo=TZ)
    got = open_reading(store, DESK, req["id"], 0, at=at)
    assert got.document == doc.id and got.mark.request == "01/2025"
    for page in (1, 2):
        text = " ".join(_text(got.pdf, tmp_path, page).split())
        assert "ĐỌC TẠI CHỖ" in text and "Người đọc: Phạm Thị Hoa" in text
        assert "Phiếu yêu cầu số 01/2025" in text and "15/09/2025 14:05" in text
        assert "Giấy chứng nhận quyền sử dụng đất" in text  # the page's own content stays
    assert "2025-09-15" not in _text(got.pdf, tmp_path, 1)
