"""The publishing rule and the catalogue's queries on both storage engines: only released,
public, not withheld records are published, at the version released; every field checked."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace

import pytest

from appliance.archive import publication
from appliance.text import fold
from sync.central import catalogue
from sync.central.catalogue import Candidate, public_fields, publishable
from sync.central.catalogue_store import CatalogueRow, SearchQuery
from sync.central.centre import Centre
from tests.sync.catalogue_scenario import OPENED_SUBJECT, PUBLIC_SUBJECT, build, sync_all
from tests.sync.conftest import Appliance


@pytest.fixture(params=["sqlite", "postgresql"])
def centre_db(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _all_rows(c: Centre, deleted: bool = False) -> list[CatalogueRow]:
    with c.storage.view() as v:
        rows = v.oai_page(None, None, None, None, 10_000)
    return [r for r in rows if r.deleted == deleted]


def _leaks(rows: list[CatalogueRow], secrets: list[str]) -> list[str]:
    out = []
    for r in rows:
        blob = json.dumps(r.__dict__, ensure_ascii=False)
        folded = fold(blob)
        out += [f"{r.oai_id}: {s}" for s in secrets if s in blob or fold(s) in folded]
    return out


# -- the rule on its own ---------------------------------------------------------------------

HOSO = {"FileCode": "X.2024.01.VP", "Rights": "01", "Title": "t"}
DOC = {"Mode": "01", "Subject": "s"}


def _doc(**over: object) -> Candidate:
    parent = Candidate("file", "X", HOSO, 2, 2, False)
    base = Candidate("document", "d", DOC, 3, 3, False, parent)
    return replace(base, **over)  # type: ignore[arg-type]


@pytest.mark.parametrize("case, expected", [
    ({}, True),
    ({"data": None}, False),  # never received (withheld as a leaf hash)
    ({"released": None}, False),  # not released
    ({"version": 4}, False),  # a later version than the one released
    ({"withheld": True}, False),  # the archive withholds it
    ({"data": {**DOC, "Mode": "02"}}, False),
    ({"data": {**DOC, "Mode": "03"}}, False),
    ({"data": {"Subject": "s"}}, False),  # no Mode: not known to be public
    ({"data": {**DOC, "Status": "recalled"}}, False),
    ({"data": {**DOC, "x": [{"Rights": "03"}]}}, False),  # carries a classified record
    ({"parent": Candidate("file", "X", {**HOSO, "Rights": "02"}, 2, 2, False)}, False),
    ({"parent": Candidate("file", "X", HOSO, 2, 2, True)}, False),  # hồ sơ withheld
    ({"parent": Candidate("file", "X", HOSO, 3, 2, False)}, False),  # hồ sơ changed since
    ({"parent": None}, False),
])
def test_the_rule_field_by_field(case: dict[str, object], expected: bool) -> None:
    assert publishable(_doc(**case)) is expected


def test_public_fields_leave_notes_and_people_out() -> None:
    data = {"Title": "T", "Creator": "Người lập", "Description": "ghi chú", "Rights": "01",
            "FileCode": "X.2024.01.VP"}
    assert public_fields("file", data) == {"Title": "T", "Rights": "01",
                                           "FileCode": "X.2024.01.VP"}
    doc = {"Subject": "s", "Description": "n", "SignerFullName": "A", "ToPlaces": "B",
           "TraceHeaderList": "ý kiến", "Autograph": "bút tích", "FileCode": "X.2024.01.VP",
           "DocOrdinal": 2}
    assert public_fields("document", doc) == {"Subject": "s", "FileCode": "X.2024.01.VP",
                                              "DocOrdinal": 2, "DocCode": "X.2024.01.VP.0000002"}


# -- through intake, on both engines ---------------------------------------------------------


def test_only_released_public_records_are_published(
    make_appliance: Callable[..., Appliance], centre: Centre
) -> None:
    app = make_appliance()
    ex = build(app.store)
    sync_all(app)
    rows = _all_rows(centre)
    assert {r.oai_id for r in rows} == ex.published
    assert _leaks(rows, ex.secrets) == []
    assert _all_rows(centre, deleted=True) == []
    with centre.storage.view() as v:
        # The stale document's public v1 is at the centre, but it was not released.
        assert v.catalogue_item(f"tailieu/{ex.stale_doc}") is None
        hits, total = v.catalogue_search(SearchQuery(folded=fold("quyen su dung dat")))
        assert {h.oai_id for h in hits} >= {f"tailieu/{ex.doc}", f"hoso/{ex.file_code}"}
        assert total == len(hits)
        hits, _ = v.catalogue_search(SearchQuery(folded=fold("Đông Hải 2030"), kind="document"))
        assert [h.oai_id for h in hits] == [f"tailieu/{ex.opened_doc}"]
        hits, _ = v.catalogue_search(SearchQuery(folded="", year=2024, kind="document"))
        assert [h.oai_id for h in hits] == [f"tailieu/{ex.doc}"]
        for q in ("han che", "toi mat", "bi mat nguoi lap", "giai phong mat bang"):
            assert v.catalogue_search(SearchQuery(folded=q))[0] == [], q
        sets = v.catalogue_sets()
        assert [(s[0], s[2]) for s in sets] == [(app.store.config.org_id, 2)]
        kids = v.catalogue_children(app.id, ex.file_code)
        assert [k.title for k in kids] == [PUBLIC_SUBJECT]
    meta = json.loads(next(r for r in rows if r.oai_id == f"tailieu/{ex.opened_doc}").meta_json)
    assert meta["Subject"] == OPENED_SUBJECT and meta["Mode"] == "01"


def test_withdrawal_and_withholding_leave_tombstones(
    make_appliance: Callable[..., Appliance], centre: Centre
) -> None:
    app = make_appliance()
    ex = build(app.store)
    sync_all(app)
    with centre.storage.transaction() as tx:
        rec = tx.appliance(app.id)
        assert rec is not None
        catalogue.withhold(tx, rec, "document", ex.doc, "Thông tin cá nhân của hộ gia đình",
                           "luutru-tinh", centre.now())
    gone = {r.oai_id for r in _all_rows(centre, deleted=True)}
    assert gone == {f"tailieu/{ex.doc}"}
    publication.unpublish(app.store, ex.opened_code, "Rà soát")
    app.store.wait_sealed()
    sync_all(app)
    gone = {r.oai_id: r for r in _all_rows(centre, deleted=True)}
    assert set(gone) == {f"tailieu/{ex.doc}", f"hoso/{ex.opened_code}",
                         f"tailieu/{ex.opened_doc}"}
    assert all(r.meta_json == "{}" and r.title == "" for r in gone.values())
    assert {r.oai_id for r in _all_rows(centre)} == {f"hoso/{ex.file_code}"}
    with centre.storage.transaction() as tx:
        rec = tx.appliance(app.id)
        assert rec is not None
        assert catalogue.release_withheld(tx, rec, "document", ex.doc, centre.now())
    assert f"tailieu/{ex.doc}" in {r.oai_id for r in _all_rows(centre)}


def test_a_changed_document_leaves_until_released_again(
    make_appliance: Callable[..., Appliance], centre: Centre
) -> None:
    """A published document changed at the commune: its new version was not released, so it
    leaves the catalogue (a tombstone); the head opens the hồ sơ again and the new version is
    published (the commune's latest release counts)."""
    app = make_appliance()
    ex = build(app.store)
    sync_all(app)
    app.store.update_document(ex.opened_doc, {"Keyword": "quy hoạch; đất đai"})
    app.store.wait_sealed()
    sync_all(app)
    assert f"tailieu/{ex.opened_doc}" in {r.oai_id for r in _all_rows(centre, deleted=True)}
    publication.publish(app.store, ex.opened_code, "QĐ 45/QĐ-UBND")
    app.store.wait_sealed()
    sync_all(app)
    rows = {r.oai_id: r for r in _all_rows(centre)}
    assert f"tailieu/{ex.opened_doc}" in rows
    assert json.loads(rows[f"tailieu/{ex.opened_doc}"].meta_json)["Keyword"] == \
        "quy hoạch; đất đai"


def test_reproject_rebuilds_the_same_catalogue(
    make_appliance: Callable[..., Appliance], centre: Centre
) -> None:
    app = make_appliance()
    ex = build(app.store)
    sync_all(app)
    before = {r.oai_id: r.meta_json for r in _all_rows(centre)}
    with centre.storage.transaction() as tx:
        rec = tx.appliance(app.id)
        assert rec is not None
        catalogue.reproject(tx, rec, centre.now())
    assert {r.oai_id: r.meta_json for r in _all_rows(centre)} == before
    assert set(before) == ex.published
