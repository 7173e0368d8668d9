"""The province's public catalogue on PostgreSQL with many entries stored: catalogue search
p95 and OAI-PMH ListRecords throughput, each against the raw SQL query in the same run.

Run: ``.venv/bin/python -m tests.bench.catalogue`` (10,000,000 entries, the issue's figure;
``--entries 1000000`` for a quicker run, ``--searches N``, ``--pages N``).

The centre's tables are bulk-loaded as ``tests.bench.centre_pg`` builds them (3,300 appliances,
one document per two entries, folded text "quyet dinh ve viec <topic> so <n>/qd-ubnd"); then a
quarter of the documents, and one hồ sơ per 50 of them, are put into ``catalogue`` as the
publishing rule would have written them (bulk SQL, ANALYZE after). Measured, all on one
PostgreSQL with durability on, the load generator on the same two cores:

- search: the same queries (common and rare words, words with filters of fonds, year, type,
  kind) as (a) the raw SQL statements ``catalogue_search`` sends, run with psycopg; (b)
  ``catalogue_search`` through the storage layer; (c) ``GET /catalogue.json`` of a real
  ``luutru central serve``. Median and p95 of each, and the ratios to (a).
- harvest: ``ListRecords`` page after page (100 records a page, following resumption tokens) as
  (a) the raw keyset query per page; (b) ``oai.respond`` (XML included) in process; (c) ``GET
  /oai`` of the real server. Records per second of each, and the ratios to (a).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from lxml import etree

from sync.central import oai
from sync.central.catalogue_store import SearchQuery
from sync.central.centre import init_centre, open_centre
from sync.central.storage import ApplianceRecord
from tests.bench.centre_pg import Server, _bulk_pg, _p
from tests.sync.pg import PgCluster, missing_reason

_SETS = 3300
_NS = {"o": "http://www.openarchives.org/OAI/2.0/"}


def _publish_pg(url: str) -> int:
    """Put a quarter of the documents, and a hồ sơ per 200 log entries, into the catalogue."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as pg:
        # A quarter of the documents, drawn by a hash (not by position, so every topic, type
        # and year of the generated text is among them, as in a real catalogue).
        pg.execute(
            "INSERT INTO catalogue (oai_id, kind, appliance_id, org_id, fond_code, file_code, "
            "doc_id, year, type_code, title, folded, meta_json, datestamp) "
            "SELECT 'tailieu/' || right(d.appliance_id, 12) || '-' || d.doc_id, 'document', "
            "d.appliance_id, d.org_id, d.org_id, d.org_id || '.2025.' || (d.log_index / 200) "
            "|| '.VP', d.doc_id, 2016 + abs(hashtext('y' || d.doc_id || d.appliance_id)) % 10, "
            "lpad((1 + abs(hashtext('t' || d.doc_id || d.appliance_id)) % 32)::text, 2, '0'), "
            "d.folded, d.folded, '{\"Subject\": \"x\"}', to_char(timestamp '2025-01-01' + "
            "d.log_index * interval '1 second', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
            "FROM documents d WHERE abs(hashtext(d.doc_id || d.appliance_id)) % 4 = 0")
        pg.execute(
            "INSERT INTO catalogue (oai_id, kind, appliance_id, org_id, fond_code, file_code, "
            "year, title, folded, meta_json, datestamp) "
            "SELECT DISTINCT ON (file_code) 'hoso/' || right(appliance_id, 12) || '-' || "
            "file_code, 'file', appliance_id, org_id, fond_code, file_code, year, "
            "'ho so ' || file_code, 'ho so ' || lower(file_code), '{}', datestamp "
            "FROM catalogue WHERE kind = 'document' ORDER BY file_code, datestamp")
        pg.execute("VACUUM ANALYZE catalogue")
        (n,) = pg.execute("SELECT count(*) FROM catalogue").fetchone()  # type: ignore[misc]
    return int(n)


def _queries(n: int, seed: int = 7) -> list[SearchQuery]:
    rnd = random.Random(seed)
    words = ["thue", "dat dai", "xay dung giao thong", "quyet dinh", "y te", "ho tich",
             "moi truong so 12", "giao duc", "khong co gi", "so 1234/qd-ubnd"]
    out = []
    for i in range(n):
        q = SearchQuery(folded=rnd.choice(words))
        if i % 4 == 1:
            q = SearchQuery(folded=q.folded, year=2016 + rnd.randrange(10))
        elif i % 4 == 2:
            q = SearchQuery(folded=q.folded, fonds=f"org{rnd.randrange(100)}", kind="document")
        elif i % 4 == 3:
            q = SearchQuery(folded="", type_code=f"{1 + rnd.randrange(32):02d}",
                            year=2016 + rnd.randrange(10))
        out.append(q)
    return out


