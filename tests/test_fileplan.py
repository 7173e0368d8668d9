"""The Danh mục hồ sơ: a versioned heading structure that hồ sơ choose from (one heading can no
longer be written two ways), its approval by the head as a log entry, and its print."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from appliance import fileplan, fileplan_print
from appliance.clock import TZ
from appliance.errors import ConflictError, ValidationError
from appliance.importer import import_file
from appliance.store import Store
from tests.conftest import ORG_ID, ORG_NAME
from tests.registers_helpers import pdf_text

TEXT = """I. Công tác tổng hợp, văn phòng | VP
1. Văn thư, lưu trữ
2. Thi đua, khen thưởng
II. Tài chính - ngân sách | TC
III. Tư pháp - hộ tịch | TP
"""
LEADER = {"username": "lanhdao", "full_name": "Trần Văn Hùng", "position": "Chủ tịch UBND xã"}


def _plan(store: Store) -> fileplan.Structure:
    return fileplan.set_headings(store, 2025, fileplan.parse_text(TEXT), "vanthu")


def test_the_form_text_becomes_a_numbered_structure() -> None:
    heads = fileplan.normalise(fileplan.parse_text(TEXT))
    assert [h.label for h in heads] == [
        "I. Công tác tổng hợp, văn phòng", "I.1. Văn thư, lưu trữ", "I.2. Thi đua, khen thưởng",
        "II. Tài chính - ngân sách", "III. Tư pháp - hộ tịch"]
    assert [h.abbr for h in heads if h.main] == ["VP", "TC", "TP"]
    assert [h.short for h in heads][:2] == ["I. Công tác tổng hợp, văn phòng",
                                            "1. Văn thư, lưu trữ"]
    assert [fileplan.roman(n) for n in (4, 9, 14, 40)] == ["IV", "IX", "XIV", "XL"]


@pytest.mark.parametrize("text, why", [
    ("II. Tài chính | TC\n", "đánh số I"),
    ("I. Văn phòng | VP\nIII. Tư pháp | TP\n", "đánh số II"),
    ("1. Văn thư\n", "dưới một đề mục lớn"),
    ("I. Văn phòng | VP\n2. Văn thư\n", "đánh số 1"),
    ("I. Văn phòng | VP\nII. Tư pháp | VP\n", "trùng"),
    ("I. Văn phòng | vp-1\n", "không hợp lệ"),
    ("I. Văn phòng\nII. văn phòng\n", "trùng tên"),
    ("Văn phòng\n", "không đúng mẫu"),
    ("", "ít nhất một"),
])
def test_malformed_structures_are_refused(text: str, why: str) -> None:
    with pytest.raises(ValidationError, match=why) as e:
        fileplan.normalise(fileplan.parse_text(text))
    assert e.value.field == "headings"


def test_hoso_choose_their_heading_from_the_structure(store: Store) -> None:
    """Without a structure no heading can be given; with one, only its headings (by label or
    code); a typed variant is refused; the hồ sơ number ends with the heading's abbreviation."""
    base = {"FileCatalog": 2025, "Title": "Hồ sơ", "Maintenance": "05"}
    with pytest.raises(ValidationError, match="chưa có khung đề mục") as e0:
        store.open_file({**base, "FileNotation": "01.VP", "Heading": "I. Văn phòng"})
    assert e0.value.field == "Heading"
    _plan(store)
    a = store.open_file({**base, "FileNotation": "01.VP",
                         "Heading": "I. Công tác tổng hợp, văn phòng"})
    assert a.data["Heading"] == "I. Công tác tổng hợp, văn phòng"
    b = store.open_file({**base, "FileNotation": "02.VP", "Heading": "I.1"})
    assert b.data["Heading"] == "I.1. Văn thư, lưu trữ"
    for typed in ("I. Văn phòng", "I. Công tác tổng hợp, Văn phòng", "I Công tác tổng hợp, "
                  "văn phòng", "IV. Khác"):
        with pytest.raises(ValidationError, match="không có trong khung") as e1:
            store.open_file({**base, "FileNotation": "03.VP", "Heading": typed})
        assert e1.value.field == "Heading"
    with pytest.raises(ValidationError, match="chữ viết tắt VP") as e2:
        store.open_file({**base, "FileNotation": "03.TC", "Heading": "I.2"})
    assert e2.value.field == "FileNotation"
    assert store.open_file({**base, "FileNotation": "04.VP"}).data.get("Heading") is None
    # Another year has its own structure (none here).
    with pytest.raises(ValidationError, match="2026"):
        store.open_file({**base, "FileCatalog": 2026, "FileNotation": "01.VP",
                         "Heading": "I.1"})


