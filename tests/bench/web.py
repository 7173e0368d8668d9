"""Web UI benchmark: `luutru serve` over N documents, 20 concurrent clients on loopback.

Run: ``.venv/bin/python -m tests.bench.web`` (``--docs 20000`` for a quick run; ``--work DIR``
reuses the folder an earlier run made).

Every page is loaded as a clerk does, signed in through /signin with a session cookie:

- ``search``: GET /search?q=… with the folded first words of real subjects (and three common
  phrases); half of the URLs also filter by direction and year.
- ``register``: GET /registers/incoming/<year>?page=<p> — the Sổ đăng ký văn bản đến on
  screen (its cover data and 50 rows), years 2006–2025, pages 1 to 200 (200: the newest rows).
- ``register_form``: GET /documents/incoming/new — the form an incoming document is
  registered with.
- ``register_post``: POST /documents/incoming — registering one incoming document (a new
  number each time, so no duplicate warning): a durable write, answered (303) once the WAL is
  fsynced; the sealer signs the new log head after the answer.
- ``tasks``: GET /tasks — the handler's "My work" (Việc của tôi), signed in as a chuyên viên
  (role handler) to whom the leader has directed ``--tasks`` văn bản đến (200 by default, due
  over the next month), among every document of the folder.
- ``healthz``: GET /healthz, the trivial page, the baseline the ratios are taken against.

Each page is measured twice with ``--clients`` clients:

- closed loop: no pause, the next request as soon as the answer is in (the server saturated).
  It uses wrk (Debian's, in C) when it is installed, so that the load generator takes little
  of the CPU the server runs on; else (or with ``--client python``) the Python client.
- paced: each client pauses a random time (exponential, mean ``--think`` s) between requests,
  as clerks at work do, and starts at a random moment within its first pause: clerks do not
  click in step (all clients firing at t = 0 made a burst that was most of the p95).

Reported per page: requests, per second, p50/p95/p99 in ms, the CPU the server and the load
generator spent per request (ms), and the p95 as a ratio to /healthz's in the same load.
Also: the time from spawning ``serve`` to its first answer, and its idle and busy RSS.
The registrations run last: they add documents to the data folder (and a new documents
version, which the register pages' cache follows).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import psutil

from appliance.datadir import init_data_dir
from tests.synth import TOPICS, write_jsonl
from tests.web.server import luutru, serve

ORG = ("000.21.08.H49", "Ủy ban nhân dân xã Đông Hải")
QUERIES = [" ".join(t.split()[:3]) for t in TOPICS] + ["quyet dinh", "cong van so", "ke hoach"]
USER, PASSWORD = "bench", "mật khẩu đo hiệu năng"
HANDLER = "bench.cv"  # the handler whose task list is measured (same password)
_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


def make_data(work: Path, n: int) -> Path:
    data = work / "appliance"
    if (data / "appliance.json").exists():
        return data
    src = write_jsonl(work / "docs.jsonl", n, seed=21)
    init_data_dir(data, *ORG)
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "luutru", "import", "--data", str(data),
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


# -- signing in --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Session:
    cookie: str  # the Cookie header a signed-in browser sends
    csrf: str  # the session's CSRF token, as the registration form carries it


async def sign_in(base: str, user: str = USER) -> Session:
    """Sign in through the real form, as a browser does."""
    import aiohttp

    jar = aiohttp.CookieJar(unsafe=True)  # keep cookies of 127.0.0.1
    async with aiohttp.ClientSession(base, cookie_jar=jar) as http:
        async with http.get("/signin") as r:
            m = _CSRF.search(await r.text())
            assert m, "no CSRF token on /signin"
        form = {"username": user, "password": PASSWORD, "csrf_token": m.group(1), "next": "/"}
        async with http.post("/signin", data=form, allow_redirects=False) as r:
            if r.status != 303:
                raise SystemExit(f"sign-in failed: {r.status} {(await r.text())[:500]}")
        async with http.get("/" if user == HANDLER else "/documents/incoming/new") as r:
            m = _CSRF.search(await r.text())
            assert r.status == 200 and m, "the first page did not load"
        cookie = "; ".join(f"{c.key}={c.value}" for c in jar)
    return Session(cookie, m.group(1))


# -- what is requested -------------------------------------------------------------------------

@dataclass(frozen=True)
class Page:
    """GETs of ``urls`` at random, or (with ``post``) POSTs of a form made per request."""

    urls: list[str]
    post: Callable[[str], dict[str, str]] | None = None  # request tag -> form fields
    expect: int = 200


def registration(csrf: str) -> Callable[[str], dict[str, str]]:
    # A notation of its own for each run: no registration repeats one of an earlier run.
    notation = "BENCH-" + "".join(random.choice("ABCDEFGHKLMNPQRSTUVXY") for _ in range(8))

    def form(tag: str) -> dict[str, str]:
        return {
            "csrf_token": csrf, "TypeName": "Công văn", "CodeNumber": tag,
            "CodeNotation": notation, "IssuedDate": "2025-09-03",
            "OrganName": "Ủy ban nhân dân huyện Đo Lường", "PageAmount": "1",
            "Subject": f"V/v đo hiệu năng đăng ký văn bản đến số {tag}",
        }

    return form


def assign_tasks(data: Path, n: int) -> int:
    """The leader directs ``n`` of the newest văn bản đến to HANDLER (due within a month),
    through the library, as the leader's form does; returns how many the handler has."""
    import datetime as dt

    from appliance import handling
    from appliance.store import Store

    store = Store.open(data)
    try:
        conn = store.reader()
        have = len(handling.tasks(conn, dt.date.today(), HANDLER))
        rows = conn.execute(
            "SELECT id FROM documents WHERE \"Direction\" = 'incoming' AND \"Handling\" IS NULL "
            "AND \"Status\" = 'registered' ORDER BY \"ArrivalDate\" DESC LIMIT ?",
            (max(0, n - have),)).fetchall()
        today = dt.date.today()
        for k, (doc_id,) in enumerate(rows):
            due = today + dt.timedelta(days=1 + k % 30)
            handling.direct(store, doc_id, "Giao chuyên viên xử lý, báo cáo kết quả", HANDLER,
                            due=due, actor=USER)
        return have + len(rows)
    finally:
        store.close()


