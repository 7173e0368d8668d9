"""The record store: registration, numbering by Decree 30, hồ sơ, fonds, duplicates."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance import writes
from appliance.clock import TZ, ManualClock
from appliance.errors import ConflictError, ReadOnlyError, ValidationError
from appliance.store import Record, Store
from appliance.verify import verify_data_dir
from appliance.writer import Txn

from .conftest import ORG_ID, incoming, outgoing


def test_incoming_gets_next_arrival_number(store: Store) -> None:
    """Số đến runs 1, 2, 3 … within the year and the arrival date is today by default."""
    a = store.register_incoming(incoming())
    b = store.register_incoming(incoming(CodeNumber="1246"))
    assert (a.record.data["ArrivalNumber"], b.record.data["ArrivalNumber"]) == (1, 2)
    assert a.record.data["ArrivalDate"] == "2025-09-15"
    assert a.record.data["FondCode"] == ORG_ID
    assert a.record.data["TypeCode"] == "22"  # Công văn in TT 05


def test_outgoing_numbered_only_when_issued(store: Store) -> None:
    """A draft has no number; issuing gives 01, zero-padded, with ký hiệu QĐ-UBND and today."""
    draft = store.draft_outgoing(outgoing()).record
    assert "CodeNumber" not in draft.data and draft.data["Status"] == "draft"
    issued = store.issue_outgoing(draft.id).record
    assert issued.data["CodeNumber"] == "01"
    assert issued.data["CodeNotation"] == "QĐ-UBND"
    assert issued.data["IssuedDate"] == "2025-09-15"
    assert issued.version == 2
    with pytest.raises(ConflictError):
        store.issue_outgoing(draft.id)


def test_series_are_separate(store: Store) -> None:
    """Administrative, classified (mật) and copies each have their own series."""

    def issue(**kw: object) -> str:
        d = store.draft_outgoing(outgoing(**kw)).record
        return str(store.issue_outgoing(d.id).record.data["CodeNumber"])

    assert issue() == "01"
    assert issue(TypeName="Tờ trình") == "02"
    assert issue(Mode="03") == "01"
    assert issue(TypeName="Bản sao y") == "01"
    assert issue(TypeName="Công văn", CodeNotation="UBND-VP") == "03"
    assert issue(Mode="Mật") == "02"


def test_cong_van_needs_unit_and_cv_refused(store: Store) -> None:
    """A công văn's ký hiệu names agency and unit; 'CV' is never a type abbreviation."""
    with pytest.raises(ValidationError):
        store.draft_outgoing(outgoing(TypeName="Công văn"))
    with pytest.raises(ValidationError, match="CV"):
        store.draft_outgoing(outgoing(TypeName="Công văn", CodeNotation="CV-UBND"))


def test_lengths_enforced(store: Store) -> None:
    """Phụ lục VI lengths: a 501-character trích yếu is refused with the field named."""
    with pytest.raises(ValidationError) as err:
        store.register_incoming(incoming(Subject="x" * 501))
    assert err.value.field == "Subject"
    with pytest.raises(ValidationError):
        store.register_incoming(incoming(PageAmount=1000))


def test_text_stored_nfc(store: Store) -> None:
    """NFD input (as from macOS or OCR) is stored NFC and trimmed."""
    import unicodedata

    nfd = unicodedata.normalize("NFD", "  Về việc đăng ký đất đai  ")
    rec = store.register_incoming(incoming(Subject=nfd)).record
    assert rec.data["Subject"] == "Về việc đăng ký đất đai"
    assert unicodedata.is_normalized("NFC", rec.data["Subject"])


def test_code_list_by_code_or_label(store: Store) -> None:
    """A code-list field takes its code or its Vietnamese label, with or without diacritics."""
    rec = store.open_file(
        {
            "FileCatalog": 2025,
            "FileNotation": "01.VP",
            "Title": "Tập lưu",
            "Maintenance": "vinh vien",
            "Rights": "Công khai",
        }
    )
    assert rec.data["Maintenance"] == "01" and rec.data["Rights"] == "01"
    with pytest.raises(ValidationError):
        store.open_file(
            {"FileCatalog": 2025, "FileNotation": "02.VP", "Title": "x", "Maintenance": "mãi mãi"}
        )


