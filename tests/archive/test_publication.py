"""Releases to the province's catalogue: transfers and publications list exact versions, and a
released record cannot be restricted, classified or moved until the release is withdrawn."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from appliance.archive import custody, publication
from appliance.errors import ConflictError, ValidationError
from appliance.kinds import Kind
from appliance.ledger import Entry
from appliance.store import Store
from tests.archive.conftest import Hoso
from tests.conftest import incoming


def _last(store: Store, kind: str) -> Entry:
    found = [Entry.decode(raw, strict=False) for _, raw in store.entries()]
    return [e for e in found if e.kind == kind][-1]


def test_transfer_and_publication_list_versions_without_classified(
    store: Store, make_hoso: Callable[..., Hoso]
) -> None:
    h = make_hoso(2)
    secret = store.register_incoming(incoming(FileCode=h.code, CodeNumber="77",
                                              Mode="03")).record
    store.close_file(h.code)
    custody.record_transfer(store, h.code, "uuid-pkg", "2026-01-05")
    e = _last(store, Kind.ARCHIVE_TRANSFER)
    assert e.data is not None
    assert e.data["file"] == [h.file.id, store.get("file", h.file.id).version]
    listed = {i for i, _ in e.data["items"]}
    assert listed == {d.id for d in h.docs} and secret.id not in listed
    assert all(v == store.get("document", i).version for i, v in e.data["items"])
    assert publication.released(store.reader()) == [h.code]


def test_released_record_cannot_be_restricted_or_moved_until_withdrawn(
    store: Store, make_hoso: Callable[..., Hoso]
) -> None:
    h = make_hoso(2)
    other = make_hoso(1, Rights="03")
    with pytest.raises(ValidationError):
        publication.publish(store, h.code, " ")
    publication.publish(store, h.code, "QĐ 40/QĐ-UBND")
    doc = h.docs[0]
    for change in ({"Mode": "03"}, {"Mode": "02"}):
        with pytest.raises(ConflictError, match="rút công bố"):
            store.update_document(doc.id, change)
    with pytest.raises(ConflictError):
        store.add_to_file(doc.id, other.code)  # into a mật hồ sơ
    store.update_document(doc.id, {"Keyword": "đất đai"})  # other edits are fine
    publication.unpublish(store, h.code, "Rà soát thông tin cá nhân")
    assert publication.released(store.reader()) == []
    store.update_document(doc.id, {"Mode": "02"})
    assert _last(store, Kind.ARCHIVE_UNPUBLISH).data == {
        "FileCode": h.code, "reason": "Rà soát thông tin cá nhân"}


def test_only_a_public_hoso_is_published(store: Store, make_hoso: Callable[..., Hoso]) -> None:
    h = make_hoso(1, Rights="02")
    with pytest.raises(ConflictError, match="công khai"):
        publication.publish(store, h.code, "QĐ 1")


def test_publish_and_unpublish_from_the_command_line(
    store: Store, make_hoso: Callable[..., Hoso]
) -> None:
    import json
    import subprocess
    import sys

    h = make_hoso(1)
    store.wait_sealed()
    data = str(store.data_dir)
    store.close()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "luutru", "hoso", *args, "--data", data],
                              capture_output=True, text=True, timeout=120)

    out = run("publish", "--file", h.code, "--ref", "QĐ 40/QĐ-UBND")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["items"][0][0] == h.docs[0].id
    bad = run("unpublish", "--file", h.code, "--reason", " ")
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    out = run("unpublish", "--file", h.code, "--reason", "Rà soát")
    assert out.returncode == 0 and json.loads(out.stdout)["withdrawn"] is True


def test_a_listed_member_cannot_be_taken_out_until_withdrawn(
    store: Store, make_hoso: Callable[..., Hoso]
) -> None:
    h = make_hoso(1)
    g = make_hoso(1)
    doc = g.docs[0]
    store.add_to_file(doc.id, h.code)
    publication.publish(store, h.code, "QĐ 41/QĐ-UBND")
    items = store.reader().execute(
        "SELECT record_id FROM publication_items WHERE file_code = ?", (h.code,)).fetchall()
    assert doc.id in {r[0] for r in items}
    with pytest.raises(ConflictError, match="rút công bố"):
        store.remove_from_file(doc.id, h.code, "Đưa nhầm vào hồ sơ")
    publication.unpublish(store, h.code, "Rà soát")
    store.remove_from_file(doc.id, h.code, "Đưa nhầm vào hồ sơ")
