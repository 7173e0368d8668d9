"""Registering anything real and correcting it with history (appliance/documents.py)."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import cbor2
import pytest

from appliance import rebuild
from appliance.archive import holds
from appliance.config import DB_NAME
from appliance.errors import ConflictError, FrozenError, ReadOnlyError, ValidationError
from appliance.store import Store
from appliance.verify import verify_data_dir
from tests.archive.conftest import attach_pdf
from tests.conftest import incoming, outgoing
from tests.test_rebuild import snapshot, strip_projections

REAL_NUMBERS = [  # (số, ký hiệu) as written on documents a commune receives
    ("12", "2025/NQ-HĐND"),  # a legal normative document carries the year
    ("05", "2025/TT-BNV"),
    ("1234", "CV-CTY"),  # a business writes CV
    ("15a", "UBND"),  # a number with a letter
    ("07", "BC-ĐTN"),
]


@pytest.mark.parametrize(("number", "notation"), REAL_NUMBERS)
def test_incoming_numbers_are_kept_as_written(store: Store, number: str, notation: str) -> None:
    """The sender's số and ký hiệu are registered exactly as on the paper."""
    rec = store.register_incoming(incoming(CodeNumber=number, CodeNotation=notation)).record
    assert (rec.data["CodeNumber"], rec.data["CodeNotation"]) == (number, notation)
    assert rec.data["ArrivalNumber"] == 1


def test_a_petition_with_no_number_registers(store: Store) -> None:
    """An đơn with no số or ký hiệu gets its số đến; its author is still required."""
    data = incoming(TypeName="Đơn", Subject="Đơn đề nghị cấp giấy chứng nhận quyền sử dụng đất",
                    OrganName="Ông Nguyễn Văn An, thôn Đông")
    del data["CodeNumber"], data["CodeNotation"]
    rec = store.register_incoming(data).record
    assert "CodeNumber" not in rec.data and rec.data["ArrivalNumber"] == 1
    with pytest.raises(ValidationError, match="OrganName") as err:
        store.register_incoming({k: v for k, v in data.items() if k != "OrganName"})
    assert err.value.field == "OrganName" and err.value.msgid == "%(label)s is required."


@pytest.mark.parametrize(("field", "value"), [
    ("CodeNumber", "123456789012"),  # longer than Decree 30's 11
    ("CodeNotation", "QĐ-UBND; DROP"),  # characters a ký hiệu never has
    ("CodeNotation", "/QĐ"),  # must start with a letter or digit
])
def test_incoming_numbers_are_checked_for_length_and_characters(
    store: Store, field: str, value: str
) -> None:
    with pytest.raises(ValidationError) as err:
        store.register_incoming(incoming(**{field: value}))
    assert err.value.field == field and err.value.msgid is not None


def test_our_own_numbers_keep_decree_30s_rules(store: Store) -> None:
    """Outgoing documents are numbered by the box: 'CV' is refused as a type abbreviation."""
    with pytest.raises(ValidationError, match="CV"):
        store.draft_outgoing(outgoing(TypeName="Công văn", CodeNotation="CV-UBND"))


def test_csv_rows_of_received_documents_keep_their_numbers(store: Store, tmp_path: Path) -> None:
    """Import from a paper register: 12/2025/NQ-HĐND splits into số 12, ký hiệu 2025/NQ-HĐND."""
    from appliance.importer import import_file

    csv = tmp_path / "den.csv"
    csv.write_text(
        "Ngày đến,Số đến,Tác giả,\"Số, ký hiệu văn bản\",Ngày tháng văn bản,"
        "Tên loại và trích yếu nội dung văn bản\n"
        "03/09/2025,1,HĐND huyện,12/2025/NQ-HĐND,01/09/2025,Nghị quyết về kế hoạch đầu tư\n"
        "04/09/2025,2,Công ty TNHH An Phú,1234/CV-CTY,02/09/2025,V/v xin cấp phép\n"
        "05/09/2025,3,UBND huyện,15a/UBND,03/09/2025,V/v họp giao ban\n",
        encoding="utf-8",
    )
    rep = import_file(store, csv)
    assert rep.ok, rep.failed
    got = sorted((d.data["CodeNumber"], d.data["CodeNotation"]) for d in store.find("document"))
    assert got == [("12", "2025/NQ-HĐND"), ("1234", "CV-CTY"), ("15a", "UBND")]


