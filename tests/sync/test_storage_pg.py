"""The centre on PostgreSQL: migrations, row locks between workers, a worker killed mid-batch.

The storage and intake behaviour itself is tested on both backends by the parametrised
``test_intake.py``, ``test_uploads.py`` and ``test_dashboard.py``; this module covers what only
several workers on one database can show.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from appliance.store import Store
from sync import wire
from sync.central.centre import Centre, init_centre, open_centre
from sync.central.intake import Answer, Intake, Transport
from sync.central.open import open_storage
from sync.central.pg_schema import MIGRATIONS
from sync.central.pg_storage import PgStorage, ts_query
from sync.central.report import build_report
from sync.central.storage import ApplianceStatus
from sync.errors import StorageError
from tests.sync.conftest import Appliance, response
from tests.sync.procs import run

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def centre_db() -> str:
    return "postgresql"


def _worker(centre: Centre) -> Intake:
    """A second intake worker: the same centre folder opened again, its own connections."""
    other = open_centre(centre.data_dir, centre.clock)
    return Intake(other)


def _held(centre: Centre, app: Appliance) -> tuple[int, list[bytes | None]]:
    with centre.storage.view() as v:
        rec = v.appliance(app.id)
        assert rec is not None
        assert rec.status is ApplianceStatus.ACTIVE
        assert v.forks(app.id) == [] and v.alerts() == []
        return rec.accepted_size, [r.entry for r in v.entries(app.id, 0, 1 << 40)]


def _expect_whole_log(centre: Centre, app: Appliance) -> None:
    """Nothing lost, nothing doubled: the centre's copy is exactly the appliance's log."""
    size, held = _held(centre, app)
    assert size == app.store.tree_head()[0]
    assert held == [raw for _, raw in app.store.entries()]
    with centre.storage.view() as v:
        assert v.parked(app.id) == []
        assert v.counts(app.id).entries == size


def test_migrations_are_recorded_once_and_a_newer_schema_is_refused(pg_url: str) -> None:
    s = PgStorage(pg_url)
    s.close()
    s = PgStorage(pg_url)  # a second worker starting: nothing applied twice
    s.close()
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
        assert [r[0] for r in rows] == [v for v, _, _ in MIGRATIONS]
        conn.execute(
            "INSERT INTO schema_migrations (version, description) VALUES (%s, 'future')",
            (MIGRATIONS[-1][0] + 1,),
        )
    with pytest.raises(StorageError, match="newer than this build"):
        PgStorage(pg_url)


def test_unreachable_database_is_a_clear_error_and_writes_no_config(tmp_path: Path) -> None:
    with socket_port() as port:
        url = f"postgresql://test@127.0.0.1:{port}/nope?connect_timeout=2"
    with pytest.raises(StorageError, match="cannot connect to") as err:
        init_centre(tmp_path / "c", db=url.replace("test@", "test:secret@"))
    assert "secret" not in str(err.value) and "test:***@" in str(err.value)
    assert not (tmp_path / "c" / "centre.json").exists()
    with pytest.raises(StorageError, match=r"unknown database URL"):
        open_storage("mysql://x", tmp_path)


class socket_port:
    """A loopback port nobody listens on."""

    def __enter__(self) -> int:
        import socket

        self.s = socket.socket()
        self.s.bind(("127.0.0.1", 0))
        return int(self.s.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self.s.close()


def test_init_records_the_postgresql_url_and_reopens(tmp_path: Path, pg_url: str) -> None:
    run("central", "init", "--data", str(tmp_path / "c"), "--db", pg_url)
    cfg = json.loads((tmp_path / "c" / "centre.json").read_text("utf-8"))
    assert cfg["db"] == pg_url
    with open_centre(tmp_path / "c") as c:
        assert isinstance(c.storage, PgStorage)
        with c.storage.view() as v:
            assert v.appliances() == []


def test_the_appliance_row_is_locked_for_the_whole_transaction(centre: Centre) -> None:
    app_id = "ab" * 16
    from sync.central.storage import ApplianceRecord

    with centre.storage.transaction() as tx:
        tx.add_appliance(ApplianceRecord(app_id, "o", "n", "origin", "pem", "software", -8, "t"))
    second = open_storage(centre.config.db, centre.data_dir)
    got_row = threading.Event()

    def other_worker() -> None:
        with second.transaction() as tx:
            rec = tx.appliance(app_id)
            assert rec is not None and rec.last_seq == 7  # sees the first one's commit
            got_row.set()
            tx.set_seq(app_id, 8)

    with centre.storage.transaction() as tx:
        assert tx.appliance(app_id) is not None
        t = threading.Thread(target=other_worker)
        t.start()
        assert not got_row.wait(0.5), "a second transaction read the row while it was locked"
        tx.set_seq(app_id, 7)
    t.join(10)
    assert got_row.is_set()
    with centre.storage.view() as v:
        rec = v.appliance(app_id)
        assert rec is not None and rec.last_seq == 8
    second.close()


def _chain(app: Appliance, rounds: int, per_round: int) -> list[bytes]:
    """Signed batches [0,a) [a,b) … plus overlapping ones, as the appliance would resend."""
    raws: list[bytes] = []
    start = 0
    for _ in range(rounds):
        app.add(per_round)
        raws.append(app.sign(wire.RequestType.BATCH, app.batch_body(start)))
        start = app.store.tree_head()[0]
    raws.append(app.sign(wire.RequestType.BATCH, app.batch_body(0, max_entries=start // 2)))
    raws.append(app.sign(wire.RequestType.BATCH, app.batch_body(start // 3)))
    return raws


def test_two_workers_given_the_same_requests_at_once(
    make_appliance: Callable[..., Appliance], centre: Centre, intake: Intake
) -> None:
    """Each request reaches both workers at the same moment (a retry racing the original)."""
    app = make_appliance()
    raws = _chain(app, 6, 3)
    other = _worker(centre)
    barrier = threading.Barrier(2)

    def send(worker: Intake, raw: bytes) -> Answer:
        barrier.wait()
        return worker.handle(raw)

    try:
        with ThreadPoolExecutor(2) as pool:
            for raw in raws:
                a, b = pool.map(send, [intake, other], [raw, raw])
                ra, rb = response(centre, a), response(centre, b)
                assert a.body == b.body, (ra.outcome, ra.message, rb.outcome, rb.message)
                assert ra.outcome in (wire.Outcome.ACCEPTED, wire.Outcome.DUPLICATE)
        _expect_whole_log(centre, app)
        with other.c.storage.view() as v:
            replays = {a.kind.value: a.count for a in v.anomalies()}
        assert replays.get("replay") == len(raws)  # one of each pair was answered as before
    finally:
        other.c.close()


def test_two_workers_taking_usb_batches_in_any_order(
    make_appliance: Callable[..., Appliance], centre: Centre, intake: Intake
) -> None:
    """Batches of one appliance shuffled over two workers: parked, applied, none twice."""
    app = make_appliance()
    raws = _chain(app, 8, 2)
    raws += raws[: len(raws) // 2]  # the same stick imported twice
    random.Random(7).shuffle(raws)
    other = _worker(centre)
    try:
        halves = [raws[0::2], raws[1::2]]
        errors: list[BaseException] = []

        def take(worker: Intake, mine: list[bytes]) -> None:
            try:
                for raw in mine:
                    ans = worker.handle(raw, Transport.USB)
                    assert ans.status in (200, 202), response(centre, ans).message
            except BaseException as exc:
                errors.append(exc)

        threads = [
            threading.Thread(target=take, args=(w, h))
            for w, h in zip([intake, other], halves, strict=True)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        intake.drain_parked(app.id)
        _expect_whole_log(centre, app)
    finally:
        other.c.close()


def test_two_workers_given_conflicting_branches_accept_one_and_report_the_fork(
    make_appliance: Callable[..., Appliance], centre: Centre, intake: Intake, tmp_path: Path
) -> None:
    """A restored backup's branch and the original reach two workers at once: the database
    lets exactly one be accepted; the other is the fork it really is."""
    app = make_appliance()
    app.add(3)
    base = response(centre, app.send(0)).accepted_size
    app.store.close()
    shutil.copytree(app.data_dir, tmp_path / "backup")
    app.store = Store.open(app.data_dir, clock=app.clock)
    app.add(3)
    raw_a = app.sign(wire.RequestType.BATCH, app.batch_body(base))
    log_a = [raw for _, raw in app.store.entries()]
    app.store.close()
    shutil.rmtree(app.data_dir)
    shutil.copytree(tmp_path / "backup", app.data_dir)
    app.store = Store.open(app.data_dir, clock=app.clock)
    app.add(3, Subject="Lịch sử khác sau khi khôi phục")
    raw_b = app.sign(wire.RequestType.BATCH, app.batch_body(base))
    log_b = [raw for _, raw in app.store.entries()]
    assert log_a[:base] == log_b[:base] and log_a != log_b
    other = _worker(centre)
    barrier = threading.Barrier(2)

    def send(worker: Intake, raw: bytes) -> Answer:
        barrier.wait()
        return worker.handle(raw, Transport.USB)

    try:
        with ThreadPoolExecutor(2) as pool:
            a, b = pool.map(send, [intake, other], [raw_a, raw_b])
    finally:
        other.c.close()
    outcomes = sorted([response(centre, a).outcome.value, response(centre, b).outcome.value])
    assert outcomes == sorted([wire.Outcome.ACCEPTED.value, wire.Outcome.QUARANTINED.value])
    winner = log_a if response(centre, a).outcome is wire.Outcome.ACCEPTED else log_b
    with centre.storage.view() as v:
        rec = v.appliance(app.id)
        assert rec is not None and rec.status is ApplianceStatus.QUARANTINED
        assert rec.accepted_size == len(winner)
        assert [r.entry for r in v.entries(app.id, 0, 1 << 40)] == winner
        assert len(v.forks(app.id)) == 1 and [x.kind for x in v.alerts()] == ["fork"]


_KILLED_WORKER = r"""
import os, sys, time
from pathlib import Path
from sync.central import sql_storage
from sync.central.centre import open_centre
from sync.central.intake import Intake

