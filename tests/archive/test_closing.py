"""Closing a hồ sơ: contents list in the log, counts over members, retention re-assessed."""

from __future__ import annotations

from collections.abc import Callable

import cbor2
import pytest

from appliance.archive.closing import close_file, contents_list
from appliance.errors import ConflictError, ValidationError
from appliance.store import Store
from tests.archive.conftest import Hoso
from tests.conftest import incoming, outgoing


def _last_entry(store: Store, kind: str) -> dict:
    found = [cbor2.loads(raw) for _, raw in store.entries() if cbor2.loads(raw)["kind"] == kind]
    assert found, kind
    return found[-1]


def test_close_lists_contents_and_counts_members(
    store: Store, make_hoso: Callable[..., Hoso]
) -> None:
    """Members filed with add_to_file count; the mục lục is logged with each document's hashes."""
    h = make_hoso(n=3, close=False)
    other = make_hoso(n=1, close=False)
    store.add_to_file(other.docs[0].id, h.code)
    res = close_file(store, h.code, actor="lan")
    assert res.record.data["DocTotal"] == 4
    pages = sum(d.data["PageAmount"] for d in h.docs) + other.docs[0].data["PageAmount"]
    assert res.record.data["PageTotal"] == pages
    assert [i.ordinal for i in res.contents] == [1, 2, 3, 4]
    assert res.contents[-1].member and res.contents[-1].document_id == other.docs[0].id
    entry = _last_entry(store, "file.contents")
    assert entry["actor"] == "lan" and entry["data"]["FileCode"] == h.code
    logged = entry["data"]["contents"]
    assert [c["document_id"] for c in logged] == [i.document_id for i in res.contents]
    assert logged[0]["content"] == [h.docs[0].data["Content"][0]["sha256"]]
    with pytest.raises(ConflictError):
        close_file(store, h.code)


def test_drafts_and_duplicates_are_flagged_not_counted(
    store: Store, make_hoso: Callable[..., Hoso]
) -> None:
    """Điều 29: drafts and duplicates are pointed out; drafts are not counted."""
    h = make_hoso(n=1, close=False, content=False)
    store.draft_outgoing(outgoing(FileCode=h.code))
    store.register_incoming(incoming(FileCode=h.code, CodeNumber=h.docs[0].data["CodeNumber"],
                                     IssuedDate=h.docs[0].data["IssuedDate"]))
    res = close_file(store, h.code)
    assert res.record.data["DocTotal"] == 2
    assert any("dự thảo" in w for w in res.warnings)
    assert any("trùng" in w for w in res.warnings)


def test_retention_reassessed(store: Store, make_hoso: Callable[..., Hoso]) -> None:
    """A document kept longer lifts the file's retention; a manual change needs a reason."""
    h = make_hoso(n=2, maintenance="06", close=False, content=False)
    store.update_document(h.docs[0].id, {"Maintenance": "01"})
    with pytest.raises(ValidationError):
        close_file(store, h.code, maintenance="04")
    res = close_file(store, h.code)
    assert (res.retention_before, res.retention_after) == ("06", "01")
    assert res.record.data["Maintenance"] == "01"
    g = make_hoso(n=1, maintenance="06", close=False, content=False)
    res = close_file(store, g.code, maintenance="04", reason="Đánh giá lại: có giá trị 30 năm")
    assert res.record.data["Maintenance"] == "04"
    assert _last_entry(store, "file.contents")["data"]["retention"]["reason"].startswith("Đánh")


def test_store_close_file_is_the_same_closing(
    store: Store, make_hoso: Callable[..., Hoso]
) -> None:
    """Store.close_file (what the UI calls) produces the contents entry too."""
    h = make_hoso(n=2, close=False)
    rec = store.close_file(h.code)
    assert rec.data["Status"] == "closed" and rec.data["DocTotal"] == 2
    assert _last_entry(store, "file.contents")["data"]["FileCode"] == h.code
    assert len(contents_list(store.reader(), h.code)) == 2
