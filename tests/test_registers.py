"""The five registers of Decree 30 Phụ lục IV: exact columns and cover, rows from the
documents, their handling, postal sendings and uses of kept copies; any period of a year; the
PDF read back by pdftotext and the XLSX by openpyxl."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import pytest

from appliance import copyuse, handling, postal
from appliance import registers as regs
from appliance.clock import TZ, ManualClock
from appliance.errors import ConflictError, ValidationError
from appliance.store import Store
from tests.conftest import ORG_ID, ORG_NAME, incoming, outgoing
from tests.registers_helpers import (
    cancel,
    pdf_table,
    pdf_text,
    xlsx_cells,
    xlsx_sheets,
)

# Phụ lục IV, as regulations.md §2.3 lists them: the registers' columns, in order.
PHU_LUC_IV = {
    "incoming": ["Ngày đến", "Số đến", "Tác giả", "Số, ký hiệu văn bản", "Ngày tháng văn bản",
                 "Tên loại và trích yếu nội dung văn bản", "Đơn vị hoặc người nhận",
                 "Ngày chuyển", "Ký nhận", "Ghi chú"],
    "outgoing": ["Số, ký hiệu văn bản", "Ngày tháng văn bản",
                 "Tên loại và trích yếu nội dung văn bản", "Người ký", "Nơi nhận văn bản",
                 "Đơn vị, người nhận bản lưu", "Số lượng bản", "Ngày chuyển", "Ký nhận",
                 "Ghi chú"],
    "post": ["Ngày chuyển", "Số, ký hiệu văn bản", "Nơi nhận văn bản", "Số lượng bì",
             "Ký nhận và dấu bưu điện", "Ghi chú"],
    "copies": ["Ngày tháng", "Họ tên người sử dụng", "Số, ký hiệu ngày tháng văn bản",
               "Tên loại và trích yếu nội dung văn bản", "Số và ký hiệu HS", "Ký nhận",
               "Ngày trả", "Người cho phép sử dụng", "Ghi chú"],
    "handling": ["Số đến",
                 "Tên loại, số, ký hiệu, ngày, tháng và tên cơ quan, tổ chức ban hành văn bản",
                 "Đơn vị hoặc người nhận", "Thời hạn giải quyết", "Tiến độ giải quyết",
                 "Số, ký hiệu văn bản trả lời", "Ghi chú"],
}
TITLES = {"incoming": "SỔ ĐĂNG KÝ VĂN BẢN ĐẾN", "outgoing": "SỔ ĐĂNG KÝ VĂN BẢN ĐI",
          "handling": "SỔ THEO DÕI GIẢI QUYẾT VĂN BẢN ĐẾN",
          "post": "SỔ GỬI VĂN BẢN ĐI BƯU ĐIỆN", "copies": "SỔ SỬ DỤNG BẢN LƯU"}
TODAY = dt.date(2025, 9, 15)


def _at(clock: ManualClock, day: str) -> None:
    clock.set(dt.datetime.fromisoformat(day + "T09:00").replace(tzinfo=TZ))


@dataclass
class Year:
    a: str  # số đến 1, 10/01: answered (done) by outgoing e
    b: str  # số đến 2, 20/02: in progress, deadline 01/03 (overdue)
    c: str  # số đến 3, 05/04: awaiting direction
    secret: str  # số đến 4, 06/04, mật
    e: str  # 01/QĐ-UBND, 07/04: sent by post, its kept copy lent and returned
    f: str  # 02/QĐ-UBND, 08/04: cancelled
    use: str


def build_year(store: Store, clock: ManualClock) -> Year:
    from appliance.accounts import Accounts, HashParams, ensure_schema

    ensure_schema(store)
    acc = Accounts(store, b"k" * 32, HashParams(opslimit=1, memlimit=8192))
    acc.add_user("chuyenvien", "clerk", "mật khẩu đủ dài 2025!", "admin", "Lê Thị Hoa")
    acc.add_user("phoihop", "clerk", "mật khẩu đủ dài 2025!", "admin", "Phạm Văn Nam")
    _at(clock, "2025-01-10")
    a = store.register_incoming(incoming(CodeNumber="12", CodeNotation="STC-NS",
                                         IssuedDate="2025-01-06", OrganName="Sở Tài chính",
                                         Subject="V/v quyết toán ngân sách xã năm 2024")).record
    _at(clock, "2025-02-20")
    b = store.register_incoming(incoming(CodeNumber="45", IssuedDate="2025-02-18",
                                         Subject="V/v báo cáo tình hình dân cư",
                                         ToPlaces="Công chức Văn phòng - Thống kê")).record
    _at(clock, "2025-04-05")
    c = store.register_incoming(incoming(CodeNumber="7", IssuedDate="2025-04-01",
                                         Subject="V/v lịch tiếp công dân quý II")).record
    _at(clock, "2025-04-06")
    secret = store.register_incoming(incoming(CodeNumber="8", Mode="03", IssuedDate="2025-04-02",
                                              Subject="V/v phương án phòng thủ mật")).record
    _at(clock, "2025-04-07")
    e = store.issue_outgoing(store.draft_outgoing(outgoing(
        Subject="Về việc quyết toán ngân sách xã năm 2024", IssuedAmount=5,
        To=[{"OrganName": "Sở Tài chính", "OrganId": "000.00.10.H49"},
            {"OrganName": "Kho bạc Nhà nước khu vực"}])).record.id).record
    _at(clock, "2025-04-08")
    f = store.issue_outgoing(store.draft_outgoing(outgoing(
        Subject="Về việc thành lập tổ công tác (ban hành nhầm)")).record.id).record
    cancel(store, f.id)
    _at(clock, "2025-04-09")
    postal.send(store, e.id, {"sent_on": "2025-04-09", "envelopes": 2, "addressees": [
        {"OrganName": "Sở Tài chính", "OrganId": "000.00.10.H49"}, "Kho bạc Nhà nước khu vực"],
        "note": "Gửi bảo đảm"}, "vanthu")
    _at(clock, "2025-05-05")
    use = copyuse.lend(store, e.id, {"used_on": "03/05/2025", "user_name": "Nguyễn Văn Bình",
                                     "approved_by": "Trần Văn Hùng, Chủ tịch UBND",
                                     "note": "Thanh tra tài chính"}, "vanthu")
    copyuse.give_back(store, e.id, use.id, {"returned_on": "2025-05-05"}, "vanthu")
    # The leader's directions and the handlers' reports, through the live library.
    _at(clock, "2025-01-10")
    handling.direct(store, a.id, "Giao Văn phòng tham mưu trả lời", "chuyenvien", (),
                    "2025-04-30", "lanhdao")
    _at(clock, "2025-04-07")
    handling.report_progress(store, a.id, "Đã trả lời", "chuyenvien", done=True, answer=e.id)
    _at(clock, "2025-02-20")
    handling.direct(store, b.id, "Tổng hợp báo cáo", "chuyenvien", ["phoihop"], "2025-03-01",
                    "lanhdao")
    _at(clock, "2025-02-25")
    handling.report_progress(store, b.id, "Đang lấy số liệu các thôn", "chuyenvien")
    _at(clock, "2025-09-15")
    return Year(a.id, b.id, c.id, secret.id, e.id, f.id, use.id)


@pytest.fixture
def year(store: Store, clock: ManualClock) -> Year:
    return build_year(store, clock)


def _rows(store: Store, kind: str, period: regs.Period | None = None,
          classified: bool = False) -> list[tuple[str, list[str]]]:
    p = period or regs.Period.of(2025)
    return [(i, regs.display(kind, c)) for i, c in regs.rows(
        store.reader(), ORG_ID, kind, p, classified, TODAY)]


def test_each_register_has_exactly_the_columns_and_title_of_phu_luc_iv() -> None:
    """Names, order and count (đến 10, đi 10, bưu điện 6, bản lưu 9, giải quyết 7)."""
    assert set(regs.KINDS) == set(PHU_LUC_IV)
    for kind, columns in PHU_LUC_IV.items():
        assert list(regs.LAYOUTS[kind].columns) == columns, kind
        assert regs.LAYOUTS[kind].title == TITLES[kind]
        lay = regs.LAYOUTS[kind]
        assert len(lay.pdf_mm) == len(lay.xlsx_chars) == len(columns)
        assert sum(lay.pdf_mm) == 273, kind  # A4 landscape between 12 mm margins


def test_incoming_register_rows_and_a_quarter(store: Store, year: Year) -> None:
    """The whole year holds the three public documents in số đến order (not the mật one);
    quý I holds the first two, and its cover gives the quarter and its numbers."""
    rows = _rows(store, "incoming")
    assert [r[0] for r in rows] == [year.a, year.b, year.c]
    assert rows[0][1] == ["10/01/2025", "1", "Sở Tài chính", "12/STC-NS", "06/01/2025",
                          "Công văn V/v quyết toán ngân sách xã năm 2024", "Lê Thị Hoa (chủ trì)",
                          "", "", ""]
    q1 = regs.quarter(2025, 1)
    assert [r[0] for r in _rows(store, "incoming", q1)] == [year.a, year.b]
    info = regs.register_info(store.reader(), ORG_ID, ORG_NAME, "incoming", q1)
    assert dict(info.cover_lines()) == {
        "Cơ quan": ORG_NAME.upper(), "Sổ": TITLES["incoming"], "Năm": "2025",
        "Từ ngày": "01/01/2025", "đến ngày": "31/03/2025", "Từ số": "1", "đến số": "2",
        "Quyển số": "01"}
    whole = regs.register_info(store.reader(), ORG_ID, ORG_NAME, "incoming",
                               regs.Period.of(2025))
    assert (whole.total, whole.from_date, whole.to_date) == (3, "2025-01-10", "2025-04-05")
    secret = _rows(store, "incoming", classified=True)
    assert [r[0] for r in secret] == [year.secret]


def test_a_month_a_range_and_bad_ranges() -> None:
    """Any from–to inside the year; outside it, or backwards, is refused naming the field."""
    p = regs.Period.of(2025, "01/04/2025", "2025-04-30")
    assert (p.start, p.end, p.whole_year) == (dt.date(2025, 4, 1), dt.date(2025, 4, 30), False)
    assert p.query() == "from=2025-04-01&to=2025-04-30"
    assert regs.Period.of(2025, "2025-01-01", "2025-12-31").whole_year
    assert regs.quarter(2024, 1).end == dt.date(2024, 3, 31)
    assert regs.quarter(2025, 4).end == dt.date(2025, 12, 31)
    with pytest.raises(ValidationError, match="không thuộc năm 2025") as e1:
        regs.Period.of(2025, "2024-12-31", None)
    assert e1.value.field == "from"
    with pytest.raises(ValidationError, match="sau đến ngày") as e2:
        regs.Period.of(2025, "2025-05-01", "2025-04-01")
    assert e2.value.field == "from"
    with pytest.raises(ValidationError):
        regs.Period.of(2025, "31/02/2025", None)


def test_outgoing_register_keeps_a_cancelled_number_marked_huy(store: Store, year: Year) -> None:
    rows = _rows(store, "outgoing")
    assert [r[0] for r in rows] == [year.e, year.f]
    e, f = rows[0][1], rows[1][1]
    assert e[:3] == ["01/QĐ-UBND", "07/04/2025",
                     "Quyết định Về việc quyết toán ngân sách xã năm 2024"]
    assert e[3:7] == ["Chủ tịch, Trần Văn Hùng", "Sở Tài chính; Kho bạc Nhà nước khu vực",
                      "", "5"]
    assert f[0] == "02/QĐ-UBND" and f[9] == "Huỷ ngày 08/04/2025: Ban hành nhầm"
    info = regs.register_info(store.reader(), ORG_ID, ORG_NAME, "outgoing",
                              regs.Period.of(2025))
    assert (info.first_number, info.last_number, info.total) == ("01", "02", 2)
    # A cancelled registration keeps its số đến in both registers of văn bản đến, marked.
    store.cancel_document(year.c, "Đăng ký trùng với số đến 1", "vanthu")
    for kind, note_at in (("incoming", 9), ("handling", 6)):
        rows = dict(_rows(store, kind))
        assert list(rows) == [year.a, year.b, year.c]
        assert rows[year.c][note_at] == "Huỷ ngày 15/09/2025: Đăng ký trùng với số đến 1"
        assert rows[year.a][note_at] == ""
    with pytest.raises(ConflictError):
        postal.send(store, year.f, {"sent_on": "2025-09-15", "addressees": ["X"]})


def test_handling_register_follows_each_document_to_its_answer(
    store: Store, year: Year,
) -> None:
    """Who handles it (full names), the deadline, where it stands (done, in progress and
    overdue, awaiting direction) and the văn bản đi that answered it."""
    rows = dict(_rows(store, "handling"))
    assert list(rows) == [year.a, year.b, year.c]
    assert rows[year.a] == [
        "1", "Công văn số 12/STC-NS ngày 06/01/2025 của Sở Tài chính", "Lê Thị Hoa",
        "30/04/2025", "Đã giải quyết ngày 07/04/2025", "01/QĐ-UBND ngày 07/04/2025", ""]
    assert rows[year.b][2] == "Lê Thị Hoa; phối hợp: Phạm Văn Nam"
    assert rows[year.b][3] == "01/03/2025"
    assert rows[year.b][4] == ("Đang giải quyết (25/02/2025: Đang lấy số liệu các thôn) "
                               "— quá hạn 198 ngày")
    assert rows[year.c][2:6] == ["", "", "Chờ ý kiến chỉ đạo", ""]
    # A quarter of the follow-up register: quý II holds only the third.
    assert list(dict(_rows(store, "handling", regs.quarter(2025, 2)))) == [year.c]


def test_post_and_copies_registers(store: Store, year: Year) -> None:
    (doc, post), = _rows(store, "post")
    assert doc == year.e
    assert post == ["09/04/2025", "01/QĐ-UBND",
                    "Sở Tài chính (000.00.10.H49); Kho bạc Nhà nước khu vực", "2", "",
                    "Gửi bảo đảm"]
    (doc, use), = _rows(store, "copies")
    assert doc == year.e
    assert use == ["03/05/2025", "Nguyễn Văn Bình", "01/QĐ-UBND, 07/04/2025",
                   "Quyết định Về việc quyết toán ngân sách xã năm 2024", "", "", "05/05/2025",
                   "Trần Văn Hùng, Chủ tịch UBND", "Thanh tra tài chính"]
    # They are dated registers: a month without sendings is empty, the month with one not.
    assert _rows(store, "post", regs.Period.of(2025, "2025-05-01", "2025-05-31")) == []
    assert len(_rows(store, "post", regs.Period.of(2025, "2025-04-01", "2025-04-30"))) == 1
    assert _rows(store, "copies", regs.Period.of(2024)) == []
    info = regs.register_info(store.reader(), ORG_ID, ORG_NAME, "post", regs.Period.of(2025))
    assert info.total == 1 and "Từ số" not in dict(info.cover_lines())


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text)


@pytest.mark.parametrize("kind", list(PHU_LUC_IV))
def test_pdf_read_back_has_cover_columns_and_rows(store: Store, year: Year, kind: str) -> None:
    """pdftotext finds the cover (title, the quarter's days) and every column's header."""
    period = regs.quarter(2025, 2) if kind != "incoming" else regs.quarter(2025, 1)
    conn = store.reader()
    info = regs.register_info(conn, ORG_ID, ORG_NAME, kind, period)
    rows = regs.rows(conn, ORG_ID, kind, period, False, TODAY)
    body = regs.render_pdf(info, rows, dt.datetime(2025, 9, 15, 14, 5, tzinfo=TZ), "vanthu")
    flat = _squash(pdf_text(body))
    first = flat.split("Trang 1")[0]
    assert TITLES[kind] in first and ORG_NAME.upper() in first
    start, end = period.start.strftime("%d/%m/%Y"), period.end.strftime("%d/%m/%Y")
    assert f"Từ ngày {start} đến ngày {end}" in first and "Quyển số: 01" in first
    assert ("Từ số" in first) == (kind in ("incoming", "outgoing", "handling"))
    table = flat.split("Trang 1", 1)[1]
    header, columns = pdf_table(body, regs.LAYOUTS[kind].pdf_mm)
    assert header == PHU_LUC_IV[kind]
    assert " ".join(f"({i})" for i in range(1, len(PHU_LUC_IV[kind]) + 1)) in table
    assert "In lúc 14:05 ngày 15/09/2025 bởi vanthu" in flat
    assert "2025-09-15T" not in flat  # no ISO time on paper
    # Every cell's text is in its own column, in row order, and nothing else is (compared
    # without spaces: a word too long for its column is broken across lines).
    assert rows
    for i, words in enumerate(columns):
        expected = "".join("".join(regs.display(kind, r)[i].split()) for _, r in rows)
        assert "".join(words) == expected, (kind, PHU_LUC_IV[kind][i])


@pytest.mark.parametrize("kind", list(PHU_LUC_IV))
def test_xlsx_has_real_dates_numbers_and_no_formulas(
    store: Store, year: Year, kind: str,
) -> None:
    conn = store.reader()
    period = regs.Period.of(2025)
    info = regs.register_info(conn, ORG_ID, ORG_NAME, kind, period)
    rows = regs.rows(conn, ORG_ID, kind, period, False, TODAY)
    body = regs.render_xlsx(info, rows)
    sheets = xlsx_sheets(body)
    assert list(sheets) == ["Bìa", "Sổ"]
    assert sheets["Sổ"][0] == PHU_LUC_IV[kind]
    assert sheets["Sổ"][1] == [f"({i})" for i in range(1, len(PHU_LUC_IV[kind]) + 1)]
    assert len(sheets["Sổ"]) == 2 + len(rows) and rows
    cover = dict((r[0], r[1]) for r in sheets["Bìa"])
    assert cover["Sổ"] == TITLES[kind] and cover["Năm"] == "2025"
    cells = xlsx_cells(body, "Sổ")
    lay = regs.LAYOUTS[kind]
    for row in cells[2:]:
        for i, cell in enumerate(row):
            assert cell.data_type != "f"
            if i in lay.dates and cell.value is not None:
                assert isinstance(cell.value, dt.datetime), (kind, i, cell.value)
                assert cell.number_format == "DD/MM/YYYY"
            if i in lay.numbers and cell.value is not None:
                assert isinstance(cell.value, int)
    shown = [[regs.display(kind, c)[i] for i in sorted(lay.dates)] for _, c in rows]
    read = [[cells[2 + n][i].value.strftime("%d/%m/%Y") if cells[2 + n][i].value else ""
             for i in sorted(lay.dates)] for n in range(len(rows))]
    assert read == shown


def test_sendings_and_uses_are_checked(store: Store, year: Year, clock: ManualClock) -> None:
    """Only issued văn bản đi; dates not in the future nor before issue; a copy back once."""
    with pytest.raises(ConflictError, match="đã ban hành"):
        postal.send(store, year.a, {"sent_on": "2025-09-01", "addressees": ["X"]})
    with pytest.raises(ConflictError, match="đã ban hành"):
        postal.send(store, year.f, {"sent_on": "2025-09-01", "addressees": ["X"]})
    with pytest.raises(ValidationError, match="sau ngày hôm nay") as e1:
        postal.send(store, year.e, {"sent_on": "2025-09-16", "addressees": ["X"]})
    assert e1.value.field == "sent_on"
    with pytest.raises(ValidationError, match="trước ngày ban hành"):
        postal.send(store, year.e, {"sent_on": "2025-04-01", "addressees": ["X"]})
    with pytest.raises(ValidationError, match="nơi nhận") as e2:
        postal.send(store, year.e, {"sent_on": "2025-09-01", "addressees": "  \n "})
    assert e2.value.field == "addressees"
    with pytest.raises(ValidationError) as e3:
        postal.send(store, year.e, {"sent_on": "2025-09-01", "addressees": ["X"],
                                    "envelopes": 0})
    assert e3.value.field == "envelopes"
    one = postal.send(store, year.e, {"sent_on": "15/09/2025", "addressees": "A\nB\nC"})
    assert one.envelopes == 3 and [a["OrganName"] for a in one.addressees] == ["A", "B", "C"]
    with pytest.raises(ValidationError) as e4:
        copyuse.lend(store, year.e, {"used_on": "2025-09-01", "user_name": "A"})
    assert e4.value.field == "approved_by"
    with pytest.raises(ConflictError, match="đã được trả"):
        copyuse.give_back(store, year.e, year.use, {"returned_on": "2025-09-15"})
    u = copyuse.lend(store, year.e, {"used_on": "2025-09-10", "user_name": "B",
                                     "approved_by": "C"})
    with pytest.raises(ValidationError, match="trước ngày sử dụng"):
        copyuse.give_back(store, year.e, u.id, {"returned_on": "2025-09-09"})
    assert copyuse.uses_of(store.reader(), year.e)[-1].returned_on is None


def test_a_numberless_petition_is_shown_as_its_page_shows_it(store: Store, year: Year) -> None:
    """A received đơn without số, ký hiệu: 'Không số' in the Sổ đăng ký văn bản đến, and 'Đơn
    không số … của …' in the Sổ theo dõi giải quyết, as the document's page says."""
    doc = store.register_incoming(incoming(
        TypeName="Đơn", CodeNumber=None, CodeNotation=None, IssuedDate="2025-09-12",
        OrganName="Nguyễn Văn An", Subject="Đề nghị cấp lại giấy chứng nhận")).record
    rows = dict(_rows(store, "incoming"))
    assert rows[doc.id][2:5] == ["Nguyễn Văn An", "Không số", "12/09/2025"]
    assert dict(_rows(store, "handling"))[doc.id][1] == (
        "Đơn không số ngày 12/09/2025 của Nguyễn Văn An")
    # On paper and in the spreadsheet too (quý III holds it alone).
    conn = store.reader()
    q3 = regs.quarter(2025, 3)
    info = regs.register_info(conn, ORG_ID, ORG_NAME, "incoming", q3)
    printed = regs.rows(conn, ORG_ID, "incoming", q3, False, TODAY)
    assert [i for i, _ in printed] == [doc.id]
    _, columns = pdf_table(regs.render_pdf(info, printed, dt.datetime(2025, 9, 15, 14, 5,
                                                                      tzinfo=TZ), "vanthu"),
                           regs.LAYOUTS["incoming"].pdf_mm)
    assert columns[3] == ["Không", "số"]
    sheet = xlsx_cells(regs.render_xlsx(info, printed), "Sổ")
    assert sheet[2][3].value == "Không số"
