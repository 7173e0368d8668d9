"""Foundation benchmarks, each printed as a ratio against a raw baseline measured in the same run.

Run: ``.venv/bin/python -m tests.bench`` (add ``--docs 20000`` for a quick run, or
``--only registration`` for the registration figure alone).

- registration: sealed single-document registration, durable, one per transaction, against a
  raw SQLite insert of the same row into the same table with the same durability (WAL, FULL),
  in alternating chunks; then again once the folder holds the bulk import (``registration_
  after_N``: the raw side inserts into the raw import's table of N rows).
- import: bulk import of N synthetic documents through ``luutru import`` (a child process, so
  its peak RSS is its own), against raw executemany of the same rows with the same durability.
- verify: ``verify_data_dir`` over the imported log, against reading and leaf-hashing it raw.
- search: p50/p95 of folded Vietnamese queries over the imported documents, against the same
  MATCH run raw on the FTS table.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psutil

from appliance import schema
from appliance.datadir import init_data_dir
from appliance.search import Filters, match_expression, search
from appliance.store import Store, create_tables
from appliance.verify import verify_data_dir
from tests.synth import documents, write_jsonl

ORG = ("000.21.08.H49", "Ủy ban nhân dân xã Đông Hải")


def _raw_db(path: Path) -> sqlite3.Connection:
    conn = schema.connect(str(path))
    create_tables(conn)
    return conn


def _row_params(
    doc: dict[str, Any], n: int, numbered: tuple[int, int] | None = None
) -> tuple[Any, ...]:
    """The projection row of a registered document; ``numbered`` = (Year, ArrivalNumber) in
    place of the document's own (the registrations made after the import number on)."""
    data = {k: v for k, v in doc.items() if k not in ("kind", "SignerInfo")}
    data.update(
        Direction="incoming",
        Status="registered",
        FondCode=ORG[0],
        Series="den",
        Year=int(doc["ArrivalDate"][:4]),
        TypeCode="22",
        Mode="01",
    )
    if numbered is not None:
        data.update(Year=numbered[0], ArrivalNumber=numbered[1])
    return (str(uuid.uuid4()), 1, n, *schema.row_values("document", data))


def _incoming_fields(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in ("kind", "ArrivalNumber", "ArrivalDate")}


def bench_registration(
    work: Path,
    n: int,
    *,
    raw_db: Path | None = None,
    data: Path | None = None,
    chunk: int = 200,
) -> dict[str, float]:
    """Sealed registrations against raw inserts, in alternating chunks so that both see the
    same machine (the disk is shared with other work; its fsync latency drifts by the minute).

    With ``raw_db`` and ``data`` both sides start from those (e.g. the 200,000-document import);
    otherwise from a new database and a new data folder."""
    docs = list(documents(n, seed=3))
    if raw_db is None:
        raw_db = work / "raw-reg.db"
    raw = _raw_db(raw_db)
    base = int(raw.execute("SELECT count(*) FROM documents").fetchone()[0])
    # On top of an import the raw rows take numbers after the imported years', as ours do.
    year = int(raw.execute('SELECT coalesce(max("Year"), 0) FROM documents').fetchone()[0]) + 1
    sql = schema.insert_sql("document")
    if data is None:
        data = work / "reg"
        init_data_dir(data, *ORG)
    raw_s = ours_s = 0.0
    with Store.open(data) as store:
        for start in range(0, n, chunk):
            part = range(start, min(n, start + chunk))
            t = time.perf_counter()
            for i in part:
                raw.execute("BEGIN IMMEDIATE")
                raw.execute(
                    sql, _row_params(docs[i], base + i, (year, i + 1) if base else None)
                )
                raw.execute("COMMIT")
            raw_s += time.perf_counter() - t
            t = time.perf_counter()
            for i in part:
                store.register_incoming(_incoming_fields(docs[i]))  # after its durable commit
            ours_s += time.perf_counter() - t
        t = time.perf_counter()
        store.wait_sealed(60)  # sealed: the last checkpoint covers every registration
        ours_s += time.perf_counter() - t
    raw.close()
    raw_rate, ours = n / raw_s, n / ours_s
    return {"raw_per_s": raw_rate, "sealed_per_s": ours, "ratio": ours / raw_rate}


