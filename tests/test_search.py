"""Vietnamese search: diacritics, đ/Đ and case fold; filters narrow the hits."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.search import Filters, match_expression, search
from appliance.store import Store
from appliance.text import fold

from .conftest import incoming, outgoing


@pytest.fixture
def filled(store: Store) -> Store:
    store.register_incoming(
        incoming(
            TypeName="Quyết định",
            CodeNumber="15",
            CodeNotation="QĐ-UBND",
            Subject="Quyết định giao đất cho hộ ông Đỗ Văn Đức",
        )
    )
    store.register_incoming(incoming(Subject="V/v đăng ký kết hôn và cấp bản sao trích lục"))
    store.register_incoming(
        incoming(Subject="Về việc phòng chống bão số 3", IssuedDate="2024-07-01")
    )
    d = store.draft_outgoing(outgoing(Subject="Về việc thành lập Đoàn kiểm tra đất đai")).record
    store.issue_outgoing(d.id)
    return store


@pytest.mark.parametrize(
    "query",
    [
        "quyet dinh giao dat",
        "QUYẾT ĐỊNH GIAO ĐẤT",
        "Quyết định giao đất",
        "do van duc",
        "Đỗ Văn Đức",
        "đuc",
    ],
)
def test_folded_queries_find_the_same(filled: Store, query: str) -> None:
    """With or without diacritics, in any case, and d for đ: the same document is found."""
    hits = search(filled.reader(), query)
    assert [h.data["CodeNumber"] for h in hits] == ["15"], query


def test_prefix_and_number_queries(filled: Store) -> None:
    """The last word is a prefix; a số/ký hiệu finds its document."""
    assert len(search(filled.reader(), "dang k")) == 1
    assert [h.data["Subject"][:6] for h in search(filled.reader(), "15/QĐ-UBND")] == ["Quyết "]
    assert search(filled.reader(), "01/QD-UBND")[0].data["Direction"] == "outgoing"


def test_filters(filled: Store) -> None:
    """Direction, year and type filters narrow the hits."""
    r = filled.reader()
    assert len(search(r, "dat", Filters(direction="outgoing"))) == 1
    assert len(search(r, "", Filters(year=2025, direction="incoming"))) == 3
    assert len(search(r, "bao", Filters(type_name="Công văn"))) == 1
    assert search(r, "", Filters(type_name="02"))[0].data["CodeNumber"] in ("15", "01")


def test_classified_hidden_when_asked(store: Store) -> None:
    """Mật documents can be left out of search results for users without clearance."""
    store.register_incoming(incoming(Subject="Tài liệu mật về quốc phòng", Mode="03"))
    r = store.reader()
    assert len(search(r, "quoc phong")) == 1
    assert search(r, "quoc phong", Filters(include_classified=False)) == []


def test_fold_and_expression() -> None:
    """Folding maps old and new tone placement together; queries cannot inject FTS syntax."""
    assert fold("Uỷ ban") == fold("Ủy ban") == "uy ban"
    assert fold("ĐƠN ĐỀ NGHỊ") == "don de nghi"
    assert match_expression('a" OR *') == '"a" AND "or" *'
    assert match_expression("  ") is None


@given(
    st.text(
        alphabet=st.sampled_from(
            list(
                "aăâeêioôơuưyđAĂÂĐƠƯáàảãạắằẳẵặấầẩẫậéèẻẽẹếềểễệíìỉĩịóòỏõọốồổỗộớờởỡợúùủũụứừửữựýỳỷỹỵ ỦỶ"
            )
        )
    )
)
def test_fast_fold_equals_reference(text: str) -> None:
    """The table-driven fold equals the NFD-strip reference on any Vietnamese text, NFC or NFD."""
    import unicodedata

    from appliance.text import _fold_slow

    for form in ("NFC", "NFD"):
        s = unicodedata.normalize(form, text)
        assert fold(s) == unicodedata.normalize("NFC", _fold_slow(s)).lower()


def test_ocr_text_joins_metadata_in_one_match(store: Store) -> None:
    """Words split between the metadata and the OCR text still find the document, and a
    later edit of the metadata keeps the OCR text searchable."""
    from appliance.capture.filing import add_text

    doc = store.register_incoming(incoming(Subject="Về việc tu sửa đường thôn")).record
    add_text(store, doc.id, "cd" * 32, "Kinh phí dự kiến 250 triệu đồng từ ngân sách xã", "ocr")
    conn = store.reader()
    assert [h.id for h in search(conn, "tu sua kinh phi")] == [doc.id]
    store.update_document(doc.id, {"Description": "bổ sung"})
    assert [h.id for h in search(conn, "ngan sach xa")] == [doc.id]
    assert [h.id for h in search(conn, "bo sung du kien")] == [doc.id]


def test_old_search_index_is_rebuilt_on_open(
    data_dir: Path, open_store: Callable[..., Store]
) -> None:
    """A folder made before OCR text joined the index gets the new index on open."""
    import sqlite3

    s = open_store()
    doc = s.register_incoming(incoming(Subject="Kế hoạch phòng chống lụt bão")).record
    s.close()
    conn = sqlite3.connect(data_dir / "luutru.db", isolation_level=None)
    conn.execute("DROP TABLE document_fts")
    conn.execute(
        "CREATE VIRTUAL TABLE document_fts USING fts5(body, "
        "tokenize = 'unicode61 remove_diacritics 2')"
    )
    conn.execute("CREATE VIRTUAL TABLE document_text_fts USING fts5(body)")
    conn.close()
    s = open_store()
    assert [h.id for h in search(s.reader(), "phong chong lut")] == [doc.id]
    s.close()
    from appliance.verify import verify_data_dir

    assert verify_data_dir(data_dir).ok


def test_index_with_short_prefixes_is_rebuilt_on_open(
    data_dir: Path, open_store: Callable[..., Store]
) -> None:
    """A folder whose index kept prefixes of 1-3 letters only gets 1-6 on open, every row
    copied (merged and pending), and answers as before, prefix queries included."""
    import sqlite3

    from appliance.search import FTS_PREFIX

    s = open_store()
    subjects = ["Kế hoạch phòng chống lụt bão", "Triển khai công tác cải cách hành chính",
                "Quyết định khen thưởng", "Công văn về hộ nghèo"]
    ids = [s.register_incoming(incoming(Subject=t)).record.id for t in subjects]
    queries = ["trien khai cong", "cong", "cong van", "phong chong lu", "khen thuon", "ke ho"]
    before = {q: [h.id for h in search(s.reader(), q)] for q in queries}
    s.close()
    conn = sqlite3.connect(data_dir / "luutru.db", isolation_level=None)
    rows = conn.execute("SELECT rowid, body, ocr FROM document_fts ORDER BY rowid").fetchall()
    rows += conn.execute("SELECT rid, body, ocr FROM search_pending ORDER BY rid").fetchall()
    conn.execute("DELETE FROM search_pending")
    conn.execute("DROP TABLE document_fts")
    conn.execute(
        "CREATE VIRTUAL TABLE document_fts USING fts5(body, ocr, "
        "tokenize = 'unicode61 remove_diacritics 2', prefix = '1 2 3')"
    )
    conn.executemany("INSERT INTO document_fts (rowid, body, ocr) VALUES (?, ?, ?)", rows[:2])
    conn.executemany("INSERT INTO search_pending (rid, body, ocr) VALUES (?, ?, ?)", rows[2:])
    conn.close()
    s = open_store()
    ddl = s.reader().execute(
        "SELECT sql FROM sqlite_master WHERE name = 'document_fts'"
    ).fetchone()[0]
    assert f"prefix = '{FTS_PREFIX}'" in ddl
    assert _index_halves(s) == (2, 2)  # the pending half is left as it was
    r = s.reader()
    assert {q: [h.id for h in search(r, q)] for q in queries} == before
    assert before["trien khai cong"] == [ids[1]] and before["khen thuon"] == [ids[2]]
    assert ids[3] in before["cong van"] and before["phong chong lu"] == [ids[0]]
    s.close()
    from appliance.verify import verify_data_dir

    assert verify_data_dir(data_dir).ok


def _index_halves(store: Store) -> tuple[int, int]:
    conn = store.reader()
    merged = conn.execute("SELECT count(*) FROM document_fts").fetchone()[0]
    pending = conn.execute("SELECT count(*) FROM search_pending").fetchone()[0]
    return int(merged), int(pending)


QUERIES_AND_FILTERS = [
    ("", Filters()),
    ("dat", Filters()),
    ("dang ky", Filters()),
    ("V/v", Filters(direction="incoming")),
    ("phong chong", Filters(year=2024)),
    ("phong chong", Filters(year=2025)),
    ("ve viec", Filters(type_name="Quyết định")),
    ("ve viec", Filters(fond="000.00.00.H41")),
    ("bao so", Filters(file_code="000.00.00.H41.2025.01.VP")),
    ("s", Filters()),
    ("u", Filters()),
    ("khong co dau", Filters()),
]


def _all_pages(store: Store, query: str, filters: Filters) -> list[list[str]]:
    conn = store.reader()
    return [
        [h.id for h in search(conn, query, filters, limit=4, offset=o)] for o in range(0, 40, 4)
    ]


def test_pending_and_merged_rows_answer_alike(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Search rows merge into the FTS5 index in batches; every query, filter and page gives
    the same hits whether a row is still pending, merged, or some of each."""
    import appliance.search

    monkeypatch.setattr(appliance.search, "MERGE_AT", 7)
    f = store.open_file(
        {"FileCatalog": 2025, "FileNotation": "01.VP", "Title": "Tập lưu", "Maintenance": "01"}
    )
    subjects = [
        "Về việc đăng ký đất đai năm {}",
        "V/v phòng chống bão số {}",
        "Quyết định giao đất đợt {}",
    ]
    ids = []
    for i in range(24):
        extra: dict[str, object] = {"FileCode": f.data["FileCode"]} if i % 5 == 0 else {}
        ids.append(
            store.register_incoming(
                incoming(
                    Subject=subjects[i % 3].format(i),
                    CodeNumber=str(300 + i),
                    TypeName="Quyết định" if i % 3 == 2 else "Công văn",
                    CodeNotation="QĐ-UBND" if i % 3 == 2 else "UBND-VP",
                    IssuedDate="2024-05-02" if i % 4 == 0 else "2025-05-02",
                    **extra,
                )
            ).record.id
        )
    merged, pending = _index_halves(store)
    assert merged == 21 and pending == 3  # three merges of 7; the newest three wait
    mixed = {(q, f): _all_pages(store, q, f) for q, f in QUERIES_AND_FILTERS}
    assert mixed[("dang ky", Filters())][0] == [ids[21], ids[18], ids[15], ids[12]]
    assert mixed[("phong chong", Filters(year=2025))][0] == [ids[22], ids[19], ids[16], ids[13]]
    assert mixed[("phong chong", Filters(year=2024))][0] == []  # registered in 2025
    assert sum(len(p) for p in mixed[("s", Filters())]) == 8  # "bão số": a one-letter prefix
    assert sum(len(p) for p in mixed[("u", Filters())]) == 24  # UBND, Ủy ban: all of them
    assert mixed[("khong co dau", Filters())][0] == []
    # Everything merged, then everything pending: the same answers.
    w = store.writer_or_fail()
    from appliance.search import merge_pending, rebuild_index

    w.call(lambda txn: merge_pending(txn.conn))
    assert _index_halves(store) == (24, 0)
    assert {(q, f): _all_pages(store, q, f) for q, f in QUERIES_AND_FILTERS} == mixed
    assert w.call(lambda txn: rebuild_index(txn.conn, chunk=5)) == 24  # in five statements
    assert _index_halves(store) == (24, 0)

    def all_pending(txn: object) -> None:
        conn = txn.conn  # type: ignore[attr-defined]
        conn.execute(
            "INSERT INTO search_pending (rid, body, ocr) SELECT rowid, body, ocr FROM document_fts"
        )
        conn.execute("DELETE FROM document_fts")

    w.call(all_pending)
    assert _index_halves(store) == (0, 24)
    assert {(q, f): _all_pages(store, q, f) for q, f in QUERIES_AND_FILTERS} == mixed