def test_versions_and_headings_in_use(store: Store) -> None:
    first = _plan(store)
    assert first.version == 1
    store.open_file({"FileCatalog": 2025, "FileNotation": "01.TC", "Title": "Ngân sách",
                     "Maintenance": "01", "Heading": "II"})
    second = fileplan.set_headings(store, 2025, [
        *fileplan.parse_text(TEXT), {"title": "Văn hóa - xã hội", "abbr": "VHXH"}])
    assert second.version == 2 and second.headings[-1].label == "IV. Văn hóa - xã hội"
    assert fileplan.structure(store.reader(), 2025, 1) == first
    renamed = TEXT.replace("II. Tài chính - ngân sách", "II. Tài chính")
    with pytest.raises(ConflictError, match=re.escape("II. Tài chính - ngân sách")):
        fileplan.set_headings(store, 2025, fileplan.parse_text(renamed))
    assert fileplan.structure(store.reader(), 2025).version == 2  # type: ignore[union-attr]


def test_imported_registers_keep_their_headings(store: Store, tmp_path: object) -> None:
    """A legacy register's hồ sơ bring the heading they were written with; the Danh mục shows
    them after the structure's own."""
    from importlib import resources
    from pathlib import Path

    sample = Path(str(resources.files("appliance").joinpath("data/sample/registers.jsonl")))
    assert import_file(store, sample).ok
    _plan(store)
    files = fileplan.listing(store.reader(), 2025)
    rows = fileplan.arrange(files, fileplan.structure(store.reader(), 2025))
    levels = [(level, heading) for level, heading, _ in rows]
    assert levels[0] == (1, "I. Công tác tổng hợp, văn phòng")
    assert (0, "III. Đất đai, nông nghiệp và môi trường") in levels
    assert sum(len(r[2]) for r in rows) == len(files)


def test_order_follows_the_structure_not_the_alphabet(store: Store) -> None:
    """Ten main headings: IX comes after VIII, not before V as text sorts it."""
    heads = [{"title": f"Lĩnh vực {n}", "abbr": f"L{n}"} for n in range(1, 11)]
    st = fileplan.set_headings(store, 2025, heads)
    for n in (10, 9, 5, 1):
        store.open_file({"FileCatalog": 2025, "FileNotation": f"01.L{n}", "Title": f"Hồ sơ {n}",
                         "Maintenance": "05", "Heading": fileplan.roman(n)})
    rows = fileplan.arrange(fileplan.listing(store.reader(), 2025), st)
    with_files = [h for _, h, mine in rows if mine]
    assert with_files == ["I. Lĩnh vực 1", "V. Lĩnh vực 5", "IX. Lĩnh vực 9", "X. Lĩnh vực 10"]


def test_approval_is_a_log_entry_and_notices_later_changes(store: Store) -> None:
    _plan(store)
    with pytest.raises(ConflictError, match="chưa có hồ sơ"):
        fileplan.approve(store, 2025, "QĐ 1/QĐ-UBND", "2025-01-05", LEADER)
    store.open_file({"FileCatalog": 2025, "FileNotation": "01.VP", "Title": "Tập lưu văn bản",
                     "Maintenance": "05", "Heading": "I.1"})
    store.open_file({"FileCatalog": 2025, "FileNotation": "01.TP", "Title": "Hộ tịch",
                     "Maintenance": "01", "Heading": "III"})
    with pytest.raises(ValidationError) as e:
        fileplan.approve(store, 2025, " ", "2025-01-05", LEADER)
    assert e.value.field == "decision"
    with pytest.raises(ValidationError):
        fileplan.approve(store, 2025, "QĐ 1", "2025-09-16", LEADER)
    size = store.tree_head()[0]
    ap = fileplan.approve(store, 2025, "Quyết định số 01/QĐ-UBND ngày 05/01/2025",
                          "05/01/2025", LEADER, "lanhdao")
    assert (ap.files, ap.permanent, ap.headings_version) == (2, 1, 1)
    assert ap.approver == LEADER and ap.log_index == size
    conn = store.reader()
    assert fileplan.digest(fileplan.listing(conn, 2025)) == ap.digest
    store.open_file({"FileCatalog": 2025, "FileNotation": "02.TP", "Title": "Chứng thực",
                     "Maintenance": "04", "Heading": "III"})
    assert fileplan.digest(fileplan.listing(conn, 2025)) != ap.digest
    assert fileplan.approval(conn, 2025) == ap and fileplan.approval(conn, 2024) is None


