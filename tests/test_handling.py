"""Văn bản đến from the leader's direction to its answer (appliance/handling.py)."""

from __future__ import annotations

import datetime as dt

import pytest

from appliance import handling
from appliance.accounts import Accounts, HashParams, ensure_schema
from appliance.clock import TZ, ManualClock
from appliance.errors import ConflictError, ForbiddenActionError, ValidationError
from appliance.store import Store
from appliance.verify import verify_data_dir
from tests.conftest import incoming, outgoing

PASSWORD = "mật khẩu đủ dài 2025"


@pytest.fixture
def users(store: Store) -> Accounts:
    ensure_schema(store)
    acc = Accounts(store, b"s" * 32, HashParams(opslimit=1, memlimit=8192))
    for name, role, full in (("lanhdao", "leader", "Trần Văn Hùng"),
                             ("cv.an", "handler", "Nguyễn Thị An"),
                             ("cv.binh", "handler", "Lê Văn Bình"),
                             ("vanthu", "clerk", "Phạm Thu")):
        acc.add_user(name, role, PASSWORD, "admin", full)
    return acc


def test_direct_then_report_then_done_with_the_answer(
    store: Store, users: Accounts, clock: ManualClock
) -> None:
    """The leader directs, the lead handler reports, answers with a văn bản đi; each step is a
    new version of the document, the deadline is its DueDate, the handlers its ToPlaces."""
    doc = store.register_incoming(incoming()).record
    today = clock.now().date()
    assert [t.id for t in handling.awaiting_direction(store.reader(), today)] == [doc.id]
    rec = handling.direct(store, doc.id, "Giao đ/c An chủ trì, đ/c Bình phối hợp, báo cáo "
                          "trước 20/9", "cv.an", ["cv.binh"], "20/09/2025", "lanhdao")
    h = rec.data["Handling"]
    assert (h["status"], h["lead"], h["support"], h["due"]) == (
        "assigned", "cv.an", ["cv.binh"], "2025-09-20")
    assert rec.data["DueDate"] == "2025-09-20"
    assert rec.data["ToPlaces"] == "Nguyễn Thị An (chủ trì); Lê Văn Bình (phối hợp)"
    assert handling.awaiting_direction(store.reader(), today) == []
    mine = handling.tasks(store.reader(), today, "cv.binh")
    assert [t.id for t in mine] == [doc.id] and not mine[0].overdue
    with pytest.raises(ForbiddenActionError):
        handling.report_progress(store, doc.id, "tôi không được giao", "vanthu")
    handling.report_progress(store, doc.id, "Đã liên hệ các thôn", "cv.an")
    answer = store.issue_outgoing(store.draft_outgoing(outgoing()).record.id).record
    done = handling.report_progress(store, doc.id, "Đã trả lời bằng công văn", "cv.an",
                                    done=True, answer=answer.id)
    h = done.data["Handling"]
    assert h["status"] == "done" and h["answer"] == answer.id and len(h["progress"]) == 2
    assert handling.tasks(store.reader(), today, "cv.an") == []
    with pytest.raises(ConflictError, match="already handled"):
        handling.report_progress(store, doc.id, "lại", "cv.an")
    store.wait_sealed()
    assert verify_data_dir(store.data_dir).ok


def test_overdue_tasks_come_first(store: Store, users: Accounts, clock: ManualClock) -> None:
    late = store.register_incoming(incoming(CodeNumber="1")).record
    soon = store.register_incoming(incoming(CodeNumber="2")).record
    handling.direct(store, late.id, "Xử lý", "cv.an", due="16/09/2025", actor="lanhdao")
    handling.direct(store, soon.id, "Xử lý", "cv.an", due="30/09/2025", actor="lanhdao")
    clock.set(dt.datetime(2025, 9, 20, 8, 0, tzinfo=TZ))
    got = handling.tasks(store.reader(), clock.now().date(), "cv.an")
    assert [(t.id, t.overdue) for t in got] == [(late.id, True), (soon.id, False)]
    only = handling.tasks(store.reader(), clock.now().date(), overdue_only=True)
    assert [t.id for t in only] == [late.id]