real = sql_storage.SqlTx.set_accepted

def stall(self, *a, **kw):
    real(self, *a, **kw)
    print("inside", flush=True)   # entries, documents and refs written, not committed
    time.sleep(600)

sql_storage.SqlTx.set_accepted = stall
c = open_centre(Path(sys.argv[1]))
Intake(c).handle(Path(sys.argv[2]).read_bytes())
print("returned", flush=True)
"""


def test_a_worker_killed_mid_batch_leaves_nothing_behind(
    make_appliance: Callable[..., Appliance], centre: Centre, intake: Intake, tmp_path: Path
) -> None:
    app = make_appliance()
    app.add(4, Subject="Quyết định đất đai")
    raw = app.sign(wire.RequestType.BATCH, app.batch_body(0))
    (tmp_path / "req").write_bytes(raw)
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WORKER, str(centre.data_dir), str(tmp_path / "req")],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "inside", proc.stderr.read() if proc.stderr else ""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    with centre.storage.view() as v:
        rec = v.appliance(app.id)
        assert rec is not None and rec.accepted_size == 0 and rec.last_seq == 0
        assert v.entries(app.id, 0, 100) == [] and v.search_documents("quyet dinh") == []
        assert v.checkpoint(app.id, app.store.tree_head()[0]) is None
        assert v.counts(app.id).content_expected == 0
    # The appliance retries the same request: accepted once, exactly.
    ans = intake.handle(raw)
    assert response(centre, ans).outcome is wire.Outcome.ACCEPTED
    _expect_whole_log(centre, app)
    with centre.storage.view() as v:
        assert len(v.search_documents("quyet dinh")) == 4


def test_search_and_report_on_postgresql(
    make_appliance: Callable[..., Appliance], centre: Centre
) -> None:
    app = make_appliance()
    app.add(2, Subject="Quyết định giao đất đai cho hộ gia đình", CodeNumber="12")
    app.add(1, Subject="Công văn về đường giao thông")
    assert response(centre, app.send(0)).outcome is wire.Outcome.ACCEPTED
    with centre.storage.view() as v:
        assert len(v.search_documents("quyet dinh dat dai")) == 2
        assert len(v.search_documents("QUYET dinh dat da".lower())) == 2  # last word a prefix
        assert len(v.search_documents("duong giao")) == 1
        assert v.search_documents("dat da ") == []  # a trailing space: whole words only
        assert v.search_documents("khong co") == []
        assert len(v.search_documents("", org_id=app.store.config.org_id)) == 3
        assert v.search_documents("'); drop table documents; --") == []
        rep = build_report(v, "now", centre.origin)
    assert rep.totals.documents == 3 and rep.totals.entries == app.store.tree_head()[0]
    assert ts_query("qd-ubnd so") == "('qd' <-> 'ubnd') & 'so':*"


def test_a_url_without_host_takes_libpq_environment(
    pg_cluster: object, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """centre.env's PG* variables fill what centre.json's URL leaves out (no secrets in it)."""
    from urllib.parse import urlsplit

    u = urlsplit(pg_url)
    monkeypatch.setenv("PGHOST", str(u.hostname))
    monkeypatch.setenv("PGPORT", str(u.port))
    monkeypatch.setenv("PGUSER", str(u.username))
    s = open_storage("postgresql://" + u.path, Path("."))
    try:
        with s.view() as v:
            assert v.appliances() == []
    finally:
        s.close()