def test_a_correction_is_a_new_version_with_its_reason(store: Store) -> None:
    """A mistyped arrival date is corrected; the entry carries the full new version and the
    reason; numbers stay; verify is clean."""
    rec = store.register_incoming(incoming(ArrivalDate="2025-09-03")).record
    new = store.update_document(rec.id, {"ArrivalDate": "02/09/2025"}, "vanthu",
                                reason="Nhập nhầm ngày đến")
    assert new.version == 2 and new.data["ArrivalDate"] == "2025-09-02"
    assert new.data["ArrivalNumber"] == rec.data["ArrivalNumber"]
    raw = dict(store.entries())[new.log_index]
    m = cbor2.loads(raw)
    assert m["note"] == "Nhập nhầm ngày đến" and m["data"]["ArrivalDate"] == "2025-09-02"
    with pytest.raises(ValidationError, match="ArrivalNumber"):
        store.update_document(rec.id, {"ArrivalNumber": 9}, reason="x")
    store.wait_sealed()
    assert verify_data_dir(store.data_dir).ok


def test_an_issued_number_never_changes(store: Store) -> None:
    d = store.issue_outgoing(store.draft_outgoing(outgoing()).record.id).record
    for change in ({"CodeNumber": "99"}, {"IssuedDate": "01/01/2025"}):
        with pytest.raises(ValidationError, match="issued document"):
            store.update_document(d.id, change, reason="x")


def test_cancelling_keeps_the_number_and_freezes_the_record(store: Store) -> None:
    """A wrong registration is cancelled (huỷ): the number is not given again, and nothing
    of the cancelled record changes any more; a draft is withdrawn the same way."""
    first = store.register_incoming(incoming(CodeNumber="1")).record
    gone = store.cancel_document(first.id, "Đăng ký nhầm văn bản của xã khác", "vanthu")
    assert gone.data["CancelledDate"] == "2025-09-15" and gone.data["ArrivalNumber"] == 1
    assert gone.data["CancelReason"] == "Đăng ký nhầm văn bản của xã khác"
    again = store.register_incoming(incoming(CodeNumber="1")).record
    assert again.data["ArrivalNumber"] == 2
    with pytest.raises(ConflictError, match="cancelled"):
        store.update_document(first.id, {"Keyword": "x"}, reason="y")
    with pytest.raises(ValidationError, match="Reason"):
        store.cancel_document(again.id, "  ", "vanthu")
    draft = store.draft_outgoing(outgoing()).record
    assert store.cancel_document(draft.id, "Không ban hành nữa").data["CancelledDate"]
    with pytest.raises(ConflictError, match="cancelled"):
        store.issue_outgoing(draft.id)


def test_removing_an_attachment_keeps_the_file_and_the_earlier_version(store: Store) -> None:
    rec = attach_pdf(store, store.register_incoming(incoming()).record, "nhầm tệp")
    sha = rec.data["Content"][0]["sha256"]
    new = store.remove_content(rec.id, sha, "Đính kèm nhầm tệp của văn bản khác", "vanthu")
    assert "Content" not in new.data
    assert store.content.exists(sha)  # the file stays in the store and in the log
    with pytest.raises(Exception, match="no content"):
        store.remove_content(rec.id, sha, "lại")


def test_moving_between_open_hoso_and_refusals_when_closed_or_frozen(store: Store) -> None:
    a = store.open_file({"FileCatalog": 2025, "FileNotation": "01.VP", "Title": "A",
                         "Maintenance": "05"})
    b = store.open_file({"FileCatalog": 2025, "FileNotation": "02.VP", "Title": "B",
                         "Maintenance": "05"})
    doc = store.register_incoming(incoming(FileCode=a.data["FileCode"])).record
    moved = store.update_document(doc.id, {"FileCode": b.data["FileCode"]}, reason="Sai hồ sơ")
    assert moved.data["FileCode"] == b.data["FileCode"] and moved.data["DocOrdinal"] == 1
    out = store.update_document(doc.id, {"FileCode": ""}, reason="Chưa xếp hồ sơ")
    assert "FileCode" not in out.data and "DocOrdinal" not in out.data
    store.close_file(a.data["FileCode"])
    with pytest.raises(ReadOnlyError, match="closed"):  # a closed hồ sơ takes no document
        store.update_document(doc.id, {"FileCode": a.data["FileCode"]}, reason="x")
    in_b = store.register_incoming(incoming(CodeNumber="2", FileCode=b.data["FileCode"])).record
    store.close_file(b.data["FileCode"])
    with pytest.raises(ReadOnlyError, match="closed"):  # nor does its content change
        store.update_document(in_b.id, {"Keyword": "x"}, reason="y")
    with pytest.raises(ReadOnlyError, match="closed"):
        store.register_incoming(incoming(CodeNumber="3", FileCode=b.data["FileCode"]))
    frozen = store.register_incoming(incoming(CodeNumber="4")).record
    holds.freeze(store, "document", frozen.id, "Thanh tra", "QĐ 1")
    with pytest.raises(FrozenError):
        store.cancel_document(frozen.id, "x")