@pytest.mark.parametrize("merged", [False, True], ids=["pending", "merged"])
def test_edits_replace_the_search_row(store: Store, merged: bool) -> None:
    """An edited document is found by its new words only, once, wherever its row was."""
    from appliance.capture.filing import add_text
    from appliance.search import merge_pending
    from appliance.verify import verify_data_dir

    doc = store.register_incoming(incoming(Subject="Về việc sửa chữa trường mầm non")).record
    other = store.register_incoming(incoming(Subject="Về việc sửa chữa cầu treo")).record
    if merged:
        store.writer_or_fail().call(lambda txn: merge_pending(txn.conn))
    conn = store.reader()
    assert [h.id for h in search(conn, "sua chua")] == [other.id, doc.id]
    store.update_document(doc.id, {"Subject": "Về việc xây mới nhà văn hóa thôn"})
    assert [h.id for h in search(conn, "sua chua")] == [other.id]
    assert [h.id for h in search(conn, "nha van hoa")] == [doc.id]
    add_text(store, other.id, "ef" * 32, "Dự toán kinh phí sửa chữa cầu", "ocr")
    assert [h.id for h in search(conn, "du toan")] == [other.id]
    assert [h.id for h in search(conn, "sua chua")] == [other.id]
    assert _index_halves(store) == (0, 2)  # edits leave the row pending, merged or not
    store.close()
    assert verify_data_dir(store.data_dir).ok


