"""`luutru central serve --workers N` as real processes on loopback, on PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest

from tests.sync.procs import (
    LUUTRU,
    REPO,
    assert_in_sync,
    free_port,
    new_appliance,
    populate,
    report,
    run,
    token,
)

pytestmark = pytest.mark.slow


class Workers:
    def __init__(self, data: Path, n: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data.parent / "workers.log"  # the supervisor's and workers' stderr
        with self.log.open("w") as err:
            self.proc = subprocess.Popen(
                [*LUUTRU, "central", "serve", "--data", str(data), "--port", str(self.port),
                 "--workers", str(n)],
                cwd=REPO, stdout=subprocess.PIPE, stderr=err, text=True,
            )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert json.loads(line) == {"listening": self.url, "workers": n}

    def children(self) -> list[psutil.Process]:
        return psutil.Process(self.proc.pid).children()

    def restarts(self) -> list[str]:
        """The supervisor's lines about workers that exited (with what they said before)."""
        text = self.log.read_text(errors="replace")
        return [text] if "exited with" in text else []

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)


@pytest.fixture
def pg_centre(tmp_path: Path, pg_url: str) -> Path:
    d = tmp_path / "centre"
    run("central", "init", "--data", str(d), "--db", pg_url)
    return d


@pytest.fixture
def workers(pg_centre: Path) -> Iterator[Workers]:
    w = Workers(pg_centre, 2)
    yield w
    if w.proc.poll() is None:
        w.stop()


def _healthy(url: str) -> bool:
    import urllib.request

    for _ in range(100):
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=5) as r:
                return bool(json.loads(r.read())["ok"])
        except OSError:
            time.sleep(0.1)
    return False


def test_two_workers_on_one_port_reconcile_appliances_and_survive_a_killed_worker(
    tmp_path: Path, pg_centre: Path, workers: Workers
) -> None:
    assert _healthy(workers.url)
    assert len(workers.children()) == 2
    apps = []
    for k in range(3):
        d = new_appliance(tmp_path / f"app{k}")
        run("enrol", "--data", str(d), "--centre", workers.url, "--token", token(pg_centre))
        populate(d, 6, content=(30_000, 4_000), seed=k)
        apps.append(d)
    # Sync all at once: requests of different appliances land on either worker.
    with ThreadPoolExecutor(3) as pool:
        outs = list(pool.map(lambda d: run("sync", "--data", str(d), "--once", "--json"), apps))
    assert all(json.loads(o.stdout)["uploaded_files"] == 2 for o in outs)
    # A worker killed outright is replaced; the port keeps answering meanwhile. (The workers
    # of now: one that could not start, say for a database connection on a loaded machine, was
    # already replaced by the supervisor, which is what this test is about.)
    for _ in range(100):
        kids = workers.children()
        if len(kids) == 2:
            break
        time.sleep(0.1)
    assert len(kids) == 2, workers.restarts()
    os.kill(kids[0].pid, signal.SIGKILL)
    assert _healthy(workers.url)
    for _ in range(100):
        now = workers.children()
        if len(now) == 2 and kids[0].pid not in [p.pid for p in now]:
            break
        time.sleep(0.1)
    assert len(workers.children()) == 2
    populate(apps[0], 3, seed=9)
    run("sync", "--data", str(apps[0]), "--once", "--json")
    assert workers.stop() == 0
    rows = report(pg_centre)["appliances"]
    assert len(rows) == 3
    assert all(r["content_missing"] == 0 and r["lag"] == 0 for r in rows)
    assert all(r["status"] == "active" and r["anomalies"] == 0 for r in rows)
    for d in apps:
        assert_in_sync(d, pg_centre)


def test_more_than_one_worker_on_sqlite_is_refused(tmp_path: Path) -> None:
    d = tmp_path / "centre"
    run("central", "init", "--data", str(d))
    out = run("central", "serve", "--data", str(d), "--workers", "2", "--port",
              str(free_port()), check=False)
    assert out.returncode != 0
    assert "--workers 2 needs PostgreSQL" in out.stderr and "SQLite" in out.stderr
