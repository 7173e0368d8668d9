"""Power cuts, for real: the data folder sits on LazyFS (tests/lazyfs.py), real processes
register, upload, import and sync on it, and at a random moment the power goes: the writers
die and every write not yet fsynced is dropped (or LazyFS itself dies at a chosen operation,
``lazyfs::crash``). After each cut the folder underneath is opened as a rebooted box would:

- the start-up check passes (no spurious halt) and the unsigned tail is sealed;
- every acknowledged document is there with its number, every acknowledged scan with its
  SHA-256; numbers run 1..N without a gap or a repeat, and go on from there;
- ``luutru verify`` finds nothing wrong; after a sync cut, the next sync is accepted by the
  centre as the same log (no fork, no quarantine, nothing sent twice).

Each scenario runs ``LUUTRU_POWERCUT_LOOPS`` cuts (default 20); the counts are written to
var/test-artefacts/powercut.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from appliance.datadir import init_data_dir
from appliance.store import Store
from appliance.verify import verify_data_dir
from tests.conftest import ORG_ID, ORG_NAME
from tests.lazyfs import PowerCut, lazyfs_binary
from tests.synth import write_jsonl

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
LOOPS = int(os.environ.get("LUUTRU_POWERCUT_LOOPS", "20"))
RESULTS = REPO / "var" / "test-artefacts" / "powercut.json"
PY = sys.executable


@pytest.fixture(autouse=True)
def _lazyfs() -> None:
    lazyfs_binary()  # built once (cached in var/lazyfs/), or the test is skipped


class Lines:
    """A process's stdout read as JSON lines, in a thread (the cut may come at any time)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.items: list[dict[str, Any]] = []
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if item.get("ready"):
                self._ready.set()
            else:
                self.items.append(item)
        self._ready.set()

    def ready(self, timeout: float = 60) -> None:
        assert self._ready.wait(timeout), "the writer never started"

    def done(self) -> list[dict[str, Any]]:
        self._thread.join(30)
        return self.items


def _driver(folder: Path, seed: int, count: int | None = None) -> subprocess.Popen[str]:
    args = [PY, "-m", "tests.powercut_driver", str(folder), str(seed)]
    if count is not None:
        args.append(str(count))
    return subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)


def _check_documents(folder: Path, acks: list[dict[str, Any]]) -> int:
    """The rebooted box: opens without a halt, holds every acknowledged document and scan,
    numbers 1..N once each; verify is clean. Returns N."""
    with Store.open(folder) as store:  # a spurious start-up fault would raise HaltedError
        assert store.wait_sealed(60)
        rows = store.reader().execute(
            'SELECT id, "ArrivalNumber", "Content" FROM documents').fetchall()
        docs = {r[0]: (r[1], json.loads(r[2]) if r[2] else []) for r in rows}
        for a in acks:
            assert not a.get("not_durable"), f"acknowledged before durable: {a['not_durable']}"
            assert a["id"] in docs, f"acknowledged document {a['id']} lost"
            number, content = docs[a["id"]]
            assert number == a["number"]
            if "sha256" in a:
                assert a["sha256"] in {c["sha256"] for c in content}
                assert store.content.hash_file(a["sha256"]) == a["sha256"]
        numbers = sorted(n for n, _ in docs.values())
        assert numbers == list(range(1, len(numbers) + 1)), "a number lost or given twice"
    rep = verify_data_dir(folder)
    assert rep.ok, [f.to_json() for f in rep.findings]
    return len(numbers)


def _record(scenario: str, **counts: Any) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    try:
        results = json.loads(RESULTS.read_text())
    except (OSError, ValueError):
        results = {}
    results[scenario] = counts
    RESULTS.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")


def _loops(tmp_path: Path, folder_name: str,
           one: Callable[[int, PowerCut, Path, random.Random], dict[str, int]],
           scenario: str) -> None:
    """Run ``one`` LOOPS times, each on a fresh LazyFS mount over the same disk."""
    rnd = random.Random(2025)
    disk, mnt, work = tmp_path / "disk", tmp_path / "mnt", tmp_path / "lazyfs"
    totals: dict[str, int] = {}
    t0 = time.monotonic()
    for loop in range(LOOPS):
        pc = PowerCut(disk, mnt, work).start()
        try:
            got = one(loop, pc, mnt / folder_name, rnd)
        finally:
            if pc.proc is not None:
                pc.unmount()
        for k, v in got.items():
            totals[k] = totals.get(k, 0) + v
    _record(scenario, loops=LOOPS, seconds=round(time.monotonic() - t0, 1), **totals)


# -- registrations and uploads ------------------------------------------------------------


def test_power_cuts_while_registering_and_uploading(tmp_path: Path) -> None:
    folder = tmp_path / "disk" / "appliance"
    init_data_dir(folder, ORG_ID, ORG_NAME, "software")
    acks: list[dict[str, Any]] = []

    def one(loop: int, pc: PowerCut, mounted: Path, rnd: random.Random) -> dict[str, int]:
        writer = _driver(mounted, loop + 1)
        lines = Lines(writer)
        lines.ready()
        time.sleep(rnd.uniform(0.05, 1.2))
        pc.cut(writer)
        new = lines.done()
        acks.extend(new)
        _check_documents(folder, acks)
        return {"cuts": 1, "acknowledged": len(new), "scans": sum("sha256" in a for a in new)}

    _loops(tmp_path, "appliance", one, "register_upload")
    assert len(acks) >= LOOPS  # the cuts came while writing, not before