def _raw_sql(q: SearchQuery) -> tuple[str, list[Any]]:
    """The statements catalogue_search sends for ``q``, in psycopg's spelling."""
    from sync.central.pg_storage import ts_query

    where, args = ["deleted = 0"], []
    tsq = ts_query(q.folded)
    if tsq is not None:
        where.append("words @@ to_tsquery('simple', %s)")
        args.append(tsq)
    for col, v in (("fond_code", q.fonds), ("year", q.year), ("type_code", q.type_code),
                   ("kind", q.kind)):
        if v not in (None, ""):
            where.append(f"{col} = %s")
            args.append(v)
    cond = " AND ".join(where)
    page = ("SELECT oai_id, kind, appliance_id, org_id, fond_code, file_code, doc_id, year, "
            "type_code, title, folded, meta_json, datestamp, deleted, rid FROM catalogue "
            f"WHERE {cond} ORDER BY rid DESC LIMIT %s OFFSET %s")
    return page, args


def bench_search(url: str, centre_dir: Path, queries: list[SearchQuery], srv: Server
                 ) -> dict[str, Any]:
    import psycopg

    raw: list[float] = []
    with psycopg.connect(url, autocommit=True) as pg:
        for warm in (True, False):  # a first untimed pass: every variant starts warm
            for q in queries:
                page, args = _raw_sql(q)
                t0 = time.perf_counter()
                pg.execute(b"BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                pg.execute(page.encode(), [*args, q.limit + 1, q.offset]).fetchall()
                pg.execute(b"ROLLBACK")
                if not warm:
                    raw.append(time.perf_counter() - t0)
    lib: list[float] = []
    with open_centre(centre_dir) as c:
        for warm in (True, False):
            for q in queries:
                t0 = time.perf_counter()
                with c.storage.view() as v:
                    v.catalogue_search(q)
                if not warm:
                    lib.append(time.perf_counter() - t0)
        # What the pages add once a minute: the fonds, years and types of the filters.
        t0 = time.perf_counter()
        with c.storage.view() as v:
            v.catalogue_sets()
            v.catalogue_facets()
        navigation_ms = round((time.perf_counter() - t0) * 1000, 1)
    asyncio.run(_http_search(srv.url, queries))  # warm, as the others
    http = asyncio.run(_http_search(srv.url, queries))
    out: dict[str, Any] = {"queries": len(queries), "filters_once_a_minute_ms": navigation_ms}
    for name, xs in (("raw_sql", raw), ("library", lib), ("http_json", http)):
        out[f"{name}_median_ms"] = round(statistics.median(xs) * 1000, 2)
        out[f"{name}_p95_ms"] = round(_p(xs, 0.95) * 1000, 2)
    out["library_p95_vs_raw"] = round(out["library_p95_ms"] / out["raw_sql_p95_ms"], 2)
    out["http_p95_vs_raw"] = round(out["http_json_p95_ms"] / out["raw_sql_p95_ms"], 2)
    return out


async def _http_search(url: str, queries: list[SearchQuery]) -> list[float]:
    out = []
    async with aiohttp.ClientSession() as s:
        for q in queries:
            params = {k: str(v) for k, v in (("q", q.folded), ("fonds", q.fonds),
                                              ("year", q.year), ("type", q.type_code),
                                              ("kind", q.kind)) if v not in (None, "")}
            t0 = time.perf_counter()
            async with s.get(url + "/catalogue.json", params=params) as r:
                await r.read()
                assert r.status == 200, r.status
            out.append(time.perf_counter() - t0)
    return out


def bench_harvest(url: str, centre_dir: Path, pages: int, srv: Server) -> dict[str, Any]:
    import psycopg

    size = 100
    t0 = time.perf_counter()
    n_raw = 0
    with psycopg.connect(url, autocommit=True) as pg:
        after: tuple[str, int] = ("", 0)
        for _ in range(pages):
            rows = pg.execute(
                "SELECT oai_id, kind, appliance_id, org_id, fond_code, file_code, doc_id, year, "
                "type_code, title, folded, meta_json, datestamp, deleted, rid FROM catalogue "
                "WHERE (datestamp > %s OR (datestamp = %s AND rid > %s)) "
                "ORDER BY datestamp, rid LIMIT %s", (after[0], after[0], after[1], size + 1),
            ).fetchall()
            n_raw += min(size, len(rows))
            after = (rows[size - 1][12], rows[size - 1][14])
    raw_s = time.perf_counter() - t0
    with open_centre(centre_dir) as c:
        repo = oai.Repository("bench", "http://bench/oai", "a@b.vn", "bench.vn", size)
        args: dict[str, list[str]] = {"verb": ["ListRecords"], "metadataPrefix": ["oai_dc"]}
        t0 = time.perf_counter()
        n_lib = 0
        for _ in range(pages):
            body = oai.respond(repo, c.storage.view, args, c.clock.now())
            root = etree.fromstring(body)
            n_lib += len(root.findall(".//o:record", _NS))
            tok = root.findtext(".//o:resumptionToken", namespaces=_NS)
            args = {"verb": ["ListRecords"], "resumptionToken": [tok or ""]}
        lib_s = time.perf_counter() - t0
    n_http, http_s = asyncio.run(_http_harvest(srv.url, pages))
    out = {"pages": pages, "page_size": size,
           "raw_sql_records_per_s": round(n_raw / raw_s),
           "library_xml_records_per_s": round(n_lib / lib_s),
           "http_oai_records_per_s": round(n_http / http_s)}
    out["library_vs_raw"] = round(out["library_xml_records_per_s"] /
                                  out["raw_sql_records_per_s"], 3)
    out["http_vs_raw"] = round(out["http_oai_records_per_s"] / out["raw_sql_records_per_s"], 3)
    return out


async def _http_harvest(url: str, pages: int) -> tuple[int, float]:
    n = 0
    params = {"verb": "ListRecords", "metadataPrefix": "oai_dc"}
    async with aiohttp.ClientSession() as s:
        t0 = time.perf_counter()
        for _ in range(pages):
            async with s.get(url + "/oai", params=params) as r:
                body = await r.read()
            root = etree.fromstring(body)
            n += len(root.findall(".//o:record", _NS))
            params = {"verb": "ListRecords",
                      "resumptionToken": root.findtext(".//o:resumptionToken",
                                                       namespaces=_NS) or ""}
        return n, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.bench.catalogue")
    ap.add_argument("--entries", type=int, default=10_000_000,
                    help="log entries bulk-loaded (default 10,000,000, the issue's figure)")
    ap.add_argument("--searches", type=int, default=400)
    ap.add_argument("--pages", type=int, default=200, help="ListRecords pages of 100")
    a = ap.parse_args(argv)
    reason = missing_reason()
    if reason:
        print(json.dumps({"skipped": reason}))
        return 0
    cluster = PgCluster(durable=True).start()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-catalogue-") as t:
            d = Path(t) / "centre"
            url = cluster.new_database("catalogue")
            per_app = max(16, a.entries // _SETS)
            with init_centre(d, db=url) as c, c.storage.transaction() as tx:
                for k in range(_SETS):
                    tx.add_appliance(ApplianceRecord(f"{k:064x}", f"org{k % 100}", "Xã", "o",
                                                     "pem", "software", -8,
                                                     "2025-01-01T00:00:00+07:00"))
            t0 = time.perf_counter()
            _bulk_pg(url, per_app)
            load_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            published = _publish_pg(url)
            publish_s = time.perf_counter() - t0
            head = {"entries": per_app * _SETS, "documents": per_app * _SETS // 2,
                    "published": published, "bulk_load_s": round(load_s, 1),
                    "catalogue_load_s": round(publish_s, 1)}
            print(json.dumps({"stored": head}), flush=True)
            # The bench measures the server, not its per-client limits.
            (d / "catalogue.json").write_text(json.dumps({"rates": {
                k: [1e6, 1_000_000] for k in ("page", "oai", "reader")}}))
            srv = Server(d, 1)
            try:
                search = bench_search(url, d, _queries(a.searches), srv)
                print(json.dumps({"search": search}), flush=True)
                harvest = bench_harvest(url, d, a.pages, srv)
                print(json.dumps({"harvest": harvest}), flush=True)
            finally:
                srv.stop()
    finally:
        cluster.stop()
    print(json.dumps({"stored": head, "search": search, "harvest": harvest}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