@pytest.mark.parametrize(("lead", "due", "field"), [
    ("khongco", None, "Lead"),  # no such user
    ("cv.an", "01/01/2020", "Due"),  # a deadline already past
])
def test_a_direction_is_checked(store: Store, users: Accounts, lead: str, due: str | None,
                                field: str) -> None:
    doc = store.register_incoming(incoming()).record
    with pytest.raises(ValidationError) as err:
        handling.direct(store, doc.id, "Xử lý", lead, due=due, actor="lanhdao")
    assert err.value.field == field and err.value.msgid


def test_a_classified_document_goes_only_to_cleared_handlers(
    store: Store, users: Accounts
) -> None:
    doc = store.register_incoming(incoming(Mode="03", Subject="V/v bảo vệ bí mật")).record
    with pytest.raises(ValidationError, match="classified"):
        handling.direct(store, doc.id, "Xử lý", "cv.an", actor="lanhdao")
    rec = handling.direct(store, doc.id, "Văn thư xử lý", "vanthu", actor="lanhdao")
    assert rec.data["Handling"]["lead"] == "vanthu"
    today = store.clock.now().date()
    assert handling.tasks(store.reader(), today, include_classified=False) == []


def test_only_a_registered_incoming_document_is_directed(
    store: Store, users: Accounts
) -> None:
    draft = store.draft_outgoing(outgoing()).record
    with pytest.raises(ConflictError, match="registered văn bản đến"):
        handling.direct(store, draft.id, "Xử lý", "cv.an", actor="lanhdao")
    gone = store.register_incoming(incoming()).record
    store.cancel_document(gone.id, "nhầm")
    with pytest.raises(ConflictError):
        handling.direct(store, gone.id, "Xử lý", "cv.an", actor="lanhdao")


def test_the_inbox_waits_only_for_recent_documents(
    store: Store, users: Accounts, clock: ManualClock
) -> None:
    """A register imported from paper (or anything registered long ago) is not waiting for a
    direction: the leader's inbox looks back AWAITING_DAYS days."""
    old = store.register_incoming(incoming(CodeNumber="7")).record
    clock.advance((handling.AWAITING_DAYS + 1) * 86400)
    recent = store.register_incoming(incoming(CodeNumber="8")).record
    today = clock.now().date()
    assert [t.id for t in handling.awaiting_direction(store.reader(), today)] == [recent.id]
    assert [t.id for t in handling.awaiting_direction(store.reader(), today, days=3650)] == [
        old.id, recent.id]


def test_a_document_for_information_only_needs_no_handler(
    store: Store, users: Accounts, clock: ManualClock
) -> None:
    """'Để biết, lưu': the leader's direction without a handler or a deadline; the document is
    handled at once, leaves the inbox, and the Sổ theo dõi says so. Directed later after all,
    it becomes a task like any other."""
    from appliance.registers.rows import progress

    doc = store.register_incoming(incoming()).record
    today = clock.now().date()
    rec = handling.for_information(store, doc.id, "Để biết, lưu hồ sơ", "lanhdao")
    h = rec.data["Handling"]
    assert (h["status"], h["info"], h["lead"], h["due"]) == ("done", True, None, None)
    assert "DueDate" not in rec.data and "ToPlaces" not in rec.data
    assert handling.awaiting_direction(store.reader(), today) == []
    assert handling.tasks(store.reader(), today) == []
    assert progress(h, "", today) == "Để biết (Để biết, lưu hồ sơ)"
    with pytest.raises(ValidationError):
        handling.for_information(store, doc.id, " ", "lanhdao")
    again = handling.direct(store, doc.id, "Xem lại, trả lời công dân", "cv.an", actor="lanhdao")
    h = again.data["Handling"]
    assert (h["status"], h["lead"], h["done_at"], h.get("info")) == ("assigned", "cv.an", None,
                                                                     None)
    handling.report_progress(store, doc.id, "Đang xử lý", "cv.an")
    with pytest.raises(ConflictError):
        handling.for_information(store, doc.id, "Để biết", "lanhdao")