def test_a_reader_sees_new_pending_rows(store: Store) -> None:
    """The same reader connection finds documents registered after its previous search, and
    stops finding rows that moved to the merged index only once (no duplicates)."""
    from appliance.search import merge_pending

    conn = store.reader()
    assert search(conn, "cau treo") == []
    a = store.register_incoming(incoming(Subject="Về việc sửa chữa cầu treo")).record
    assert [h.id for h in search(conn, "cau treo")] == [a.id]
    b = store.register_incoming(incoming(Subject="Về việc kiểm định cầu treo")).record
    assert [h.id for h in search(conn, "cau treo")] == [b.id, a.id]
    store.writer_or_fail().call(lambda txn: merge_pending(txn.conn))
    assert [h.id for h in search(conn, "cau treo")] == [b.id, a.id]
    # A plain sqlite3 connection (no cache of its own) gets the same answer.
    import sqlite3

    plain = sqlite3.connect(store.db_path)
    c = store.register_incoming(incoming(Subject="Về việc cầu treo thôn 3")).record
    assert [h.id for h in search(plain, "cau treo")] == [c.id, b.id, a.id]
    plain.close()


def test_pending_rows_merge_at_the_threshold(store: Store) -> None:
    """Registrations one by one keep fewer than MERGE_AT rows pending; all stay searchable."""
    from appliance.search import MERGE_AT

    for i in range(MERGE_AT + 5):
        store.register_incoming(incoming(CodeNumber=str(1000 + i), Subject=f"Về việc số {i}"))
    merged, pending = _index_halves(store)
    assert merged >= MERGE_AT and pending < MERGE_AT
    assert merged + pending == MERGE_AT + 5
    assert len(search(store.reader(), "ve viec so", limit=1000)) == MERGE_AT + 5