def test_file_code_and_ordinals(store: Store) -> None:
    """Mã hồ sơ is OrganId.YYYY.NN.ABBR; documents filed get ordinals 1, 2 …; closing counts."""
    f = store.open_file(
        {"FileCatalog": 2025, "FileNotation": "01.VP", "Title": "Tập lưu", "Maintenance": "01"}
    )
    assert f.data["FileCode"] == f"{ORG_ID}.2025.01.VP"
    a = store.register_incoming(incoming(FileCode=f.data["FileCode"])).record
    b = store.register_incoming(incoming(CodeNumber="9", FileCode=f.data["FileCode"])).record
    assert (a.data["DocOrdinal"], b.data["DocOrdinal"]) == (1, 2)
    other = store.open_file(
        {"FileCatalog": 2025, "FileNotation": "02.TP", "Title": "Hộ tịch", "Maintenance": "06"}
    )
    m = store.add_to_file(a.id, other.data["FileCode"])
    assert m.data["DocOrdinal"] == 1
    closed = store.close_file(f.data["FileCode"])
    assert (closed.data["DocTotal"], closed.data["PageTotal"]) == (2, 4)
    with pytest.raises(ValidationError):
        store.open_file(
            {"FileCatalog": 2025, "FileNotation": "bad notation", "Title": "x", "Maintenance": "01"}
        )


def test_duplicate_triple_warns(store: Store) -> None:
    """Same (số, ký hiệu, cơ quan ban hành) in a year is registered but warned about."""
    store.register_incoming(incoming())
    again = store.register_incoming(incoming())
    assert again.warnings and "Trùng" in again.warnings[0]
    other_year = store.register_incoming(incoming(IssuedDate="2024-09-03"))
    assert not other_year.warnings


def test_closed_fonds_is_read_only(store: Store) -> None:
    """After a merger closes the fonds, its records cannot change and numbering stops."""
    doc = store.register_incoming(incoming()).record
    store.close_fonds(ORG_ID, "2025-10-01", successor=None)
    with pytest.raises(ReadOnlyError):
        store.register_incoming(incoming())
    with pytest.raises(ReadOnlyError):
        store.update_document(doc.id, {"Subject": "changed"})


def test_update_keeps_numbers(store: Store) -> None:
    """Descriptive fields change as a new full version; numbers cannot be edited."""
    doc = store.register_incoming(incoming()).record
    new = store.update_document(doc.id, {"Subject": "Về việc sửa đổi", "DueDate": "30/09/2025"})
    assert new.version == 2 and new.data["DueDate"] == "2025-09-30"
    assert new.data["ArrivalNumber"] == doc.data["ArrivalNumber"]
    with pytest.raises(ValidationError):
        store.update_document(doc.id, {"ArrivalNumber": 7})
    with pytest.raises(ConflictError):
        store.update_document(doc.id, {"Subject": "stale"}, expect_version=1)


def test_year_rollover(open_store: Callable[..., Store]) -> None:
    """31/12 23:59 → 1/1 00:00 in Asia/Ho_Chi_Minh restarts every series at 01."""
    clock = ManualClock(dt.datetime(2025, 12, 31, 23, 59, 59, tzinfo=TZ))
    s = open_store(clock=clock)
    last_in = s.register_incoming(incoming()).record
    d1 = s.draft_outgoing(outgoing()).record
    last_out = s.issue_outgoing(d1.id).record
    clock.set(dt.datetime(2026, 1, 1, 0, 0, 0, tzinfo=TZ))
    first_in = s.register_incoming(incoming()).record
    d2 = s.draft_outgoing(outgoing()).record
    first_out = s.issue_outgoing(d2.id).record
    assert (last_in.data["Year"], last_in.data["ArrivalNumber"]) == (2025, 1)
    assert (first_in.data["Year"], first_in.data["ArrivalNumber"]) == (2026, 1)
    assert (last_out.data["IssuedDate"], last_out.data["CodeNumber"]) == ("2025-12-31", "01")
    assert (first_out.data["IssuedDate"], first_out.data["CodeNumber"]) == ("2026-01-01", "01")