def test_printed_danh_muc(store: Store) -> None:
    """pdftotext finds the title, headings in order (main ones in capitals), the hồ sơ with
    their retention in words, the totals and the approval."""
    _plan(store)
    for notation, title, keep, heading in (("01.VP", "Tập lưu văn bản đi", "05", "I.1"),
                                           ("01.TP", "Sổ hộ tịch", "01", "III")):
        store.open_file({"FileCatalog": 2025, "FileNotation": notation, "Title": title,
                         "Maintenance": keep, "Heading": heading, "Creator": "Lê Thị Hoa"})
    conn = store.reader()
    st = fileplan.structure(conn, 2025)
    labels = {i.code: i.label for i in store.codes["maintenance"].items}
    files = fileplan.listing(conn, 2025)
    when = dt.datetime(2025, 9, 15, 10, 0, tzinfo=TZ)
    unapproved = pdf_text(fileplan_print.render_pdf(ORG_NAME, 2025, files, st, None, False,
                                                    labels, when, "vanthu"))
    assert "chưa được phê duyệt" in unapproved
    ap = fileplan.approve(store, 2025, "Quyết định số 01/QĐ-UBND ngày 05/01/2025",
                          "2025-01-05", LEADER)
    text = re.sub(r"\s+", " ", pdf_text(fileplan_print.render_pdf(
        ORG_NAME, 2025, files, st, ap, False, labels, when, "vanthu")))
    assert f"DANH MỤC HỒ SƠ CỦA {ORG_NAME.upper()} NĂM 2025" in text
    assert "(Ban hành kèm theo Quyết định số 01/QĐ-UBND ngày 05/01/2025)" in text
    order = [text.index(s) for s in ("I. CÔNG TÁC TỔNG HỢP, VĂN PHÒNG", "1. Văn thư, lưu trữ",
                                     "01.VP", "II. TÀI CHÍNH - NGÂN SÁCH",
                                     "III. TƯ PHÁP - HỘ TỊCH", "01.TP")]
    assert order == sorted(order)
    assert "Vĩnh viễn" in text and "Lê Thị Hoa" in text
    assert ("Bản Danh mục hồ sơ này có 2 hồ sơ, bao gồm: 1 hồ sơ bảo quản vĩnh viễn; 1 hồ sơ "
            "bảo quản có thời hạn.") in text
    assert "Đã được phê duyệt ngày 05/01/2025" in text
    assert "Người phê duyệt: Chủ tịch UBND xã, Trần Văn Hùng" in text
    changed = pdf_text(fileplan_print.render_pdf(ORG_NAME, 2025, files, st, ap, True, labels,
                                                 when, "vanthu"))
    assert "cần phê duyệt lại" in changed
    assert ORG_ID  # the agency printed is the one the box belongs to


@pytest.mark.parametrize("heads", [
    [{"title": ["Văn", "phòng"]}],
    [{"title": "Văn phòng", "abbr": 7}],
    [{"title": "Văn phòng", "children": [{"title": None}]}],
    [{"title": "Văn phòng", "children": [{"code": 1, "title": "Văn thư"}]}],
    [{"title": "Văn phòng", "children": [{"code": None, "title": "Văn thư"}]}],
    [{"title": "Văn phòng", "abbr": None}],
    [{"title": "Văn phòng", "children": {}}],
    [["Văn phòng"]],
])
def test_structures_that_are_not_text_are_refused(heads: list[object]) -> None:
    """What schemathesis sent: a title that is a list is not the text "['Văn', 'phòng']"."""
    with pytest.raises(ValidationError) as e:
        fileplan.normalise(heads)  # type: ignore[arg-type]
    assert e.value.field == "headings"
