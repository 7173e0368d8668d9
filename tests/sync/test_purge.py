"""`luutru central purge-classified`: what an earlier version let through is purged for good."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest

from appliance import cbor, merkle
from sync import wire
from sync.central import batchcheck
from sync.central.centre import Centre
from sync.central.purge import purge_classified
from tests.sync.conftest import Appliance, response

SECRET_SUBJECT = "V/v phương án bảo vệ kho xăng dầu dự trữ quốc gia"
SECRET_TITLE = "Hồ sơ mật về phòng thủ dân sự năm 2025"


@pytest.fixture(params=["sqlite", "postgresql"])
def centre_db(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _old_version_sync(app: Appliance, monkeypatch: pytest.MonkeyPatch) -> None:
    """Send the whole log as the earlier version did: only entries whose own data said
    Mode 03 withheld; the centre of that version checked nothing more."""
    monkeypatch.setattr(batchcheck, "carries_classified", lambda data: False)
    app.store.wait_sealed()
    size = app.store.tree_head()[0]
    cp = app.store.latest_checkpoint()
    assert cp is not None and cp[0] == size
    items: list[bytes | wire.Withheld] = []
    for _, raw in app.store.entries(0, size):
        m = cbor.loads(raw)
        old_rule = isinstance(m.get("data"), dict) and m["data"].get("Mode") == "03"
        items.append(wire.Withheld(merkle.leaf_hash(raw)) if old_rule else raw)
    body = wire.Batch(0, size, cp[3], (), tuple(items)).to_body()
    ans = app.intake.handle(app.sign(wire.RequestType.BATCH, body))
    assert response(app.intake.c, ans).outcome is wire.Outcome.ACCEPTED
    monkeypatch.undo()


def _held_text(centre: Centre, app_id: str) -> bytes:
    with centre.storage.view() as v:
        rows = v.entries(app_id, 0, v.appliance(app_id).accepted_size)  # type: ignore[union-attr]
        docs = v.search_documents("kho xang dau")
    return b"".join(r.entry or b"" for r in rows) + repr(docs).encode()


def test_purge_keeps_leaf_hashes_and_removes_every_trace(
    make_appliance: Callable[..., Appliance], centre: Centre, centre_db: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Entries naming a mật hồ sơ, its documents, and an ordinary hồ sơ's contents list that
    names a mật member: bodies gone (leaf hashes kept), search rows and the blob gone, an
    anomaly recorded, the database files hold no trace, and the next batch still chains."""
    app = make_appliance()
    s = app.store
    mat = s.open_file({"FileCatalog": 2025, "FileNotation": "09.MAT", "Rights": "03",
                       "Title": SECRET_TITLE, "Maintenance": "01"})
    app.add(1, FileCode=mat.data["FileCode"], CodeNumber="31", Subject="V/v diễn tập phòng thủ")
    plain = s.open_file({"FileCatalog": 2025, "FileNotation": "30.VP", "Title": "Hồ sơ chung",
                         "Maintenance": "05"})
    public = app.add(1, FileCode=plain.data["FileCode"], CodeNumber="40")[0]
    secret = app.add(1, FileCode=plain.data["FileCode"], CodeNumber="41", Mode="03",
                     Subject=SECRET_SUBJECT)[0]
    c = s.content.put_bytes(b"%PDF-1.7 scan of the mat document")
    s.attach_content(secret, [{"sha256": c.sha256, "size": c.size, "name": "m.pdf"}])
    s.close_file(plain.data["FileCode"])
    _old_version_sync(app, monkeypatch)
    # The earlier centre also took the mật document's content when it was offered.
    assert app.intake.c.blobs.put_stream(c.sha256, io.BytesIO(s.content.path(c.sha256)
                                                                .read_bytes()))
    with app.intake.c.storage.transaction() as tx:
        tx.record_blob(c.sha256, c.size, centre.now())
    before = _held_text(centre, app.id)
    with centre.storage.view() as v:
        assert len(v.search_documents("dien tap")) == 1
    assert SECRET_TITLE.encode() in before and "xăng dầu".encode() in before

    dry = purge_classified(centre, dry_run=True)
    # file.open of the mật hồ sơ, the document filed in it, the contents list naming the mật
    # member (the mật document's own entries were withheld even then).
    assert dry.entries_purged == 3 and _held_text(centre, app.id) == before
    rep = purge_classified(centre)
    assert rep.entries_purged == 3 and rep.content_removed == 1 and rep.documents_removed == 1
    after = _held_text(centre, app.id)
    assert SECRET_TITLE.encode() not in after and "xăng dầu".encode() not in after
    assert "Hồ sơ chung".encode() in after  # the ordinary hồ sơ's own record stays
    assert not centre.blobs.has(c.sha256)
    with centre.storage.view() as v:
        assert v.anomalies(app.id)[0].kind.value == "classified"
        assert public in {d.doc_id for d in v.search_documents("thien tai")}
        assert v.search_documents("dien tap") == []  # the document filed in the mật hồ sơ
    if centre_db == "sqlite":
        for f in centre.data_dir.glob("centre.db*"):
            raw = f.read_bytes()
            assert SECRET_TITLE.encode() not in raw, f.name
            assert SECRET_SUBJECT.encode() not in raw, f.name
            assert b"xang dau" not in raw, f.name  # the folded search text
            assert c.sha256.encode() not in raw, f.name
    assert not any(c.sha256 in p.name for p in centre.blobs.root.rglob("*"))

    # The tree still verifies: the next batch chains onto the purged copy by its leaves.
    app.add(2)
    ans = app.send(app.store.latest_checkpoint()[0] - 2)  # type: ignore[index]
    assert response(centre, ans).outcome is wire.Outcome.ACCEPTED, response(centre, ans).message
    assert purge_classified(centre).entries_purged == 0  # idempotent


def test_purge_cli_reports_json(tmp_path: Path) -> None:
    """The operator's command on an empty centre: a JSON report, nothing purged."""
    import json

    from tests.sync.procs import run

    d = tmp_path / "centre"
    run("central", "init", "--data", str(d))
    out = run("central", "purge-classified", "--data", str(d))
    rep = json.loads(out.stdout.strip().splitlines()[-1])
    assert rep["entries_purged"] == 0 and rep["appliances"] == 0
