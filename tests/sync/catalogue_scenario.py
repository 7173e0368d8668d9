"""An appliance whose records sit in every position the publishing rule must judge, synced to
a centre: what must be published, and every text that must never be.

Public, released and published: hồ sơ A (transferred) with its public documents; hồ sơ D
(opened by the head). Never published: A's restricted document (Mode 02), its classified one
(Mode 03: withheld, never at the centre), a document made mật before the transfer (the centre
holds its old public version, withheld after), hồ sơ B (Rights 02, transferred), hồ sơ C
(mật: never at the centre), hồ sơ E (public, never released); the notes and the person who
made each hồ sơ (fields that are never public).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from appliance.archive import custody, publication
from appliance.store import Store
from sync import wire
from tests.archive.conftest import attach_pdf
from tests.conftest import incoming
from tests.sync.conftest import Appliance, response

PUBLIC_SUBJECT = "V/v cấp giấy chứng nhận quyền sử dụng đất cho hộ ông Đặng Văn Đông"
OPENED_SUBJECT = "V/v công bố quy hoạch sử dụng đất xã Đông Hải đến năm 2030"


@dataclass
class Expect:
    published: set[str] = field(default_factory=set)  # oai ids
    secrets: list[str] = field(default_factory=list)  # texts that must appear nowhere
    doc: str = ""  # a published document's id, with a PDF
    file_code: str = ""  # hồ sơ A
    opened_code: str = ""  # hồ sơ D
    opened_doc: str = ""
    restricted_doc: str = ""
    stale_doc: str = ""  # the document made mật before the transfer


def _hoso(store: Store, notation: str, title: str, **over: object) -> str:
    rec = store.open_file({"FileCatalog": 2024, "FileNotation": notation, "Title": title,
                           "Maintenance": "01", "Creator": "Lê Thị Bí Mật Người Lập",
                           "Description": "Ghi chú nội bộ không công bố", **over})
    return str(rec.data["FileCode"])


def build(store: Store) -> Expect:
    ex = Expect()
    a = _hoso(store, "01.DD", "Hồ sơ cấp giấy chứng nhận quyền sử dụng đất năm 2024")
    d1 = attach_pdf(store, store.register_incoming(incoming(
        FileCode=a, CodeNumber="11", Subject=PUBLIC_SUBJECT, IssuedDate="2024-03-04",
        Description="Ghi chú riêng của văn thư")).record, "Giấy chứng nhận quyền sử dụng đất")
    d2 = store.register_incoming(incoming(
        FileCode=a, CodeNumber="12", Mode="02",
        Subject="V/v hồ sơ bồi thường hạn chế tiếp cận của hộ bà Hạn Chế")).record
    d3 = store.register_incoming(incoming(
        FileCode=a, CodeNumber="13", Mode="03",
        Subject="V/v phương án bảo vệ kho mật tuyệt đối")).record
    d5 = store.register_incoming(incoming(
        FileCode=a, CodeNumber="14", Subject="V/v danh sách sẽ thành mật sau này")).record
    store.update_document(d5.id, {"Mode": "03"})  # its public v1 reached the centre; v2 not
    store.close_file(a)
    custody.record_transfer(store, a, "uuid-pkg-a", "2025-09-10")
    ex.published |= {f"hoso/{a}", f"tailieu/{d1.id}"}
    ex.doc, ex.file_code, ex.restricted_doc, ex.stale_doc = d1.id, a, d2.id, d5.id
    ex.secrets += ["hạn chế tiếp cận", "kho mật tuyệt đối", "sẽ thành mật", d2.id, d3.id,
                   d5.id, "Bí Mật Người Lập", "Ghi chú nội bộ", "Ghi chú riêng"]

    b = _hoso(store, "02.HC", "Hồ sơ sử dụng có điều kiện về giải phóng mặt bằng",
              Rights="02")
    store.register_incoming(incoming(FileCode=b, CodeNumber="21",
                                     Subject="V/v giải phóng mặt bằng có điều kiện"))
    store.close_file(b)
    custody.record_transfer(store, b, "uuid-pkg-b", "2025-09-10")
    ex.secrets += ["giải phóng mặt bằng", b]

    c = _hoso(store, "03.MAT", "Hồ sơ bảo vệ bí mật nhà nước tối mật", Rights="03")
    store.register_incoming(incoming(FileCode=c, CodeNumber="31",
                                     Subject="V/v kế hoạch phòng thủ tối mật"))
    ex.secrets += ["tối mật", c]

    d = _hoso(store, "04.QH", "Hồ sơ quy hoạch sử dụng đất công khai")
    opened = store.register_incoming(incoming(FileCode=d, CodeNumber="41",
                                              Subject=OPENED_SUBJECT,
                                              IssuedDate="2025-01-20")).record
    publication.publish(store, d, "QĐ 40/QĐ-UBND")
    ex.published |= {f"hoso/{d}", f"tailieu/{opened.id}"}
    ex.opened_code, ex.opened_doc = d, opened.id

    e = _hoso(store, "05.VP", "Hồ sơ chưa công bố về văn phòng")
    store.register_incoming(incoming(FileCode=e, CodeNumber="51",
                                     Subject="V/v lịch công tác chưa công bố"))
    ex.secrets += ["chưa công bố", e]
    assert store.wait_sealed()
    return ex


def sync_all(app: Appliance) -> None:
    """Send every signed entry to the centre, batch after batch."""
    c = app.intake.c
    for _ in range(100):
        with c.storage.view() as v:
            rec = v.appliance(app.id)
            assert rec is not None
            start = rec.accepted_size
        latest = app.store.latest_checkpoint()
        assert latest is not None
        if start >= latest[0]:
            return
        ans = app.send(start)
        assert ans.status == 200, response(c, ans).message
        assert response(c, ans).outcome in (wire.Outcome.ACCEPTED, wire.Outcome.DUPLICATE)
    raise AssertionError("the appliance never caught up")
