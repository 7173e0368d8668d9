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