def test_rollover_uses_vietnam_time(open_store: Callable[..., Store]) -> None:
    """17:00 UTC on 31 Dec is already 1 Jan in Hà Nội: the new year's series is used."""
    clock = ManualClock(dt.datetime(2025, 12, 31, 16, 59, tzinfo=dt.UTC))
    s = open_store(clock=clock)
    assert s.register_incoming(incoming()).record.data["Year"] == 2025
    clock.set(dt.datetime(2025, 12, 31, 17, 0, tzinfo=dt.UTC))
    rec = s.register_incoming(incoming()).record
    assert (rec.data["Year"], rec.data["ArrivalNumber"], rec.data["ArrivalDate"]) == (
        2026,
        1,
        "2026-01-01",
    )


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    ops=st.lists(
        st.tuples(st.sampled_from(["in", "out", "mat"]), st.booleans()), min_size=1, max_size=40
    ),
    rollover_at=st.integers(0, 40),
    workers=st.integers(1, 6),
)
def test_numbering_no_gaps_no_duplicates(
    open_store: Callable[..., Store],
    ops: list[tuple[str, bool]],
    rollover_at: int,
    workers: int,
) -> None:
    """Concurrent registrations and issues, with a year rollover mid-way: every series is 1..n."""
    clock = ManualClock(dt.datetime(2030 + rollover_at, 12, 31, 23, 59, 59, tzinfo=TZ))
    s = open_store(clock=clock)
    drafts = [
        s.draft_outgoing(outgoing(Mode="03" if k == "mat" else "01")).record.id
        for k, _ in ops
        if k != "in"
    ]
    jobs: list[Callable[[], object]] = []
    it = iter(drafts)
    for kind, _ in ops:
        if kind == "in":
            jobs.append(lambda: s.register_incoming(incoming()))
        else:
            did = next(it)
            jobs.append(lambda did=did: s.issue_outgoing(did))  # type: ignore[misc]
    with ThreadPoolExecutor(workers) as pool:
        futures = []
        for i, job in enumerate(jobs):
            if i == rollover_at % (len(jobs) + 1):
                for f in futures:
                    f.result()
                clock.advance(1)  # now 1 January
            futures.append(pool.submit(job))
        for f in futures:
            f.result()
    series: dict[tuple[str, int], list[int]] = {}
    for r in s.find("document"):
        d = r.data
        if d["Status"] == "draft":
            continue
        n = d["ArrivalNumber"] if d["Direction"] == "incoming" else int(d["CodeNumber"])
        series.setdefault((d["Series"], d["Year"]), []).append(n)
    for key, numbers in series.items():
        assert sorted(numbers) == list(range(1, len(numbers) + 1)), key


def test_register_draft_gives_the_next_so_den(store: Store) -> None:
    """A draft văn bản đến (a scan filed unread) is completed and numbered in the series."""
    first = store.register_incoming(incoming(CodeNumber="7")).record
    data = store.prepare_document(
        "incoming", {"Subject": "Bản quét chưa đọc", "TypeName": "Công văn"}
    )

    def file_draft(txn: Txn) -> Record:
        d = dict(data, FondCode=store.config.org_id, Status="draft")
        return writes.put(txn, "document", "document.digitise", "scan", d)

    draft = store.writer_or_fail().call(file_draft)
    with pytest.raises(ValidationError, match="OrganName"):  # a number may be absent, the
        store.register_draft(draft.id, {"Keyword": "đơn"})  # author may not
    with pytest.raises(ValidationError, match="ArrivalNumber"):
        store.register_draft(draft.id, {"ArrivalNumber": 99})
    res = store.register_draft(
        draft.id, {"CodeNumber": "15", "CodeNotation": "SNV-VP", "OrganName": "Sở Nội vụ"}, "vt"
    )
    assert res.record.data["Status"] == "registered"
    assert res.record.data["ArrivalNumber"] == first.data["ArrivalNumber"] + 1
    assert res.record.version == 2
    with pytest.raises(ConflictError, match="not a draft"):
        store.register_draft(draft.id, {"Subject": "lại"})
    assert verify_data_dir(store.data_dir).ok


def test_record_ids_are_random_uuid4() -> None:
    """Record ids are version-4 UUIDs in their usual text form, and do not repeat."""
    import uuid

    from appliance.writes import new_id as _new_id

    ids = [_new_id() for _ in range(5000)]
    assert len(set(ids)) == len(ids)
    for s in ids[:500]:
        u = uuid.UUID(s)
        assert str(u) == s and u.version == 4 and u.variant == uuid.RFC_4122