def pages(year: int, csrf: str) -> dict[str, Page]:
    return {
        "healthz": Page(["/healthz"]),
        "search": Page([f"/search?q={_fold_query(q)}" for q in QUERIES]
                       + [f"/search?q={_fold_query(q)}&direction=incoming&year={year}"
                          for q in QUERIES]),
        "register": Page([f"/registers/incoming/{y}?page={p}" for y in range(2006, 2026)
                          for p in (1, 2, 5, 10, 50, 100, 200)]),
        "register_form": Page(["/documents/incoming/new"]),
        "register_post": Page(["/documents/incoming"], registration(csrf), 303),
        "tasks": Page(["/tasks"]),
    }


# -- the Python load generator -----------------------------------------------------------------

async def load(base: str, session: Session, page: Page, clients: int, seconds: float,
               think: float = 0.0, seed: int = 0) -> list[float]:
    """Clients each requesting ``page`` (a URL at random); returns latencies in ms.
    ``think`` = 0: closed loop; > 0: each client starts at a random moment within one mean
    pause and pauses a random time of that mean between requests."""
    got = await load_mix(base, session, {"page": (page, 1.0)}, clients, seconds, think, seed)
    return got["page"]


async def load_mix(base: str, session: Session, mix: dict[str, tuple[Page, float]],
                   clients: int, seconds: float, think: float = 0.0, seed: int = 0,
                   ) -> dict[str, list[float]]:
    """``load`` with each request's page drawn from ``mix`` (name -> page, weight); returns
    the latencies of each page."""
    import aiohttp

    lat: dict[str, list[float]] = {name: [] for name in mix}
    names, weights = list(mix), [w for _, w in mix.values()]
    errors: list[str] = []
    headers = {"Cookie": session.cookie}
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(base, connector=connector, headers=headers,
                                     cookie_jar=aiohttp.DummyCookieJar()) as http:
        deadline = time.perf_counter() + seconds

        async def client(n: int) -> None:
            rnd = random.Random(seed * 1000 + n)
            if think:
                await asyncio.sleep(rnd.uniform(0, think))
            i = 0
            while time.perf_counter() < deadline:
                i += 1
                name = names[0] if len(names) == 1 else rnd.choices(names, weights)[0]
                page = mix[name][0]
                url = rnd.choice(page.urls)
                t = time.perf_counter()
                if page.post is None:
                    req = http.get(url, allow_redirects=False)
                else:
                    tag = f"8{seed % 10}{n:02d}{i:06d}"  # wrk's begin with 7
                    req = http.post(url, data=page.post(tag), allow_redirects=False)
                async with req as resp:
                    body = await resp.read()
                    if resp.status != page.expect:
                        errors.append(f"{resp.status} {url}: {body[:300]!r}")
                lat[name].append((time.perf_counter() - t) * 1000)
                if think:
                    await asyncio.sleep(rnd.expovariate(1 / think))

        await asyncio.gather(*(client(i) for i in range(clients)))
    if errors:
        raise SystemExit(f"{len(errors)} requests failed, e.g. {errors[0]}")
    return lat


