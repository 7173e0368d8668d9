"""Sync benchmarks, each printed against a raw baseline measured in the same run.

Run: ``.venv/bin/python -m tests.bench.sync`` (``--quick`` for smaller sizes, ``--skip-link``
without the namespace link).

- intake: centre intake on SQLite (verify signature, recompute the root, check the proof,
  store, project, sign a receipt) in entries/s, against a raw SQLite executemany of the same
  (appliance, index, leaf, entry) rows with the same durability (WAL, synchronous=FULL).
- fleet: 200 simulated appliances enrol, send their log and a content file and ask for their
  status, all at once against a real `luutru central serve` on loopback; all reconciled?
- link: over two namespaces joined by linkem.py (256 kbit/s, 300 ms each way, 5 % loss):
  content goodput of the real agent (`luutru sync --once`) for one 1 MiB file and for eight
  files of 4 MiB in all (sustained, with file boundaries), each against the link rate and
  against one raw HTTP POST of the same bytes (curl) measured just before it; goodput is
  content bytes / the content phase's wall time (every status, HEAD and PATCH request), also
  given with the metadata batches included; HTTP bytes and IP bytes on the wire against the
  payload; and the bytes resent after a silent outage mid-upload against one chunk.

  One file on this link varies a lot from run to run (a lost retransmission, a timeout, BBR's
  periodic RTT probe, the final answer lost), so the one-file case runs ``--runs`` times (5;
  3 with ``--quick``), each on a fresh link with its own linkem ``--seed`` and its own raw
  POST just before it. Every run is printed; the one-file goodput that "ok" is judged on is
  the MEDIAN of those runs (and so is the raw POST figure it is compared with). Bytes on the
  wire (≤ 1.05× the payload) are checked on every run; the several-file run and the cut are
  measured once, on one more link.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance import merkle
from appliance.checkpoint import Checkpoint, sign_checkpoint
from appliance.clock import SystemClock, iso
from appliance.keys.software import SoftwareKey
from appliance.keys.verify import load_public_key, spki_der
from appliance.ledger import Entry
from sync import wire
from sync.agent.http import CentreClient
from sync.agent.uploads import PIECES_PER_CHUNK
from sync.central.centre import init_centre, open_centre
from sync.central.enrolment import enrol, issue_token
from sync.central.intake import Intake
from tests.sync.procs import (
    CentreServer,
    Link,
    emulated_link,
    namespaces_available,
    new_appliance,
    populate,
    run,
    set_sync,
    state,
    token,
)
from tests.synth import documents

ORG = "000.21.08.H49"
# Several scans of a commune's day, 4 MiB in all: sustained goodput, with the file boundaries.
MIX = (1 << 20, 1 << 20, 512 << 10, 512 << 10, 256 << 10, 256 << 10, 256 << 10, 256 << 10)


@dataclass
class SimAppliance:
    """An appliance reduced to its log and key: enough to speak the wire protocol."""

    key: SoftwareKey
    org_id: str
    entries: list[bytes] = field(default_factory=list)
    leaves: list[bytes] = field(default_factory=list)
    content: dict[str, bytes] = field(default_factory=dict)
    seq: int = 0

    @property
    def origin(self) -> str:
        return f"luutru/{self.org_id}/{self.key.kid.hex()}"

    def grow(self, n: int, seed: int, blob: bytes | None = None) -> None:
        ref: tuple[bytes, ...] = ()
        for doc in documents(n, seed=seed):
            data = {k: v for k, v in doc.items() if k not in ("kind", "SignerInfo")}
            data.update(Direction="incoming", Status="registered", Mode="01", FondCode=ORG)
            if blob is not None and not self.content:
                sha = hashlib.sha256(blob).hexdigest()
                self.content[sha] = blob
                data["Content"] = [{"sha256": sha, "size": len(blob), "name": "a.pdf",
                                    "mime": "application/pdf"}]
                ref = (bytes.fromhex(sha),)
            e = Entry(len(self.entries), "document.register", iso(SystemClock().now()), "bench",
                      "document", os.urandom(8).hex(), 1, data, ref)
            ref = ()
            raw = e.encode()
            self.entries.append(raw)
            self.leaves.append(merkle.leaf_hash(raw))

    def checkpoint(self, size: int) -> bytes:
        root = merkle.root_hash(merkle.list_source(self.leaves), size)
        cp = Checkpoint(self.origin, size, root, iso(SystemClock().now()), self.key.backing,
                        self.key.alg)
        return sign_checkpoint(cp, self.key)

    def request(self, rtype: wire.RequestType, body: dict[str, Any]) -> bytes:
        self.seq += 1
        return wire.sign_request(self.key, rtype, self.seq, iso(SystemClock().now()), body)

    def enrol_request(self, tok: str) -> bytes:
        secret, _ = wire.parse_token(tok)
        spki = spki_der(load_public_key(self.key.public_key_pem()))
        return wire.sign_request(self.key, wire.RequestType.ENROL, 0, iso(SystemClock().now()), {
            "token_id": wire.token_id(secret), "proof": wire.token_proof(secret, spki),
            "org_id": self.org_id, "org_name": "Xã mô phỏng", "origin": self.origin,
            "public_key": self.key.public_key_pem(), "backing": "software", "alg": self.key.alg,
        })

    def batch(self, start: int, end: int) -> bytes:
        proof = merkle.consistency_proof(merkle.list_source(self.leaves), start, end) \
            if start else []
        body = wire.Batch(start, end, self.checkpoint(end), tuple(proof),
                          tuple(self.entries[start:end])).to_body()
        return self.request(wire.RequestType.BATCH, body)


def _sim(tmp: Path, name: str, org_id: str = ORG) -> SimAppliance:
    return SimAppliance(SoftwareKey.create(tmp / f"{name}.key"), org_id)


# -- intake ---------------------------------------------------------------------------------


def bench_intake(tmp: Path, n: int, per_batch: int = 1000) -> dict[str, Any]:
    centre = init_centre(tmp / "intake-centre")
    intake = Intake(centre)
    app = _sim(tmp, "intake")
    app.grow(n, seed=7)
    ans = enrol(intake, app.enrol_request(issue_token(centre, ORG)))
    assert ans.outcome is wire.Outcome.ENROLLED
    bodies = [app.batch(s, min(n, s + per_batch)) for s in range(0, n, per_batch)]
    t0 = time.perf_counter()
    for body in bodies:
        a = intake.handle(body)
        assert a.outcome is wire.Outcome.ACCEPTED, a.code
    ours = time.perf_counter() - t0
    with centre.storage.view() as v:
        assert len(v.entries(app.key.kid.hex(), 0, n + 1)) == n
    centre.close()
    conn = sqlite3.connect(str(tmp / "raw.db"), isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE entries (appliance_id TEXT, idx INTEGER, leaf BLOB, entry BLOB, "
                 "PRIMARY KEY (appliance_id, idx)) WITHOUT ROWID")
    rows = [("x", i, app.leaves[i], app.entries[i]) for i in range(n)]
    t0 = time.perf_counter()
    for s in range(0, n, per_batch):
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO entries VALUES (?, ?, ?, ?)", rows[s : s + per_batch])
        conn.execute("COMMIT")
    raw = time.perf_counter() - t0
    conn.close()
    return {
        "entries": n,
        "batch": per_batch,
        "intake_entries_per_s": round(n / ours),
        "raw_insert_entries_per_s": round(n / raw),
        "ratio_vs_raw": round(raw / ours, 3),
        "target_entries_per_s": 5000,
        "ok": n / ours >= 5000,
    }


# -- 200 appliances at once -----------------------------------------------------------------


async def _one_appliance(url: str, app: SimAppliance, tok: str, centre_key: Any) -> float:
    t0 = time.perf_counter()
    async with CentreClient(url, read_timeout=300, connect_timeout=60) as c:
        raw = app.enrol_request(tok)
        _, body = await c.post_cbor("/v1/enrol", raw)
        assert wire.verify_response(body, centre_key, wire.sha256(raw)).outcome.value == "enrolled"
        raw = app.batch(0, len(app.entries))
        _, body = await c.post_cbor("/v1/batch", raw)
        resp = wire.verify_response(body, centre_key, wire.sha256(raw))
        assert resp.outcome is wire.Outcome.ACCEPTED, resp.message
        for sha in resp.missing:
            blob = app.content[sha]
            chunk_body = dict(wire.chunk_body(sha, 0, blob), total=len(blob))
            auth = wire.b64(app.request(wire.RequestType.CHUNK, chunk_body))
            st, _off, _, text = await c.patch(sha, 0, blob, auth)
            assert st == 204, text
        raw = app.request(wire.RequestType.STATUS, {})
        _status, body = await c.post_cbor("/v1/status", raw)
        resp = wire.verify_response(body, centre_key, wire.sha256(raw))
        assert resp.missing_count == 0 and resp.receipt is not None
    return time.perf_counter() - t0


async def _fleet(url: str, apps: list[SimAppliance], toks: list[str], key: Any) -> list[float]:
    return list(await asyncio.gather(*(
        _one_appliance(url, a, t, key) for a, t in zip(apps, toks, strict=True)
    )))


def bench_fleet(tmp: Path, count: int, entries: int) -> dict[str, Any]:
    centre_dir = tmp / "fleet-centre"
    init_centre(centre_dir).close()
    apps = []
    for i in range(count):
        a = _sim(tmp, f"fleet{i}", f"000.{i // 100:02d}.{i % 100:02d}.H49")
        a.grow(entries, seed=100 + i, blob=os.urandom(8 * 1024))
        apps.append(a)
    with open_centre(centre_dir) as c:
        toks = [issue_token(c, a.org_id) for a in apps]
        key = c.public_key
    with CentreServer(centre_dir) as srv:
        t0 = time.perf_counter()
        times = asyncio.run(_fleet(srv.url, apps, toks, key))
        wall = time.perf_counter() - t0
    with open_centre(centre_dir) as c, c.storage.view() as v:
        recs = v.appliances()
        reconciled = sum(
            1 for r in recs
            if r.accepted_size == r.claimed_size == entries
            and v.counts(r.id).content_missing == 0
        )
    times.sort()
    return {
        "appliances": count,
        "entries_each": entries,
        "reconciled": reconciled,
        "wall_s": round(wall, 2),
        "per_appliance_p50_s": round(times[len(times) // 2], 2),
        "per_appliance_max_s": round(times[-1], 2),
        "entries_per_s_overall": round(count * entries / wall),
        "ok": reconciled == count,
    }


# -- the emulated link ------------------------------------------------------------------------


def _raw_post(link: Link, url: str, blob: Path) -> float:
    """Seconds for one curl POST of ``blob`` over the link (the centre reads it whole, then
    refuses it): the baseline any protocol on this link is measured against."""
    p = subprocess.run(
        ["ip", "netns", "exec", link.appliance_ns, "curl", "-s", "-o", "/dev/null",
         "-w", "%{time_total}", "-H", "Content-Type: application/cbor",
         "--data-binary", f"@{blob}", f"{url}/v1/batch"],
        capture_output=True, text=True, check=True,
    )
    return float(p.stdout)


TCP_COUNTERS = ("TcpOutSegs", "TcpRetransSegs", "TcpExtTCPTimeouts", "TcpExtTCPLostRetransmit",
                "TcpExtTCPSpuriousRTOs")


def _tcp(ns: str) -> dict[str, int]:
    """The sending namespace's TCP counters (segments, retransmissions, timeouts): they say
    why one run on this lossy link is slower than another."""
    out = subprocess.run(["ip", "netns", "exec", ns, "nstat", "-asz", *TCP_COUNTERS],
                         capture_output=True, text=True, check=True).stdout
    got = {ln.split()[0]: int(ln.split()[1]) for ln in out.splitlines() if ln[:1].isalpha()}
    return {k.removeprefix("TcpExtTCP").removeprefix("Tcp"): got.get(k, 0) for k in TCP_COUNTERS}


def _delta(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    return {k: b[k] - a[k] for k in a}


def _goodput_run(
    tmp: Path, link: Link, srv: CentreServer, centre_dir: Path, name: str, org_id: str,
    sizes: tuple[int, ...], chunk: int,
) -> dict[str, Any]:
    """Raw POST of the total, then `luutru sync --once` of files of ``sizes`` (one record
    each) on a fresh appliance; goodput = content bytes / the content phase's wall time (from
    the end of the metadata batches to the centre's last answer: every status, HEAD and PATCH
    request in between), and the same over metadata + content."""
    payload = sum(sizes)
    out: dict[str, Any] = {"files": len(sizes), "payload_bytes": payload}
    blob = tmp / f"{name}-raw.bin"
    blob.write_bytes(os.urandom(payload))
    c0 = _tcp(link.appliance_ns)
    raw_s = _raw_post(link, srv.url, blob)
    out["raw_post_tcp"] = _delta(c0, _tcp(link.appliance_ns))
    out["raw_post_goodput_kbit"] = round(payload * 8 / raw_s / 1000, 1)
    out["raw_post_vs_link_rate"] = round(payload * 8 / raw_s / 256_000, 3)
    d = new_appliance(tmp / name, org_id=org_id)
    run("enrol", "--data", str(d), "--centre", srv.url, "--token", token(centre_dir, org_id),
        netns=link.appliance_ns)
    populate(d, len(sizes), content=sizes)
    set_sync(d, chunk_bytes=chunk)
    tx0 = link.tx_bytes(link.appliance_ns, "pio-tb")
    s0 = state(d)
    c0 = _tcp(link.appliance_ns)
    rep = json.loads(run("sync", "--data", str(d), "--once", "--json",
                         netns=link.appliance_ns).stdout)
    out["agent_tcp"] = _delta(c0, _tcp(link.appliance_ns))
    tx = link.tx_bytes(link.appliance_ns, "pio-tb") - tx0
    s1 = state(d)
    assert rep["uploaded_files"] == len(sizes) and rep["pending_content"] == 0, rep
    goodput = payload * 8 / rep["content_seconds"] / 1000
    cycle = payload * 8 / (rep["content_seconds"] + rep["metadata_seconds"]) / 1000
    out["congestion_control"] = rep["congestion"]
    out["content_seconds"] = rep["content_seconds"]
    out["metadata_seconds"] = rep["metadata_seconds"]
    out["agent_content_goodput_kbit"] = round(goodput, 1)
    out["goodput_vs_link_rate"] = round(goodput / 256, 3)
    out["goodput_vs_raw_post"] = round(goodput / out["raw_post_goodput_kbit"], 3)
    out["incl_metadata_goodput_vs_link_rate"] = round(cycle / 256, 3)
    http = s1["bytes_sent"] - s0["bytes_sent"]
    out["http_bytes_sent"] = http
    out["http_bytes_vs_payload"] = round(http / payload, 4)
    out["ip_bytes_sent_incl_tcp_and_retransmits"] = tx
    out["ip_bytes_vs_payload"] = round(tx / payload, 4)
    return out


def _median(xs: list[float]) -> float:
    ys = sorted(xs)
    mid = len(ys) // 2
    return ys[mid] if len(ys) % 2 else (ys[mid - 1] + ys[mid]) / 2


def _one_file_runs(
    tmp: Path, payload: int, chunk: int, runs: int, seed0: int
) -> dict[str, Any]:
    """The one-file case ``runs`` times, each on a fresh link (seed ``seed0 + i``) with a
    fresh centre process and a raw POST just before the agent; every run and the medians."""
    centre_dir = tmp / "link-one-centre"
    run("central", "init", "--data", str(centre_dir))
    results: list[dict[str, Any]] = []
    for i in range(runs):
        seed = seed0 + i
        with emulated_link(seed=seed) as link:
            srv = CentreServer(centre_dir, host=link.centre_ip, port=8470,
                               netns=link.centre_ns).start()
            try:
                r = _goodput_run(tmp, link, srv, centre_dir, f"link-one{i}",
                                 f"000.21.{20 + i:02d}.H49", (payload,), chunk)
            finally:
                srv.kill(signal.SIGTERM)
        r = {"run": i + 1, "linkem_seed": seed, **r}
        results.append(r)
        print(json.dumps({"link.one_file.run": r}), flush=True)
    return {
        "runs": results,
        "goodput_vs_link_rate_each": [r["goodput_vs_link_rate"] for r in results],
        "raw_post_vs_link_rate_each": [r["raw_post_vs_link_rate"] for r in results],
        "median_goodput_vs_link_rate": round(
            _median([r["goodput_vs_link_rate"] for r in results]), 3),
        "median_raw_post_vs_link_rate": round(
            _median([r["raw_post_vs_link_rate"] for r in results]), 3),
        "median_goodput_vs_raw_post": round(
            _median([r["goodput_vs_raw_post"] for r in results]), 3),
        "max_http_bytes_vs_payload": max(r["http_bytes_vs_payload"] for r in results),
    }


def bench_link(
    tmp: Path, payload: int, chunk: int, mix: tuple[int, ...], runs: int = 5, seed: int = 1
) -> dict[str, Any]:
    out: dict[str, Any] = {"rate_kbit": 256, "delay_ms_each_way": 300, "loss": 0.05,
                           "chunk_bytes": chunk, "piece_bytes": chunk // PIECES_PER_CHUNK}
    out["one_file"] = _one_file_runs(tmp, payload, chunk, runs, seed)
    one = {k: v for k, v in out["one_file"].items() if k != "runs"}
    print(json.dumps({"link.one_file": one}), flush=True)
    with emulated_link(seed=seed + runs) as link:
        out["link_seed_several_and_cut"] = seed + runs
        centre_dir = tmp / "link-centre"
        run("central", "init", "--data", str(centre_dir))
        srv = CentreServer(centre_dir, host=link.centre_ip, port=8470,
                           netns=link.centre_ns).start()
        try:
            if mix:
                out["several_files"] = _goodput_run(tmp, link, srv, centre_dir, "link-mix",
                                                    "000.21.11.H49", mix, chunk)
                print(json.dumps({"link.several_files": out["several_files"]}), flush=True)
            # a cut mid-upload: silent outage longer than the stall timeout
            d2 = new_appliance(tmp / "link-app2", org_id="000.21.09.H49")
            run("enrol", "--data", str(d2), "--centre", srv.url,
                "--token", token(centre_dir, "000.21.09.H49"), netns=link.appliance_ns)
            populate(d2, 1, content=(payload,))
            # A stall timeout well above TCP's own retransmission backoff on a 5 % loss link,
            # so that only the outage cuts the upload.
            set_sync(d2, chunk_bytes=chunk, interval_s=2, backoff_max_s=4, stall_timeout_s=10,
                     read_timeout_s=20)
            agent = subprocess.Popen(
                ["ip", "netns", "exec", link.appliance_ns, sys.executable, "-m", "luutru",
                 "sync", "--data", str(d2)],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            )
            uploads = centre_dir / "blobs" / "uploads"
            deadline = time.monotonic() + 300
            while not any(q.stat().st_size >= chunk for q in uploads.glob("*.part")):
                if time.monotonic() > deadline:
                    raise RuntimeError("upload did not start")
                time.sleep(0.2)
            time.sleep(chunk * 8 / 256_000 / 2)  # half a chunk later
            link.outage()
            time.sleep(20)
            link.outage()
            deadline = time.monotonic() + 600
            while state(d2).get("confirmed_size", 0) == 0:
                if time.monotonic() > deadline:
                    raise RuntimeError("upload did not finish after the outage")
                time.sleep(0.5)
            agent.send_signal(signal.SIGTERM)
            _, err = agent.communicate(timeout=30)
            resent = state(d2)["content_bytes_sent"] - payload
            out["cut_cycles_failed"] = err.count("sync failed")
            out["resent_after_cut_bytes"] = resent
            out["resent_vs_one_chunk"] = round(resent / chunk, 3)
        finally:
            srv.kill(signal.SIGTERM)
    several = [out["several_files"]] if mix else []
    out["ok"] = (
        out["one_file"]["median_goodput_vs_link_rate"] >= 0.85  # the median of the runs
        and all(r["goodput_vs_link_rate"] >= 0.85 for r in several)
        and out["one_file"]["max_http_bytes_vs_payload"] <= 1.05
        and all(r["http_bytes_vs_payload"] <= 1.05 for r in several)
        and out["cut_cycles_failed"] >= 1  # the outage did cut an upload
        and out["resent_after_cut_bytes"] <= chunk
    )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.bench.sync")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--skip-link", action="store_true")
    ap.add_argument("--appliances", type=int, default=200)
    ap.add_argument("--only", choices=("intake", "fleet", "link"), default=None)
    ap.add_argument("--runs", type=int, default=None,
                    help="one-file link runs, each on a fresh link (default 5; 3 with --quick)")
    ap.add_argument("--seed", type=int, default=1, help="linkem seed of the first link run")
    a = ap.parse_args(argv)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="luutru-bench-sync-") as t:
        tmp = Path(t)
        if a.only in (None, "intake"):
            results["intake"] = bench_intake(tmp, 5_000 if a.quick else 30_000)
            print(json.dumps({"intake": results["intake"]}, ensure_ascii=False), flush=True)
        if a.only in (None, "fleet"):
            results["fleet"] = bench_fleet(tmp, 20 if a.quick else a.appliances,
                                           50 if a.quick else 200)
            print(json.dumps({"fleet": results["fleet"]}, ensure_ascii=False), flush=True)
        reason = namespaces_available()
        if a.only not in (None, "link"):
            return 0
        if a.skip_link or reason:
            results["link"] = {"skipped": reason or "--skip-link"}
        else:
            if a.quick:
                results["link"] = bench_link(tmp, 256 * 1024, 64 * 1024, (),
                                             a.runs or 3, a.seed)
            else:
                results["link"] = bench_link(tmp, 1 << 20, 256 * 1024, MIX, a.runs or 5,
                                             a.seed)
        print(json.dumps({"link": results["link"]}, ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