def bench_import(work: Path, n: int) -> tuple[Path, dict[str, float]]:
    src = write_jsonl(work / "bulk.jsonl", n, seed=11)
    raw = _raw_db(work / "raw-import.db")
    sql = schema.insert_sql("document")
    t = time.perf_counter()
    batch: list[dict[str, Any]] = []
    with src.open(encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            batch.append(_row_params(json.loads(line), i))
            if len(batch) == 2000:
                raw.execute("BEGIN IMMEDIATE")
                raw.executemany(sql, batch)
                raw.execute("COMMIT")
                batch.clear()
    if batch:
        raw.execute("BEGIN IMMEDIATE")
        raw.executemany(sql, batch)
        raw.execute("COMMIT")
    raw_rate = n / (time.perf_counter() - t)
    raw.close()
    data = work / "bulk"
    init_data_dir(data, *ORG)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = psutil.Popen(
        [sys.executable, "-m", "luutru", "import", "--data", str(data), str(src)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    peak = 0
    while proc.poll() is None:
        try:
            peak = max(peak, proc.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    elapsed = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"import failed with exit code {proc.returncode}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    rate = n / elapsed
    return data, {
        "raw_per_s": raw_rate,
        "docs_per_s": rate,
        "ratio": rate / raw_rate,
        "peak_rss_mb": peak / 2**20,
        # The import's own CPU time: on a shared machine the wall-clock rate also counts the
        # time other work held the cores.
        "cpu_s": cpu,
        "wall_s": elapsed,
    }


def bench_verify(data: Path) -> dict[str, float]:
    conn = sqlite3.connect(data / "luutru.db")
    t = time.perf_counter()
    count = 0
    for (entry,) in conn.execute("SELECT entry FROM log ORDER BY idx"):
        hashlib.sha256(b"\x00" + entry).digest()
        count += 1
    raw_rate = count / (time.perf_counter() - t)
    conn.close()
    t = time.perf_counter()
    rep = verify_data_dir(data)
    elapsed = time.perf_counter() - t
    if not rep.ok:
        raise SystemExit(f"verify found problems: {rep.findings[:3]}")
    rate = rep.entries / elapsed
    return {
        "raw_per_s": raw_rate,
        "entries_per_s": rate,
        "ratio": rate / raw_rate,
        "entries": rep.entries,
    }


QUERIES = [
    "dang ky dat dai",
    "quyết định giao chỉ tiêu",
    "PHONG CHONG THIEN TAI",
    "tiêm chủng",
    "ho ngheo",
    "cải cách hành chính",
    "quyet toan ngan sach",
    "nong thon moi",
    "trich luc khai sinh",
    "bầu cử",
    "đơn vị hành chính",
    "chay rung",
    "V/v",
    "SNV",
    "Sở Tài chính",
    "dot 42",
]


def bench_search(data: Path, rounds: int = 20) -> dict[str, float]:
    rnd = random.Random(5)
    with Store.open(data, readonly=True) as store:
        conn = store.reader()
        raw_times, times = [], []
        for _ in range(rounds):
            for q in QUERIES:
                expr = match_expression(q)
                t = time.perf_counter()
                conn.execute(
                    "SELECT rowid FROM document_fts WHERE document_fts MATCH ? "
                    "ORDER BY rowid DESC LIMIT 50",
                    (expr,),
                ).fetchall()
                raw_times.append(time.perf_counter() - t)
                filters = rnd.choice(
                    [
                        Filters(),
                        Filters(year=rnd.randint(2006, 2025)),
                        Filters(type_name="Công văn"),
                        Filters(direction="incoming"),
                    ]
                )
                t = time.perf_counter()
                search(conn, q, filters, limit=50)
                times.append(time.perf_counter() - t)

    def p(xs: list[float], q: float) -> float:
        return statistics.quantiles(xs, n=100)[int(q) - 1] * 1000

    return {
        "raw_p95_ms": p(raw_times, 95),
        "p50_ms": p(times, 50),
        "p95_ms": p(times, 95),
        "ratio_p95": p(times, 95) / max(p(raw_times, 95), 1e-9),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--docs", type=int, default=200_000, help="documents for import/verify/search")
    ap.add_argument("--registrations", type=int, default=2000)
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument(
        "--only",
        choices=["registration", "all"],
        default="all",
        help="registration: only the registration figure (new database; no import)",
    )
    args = ap.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="luutru-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"docs": args.docs, "cpu": os.cpu_count()}
    results["registration"] = bench_registration(work, args.registrations)
    print("registration", json.dumps(results["registration"]), flush=True)
    if args.only == "registration":
        return 0
    data, results["import"] = bench_import(work, args.docs)
    print("import", json.dumps(results["import"]), flush=True)
    results["verify"] = bench_verify(data)
    print("verify", json.dumps(results["verify"]), flush=True)
    results["search"] = bench_search(data)
    print("search", json.dumps(results["search"]), flush=True)
    # The same registrations once the folder holds the import (and the raw table its rows).
    key = f"registration_after_{args.docs}"
    results[key] = bench_registration(
        work, args.registrations, raw_db=work / "raw-import.db", data=data
    )
    print(key, json.dumps(results[key]), flush=True)
    # Search again with the last registrations' rows still pending a merge into FTS5.
    results["search_with_pending"] = bench_search(data)
    print("search_with_pending", json.dumps(results["search_with_pending"]), flush=True)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