# -- wrk ---------------------------------------------------------------------------------------

WRK_SCRIPT = r"""
local urls = {%(urls)s}
local method = "%(method)s"
local headers = {["Cookie"] = "%(cookie)s"}
local body_fmt = %(body)s
local counter = 0
local next_tid = 0
function setup(thread)
  next_tid = next_tid + 1
  thread:set("tid", next_tid)
end
function init(args)
  math.randomseed(%(seed)d + (tid or 0))
  if method == "POST" then
    headers["Content-Type"] = "application/x-www-form-urlencoded"
  end
end
function request()
  local url = urls[math.random(#urls)]
  if method == "POST" then
    counter = counter + 1
    local tag = string.format("%(prefix)s%%02d%%06d", tid, counter)
    return wrk.format("POST", url, headers, string.format(body_fmt, tag, tag))
  end
  return wrk.format("GET", url, headers)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRKJSON {\"requests\": %%d, \"duration_us\": %%d, \"p50_us\": %%d, \"p95_us\": %%d, " ..
    "\"p99_us\": %%d, \"mean_us\": %%.1f, \"errors\": %%d}\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.mean,
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""


def _lua_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def wrk_load(wrk: str, base: str, session: Session, page: Page, clients: int, seconds: float,
             seed: int, work: Path) -> tuple[dict[str, float], float]:
    """The closed loop with wrk (one thread); returns its summary and its own CPU seconds."""
    body = "nil"
    if page.post is not None:
        # %s for the tag, twice (number and subject); the rest url-encoded once here
        fields = page.post("\x00")
        body = _lua_str(urlencode(fields).replace("%", "%%").replace("%%00", "%s"))
    script = work / "bench-web.lua"
    script.write_text(WRK_SCRIPT % {
        "urls": ", ".join(_lua_str(u) for u in page.urls),
        "method": "GET" if page.post is None else "POST",
        "cookie": session.cookie.replace('"', ""), "body": body, "seed": seed,
        "prefix": f"7{seed % 10}",
    }, "utf-8")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(
        [wrk, "-t1", f"-c{clients}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
         "-s", str(script), base],
        capture_output=True, text=True, check=False,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if proc.returncode != 0 or line is None:
        raise SystemExit(f"wrk failed: {proc.stdout[-2000:]} {proc.stderr[-2000:]}")
    out = json.loads(line[len("WRKJSON "):])
    if out["errors"]:
        raise SystemExit(f"wrk: {out['errors']} requests failed on {page.urls[0]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return out, cpu


# -- measuring ---------------------------------------------------------------------------------

def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def summary(lat: list[float], seconds: float) -> dict[str, Any]:
    return {
        "requests": len(lat),
        "per_s": round(len(lat) / seconds, 1),
        "p50_ms": round(statistics.median(lat), 2),
        "p95_ms": round(pct(lat, 0.95), 2),
        "p99_ms": round(pct(lat, 0.99), 2),
    }


def _cpu(p: psutil.Process) -> float:
    t = p.cpu_times()
    return float(t.user + t.system)


def measure(run: Callable[[], tuple[dict[str, Any], float]], server: psutil.Process,
            ) -> dict[str, Any]:
    """Run one load; add the server's and the load generator's CPU per request."""
    s0 = _cpu(server)
    out, gen_cpu = run()
    n = max(1, out["requests"])
    out["server_cpu_ms_per_req"] = round((_cpu(server) - s0) * 1000 / n, 3)
    out["loadgen_cpu_ms_per_req"] = round(gen_cpu * 1000 / n, 3)
    return out


def python_run(base: str, session: Session, page: Page, clients: int, seconds: float,
               think: float, seed: int) -> Callable[[], tuple[dict[str, Any], float]]:
    def run() -> tuple[dict[str, Any], float]:
        me = psutil.Process()
        c0 = _cpu(me)
        lat = asyncio.run(load(base, session, page, clients, seconds, think, seed))
        return summary(lat, seconds), _cpu(me) - c0

    return run


def wrk_run(wrk: str, base: str, session: Session, page: Page, clients: int, seconds: float,
            seed: int, work: Path) -> Callable[[], tuple[dict[str, Any], float]]:
    def run() -> tuple[dict[str, Any], float]:
        out, cpu = wrk_load(wrk, base, session, page, clients, seconds, seed, work)
        secs = out["duration_us"] / 1e6
        return {
            "requests": out["requests"],
            "per_s": round(out["requests"] / secs, 1),
            "p50_ms": round(out["p50_us"] / 1000, 2),
            "p95_ms": round(out["p95_us"] / 1000, 2),
            "p99_ms": round(out["p99_us"] / 1000, 2),
        }, cpu

    return run


# An office at work: the pages' shares of the requests in the mixed run. Registrations change
# the documents, so the register pages' cached cover data is recomputed after each of them.
MIX = {"search": 0.35, "register": 0.35, "register_form": 0.15, "register_post": 0.15}


def mixed(base: str, session: Session, all_pages: dict[str, Page], args: argparse.Namespace,
          server: psutil.Process) -> dict[str, Any]:
    """Paced clients each drawing every request's page from ``MIX``."""
    me = psutil.Process()
    s0, c0 = _cpu(server), _cpu(me)
    lat = asyncio.run(load_mix(base, session, {n: (all_pages[n], w) for n, w in MIX.items()},
                               args.clients, args.paced_seconds, args.think, 99))
    n = max(1, sum(len(v) for v in lat.values()))
    out: dict[str, Any] = {"all": summary([x for v in lat.values() for x in v],
                                          args.paced_seconds)}
    out["all"]["server_cpu_ms_per_req"] = round((_cpu(server) - s0) * 1000 / n, 3)
    out["all"]["loadgen_cpu_ms_per_req"] = round((_cpu(me) - c0) * 1000 / n, 3)
    for name, xs in lat.items():
        if xs:
            out[name] = summary(xs, args.paced_seconds)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=200_000)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=10.0, help="closed loop, per page")
    ap.add_argument("--paced-seconds", type=float, default=30.0, help="paced, per page")
    ap.add_argument("--work", type=Path, default=None, help="reuse this folder")
    ap.add_argument("--think", type=float, default=1.0,
                    help="mean pause of each client between requests in the paced run (s)")
    ap.add_argument("--client", choices=("auto", "wrk", "python"), default="auto",
                    help="closed-loop load generator (auto: wrk when installed)")
    ap.add_argument("--only", nargs="*", default=None, help="measure only these pages")
    ap.add_argument("--tasks", type=int, default=200, help="văn bản đến directed to the handler")
    args = ap.parse_args(argv)
    wrk = shutil.which("wrk") if args.client != "python" else None
    if args.client == "wrk" and wrk is None:
        raise SystemExit("--client wrk: wrk is not installed (apt-get install wrk)")
    work = args.work or Path(tempfile.mkdtemp(prefix="luutru-bench-web-"))
    work.mkdir(parents=True, exist_ok=True)
    data = make_data(work, args.docs)
    users = luutru("user", "list", "--data", str(data), "--json").stdout
    if f'"{USER}"' not in users:
        added = luutru("user", "add", "--data", str(data), "--username", USER, "--role",
                       "clerk", "--password-stdin", stdin=PASSWORD + "\n")
        assert added.returncode == 0, added.stderr
    if f'"{HANDLER}"' not in users:
        added = luutru("user", "add", "--data", str(data), "--username", HANDLER, "--role",
                       "handler", "--full-name", "Chuyên viên Đo Lường", "--password-stdin",
                       stdin=PASSWORD + "\n")
        assert added.returncode == 0, added.stderr
    task_count = assign_tasks(data, args.tasks)
    results: dict[str, Any] = {"docs": args.docs, "clients": args.clients,
                               "cpu": psutil.cpu_count(), "handler_tasks": task_count,
                               "closed_loop_client": "wrk -t1" if wrk else "python aiohttp",
                               "paced_client": "python aiohttp",
                               "load_average_before": [round(x, 2) for x in os.getloadavg()]}
    indexed = index_history(data)
    if indexed is not None:
        results["first_start_history_index_s"] = round(indexed, 1)
    with serve(data) as srv:
        server = psutil.Process(srv.proc.pid)
        results["start_to_first_answer_s"] = round(srv.first_answer - srv.started, 3)
        time.sleep(3)
        results["idle_rss_mb"] = round(server.memory_info().rss / 2**20, 1)
        session = asyncio.run(sign_in(srv.url))
        handler = asyncio.run(sign_in(srv.url, HANDLER))
        year = json.loads(luutru("search", "--data", str(data), "--json", "--limit", "1").stdout
                          or "{}").get("Year", 2025)
        all_pages = pages(year, session.csrf)
        names = [n for n in all_pages if args.only is None or n in args.only or n == "healthz"]
        warm = Page(all_pages["search"].urls + all_pages["register"].urls
                    + all_pages["register_form"].urls)
        asyncio.run(load(srv.url, session, warm, args.clients, 3))
        # Registrations last: they change the documents the other pages read.
        order = sorted(names, key=lambda n: n == "register_post")
        for seed, name in enumerate(order, 1):
            page = all_pages[name]
            who = handler if name == "tasks" else session
            if wrk:
                run = wrk_run(wrk, srv.url, who, page, args.clients, args.seconds, seed, work)
            else:
                run = python_run(srv.url, who, page, args.clients, args.seconds, 0, seed)
            results[name] = measure(run, server)
            results[f"{name}_paced"] = measure(
                python_run(srv.url, who, page, args.clients, args.paced_seconds,
                           args.think, seed + 50), server)
        if args.only is None:
            results["mixed_paced"] = mixed(srv.url, session, all_pages, args, server)
        results["busy_rss_mb"] = round(server.memory_info().rss / 2**20, 1)
    results["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    for suffix in ("", "_paced"):
        base = results[f"healthz{suffix}"]["p95_ms"]
        for name in names:
            if name != "healthz":
                r = results[f"{name}{suffix}"]
                r["p95_ratio_to_healthz"] = round(r["p95_ms"] / base, 2)
    print(json.dumps(results, ensure_ascii=False, indent=2))
    targets = {"idle RSS ≤ 80 MB": results["idle_rss_mb"] <= 80,
               "start ≤ 1.5 s": results["start_to_first_answer_s"] <= 1.5}
    for name in names:
        if name == "healthz":
            continue
        targets[f"{name} p95 ≤ 50 ms (closed loop)"] = results[name]["p95_ms"] <= 50
        targets[f"{name} p95 ≤ 50 ms (paced, {args.think} s)"] = (
            results[f"{name}_paced"]["p95_ms"] <= 50)
    for k, ok in targets.items():
        print(f"{'met' if ok else 'MISSED'}: {k}")
    print(f"data folder: {data}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
