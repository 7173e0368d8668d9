"""Web UI benchmark: `luutru serve` over N documents, 20 concurrent clients on loopback.

Run: ``.venv/bin/python -m tests.bench.web`` (``--docs 20000`` for a quick run; ``--data DIR``
reuses a folder made by an earlier run).

- start: from spawning ``luutru serve`` to the first answered /healthz (includes Python start).
- idle RSS of the serve process, 3 s after it answered.
- latency of the search page and the register page (HTML, token auth, real queries) with
  ``--clients`` concurrent clients, twice: closed loop (no think time: the server saturated)
  and paced (each client pauses ``--think`` s on average between requests, as clerks do),
  printed as p50/p95/p99 and as the ratio of their p95 to the p95 of /healthz (the trivial
  page) measured in the same run under the same load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from appliance.datadir import init_data_dir
from tests.synth import TOPICS, write_jsonl
from tests.web.server import luutru, serve

ORG = ("000.21.08.H49", "Ủy ban nhân dân xã Đông Hải")
QUERIES = [" ".join(t.split()[:3]) for t in TOPICS] + ["quyet dinh", "cong van so", "ke hoach"]


def make_data(work: Path, n: int) -> Path:
    data = work / "appliance"
    if (data / "appliance.json").exists():
        return data
    src = write_jsonl(work / "docs.jsonl", n, seed=21)
    init_data_dir(data, *ORG)
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "appliance", "import", "--data", str(data),
                           str(src)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"import failed: {proc.stderr[-2000:]}")
    print(f"imported {n} documents in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    return data


def index_history(data: Path) -> float | None:
    """Let a first `serve` build the history index (a one-time cost on a new data folder);
    returns how long that took, or None if it was already built."""
    import sqlite3

    db = sqlite3.connect(f"file:{data / 'luutru.db'}?mode=ro", uri=True)

    def behind() -> bool:
        try:
            done = db.execute("SELECT max(idx) FROM web_log_index").fetchone()[0]
        except sqlite3.OperationalError:
            return True
        size = db.execute("SELECT max(idx) FROM log").fetchone()[0]
        return done is None or done < size

    if not behind():
        return None
    t = time.perf_counter()
    with serve(data):
        while behind():
            time.sleep(0.2)
    return time.perf_counter() - t


def _fold_query(q: str) -> str:
    from appliance.text import fold

    return "+".join(fold(q).split())


async def load(base: str, token: str, urls: list[str], clients: int, seconds: float,
               think: float = 0.0) -> list[float]:
    """Clients each picking a URL at random; returns latencies in ms. ``think`` = 0: closed
    loop (the next request as soon as the answer is in: the server's saturation); > 0: each
    client pauses a random time of that mean between requests (clerks at work)."""
    import aiohttp

    lat: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    conn = aiohttp.TCPConnector(limit=clients)
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(base, connector=conn, headers=headers) as session:

        async def client(seed: int) -> None:
            nonlocal errors
            rnd = random.Random(seed)
            while time.perf_counter() < deadline:
                url = rnd.choice(urls)
                t = time.perf_counter()
                async with session.get(url) as resp:
                    await resp.read()
                    if resp.status != 200:
                        errors += 1
                lat.append((time.perf_counter() - t) * 1000)
                if think:
                    await asyncio.sleep(rnd.expovariate(1 / think))

        await asyncio.gather(*(client(i) for i in range(clients)))
    if errors:
        raise SystemExit(f"{errors} requests failed")
    return lat


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def summary(lat: list[float], seconds: float) -> dict[str, float]:
    return {
        "requests": len(lat),
        "per_s": round(len(lat) / seconds, 1),
        "p50_ms": round(statistics.median(lat), 2),
        "p95_ms": round(pct(lat, 0.95), 2),
        "p99_ms": round(pct(lat, 0.99), 2),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--docs", type=int, default=200_000)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--work", type=Path, default=None, help="reuse this folder")
    ap.add_argument("--think", type=float, default=1.0,
                    help="mean pause of each client between requests in the paced run (s)")
    args = ap.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="luutru-bench-web-"))
    work.mkdir(parents=True, exist_ok=True)
    data = make_data(work, args.docs)
    users = luutru("user", "list", "--data", str(data), "--json").stdout
    if '"bench"' not in users:
        added = luutru("user", "add", "--data", str(data), "--username", "bench", "--role",
                       "clerk", "--password-stdin", stdin="mật khẩu đo hiệu năng\n")
        assert added.returncode == 0, added.stderr
    token = luutru("user", "token", "--data", str(data), "--username", "bench").stdout.strip()
    results: dict[str, Any] = {"docs": args.docs, "clients": args.clients,
                               "cpu": psutil.cpu_count()}
    indexed = index_history(data)
    if indexed is not None:
        results["first_start_history_index_s"] = round(indexed, 1)
    with serve(data) as srv:
        results["start_to_first_answer_s"] = round(srv.first_answer - srv.started, 3)
        time.sleep(3)
        results["idle_rss_mb"] = round(psutil.Process(srv.proc.pid).memory_info().rss / 2**20, 1)
        years = json.loads(luutru("search", "--data", str(data), "--json", "--limit", "1").stdout
                           or "{}").get("Year", 2025)
        pages = {
            "healthz": ["/healthz"],
            "search": [f"/search?q={_fold_query(q)}" for q in QUERIES]
            + [f"/search?q={_fold_query(q)}&direction=incoming&year={years}" for q in QUERIES],
            "register": [f"/registers/incoming/{y}?page={p}"
                         for y in range(2006, 2026) for p in (1, 2, 5, 10, 50, 100)],
        }
        asyncio.run(load(srv.url, token, pages["search"] + pages["register"], args.clients, 2))
        for name, urls in pages.items():
            lat = asyncio.run(load(srv.url, token, urls, args.clients, args.seconds))
            results[name] = summary(lat, args.seconds)
        for name, urls in pages.items():
            lat = asyncio.run(load(srv.url, token, urls, args.clients, args.seconds, args.think))
            results[f"{name}_paced"] = summary(lat, args.seconds)
        results["busy_rss_mb"] = round(psutil.Process(srv.proc.pid).memory_info().rss / 2**20, 1)
    for suffix in ("", "_paced"):
        base = results[f"healthz{suffix}"]["p95_ms"]
        for name in ("search", "register"):
            r = results[f"{name}{suffix}"]
            r["p95_ratio_to_healthz"] = round(r["p95_ms"] / base, 2)
    print(json.dumps(results, ensure_ascii=False, indent=2))
    targets = {
        "search p95 ≤ 50 ms (closed loop)": results["search"]["p95_ms"] <= 50,
        "register p95 ≤ 50 ms (closed loop)": results["register"]["p95_ms"] <= 50,
        f"search p95 ≤ 50 ms (paced, {args.think} s)": results["search_paced"]["p95_ms"] <= 50,
        f"register p95 ≤ 50 ms (paced, {args.think} s)":
            results["register_paced"]["p95_ms"] <= 50,
        "idle RSS ≤ 80 MB": results["idle_rss_mb"] <= 80,
        "start ≤ 1.5 s": results["start_to_first_answer_s"] <= 1.5,
    }
    for k, ok in targets.items():
        print(f"{'met' if ok else 'MISSED'}: {k}")
    print(f"data folder: {data}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
