"""Pulled power: SIGKILL during a bulk import loses no acknowledged record and leaves no damage."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from appliance.store import Store
from appliance.verify import verify_data_dir

from .synth import write_jsonl

LUUTRU = [sys.executable, "-m", "luutru"]


@pytest.mark.slow
def test_sigkill_during_import(data_dir: Path, tmp_path: Path) -> None:
    """Kill the importer at random points, restart, and find every acknowledged row durable."""
    src = write_jsonl(tmp_path / "bulk.jsonl", 12000, seed=7)
    rnd = random.Random(42)
    acked = 0
    kills = 0
    for attempt in range(6):
        proc = subprocess.Popen(
            [*LUUTRU, "import", "--data", str(data_dir), "--json", str(src)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert proc.stdout is not None
        # Kill once the importer has acknowledged past a random line, after a random extra
        # moment, so the kill lands anywhere inside the next transaction.
        target = acked + rnd.randint(1, 1500)
        while True:
            line = proc.stdout.readline()
            if not line:
                break
            msg = json.loads(line)
            if "committed_through_line" in msg:
                acked = max(acked, msg["committed_through_line"])
                if acked >= target:
                    time.sleep(rnd.uniform(0, 0.05))
                    break
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
        # Restart: every acknowledged line is there, and the store verifies (tail sealed on open).
        with Store.open(data_dir) as store:
            assert store.wait_sealed(30)
            present = {
                r[0]
                for r in store.reader().execute(
                    'SELECT "Year" * 100000 + "ArrivalNumber" FROM documents'
                )
            }
        expected = set()
        with src.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, start=1):
                if n > acked:
                    break
                d = json.loads(line)
                expected.add(int(d["ArrivalDate"][:4]) * 100000 + d["ArrivalNumber"])
        assert expected <= present, f"attempt {attempt}: acknowledged rows lost"
        rep = verify_data_dir(data_dir)
        assert rep.ok, rep.findings
    assert kills >= 3, "the importer finished before it could be killed: the test proved nothing"
    # Finish the import: the re-run completes without duplicates.
    done = subprocess.run(
        [*LUUTRU, "import", "--data", str(data_dir), "--json", str(src)],
        capture_output=True,
        text=True,
        check=False,
    )
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["failed"] == []
    with Store.open(data_dir, readonly=True) as store:
        assert store.count("document") == 12000
    assert verify_data_dir(data_dir).ok