# -- lazyfs::crash at chosen operations -----------------------------------------------------

FAULT_POINTS = [
    ("rename", "after", None, "content/sha256"),  # a scan just made reachable
    ("fsync", "before", "content/tmp/in-", None),  # a scan's bytes written, not yet synced
    ("fsync", "after", "luutru.db-wal", None),  # a commit just durable, not yet answered
    ("write", "before", "luutru.db-wal", None),  # a commit half written
    ("rename", "after", None, "anchors/checkpoint.cbor"),  # an anchor just replaced
    ("fsync", "before", "anchors/.tmp-", None),  # an anchor written, not yet synced
]


def test_lazyfs_crashes_at_chosen_operations(tmp_path: Path) -> None:
    folder = tmp_path / "disk" / "appliance"
    init_data_dir(folder, ORG_ID, ORG_NAME, "software")
    acks: list[dict[str, Any]] = []
    fired: dict[str, int] = {}

    def one(loop: int, pc: PowerCut, mounted: Path, rnd: random.Random) -> dict[str, int]:
        op, timing, src, dst = FAULT_POINTS[loop % len(FAULT_POINTS)]
        writer = _driver(mounted, loop + 1)
        lines = Lines(writer)
        lines.ready()
        time.sleep(rnd.uniform(0.0, 0.5))
        pc.crash_on(op, timing, from_rgx=src, to_rgx=dst)
        deadline = time.monotonic() + 10
        while not pc.crashed and time.monotonic() < deadline:
            time.sleep(0.01)
        name = f"{op}:{timing}:{src or dst}"
        crashed = int(pc.crashed)
        fired[name] = fired.get(name, 0) + crashed
        pc.cut(writer)
        new = lines.done()
        acks.extend(new)
        _check_documents(folder, acks)
        return {"cuts": 1, "crashed_at_fault_point": crashed, "acknowledged": len(new)}

    _loops(tmp_path, "appliance", one, "crash_points")
    if len(FAULT_POINTS) <= LOOPS:
        assert len(fired) == len(FAULT_POINTS) and all(fired.values()), fired  # each fired


# -- imports --------------------------------------------------------------------------------


def test_power_cuts_during_an_import(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "bulk.jsonl", 12000, seed=11)
    expected: list[int] = []
    with src.open(encoding="utf-8") as fh:
        for line in fh:
            d = json.loads(line)
            expected.append(int(d["ArrivalDate"][:4]) * 100000 + d["ArrivalNumber"])

    def one(loop: int, pc: PowerCut, mounted: Path, rnd: random.Random) -> dict[str, int]:
        folder = tmp_path / "disk" / f"box{loop}"
        init_data_dir(folder, ORG_ID, ORG_NAME, "software")
        proc = subprocess.Popen(
            [PY, "-m", "luutru", "import", "--data", str(mounted.parent / f"box{loop}"),
             "--json", str(src)], cwd=REPO, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True)
        lines = Lines(proc)
        time.sleep(rnd.uniform(0.5, 4.0))
        pc.cut(proc)
        acked = max([i.get("committed_through_line", 0) for i in lines.done()], default=0)
        with Store.open(folder) as store:
            assert store.wait_sealed(60)
            present = {r[0] for r in store.reader().execute(
                'SELECT "Year" * 100000 + "ArrivalNumber" FROM documents')}
        assert set(expected[:acked]) <= present, f"cut {loop}: acknowledged rows lost"
        assert verify_data_dir(folder).ok
        return {"cuts": 1, "rows_acknowledged": acked, "rows_present": len(present)}

    _loops(tmp_path, "appliance", one, "import")


# -- a sync -----------------------------------------------------------------------------------


def test_power_cuts_while_syncing(tmp_path: Path) -> None:
    from sync.agent import run_once
    from tests.sync.procs import CentreServer, assert_in_sync, report, row, run, token

    centre_dir = tmp_path / "centre"
    run("central", "init", "--data", str(centre_dir))
    folder = tmp_path / "disk" / "appliance"
    init_data_dir(folder, ORG_ID, ORG_NAME, "software")
    acks: list[dict[str, Any]] = []
    with CentreServer(centre_dir) as centre:
        run("enrol", "--data", str(folder), "--centre", centre.url, "--token",
            token(centre_dir))

        def one(loop: int, pc: PowerCut, mounted: Path, rnd: random.Random) -> dict[str, int]:
            procs: list[subprocess.Popen[str]] = []
            lines: list[Lines] = []

            def chain() -> None:  # a few registrations with scans, then a sync
                writer = _driver(mounted, loop + 1, 4)
                procs.append(writer)
                lines.append(Lines(writer))
                writer.wait()
                sync = subprocess.Popen([PY, "-m", "luutru", "sync", "--data", str(mounted),
                                         "--once"], cwd=REPO, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, text=True)
                procs.append(sync)
                sync.wait()

            t = threading.Thread(target=chain, daemon=True)
            t.start()
            time.sleep(rnd.uniform(0.8, 5.0))
            pc.cut(*procs)
            t.join(60)
            for ln in lines:
                acks.extend(ln.done())
            _check_documents(folder, acks)
            # Rebooted, it syncs again: the centre takes it as the same log.
            with Store.open(folder) as store:
                asyncio.run(run_once(folder, store))
            assert_in_sync(folder, centre_dir)
            assert row(report(centre_dir))["status"] == "active"
            return {"cuts": 1, "acknowledged": len(lines[0].items) if lines else 0}

        _loops(tmp_path, "appliance", one, "sync")