def test_folder_from_before_the_pending_table(
    data_dir: Path, open_store: Callable[..., Store]
) -> None:
    """A folder whose search index is document_fts alone verifies and searches as it is, and
    gets the pending table when a store opens it."""
    import sqlite3

    from appliance.search import merge_pending
    from appliance.verify import verify_data_dir

    s = open_store()
    old = s.register_incoming(incoming(Subject="Về việc nạo vét kênh mương")).record
    s.writer_or_fail().call(lambda txn: merge_pending(txn.conn))
    s.close()
    conn = sqlite3.connect(data_dir / "luutru.db", isolation_level=None)
    conn.execute("DROP TABLE search_pending")
    assert [h.id for h in search(conn, "nao vet")] == [old.id]
    conn.close()
    assert verify_data_dir(data_dir).ok
    s = open_store()
    new = s.register_incoming(incoming(Subject="Về việc nạo vét ao hồ")).record
    assert [h.id for h in search(s.reader(), "nao vet")] == [new.id, old.id]
    s.close()
    assert verify_data_dir(data_dir).ok


def test_search_reads_only_the_fields_asked(store: Store) -> None:
    """A list page asks for a few fields: the hits hold those (and the same ids, in the same
    order, as a search for whole records); an unknown field is refused."""
    for t in ("Kế hoạch phòng chống lụt bão", "Phòng chống dịch bệnh", "Kế hoạch năm"):
        store.register_incoming(incoming(Subject=t))
    conn = store.reader()
    whole = search(conn, "phong chong")
    some = search(conn, "phong chong", fields=("Subject", "ArrivalNumber", "Mode"))
    assert [h.id for h in some] == [h.id for h in whole] and len(whole) == 2
    for w, s in zip(whole, some, strict=True):
        assert s.data == {k: w.data[k] for k in ("Subject", "ArrivalNumber", "Mode") if k in w.data}
    with pytest.raises(ValueError, match="not a document field"):
        search(conn, "phong", fields=("Subject", "rid; DROP TABLE documents"))