def test_taking_a_document_out_of_a_hoso(store: Store) -> None:
    """Out of a hồ sơ it was added to as well (the membership ends, with the reason in the
    log entry) or out of its own (a new version without it); a closed hồ sơ refuses."""
    own = store.open_file({"FileCatalog": 2025, "FileNotation": "01.VP", "Title": "Hồ sơ A",
                           "Maintenance": "05"})
    other = store.open_file({"FileCatalog": 2025, "FileNotation": "02.VP", "Title": "Hồ sơ B",
                             "Maintenance": "05"})
    doc = store.register_incoming(incoming(FileCode=own.data["FileCode"])).record
    store.add_to_file(doc.id, other.data["FileCode"])
    members = 'SELECT count(*) FROM memberships WHERE "DocumentId" = ?'
    assert store.reader().execute(members, (doc.id,)).fetchone()[0] == 1
    with pytest.raises(ValidationError) as err:
        store.remove_from_file(doc.id, other.data["FileCode"], "  ")
    assert err.value.field == "Reason"
    store.remove_from_file(doc.id, other.data["FileCode"], "Đưa nhầm vào hồ sơ B")
    assert store.reader().execute(members, (doc.id,)).fetchone()[0] == 0
    last = cbor2.loads(store.reader().execute(
        "SELECT entry FROM log ORDER BY idx DESC LIMIT 1").fetchone()[0])
    assert last["kind"] == "file.remove_document" and last["note"] == "Đưa nhầm vào hồ sơ B"
    assert last["data"] == {"FileCode": other.data["FileCode"], "DocumentId": doc.id}
    with pytest.raises(ValidationError) as err:  # no longer there
        store.remove_from_file(doc.id, other.data["FileCode"], "lần nữa")
    assert err.value.field == "FileCode"
    # Added again, then that hồ sơ closed: its mục lục holds the document for good.
    store.add_to_file(doc.id, other.data["FileCode"])
    store.close_file(other.data["FileCode"])
    with pytest.raises(ReadOnlyError, match="closed"):
        store.remove_from_file(doc.id, own.data["FileCode"], "x")
    # Its own hồ sơ, while open, for a document in no closed one.
    d2 = store.register_incoming(incoming(CodeNumber="2", FileCode=own.data["FileCode"])).record
    out = store.remove_from_file(d2.id, own.data["FileCode"], "Chưa đúng hồ sơ")
    assert "FileCode" not in out.data and out.version == d2.version + 1
    store.wait_sealed()
    assert verify_data_dir(store.data_dir).ok


def test_corrections_rebuild_from_the_log_alone(
    store: Store, tmp_path: Path
) -> None:
    """Every correction kind replays: a rebuild gives the same tables, verify is clean."""
    rec = attach_pdf(store, store.register_incoming(incoming()).record, "tệp")
    store.update_document(rec.id, {"Subject": "V/v đã sửa trích yếu"}, reason="Sửa chính tả")
    store.remove_content(rec.id, rec.data["Content"][0]["sha256"], "nhầm")
    store.cancel_document(store.register_incoming(incoming(CodeNumber="9")).record.id, "nhầm")
    f = store.open_file({"FileCatalog": 2025, "FileNotation": "03.VP", "Title": "Hồ sơ C",
                         "Maintenance": "05"})
    store.add_to_file(rec.id, f.data["FileCode"])
    store.remove_from_file(rec.id, f.data["FileCode"], "nhầm hồ sơ")
    store.wait_sealed()
    assert verify_data_dir(store.data_dir).ok
    copy = tmp_path / "copy"
    shutil.copytree(store.data_dir, copy)
    conn = sqlite3.connect(copy / DB_NAME, isolation_level=None)
    want = snapshot(conn)
    strip_projections(conn)
    conn.execute("BEGIN")
    rebuild.rebuild_projections(conn)
    conn.execute("COMMIT")
    assert snapshot(conn) == want
    conn.close()
