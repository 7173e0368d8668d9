"""The public catalogue's routes (HTML, JSON, OAI-PMH) on both storage engines: what is
published, and nothing else, on every route; OAI-PMH answers valid against the protocol's XSD,
with its error codes and resumption tokens; harvested by an independent client (Sickle)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient
from lxml import etree

from appliance.text import fold
from luutru.centre.app import create_app
from sync.central.centre import Centre
from tests.sync.catalogue_scenario import Expect, build, sync_all
from tests.sync.conftest import Appliance
from web_ui.catalogue import CATALOGUE, CatalogueConfig
from web_ui.catalogue.limits import Rate

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "oai-pmh"
EAD_XSD = Path(__file__).resolve().parents[1] / "vectors" / "ead2002" / "ead.xsd"
NS = {"o": "http://www.openarchives.org/OAI/2.0/", "dc": "http://purl.org/dc/elements/1.1/",
      "e": "urn:isbn:1-931666-22-9"}
PREFIXES = ("oai_dc", "ead")
pytestmark = pytest.mark.asyncio


@pytest.fixture(params=["sqlite", "postgresql"])
def centre_db(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(VECTORS / "harvest.xsd")))


@pytest.fixture
def published(make_appliance: Callable[..., Appliance]) -> tuple[Appliance, Expect]:
    app = make_appliance()
    ex = build(app.store)
    sync_all(app)
    return app, ex


def _app(centre: Centre, **over: Any) -> Any:
    web_app = create_app(centre)
    cfg = CatalogueConfig(oai_namespace="luutru.quangninh.gov.vn", **over)
    web_app[CATALOGUE].config = cfg  # type: ignore[misc]
    from web_ui.catalogue.limits import Buckets

    web_app[CATALOGUE].buckets = Buckets(cfg.rates)
    return web_app


@pytest_asyncio.fixture
async def client(centre: Centre, published: tuple[Appliance, Expect],
                 aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]]
                 ) -> TestClient[Any, Any]:
    many = {k: Rate(1000.0, 1000) for k in ("page", "oai", "reader")}
    return await aiohttp_client(_app(centre, oai_page_size=2, rates=many))


def _clean(body: str, secrets: list[str]) -> list[str]:
    folded = fold(body)
    return [s for s in secrets if s in body or fold(s) in folded]


async def _get(c: TestClient[Any, Any], url: str, status: int = 200) -> str:
    r = await c.get(url)
    text = await r.text()
    assert r.status == status, (url, r.status, text[:300])
    return text


async def _harvest(c: TestClient[Any, Any], verb: str, **args: str) -> list[Any]:
    """Every page of a list verb, following resumption tokens; the parsed pages."""
    pages = []
    query = {"verb": verb, **args}
    for _ in range(100):
        root = etree.fromstring((await _get(c, "/oai", 200)) if False else
                                (await (await c.get("/oai", params=query)).read()))
        pages.append(root)
        tok = root.find(f".//o:{verb}/o:resumptionToken", NS)
        if tok is None or not tok.text:
            return pages
        query = {"verb": verb, "resumptionToken": tok.text}
    raise AssertionError("the harvest never ended")


async def test_every_route_shows_published_records_only(
    client: TestClient[Any, Any], published: tuple[Appliance, Expect]
) -> None:
    """Search pages (with every filter), JSON, item pages and their JSON, and every OAI-PMH
    verb: the published records appear, no text, id or mã hồ sơ of another record does."""
    ex = published[1]
    bodies: list[str] = []
    for url in ("/catalogue", "/catalogue?q=dat", "/catalogue?q=han+che", "/catalogue?q=toi",
                "/catalogue?kind=file", "/catalogue?year=2024", "/catalogue?q=thanh+mat",
                "/catalogue.json", "/catalogue.json?q=quyen+su+dung", "/catalogue.json?kind=file",
                "/catalogue?lang=en", "/catalogue.json?q=bi+mat"):
        bodies.append(await _get(client, url))
    listing = json.loads(await _get(client, "/catalogue.json"))
    assert {r["id"] for r in listing["results"]} == ex.published
    for oai_id in ex.published:
        bodies.append(await _get(client, f"/catalogue/{oai_id}"))
        bodies.append(await _get(client, f"/catalogue/{oai_id}?format=json"))
    for hidden in (f"tailieu/{ex.restricted_doc}", f"tailieu/{ex.stale_doc}",
                   "hoso/000.21.08.H49.2024.02.HC", "hoso/000.21.08.H49.2024.03.MAT"):
        await _get(client, f"/catalogue/{hidden}", 404)
    for verb in ("ListRecords", "ListIdentifiers"):
        for prefix in PREFIXES:
            for page in await _harvest(client, verb, metadataPrefix=prefix):
                bodies.append(etree.tostring(page, encoding="unicode"))
    for verb in ("Identify", "ListSets", "ListMetadataFormats"):
        bodies.append(await _get(client, f"/oai?verb={verb}"))
    for oai_id in ex.published:
        for prefix in PREFIXES:
            bodies.append(await _get(
                client, f"/oai?verb=GetRecord&metadataPrefix={prefix}&identifier="
                f"oai:luutru.quangninh.gov.vn:{oai_id}"))
    leaks = [(i, _clean(b, ex.secrets)) for i, b in enumerate(bodies) if _clean(b, ex.secrets)]
    assert leaks == []
    oai_ids = set()
    for page in await _harvest(client, "ListIdentifiers", metadataPrefix="oai_dc"):
        oai_ids |= {e.text for e in page.iterfind(".//o:header/o:identifier", NS)}
    assert oai_ids == {f"oai:luutru.quangninh.gov.vn:{i}" for i in ex.published}


async def test_oai_answers_validate_and_errors_are_the_protocols(
    client: TestClient[Any, Any], published: tuple[Appliance, Expect], schema: etree.XMLSchema
) -> None:
    _a, ex = published
    ident = f"oai:luutru.quangninh.gov.vn:tailieu/{ex.doc}"
    ok = [
        "verb=Identify", "verb=ListMetadataFormats", f"verb=ListMetadataFormats&identifier={ident}",
        "verb=ListSets", "verb=ListIdentifiers&metadataPrefix=oai_dc",
        "verb=ListRecords&metadataPrefix=oai_dc",
        "verb=ListRecords&metadataPrefix=oai_dc&set=000.21.08.H49",
        "verb=ListRecords&metadataPrefix=oai_dc&from=2020-01-01&until=2030-12-31",
        f"verb=GetRecord&metadataPrefix=oai_dc&identifier={ident}",
        "verb=ListRecords&metadataPrefix=ead",
        f"verb=GetRecord&metadataPrefix=ead&identifier={ident}",
    ]
    for q in ok:
        root = etree.fromstring(await (await client.get(f"/oai?{q}")).read())
        assert schema.validate(root), (q, schema.error_log)
        assert root.find("o:error", NS) is None, q
    errors = {
        "": "badVerb", "verb=Nope": "badVerb", "verb=Identify&verb=Identify": "badVerb",
        "verb=Identify&x=1": "badArgument", "verb=ListRecords": "badArgument",
        "verb=ListRecords&metadataPrefix=oai_dc&metadataPrefix=oai_dc": "badArgument",
        "verb=ListRecords&metadataPrefix=oai_dc&from=2025-13-01": "badArgument",
        "verb=ListRecords&metadataPrefix=oai_dc&from=2025-01-01&until=2025-01-02T00:00:00Z":
            "badArgument",
        "verb=ListRecords&metadataPrefix=oai_dc&from=2026-01-02&until=2026-01-01": "badArgument",
        "verb=ListRecords&resumptionToken=x&metadataPrefix=oai_dc": "badArgument",
        "verb=ListRecords&metadataPrefix=marc": "cannotDisseminateFormat",
        "verb=GetRecord&metadataPrefix=marc&identifier=" + ident: "cannotDisseminateFormat",
        "verb=GetRecord&metadataPrefix=oai_dc&identifier=oai:luutru.quangninh.gov.vn:"
        f"tailieu/{ex.restricted_doc}": "idDoesNotExist",
        "verb=GetRecord&metadataPrefix=oai_dc&identifier=oai:elsewhere:x": "idDoesNotExist",
        "verb=ListMetadataFormats&identifier=oai:luutru.quangninh.gov.vn:hoso/nope":
            "idDoesNotExist",
        "verb=ListRecords&metadataPrefix=oai_dc&set=nope": "noRecordsMatch",
        "verb=ListIdentifiers&metadataPrefix=oai_dc&from=2099-01-01": "noRecordsMatch",
        "verb=ListRecords&resumptionToken=!!bad!!": "badResumptionToken",
        "verb=ListSets&resumptionToken=abc": "badResumptionToken",
    }
    for q, code in errors.items():
        root = etree.fromstring(await (await client.get(f"/oai?{q}")).read())
        assert schema.validate(root), (q, schema.error_log)
        got = [e.get("code") for e in root.iterfind("o:error", NS)]
        assert got == [code], (q, got)
        if code in ("badVerb", "badArgument"):
            assert root.find("o:request", NS).attrib == {}, q
    # POST works as GET (the protocol allows both).
    r = await client.post("/oai", data={"verb": "Identify"})
    root = etree.fromstring(await r.read())
    assert root.findtext("o:Identify/o:deletedRecord", namespaces=NS) == "persistent"


async def test_resumption_tokens_walk_every_record_once(
    client: TestClient[Any, Any], published: tuple[Appliance, Expect], schema: etree.XMLSchema
) -> None:
    """Pages of two: every page valid, cursors counting up, the last token empty."""
    pages = await _harvest(client, "ListRecords", metadataPrefix="oai_dc")
    assert len(pages) == 2
    seen: list[str] = []
    for k, page in enumerate(pages):
        assert schema.validate(page), schema.error_log
        tok = page.find(".//o:resumptionToken", NS)
        assert tok is not None and tok.get("cursor") == str(2 * k)
        seen += [e.text for e in page.iterfind(".//o:header/o:identifier", NS)]
    assert pages[-1].find(".//o:resumptionToken", NS).text is None
    assert len(seen) == len(set(seen)) == len(published[1].published)
    titles = [e.text for p in pages for e in p.iterfind(".//dc:title", NS)]
    assert len(titles) == 4 and all(titles)


async def test_sickle_harvests_the_catalogue(
    client: TestClient[Any, Any], published: tuple[Appliance, Expect]
) -> None:
    """An independent OAI-PMH client from PyPI harvests everything, page by page."""
    from sickle import Sickle

    url = str(client.make_url("/oai"))

    def harvest() -> tuple[dict[str, Any], list[str], list[str], list[str]]:
        s = Sickle(url, max_retries=0)
        ident = s.Identify()
        recs = list(s.ListRecords(metadataPrefix="oai_dc"))
        sets = [x.setSpec for x in s.ListSets()]
        formats = [f.metadataPrefix for f in s.ListMetadataFormats()]
        titles = [r.metadata["title"][0] for r in recs]
        assert all(r.header.datestamp.endswith("Z") for r in recs)
        eads = list(s.ListRecords(metadataPrefix="ead"))
        assert sorted(r.metadata["unittitle"][0] for r in eads) == sorted(titles)
        ead_schema = etree.XMLSchema(etree.parse(str(EAD_XSD)))
        for r in eads:
            (doc,) = r.xml.iterfind(".//e:ead", NS)
            assert ead_schema.validate(doc), (r.header.identifier, ead_schema.error_log)
        return {"name": ident.repositoryName, "granularity": ident.granularity}, titles, \
            sets, formats

    ident, titles, sets, formats = await asyncio.to_thread(harvest)
    assert ident["granularity"] == "YYYY-MM-DDThh:mm:ssZ"
    assert len(titles) == len(published[1].published) and sets == ["000.21.08.H49"]
    assert formats == ["oai_dc", "ead"]


async def test_withdrawn_records_harvest_as_deleted(
    client: TestClient[Any, Any], published: tuple[Appliance, Expect], centre: Centre,
    schema: etree.XMLSchema,
) -> None:
    from appliance.archive import publication

    app, ex = published
    publication.unpublish(app.store, ex.opened_code, "Rà soát")
    app.store.wait_sealed()
    sync_all(app)
    deleted = []
    for page in await _harvest(client, "ListRecords", metadataPrefix="oai_dc"):
        assert schema.validate(page), schema.error_log
        for h in page.iterfind(".//o:header[@status='deleted']", NS):
            deleted.append(h.findtext("o:identifier", namespaces=NS))
            assert h.getparent().find("o:metadata", NS) is None
    assert sorted(deleted) == sorted(f"oai:luutru.quangninh.gov.vn:{i}" for i in (
        f"hoso/{ex.opened_code}", f"tailieu/{ex.opened_doc}"))
    await _get(client, f"/catalogue/tailieu/{ex.opened_doc}", 404)


async def test_public_pages_need_no_sign_in_but_the_dashboard_does(
    client: TestClient[Any, Any]
) -> None:
    for url in ("/catalogue", "/oai?verb=Identify", "/reader/signin", "/reader/signup",
                "/static/catalogue/catalogue.css"):
        r = await client.get(url, allow_redirects=False)
        assert r.status == 200, url
        assert "Content-Security-Policy" in r.headers
    for url in ("/", "/online-requests", "/withheld", "/search"):
        r = await client.get(url, allow_redirects=False)
        assert r.status == 303 and r.headers["Location"].startswith("/signin"), url


async def test_rate_limits_answer_429(
    centre: Centre, published: tuple[Appliance, Expect],
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
) -> None:
    rates = {"page": Rate(0.01, 3), "oai": Rate(0.01, 2), "reader": Rate(0.01, 2)}
    c = await aiohttp_client(_app(centre, rates=rates))
    got = [(await c.get("/catalogue")).status for _ in range(4)]
    assert got == [200, 200, 200, 429]
    r = await c.get("/oai?verb=Identify")
    assert r.status == 200
    await c.get("/oai?verb=Identify")
    r = await c.get("/oai?verb=Identify")
    assert r.status == 429 and int(r.headers["Retry-After"]) >= 1
    assert (await c.get("/healthz")).status == 200  # the sync API has no such limit


_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


async def test_ead_records_are_valid_ead_2002_finding_aids(
    client: TestClient[Any, Any], published: tuple[Appliance, Expect]
) -> None:
    """Each published item harvested as ``ead`` validates against the EAD 2002 schema (SAA and
    the Library of Congress, strict): a hồ sơ at level file with its mã hồ sơ and date span, a
    document at level item with its mã lưu trữ, issuing agency, type and its hồ sơ."""
    ead_schema = etree.XMLSchema(etree.parse(str(EAD_XSD)))
    docs = [d for p in await _harvest(client, "ListRecords", metadataPrefix="ead")
            for d in p.iterfind(".//o:metadata/e:ead", NS)]
    assert len(docs) == len(published[1].published)
    for doc in docs:
        assert ead_schema.validate(doc), ead_schema.error_log
        assert doc.findtext("e:eadheader/e:eadid", namespaces=NS).startswith(
            "oai:luutru.quangninh.gov.vn:")
        assert doc.findtext("e:archdesc/e:accessrestrict/e:p", namespaces=NS) == \
            "Công khai (chế độ sử dụng 01)"
    levels = {d.find("e:archdesc", NS).get("level") for d in docs}
    assert levels == {"file", "item"}
    item = next(d for d in docs if d.find("e:archdesc", NS).get("level") == "item")
    did = item.find("e:archdesc/e:did", NS)
    assert did.find("e:unitid", NS).get("type") == "ma-luu-tru"
    date = did.find("e:unitdate", NS)
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", date.get("normal"))
    assert re.fullmatch(r"\d{2}/\d{2}/\d{4}", date.text)  # what a reader reads: dd/mm/yyyy
    assert item.findtext("e:archdesc/e:relatedmaterial/e:p", namespaces=NS).startswith(
        "Thuộc hồ sơ 000.21.08.H49.")
    broken = etree.fromstring(etree.tostring(item))
    broken.find("e:archdesc", NS).set("level", "hoso")  # the judge can fail
    assert not ead_schema.validate(broken)

