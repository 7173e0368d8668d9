"""Cache keys that follow the documents (web_ui/changes.py): views and other inert entries
keep the version, anything that may change a projection moves it, and a cached value is
computed once per version."""

from __future__ import annotations

from appliance import cbor
from appliance.store import Store
from tests.conftest import incoming
from web_ui.changes import MAX_SCAN, DocumentsCache, DocumentsVersion, is_inert


def _size(store: Store) -> int:
    return store.tree_head()[0]


def test_views_and_prints_are_inert_registrations_are_not(store: Store) -> None:
    """audit.* and the other inert kinds project nothing; a registration does; an erased or
    malformed entry counts as a change."""
    doc = store.register_incoming(incoming()).record
    store.audit("view", "vanthu", "document", doc.id)
    entries = [raw for _, raw in store.entries()]
    kinds = [cbor.loads(raw)["kind"] for raw in entries]
    assert kinds[-2:] == ["document.register", "audit.view"]
    assert [is_inert(raw) for raw in entries[-2:]] == [False, True]
    assert is_inert(None) is False and is_inert(b"") is False and is_inert(b"\xff\x00") is False
    assert is_inert(cbor.dumps({"kind": 7})) is False


def test_the_version_moves_only_when_a_document_may_have_changed(store: Store) -> None:
    """Views after a registration keep the version (the size after the last real change);
    the next registration moves it to the new size."""
    version = DocumentsVersion()
    doc = store.register_incoming(incoming()).record
    v1 = version.at(store.reader())
    assert v1 == _size(store)
    for _ in range(3):
        store.audit("view", "vanthu", "document", doc.id)
    assert version.at(store.reader()) == v1 < _size(store)
    store.register_incoming(incoming(CodeNumber="2"))
    assert version.at(store.reader()) == _size(store) > v1


def test_a_long_run_of_entries_is_taken_as_a_change_unread(store: Store) -> None:
    """More than MAX_SCAN new entries, even all views, give a new version without reading."""
    version = DocumentsVersion()
    doc = store.register_incoming(incoming()).record
    v1 = version.at(store.reader())
    for _ in range(MAX_SCAN + 1):
        store.audit("view", "vanthu", "document", doc.id)
    assert version.at(store.reader()) == _size(store) > v1


def test_a_cached_value_is_computed_once_per_version(store: Store) -> None:
    """get computes on a miss, serves the same value across views, recomputes after a
    change; without compute a miss is None; the least recently used value goes first."""
    cache = DocumentsCache(size=2)
    calls: list[str] = []

    def compute(name: str) -> str:
        calls.append(name)
        return f"{name}@{len(calls)}"

    doc = store.register_incoming(incoming()).record
    conn = store.reader()
    assert cache.get(conn, ("cover",), lambda: compute("cover")) == "cover@1"
    store.audit("print", "vanthu", "document", doc.id)
    assert cache.get(conn, ("cover",), lambda: compute("cover")) == "cover@1"
    assert cache.get(conn, ("cover",), None) == "cover@1" and calls == ["cover"]
    store.register_incoming(incoming(CodeNumber="2"))
    assert cache.get(conn, ("cover",), None) is None
    assert cache.get(conn, ("cover",), lambda: compute("cover")) == "cover@2"
    cache.get(conn, ("a",), lambda: compute("a"))
    cache.get(conn, ("b",), lambda: compute("b"))  # size 2: "cover" is evicted
    assert cache.get(conn, ("cover",), None) is None and cache.get(conn, ("b",), None) == "b@4"
