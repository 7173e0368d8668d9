"""Recall, freeze and destruction: frozen records refuse edits, every step is in the log,
destroyed content is gone and verify still passes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import cbor2
import pytest

from appliance.archive import destruction, holds
from appliance.archive.due import Stage, files_due
from appliance.archive.errors import WorkflowError
from appliance.errors import ConflictError, FrozenError, ValidationError
from appliance.store import Store
from appliance.verify import verify_data_dir
from tests.archive.conftest import Hoso, attach_pdf
from tests.conftest import incoming, outgoing


def _kinds(store: Store) -> list[str]:
    return [cbor2.loads(raw)["kind"] for _, raw in store.entries()]


def _verify_ok(store: Store) -> None:
    store.wait_sealed()
    rep = verify_data_dir(store.data_dir)
    assert rep.ok, [f.message for f in rep.findings]


def test_freeze_blocks_edits_until_unfrozen(
    store: Store, make_hoso: Callable[..., Hoso]
) -> None:
    """A frozen hồ sơ refuses edits of its documents, new members and closing."""
    h = make_hoso(n=2)
    other = make_hoso(n=1)
    holds.freeze(store, "file", h.code, "Thanh tra yêu cầu", "QĐ 12/QĐ-TTr")
    with pytest.raises(FrozenError):
        store.update_document(h.docs[0].id, {"Subject": "sửa"})
    with pytest.raises(FrozenError):
        store.add_to_file(other.docs[0].id, h.code)
    with pytest.raises(FrozenError):
        store.close_file(h.code)
    with pytest.raises(ConflictError):
        holds.freeze(store, "file", h.code, "lần hai")
    with pytest.raises(ValidationError):
        holds.freeze(store, "document", other.docs[0].id, "  ")
    holds.unfreeze(store, "file", h.code, "Đã xong thanh tra")
    store.update_document(h.docs[0].id, {"Subject": "sửa sau khi gỡ phong tỏa"})
    assert _kinds(store).count("archive.freeze") == 1
    assert _kinds(store).count("archive.unfreeze") == 1
    _verify_ok(store)


def test_recall_outgoing_freezes_it(store: Store) -> None:
    """A recalled outgoing document keeps its metadata and refuses any edit."""
    d = store.issue_outgoing(store.draft_outgoing(outgoing()).record.id).record
    out = holds.recall(store, d.id, "Ban hành sai thẩm quyền", "QĐ 5/QĐ-UBND")
    rec = store.get("document", d.id)
    assert rec.data["Status"] == "recalled" and rec.data["Subject"] == d.data["Subject"]
    assert out["destroyed_content"] == []
    with pytest.raises(FrozenError):
        store.update_document(d.id, {"Subject": "x"})
    with pytest.raises(ConflictError):
        holds.recall(store, d.id, "again", "x")
    _verify_ok(store)


def test_recall_incoming_destroys_content_keeps_recall_metadata(store: Store) -> None:
    """The recalled incoming document loses its content and trích yếu; its number stays;
    `luutru verify` accepts the removed file because the log names it."""
    d = store.register_incoming(incoming()).record
    d = attach_pdf(store, d, "văn bản bị thu hồi")
    sha = d.data["Content"][0]["sha256"]
    out = holds.recall(store, d.id, "Cơ quan gửi thu hồi", "Công văn 99/UBND-VP")
    assert out["destroyed_content"] == [sha]
    assert not store.content.exists(sha)
    rec = store.get("document", d.id)
    assert "Subject" not in rec.data and "Content" not in rec.data
    assert rec.data["ArrivalNumber"] == d.data["ArrivalNumber"]
    assert "Đã thu hồi theo Công văn 99/UBND-VP" in rec.data["Description"]
    _verify_ok(store)


def test_verify_still_catches_a_deleted_file(store: Store) -> None:
    """Only content named by a destruction/recall entry may be missing."""
    d = attach_pdf(store, store.register_incoming(incoming()).record, "x")
    store.content.path(d.data["Content"][0]["sha256"]).unlink()
    store.wait_sealed()
    rep = verify_data_dir(store.data_dir)
    assert any(f.code == "content.missing" for f in rep.findings)


def test_audit_events_on_records_keep_verify_clean(store: Store) -> None:
    """Events that name a record (a view, an archive step) are not taken for versions."""
    d = store.register_incoming(incoming()).record
    store.audit("view", "lan", "document", d.id)
    _verify_ok(store)


def test_destruction_workflow(store: Store, make_hoso: Callable[..., Hoso]) -> None:
    """Expired file listed for review → council decides → destroyed; classified not listed;
    nothing is destroyed before the decision; every step logged; verify passes."""
    expired = make_hoso(n=2, maintenance="06", close=True)
    secret = make_hoso(n=1, maintenance="06", close=True, Rights="03")
    keep = make_hoso(n=1, maintenance="01", close=True)
    end = dt.date.fromisoformat(expired.file.data["EndDate"])
    today = dt.date(end.year + 11, 1, 15)
    assert any(i.stage is Stage.EXPIRY for i in files_due(store, dt.date(end.year + 10, 12, 20)))
    dl = destruction.propose(store, today, actor="lưu trữ")
    codes = {i.get("FileCode") for i in dl.items}
    assert expired.code in codes and secret.code not in codes and keep.code not in codes
    assert dl.status == "review"
    with pytest.raises(WorkflowError):
        destruction.execute(store, dl.list_id)
    with pytest.raises(ValidationError):
        destruction.decide(store, dl.list_id, approve=True, decision_ref="QĐ 1", council=[])
    decided = destruction.decide(
        store, dl.list_id, approve=True, decision_ref="QĐ 30/QĐ-UBND",
        council=["Chủ tịch UBND", "Công chức Văn phòng", "Công chức Tư pháp"],
    )
    assert decided.status == "approved"
    with pytest.raises(WorkflowError):
        destruction.decide(store, dl.list_id, approve=False, decision_ref="x", council=["y"])
    out = destruction.execute(store, dl.list_id, actor="lưu trữ")
    shas = [d.data["Content"][0]["sha256"] for d in expired.docs]
    assert sorted(out["destroyed_content"]) == sorted(shas)
    assert not any(store.content.exists(s) for s in shas)
    assert destruction.get_list(store, dl.list_id).status == "destroyed"
    with pytest.raises(FrozenError):
        store.update_document(expired.docs[0].id, {"Subject": "x"})
    assert not [i for i in files_due(store, today) if i.file_code == expired.code]
    kinds = _kinds(store)
    for k in ("archive.destruction_list", "archive.destruction_decision", "archive.destroy"):
        assert kinds.count(k) == 1, k
    with pytest.raises(WorkflowError):
        destruction.propose(store, today)  # nothing left to review
    _verify_ok(store)


def test_rejected_list_destroys_nothing(store: Store, make_hoso: Callable[..., Hoso]) -> None:
    """A council that refuses keeps everything."""
    h = make_hoso(n=1, maintenance="06", close=True)
    end = dt.date.fromisoformat(h.file.data["EndDate"])
    dl = destruction.propose(store, dt.date(end.year + 11, 1, 1))
    destruction.decide(store, dl.list_id, approve=False, decision_ref="BB 2",
                       council=["Chủ tịch"], note="còn giá trị tham khảo")
    with pytest.raises(WorkflowError):
        destruction.execute(store, dl.list_id)
    assert store.content.exists(h.docs[0].data["Content"][0]["sha256"])
