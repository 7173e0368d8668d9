"""PREMIS 3 from the log: a record's objects, events and agents, valid against the schema;
the format-migration hook adds a rendition, keeps the original and logs the migration."""

from __future__ import annotations

from collections.abc import Callable

import cbor2
import pytest
from lxml import etree

from appliance import renditions
from appliance.archive import fixity, holds, premis
from appliance.errors import FrozenError, NotFoundError, ValidationError
from appliance.store import Store
from tests.archive.conftest import Hoso
from tests.test_rebuild import png_bytes

NS = {"p": premis.PREMIS_NS}


def _photo(store: Store, doc_id: str) -> str:
    stored = store.content.put_bytes(png_bytes())
    store.attach_content(doc_id, [{"sha256": stored.sha256, "size": stored.size,
                                   "name": "so-do.png", "mime": "image/png"}])
    return stored.sha256


def test_migration_adds_a_rendition_keeps_the_original_and_is_logged(
    store: Store, make_hoso: Callable[..., Hoso]
) -> None:
    """image → PDF: the PNG stays, the PDF names it as its source and the tool; the version's
    log entry (document.migrate) is the migration event."""
    h = make_hoso(n=1)
    doc = h.docs[0]
    png = _photo(store, doc.id)
    rec = renditions.migrate(store, doc.id, png, renditions.image_to_pdf, "lưu trữ")
    content = rec.data["Content"]
    assert [c["sha256"] for c in content][:2] == [doc.data["Content"][0]["sha256"], png]
    new = content[-1]
    assert (new["from"], new["rendition"], new["mime"]) == (png, "migration",
                                                                    "application/pdf")
    assert new["tool"].startswith("img2pdf")
    with store.content.open(new["sha256"]) as fh:
        assert fh.read(5) == b"%PDF-"
    assert store.content.exists(png)
    assert [c["sha256"] for c in renditions.archival(content)] == [
        content[0]["sha256"], new["sha256"]]
    last = cbor2.loads(list(store.entries())[-1][1])
    assert last["kind"] == "document.migrate" and last["actor"] == "lưu trữ"


def test_migration_refuses_what_it_cannot_do(
    store: Store, make_hoso: Callable[..., Hoso]
) -> None:
    """An unknown file, a non-image for the image converter, a frozen document: refused,
    nothing written."""
    h = make_hoso(n=1)
    doc = h.docs[0]
    size = store.tree_head()[0]
    with pytest.raises(NotFoundError):
        renditions.migrate(store, doc.id, "ab" * 32, renditions.image_to_pdf)
    with pytest.raises(ValidationError):
        renditions.migrate(store, doc.id, doc.data["Content"][0]["sha256"],
                           renditions.image_to_pdf)
    assert store.tree_head()[0] == size
    png = _photo(store, doc.id)
    holds.freeze(store, "document", doc.id, "Thanh tra", "QĐ 1/QĐ-TTr")
    with pytest.raises(FrozenError):
        renditions.migrate(store, doc.id, png, renditions.image_to_pdf)


def test_record_premis_maps_the_log_and_is_schema_valid(
    store: Store, make_hoso: Callable[..., Hoso]
) -> None:
    """capture, ingestion, fixity check and migration events, each linked to its objects and
    agents; every file an object with SHA-256 fixity; valid against PREMIS 3.0."""
    h = make_hoso(n=1)
    doc = h.docs[0]
    png = _photo(store, doc.id)
    fixity.audit(store)
    rec = renditions.migrate(store, doc.id, png, renditions.image_to_pdf, "luu.tru")
    body = premis.record_premis(store, doc.id)
    assert premis.validate(body) == []
    root = etree.fromstring(body)
    objects = root.xpath("//p:object[@xsi:type='file']/p:objectIdentifier/"
                         "p:objectIdentifierValue/text()",
                         namespaces={**NS, "xsi": premis.XSI_NS})
    assert objects == [c["sha256"] for c in rec.data["Content"]]
    types = [e.findtext("p:eventType", namespaces=NS) for e in root.iterfind("p:event", NS)]
    assert types[0] == "capture"
    assert {"ingestion", "fixity check", "migration"} <= set(types)
    mig = root.xpath("//p:event[p:eventType='migration']", namespaces=NS)[0]
    links = {(x.findtext("p:linkingObjectIdentifierValue", namespaces=NS),
              x.findtext("p:linkingObjectRole", namespaces=NS))
             for x in mig.iterfind("p:linkingObjectIdentifier", NS)}
    assert links == {(png, "source"), (rec.data["Content"][-1]["sha256"], "outcome")}
    assert mig.findtext("p:linkingAgentIdentifier/p:linkingAgentIdentifierValue",
                        namespaces=NS) == "luu.tru"
    fix = root.xpath("//p:event[p:eventType='fixity check']", namespaces=NS)[0]
    assert fix.findtext("p:eventOutcomeInformation/p:eventOutcome", namespaces=NS) == "success"
    agents = root.xpath("//p:agent/p:agentType/text()", namespaces=NS)
    assert "person" in agents and "software" in agents


def test_premis_validation_fails_closed(store: Store, make_hoso: Callable[..., Hoso]) -> None:
    """The schema check is not a rubber stamp: an event without its type is refused."""
    h = make_hoso(n=1)
    body = premis.record_premis(store, h.docs[0].id)
    broken = body.replace(b"<eventType>capture</eventType>", b"", 1)
    assert broken != body and premis.validate(broken)
