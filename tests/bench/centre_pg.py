"""The centre on SQLite and PostgreSQL side by side, each printed against a raw baseline.

Run: ``.venv/bin/python -m tests.bench.centre_pg`` (``--quick`` for a smaller run,
``--appliances N`` to scale the national day, ``--only intake|national``).

- intake: real ``luutru central serve --workers W`` processes on loopback; simulated
  appliances send their logs in batches (each appliance in order, many at once). Entries/s and
  p50/p95 batch latency for SQLite (1 worker; 2 is refused) and PostgreSQL (1 and 2 workers),
  against a raw insert of the same (appliance, index, leaf, entry) rows into the same kind of
  database with the same durability and one commit per batch (SQLite WAL + synchronous=FULL,
  executemany; PostgreSQL fsync + synchronous_commit on, COPY).
- national: a simulated national day: N appliances (default 3,300) each enrol, send a day's
  entries (default 50, one small content file each), upload the file and ask for their status,
  64 at a time; time until every appliance is reconciled (all entries accepted, no content
  missing), then the report's time and province-wide search latency on the result.

The PostgreSQL cluster is a throwaway one (tests/sync/pg.py) with durability on. Everything runs
on one machine: the load generator competes with the workers for the same cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from sync import wire
from sync.central.centre import init_centre, open_centre
from sync.central.enrolment import enrol, issue_token
from sync.central.intake import Intake
from sync.central.report import build_report
from tests.bench.sync import SimAppliance, _one_appliance, _sim
from tests.sync.pg import PgCluster, missing_reason
from tests.sync.procs import LUUTRU, REPO, free_port

CBOR = "application/cbor"


def _p(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


class Server:
    """`luutru central serve --workers W` as a child process."""

    def __init__(self, data: Path, workers: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [*LUUTRU, "central", "serve", "--data", str(data), "--port", str(self.port),
             "--workers", str(workers)],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "listening" not in line:
            raise RuntimeError(f"the centre did not start: {line!r}")
        # Workers open their storage after the socket is bound: wait until /healthz answers.
        import urllib.request

        for _ in range(300):
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=5):
                    break
            except OSError:
                time.sleep(0.05)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)


def _db(backend: str, cluster: PgCluster | None) -> str | None:
    if backend == "sqlite":
        return None
    assert cluster is not None
    return cluster.new_database("bench")


# -- intake ---------------------------------------------------------------------------------


async def _send_logs(url: str, logs: list[list[bytes]], concurrency: int) -> list[float]:
    latencies: list[float] = []
    sem = asyncio.Semaphore(concurrency)
    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn) as s:

        async def one(raws: list[bytes]) -> None:
            async with sem:
                for raw in raws:
                    t0 = time.perf_counter()
                    async with s.post(url + "/v1/batch", data=raw,
                                      headers={"Content-Type": CBOR}) as r:
                        await r.read()
                        if r.status != 200:
                            raise RuntimeError(f"batch refused: HTTP {r.status}")
                    latencies.append(time.perf_counter() - t0)

        await asyncio.gather(*(one(r) for r in logs))
    return latencies


def _fleet(tmp: Path, tag: str, apps: int, entries: int, blob: int = 0) -> list[SimAppliance]:
    out = []
    for i in range(apps):
        a = _sim(tmp, f"{tag}{i}", f"000.{i // 100 % 100:02d}.{i % 100:02d}.H{49 + i // 10000}")
        a.grow(entries, seed=1000 + i, blob=os.urandom(blob) if blob else None)
        out.append(a)
    return out


def bench_intake(
    tmp: Path, backend: str, workers: int, sims: list[SimAppliance], per_batch: int,
    cluster: PgCluster | None,
) -> dict[str, Any]:
    d = tmp / f"intake-{backend}-{workers}"
    c = init_centre(d, db=_db(backend, cluster))
    intake = Intake(c)
    for a in sims:
        a.seq = 0
        ans = enrol(intake, a.enrol_request(issue_token(c, a.org_id)))
        assert ans.outcome is wire.Outcome.ENROLLED
    c.close()
    n = len(sims[0].entries)
    logs = [[a.batch(s, min(n, s + per_batch)) for s in range(0, n, per_batch)] for a in sims]
    srv = Server(d, workers)
    try:
        t0 = time.perf_counter()
        lat = asyncio.run(_send_logs(srv.url, logs, concurrency=16))
        wall = time.perf_counter() - t0
    finally:
        srv.stop()
    total = n * len(sims)
    with open_centre(d) as c2, c2.storage.view() as v:
        held = sum(x.entries for x in v.all_counts().values())
    assert held == total, (held, total)
    return {
        "backend": backend,
        "workers": workers,
        "appliances": len(sims),
        "entries": total,
        "batch": per_batch,
        "entries_per_s": round(total / wall),
        "batch_p50_ms": round(_p(lat, 0.5) * 1000, 1),
        "batch_p95_ms": round(_p(lat, 0.95) * 1000, 1),
    }


def raw_baseline(
    tmp: Path, backend: str, sims: list[SimAppliance], per_batch: int, cluster: PgCluster | None
) -> float:
    """Entries/s of a bare insert of the same rows, one commit per batch."""
    rows = [
        (a.key.kid.hex(), i, a.leaves[i], a.entries[i]) for a in sims for i in range(len(a.entries))
    ]
    chunks = [rows[s : s + per_batch] for s in range(0, len(rows), per_batch)]
    if backend == "sqlite":
        conn = sqlite3.connect(str(tmp / "raw.db"), isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("CREATE TABLE entries (appliance_id TEXT, idx INTEGER, leaf BLOB, "
                     "entry BLOB, PRIMARY KEY (appliance_id, idx)) WITHOUT ROWID")
        t0 = time.perf_counter()
        for ch in chunks:
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO entries VALUES (?, ?, ?, ?)", ch)
            conn.execute("COMMIT")
        dt = time.perf_counter() - t0
        conn.close()
        return len(rows) / dt
    import psycopg

    assert cluster is not None
    with psycopg.connect(cluster.new_database("raw"), autocommit=True) as pg:
        pg.execute("CREATE TABLE entries (appliance_id TEXT, idx BIGINT, leaf BYTEA, "
                   "entry BYTEA, PRIMARY KEY (appliance_id, idx))")
        t0 = time.perf_counter()
        for ch in chunks:
            with pg.transaction(), pg.cursor() as cur, cur.copy(
                "COPY entries FROM STDIN"
            ) as cp:
                for r in ch:
                    cp.write_row(r)
        dt = time.perf_counter() - t0
    return len(rows) / dt


# -- national day ---------------------------------------------------------------------------


async def _national(url: str, sims: list[SimAppliance], toks: list[str], key: Any) -> list[float]:
    sem = asyncio.Semaphore(64)

    async def one(a: SimAppliance, t: str) -> float:
        async with sem:
            return await _one_appliance(url, a, t, key)

    return list(await asyncio.gather(*(one(a, t) for a, t in zip(sims, toks, strict=True))))


def bench_national(
    tmp: Path, backend: str, workers: int, sims: list[SimAppliance], cluster: PgCluster | None
) -> dict[str, Any]:
    d = tmp / f"national-{backend}-{workers}"
    with init_centre(d, db=_db(backend, cluster)) as c:
        toks = [issue_token(c, a.org_id) for a in sims]
        key = c.public_key
    for a in sims:
        a.seq = 0
    srv = Server(d, workers)
    try:
        t0 = time.perf_counter()
        times = asyncio.run(_national(srv.url, sims, toks, key))
        wall = time.perf_counter() - t0
    finally:
        srv.stop()
    n = len(sims[0].entries)
    with open_centre(d) as c, c.storage.view() as v:
        counts = v.all_counts()
        reconciled = sum(
            1 for r in v.appliances()
            if r.accepted_size == r.claimed_size == n and counts[r.id].content_missing == 0
        )
    t0 = time.perf_counter()
    with open_centre(d) as c, c.storage.view() as v:
        rep = build_report(v, "bench", c.origin)
    report_s = time.perf_counter() - t0
    search: list[float] = []
    hits = 0
    with open_centre(d) as c:
        for q in ("quyet dinh", "ubnd", "dat dai", "cong van ve", "to trinh"):
            with c.storage.view() as v:
                t0 = time.perf_counter()
                hits += len(v.search_documents(q, limit=50))
                search.append(time.perf_counter() - t0)
    return {
        "backend": backend,
        "workers": workers,
        "appliances": len(sims),
        "entries_each": n,
        "reconciled": reconciled,
        "time_to_reconcile_s": round(wall, 1),
        "entries_per_s": round(len(sims) * n / wall),
        "per_appliance_p95_s": round(_p(times, 0.95), 2),
        "report_s": round(report_s, 2),
        "report_rows": len(rep.rows),
        "search_median_ms": round(statistics.median(search) * 1000, 1),
        "search_hits": hits,
        "ok": reconciled == len(sims) and rep.totals.entries == len(sims) * n,
    }


# -- report and search with many entries stored ---------------------------------------------

_TOPICS = ("dat dai", "xay dung", "giao thong", "y te", "giao duc", "thue", "ho tich", "moi truong")


def _bulk_sqlite(path: Path, apps: list[str], per_app: int) -> None:
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("BEGIN")
    topics = " ".join(f"WHEN {k} THEN '{t}'" for k, t in enumerate(_TOPICS))
    for a in apps:
        conn.execute(
            "WITH RECURSIVE g(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM g WHERE x < ?) "
            "INSERT INTO entries (appliance_id, idx, leaf, entry) "
            "SELECT ?, x, randomblob(32), NULL FROM g",
            (per_app - 1, a),
        )
        conn.execute(
            "WITH RECURSIVE g(x) AS (SELECT 0 UNION ALL SELECT x + 2 FROM g WHERE x < ?) "
            "INSERT INTO documents (appliance_id, org_id, doc_id, version, log_index, year, "
            "folded, data_json) SELECT ?, 'org' || substr(?, 1, 4), 'd' || x, 1, x, 2025, "
            f"'quyet dinh ve viec ' || CASE x / 2 % {len(_TOPICS)} {topics} END "
            "|| ' so ' || x || '/qd-ubnd', '{}' FROM g",
            (per_app - 2, a, a),
        )
        conn.execute(
            "WITH RECURSIVE g(x) AS (SELECT 0 UNION ALL SELECT x + 10 FROM g WHERE x < ?) "
            "INSERT INTO content_refs (appliance_id, sha256, size, first_idx) "
            "SELECT ?, lower(hex(randomblob(32))), 2048, x FROM g",
            (per_app - 10, a),
        )
    conn.execute(
        "INSERT INTO blobs (sha256, size, stored_at) SELECT sha256, size, 'x' FROM content_refs "
        "WHERE first_idx % 100 != 0"
    )
    conn.execute("COMMIT")
    conn.close()


def _bulk_pg(url: str, per_app: int) -> None:
    import psycopg

    topics = "ARRAY[" + ", ".join(f"'{t}'" for t in _TOPICS) + "]"
    with psycopg.connect(url, autocommit=True) as pg:
        pg.execute(
            "INSERT INTO entries (appliance_id, idx, leaf, entry) SELECT a.id, g, "
            "sha256(int8send(g) || convert_to(a.id, 'UTF8')), NULL FROM appliances a, "
            "generate_series(0, %s) g",
            (per_app - 1,),
        )
        pg.execute(
            "INSERT INTO documents (appliance_id, org_id, doc_id, version, log_index, year, "
            "folded, data_json) SELECT a.id, a.org_id, 'd' || g, 1, g, 2025, "
            f"'quyet dinh ve viec ' || ({topics})[1 + mod(g / 2, {len(_TOPICS)})] "
            "|| ' so ' || g || '/qd-ubnd', '{}' FROM appliances a, "
            "generate_series(0, %s, 2) g",
            (per_app - 1,),
        )
        pg.execute(
            "INSERT INTO content_refs (appliance_id, sha256, size, first_idx) SELECT a.id, "
            "encode(sha256(int8send(g) || convert_to(a.id, 'UTF8')), 'hex'), 2048, g "
            "FROM appliances a, generate_series(0, %s, 10) g",
            (per_app - 1,),
        )
        pg.execute(
            "INSERT INTO blobs (sha256, size, stored_at) SELECT sha256, size, 'x' "
            "FROM content_refs WHERE mod(first_idx, 100) != 0"
        )
        pg.execute("VACUUM ANALYZE")


def bench_stored(
    tmp: Path, backend: str, total: int, apps: int, cluster: PgCluster | None
) -> dict[str, Any]:
    from sync.central.storage import ApplianceRecord

    d = tmp / f"stored-{backend}"
    per_app = max(10, total // apps)
    ids = [f"{i:064x}" for i in range(apps)]
    with init_centre(d, db=_db(backend, cluster)) as c, c.storage.transaction() as tx:
        for k, a in enumerate(ids):
            tx.add_appliance(ApplianceRecord(a, f"org{k % 100}", "Xã", "o", "pem", "software",
                                             -8, "2025-01-01T00:00:00+07:00"))
        db = c.config.db
    t0 = time.perf_counter()
    if backend == "sqlite":
        _bulk_sqlite(d / "centre.db", ids, per_app)
    else:
        _bulk_pg(db, per_app)
    load_s = time.perf_counter() - t0
    with open_centre(d) as c:
        times = []
        for _ in range(3):
            with c.storage.view() as v:
                t0 = time.perf_counter()
                rep = build_report(v, "bench", c.origin)
                times.append(time.perf_counter() - t0)
        assert rep.totals.entries == per_app * apps, rep.totals.entries
        search: dict[str, float] = {}
        for q in ("thue", "quyet dinh dat", "so 1234", "ho tich so 99", "khong co gi"):
            with c.storage.view() as v:
                t0 = time.perf_counter()
                v.search_documents(q, limit=50)
                search[q] = round((time.perf_counter() - t0) * 1000, 1)
    return {
        "backend": backend,
        "appliances": apps,
        "entries": per_app * apps,
        "documents": rep.totals.documents,
        "bulk_load_s": round(load_s, 1),
        "report_s": round(statistics.median(times), 2),
        "search_ms": search,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.bench.centre_pg")
    ap.add_argument("--quick", action="store_true", help="a small run (about a minute)")
    ap.add_argument("--appliances", type=int, default=None,
                    help="national day size (default 3300; 300 with --quick)")
    ap.add_argument("--entries", type=int, default=50, help="entries per appliance per day")
    ap.add_argument("--only", choices=("intake", "national", "stored"), default=None)
    ap.add_argument("--stored", type=int, default=None,
                    help="entries bulk-loaded for report/search latency (default 1,000,000; "
                    "100,000 with --quick; the issue's figure is 10,000,000)")
    ap.add_argument("--national-backends", default="postgresql,sqlite")
    a = ap.parse_args(argv)
    reason = missing_reason()
    if reason:
        print(json.dumps({"skipped": reason}))
        return 0
    cluster = PgCluster(durable=True).start()
    results: dict[str, Any] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-centre-") as t:
            tmp = Path(t)
            if a.only in (None, "intake"):
                apps, n, per = (8, 400, 50) if a.quick else (24, 1000, 50)
                sims = _fleet(tmp, "in", apps, n)
                rows = []
                for backend in ("sqlite", "postgresql"):
                    raw = raw_baseline(tmp, backend, sims, per, cluster)
                    for w in (1, 2):
                        if backend == "sqlite" and w == 2:
                            rows.append({"backend": backend, "workers": 2,
                                         "refused": "SQLite has one writer"})
                            continue
                        r = bench_intake(tmp, backend, w, sims, per, cluster)
                        r["raw_insert_entries_per_s"] = round(raw)
                        r["ratio_vs_raw"] = round(r["entries_per_s"] / raw, 3)
                        rows.append(r)
                        print(json.dumps({"intake": r}), flush=True)
                results["intake"] = rows
            if a.only in (None, "national"):
                count = a.appliances or (300 if a.quick else 3300)
                t0 = time.perf_counter()
                sims = _fleet(tmp, "nat", count, a.entries, blob=2048)
                print(json.dumps({"national_setup_s": round(time.perf_counter() - t0, 1)}),
                      flush=True)
                rows = []
                for backend in a.national_backends.split(","):
                    w = 2 if backend == "postgresql" else 1
                    r = bench_national(tmp, backend, w, sims, cluster)
                    rows.append(r)
                    print(json.dumps({"national": r}), flush=True)
                results["national"] = rows
            if a.only in (None, "stored"):
                total = a.stored or (100_000 if a.quick else 1_000_000)
                rows = []
                for backend in ("sqlite", "postgresql"):
                    r = bench_stored(tmp, backend, total, 3300, cluster)
                    rows.append(r)
                    print(json.dumps({"stored": r}), flush=True)
                results["stored"] = rows
    finally:
        cluster.stop()
    print(json.dumps(results, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
