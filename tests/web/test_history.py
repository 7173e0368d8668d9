"""A record's history (web_ui/history.py): every log entry naming it, oldest first, whether
the web UI's index has caught up with the log or not."""

from __future__ import annotations

import pytest

from appliance.store import Store
from tests.conftest import incoming
from web_ui import history as history_mod
from web_ui.history import LogIndex


def _index(store: Store) -> LogIndex:
    idx = LogIndex(store)
    idx.ensure_schema()
    return idx


def test_history_lists_versions_and_views_of_one_record_only(store: Store) -> None:
    """Registration, a view with its detail, a new version: in order, nothing of others."""
    idx = _index(store)
    doc = store.register_incoming(incoming()).record
    other = store.register_incoming(incoming(CodeNumber="2")).record
    store.audit("view", "vanthu", "document", doc.id, {"via": "web"})
    store.audit("view", "vanthu", "document", other.id)
    scan = store.content.put_bytes(b"scan")
    store.attach_content(doc.id, [{"sha256": scan.sha256, "size": scan.size, "name": "a.pdf"}])
    for caught_up in (False, True):  # read from the log's tail, then from the index
        if caught_up:
            assert idx.catch_up() == store.tree_head()[0]
        items, complete = idx.history("document", doc.id)
        assert complete
        assert [(i.kind, i.actor, i.version) for i in items] == [
            ("document.register", "system", 1), ("audit.view", "vanthu", None),
            ("document.content", "system", 2)]
        assert items[1].detail == {"via": "web"} and items[0].detail is None
        assert items[0].index < items[1].index < items[2].index
        assert items[1].to_json()["log_index"] == items[1].index


def test_catch_up_marks_its_progress_even_past_entries_naming_nothing(store: Store) -> None:
    """The indexed size reaches the log size; a second catch-up reads nothing."""
    idx = _index(store)
    store.register_incoming(incoming())
    size = store.tree_head()[0]
    assert idx.indexed_size() == 0
    assert idx.catch_up(max_batches=1) == size and idx.indexed_size() == size
    assert idx.catch_up() == 0
    store.register_incoming(incoming(CodeNumber="2"))
    assert idx.catch_up() == 1 and idx.indexed_size() == size + 1


def test_the_last_entries_only_with_a_limit(store: Store) -> None:
    """limit keeps the newest entries, still oldest first."""
    idx = _index(store)
    doc = store.register_incoming(incoming()).record
    for n in range(5):
        store.audit("print", f"u{n}", "document", doc.id)
    idx.catch_up()
    items, _ = idx.history("document", doc.id, limit=2)
    assert [i.actor for i in items] == ["u3", "u4"]


def test_an_index_too_far_behind_says_the_history_is_incomplete(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the index lags more than MAX_TAIL entries, only the tail is read and the answer
    says it is not complete."""
    monkeypatch.setattr(history_mod, "MAX_TAIL", 2)
    idx = _index(store)
    doc = store.register_incoming(incoming()).record
    for _ in range(3):
        store.audit("view", "vanthu", "document", doc.id)
    items, complete = idx.history("document", doc.id)
    assert not complete and [i.kind for i in items] == ["audit.view", "audit.view"]


def test_a_stopped_index_catches_up_no_more(store: Store) -> None:
    """stop() before closing the store: catch_up reads nothing afterwards."""
    idx = _index(store)
    store.register_incoming(incoming())
    idx.stop()
    assert idx.catch_up() == 0 and idx.indexed_size() == 0
