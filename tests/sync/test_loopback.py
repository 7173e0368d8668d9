"""The agent and the centre as real processes on loopback: each scenario ends with nothing
lost, nothing duplicated, and the right alert."""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from sync.agent.status import sync_status
from tests.sync.procs import (
    LUUTRU,
    REPO,
    CentreServer,
    Relay,
    appliance_id,
    assert_in_sync,
    centre_entries,
    dashboard_opener,
    new_appliance,
    populate,
    receipt_sizes,
    report,
    row,
    run,
    run_json,
    set_sync,
    state,
    token,
    tree_size,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def centre_dir(tmp_path: Path) -> Path:
    d = tmp_path / "centre"
    run("central", "init", "--data", str(d))
    return d


def _enrolled(tmp_path: Path, centre_dir: Path, url: str, name: str = "app") -> Path:
    d = new_appliance(tmp_path / name)
    out = run("enrol", "--data", str(d), "--centre", url, "--token", token(centre_dir))
    assert "enrolled" in out.stdout
    return d


def _sync(d: Path, *extra: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run("sync", "--data", str(d), "--once", "--json", *extra, check=check)


def test_enrol_sync_and_receipts(tmp_path: Path, centre_dir: Path) -> None:
    """Metadata, then content, then a receipt in the log; the record shows as confirmed."""
    with CentreServer(centre_dir) as srv:
        d = _enrolled(tmp_path, centre_dir, srv.url)
        again = run("enrol", "--data", str(d), "--centre", srv.url, "--token", "x", check=False)
        assert again.returncode != 0 and "already enrolled" in again.stderr
        populate(d, 12, content=(40_000, 5_000), classified=1)
        rep = json.loads(_sync(d).stdout)
        size = rep["acknowledged_size"]
        assert rep["uploaded_files"] == 2 and rep["withheld_sent"] == 2
        assert rep["confirmed_size"] == size == tree_size(d) - 1  # + the receipt entry
        # The connections ask for BBR (sync/client.py CONGESTION) where the kernel has it.
        available = Path("/proc/sys/net/ipv4/tcp_available_congestion_control")
        if available.exists() and "bbr" in available.read_text().split():
            assert rep["congestion"] == "bbr"
        st = sync_status(d, tree_size(d))
        assert st.enrolled and st.confirmed(size - 1) and not st.confirmed(size)
        assert st.pending_entries == 0 and st.pending_content == 0
        # A second cycle has nothing to send: receipts alone never make a new batch.
        assert json.loads(_sync(d).stdout)["batches"] == 0
        r = row(report(centre_dir))
        assert r["accepted_size"] == r["claimed_size"] == size
        assert r["content_missing"] == 0 and r["content_expected"] == 2 and r["withheld"] == 2
        assert run("verify", "--data", str(d)).returncode == 0
        assert_in_sync(d, centre_dir)
        csv = run("central", "report", "--data", str(centre_dir), "--csv").stdout
        assert "Tên cơ quan" in csv and "Ủy ban nhân dân xã Đông Hải" in csv


def test_sigkill_centre_mid_batch_then_restart(tmp_path: Path, centre_dir: Path) -> None:
    srv = CentreServer(centre_dir).start()
    try:
        d = _enrolled(tmp_path, centre_dir, srv.url)
        populate(d, 400, noise=300)
        set_sync(d, bandwidth_kbit=100, stall_timeout_s=5, read_timeout_s=5)
        agent = subprocess.Popen(
            [*LUUTRU, "sync", "--data", str(d), "--once"], cwd=REPO,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        # the first batch (~310 KB, ~110 KB deflated: 64 KB at once, then 12.5 KB/s) is on its way
        time.sleep(1.5)
        srv.kill(signal.SIGKILL)
        _, err = agent.communicate(timeout=60)
        assert agent.returncode != 0 and "centre" in err
        assert state(d)["acknowledged_size"] == 0
        srv.start()
        set_sync(d, bandwidth_kbit=0)
        rep = json.loads(_sync(d).stdout)
        assert rep["confirmed_size"] == tree_size(d) - 1
        assert_in_sync(d, centre_dir)
    finally:
        srv.kill(signal.SIGTERM)


def test_sigkill_centre_mid_upload_then_restart(tmp_path: Path, centre_dir: Path) -> None:
    """The centre dies in the middle of a streamed PATCH: the pieces it committed survive,
    the restarted centre takes the rest from there, and the file is whole."""
    srv = CentreServer(centre_dir).start()
    try:
        d = _enrolled(tmp_path, centre_dir, srv.url)
        size, chunk = 700_000, 64 * 1024
        populate(d, 1, content=(size,))
        set_sync(d, bandwidth_kbit=1600, chunk_bytes=chunk, stall_timeout_s=3, read_timeout_s=3)
        agent = subprocess.Popen(
            [*LUUTRU, "sync", "--data", str(d), "--once"], cwd=REPO,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        uploads = centre_dir / "blobs" / "uploads"
        deadline = time.monotonic() + 60
        while not any(p.stat().st_size >= 2 * chunk for p in uploads.glob("*.part")):
            assert time.monotonic() < deadline, "the upload did not start"
            time.sleep(0.05)
        srv.kill(signal.SIGKILL)
        _, err = agent.communicate(timeout=60)
        assert agent.returncode != 0 and "centre" in err
        (part,) = uploads.glob("*.part")
        kept = part.stat().st_size
        assert 2 * chunk <= kept < size
        srv.start()
        rep = json.loads(_sync(d).stdout)
        assert rep["confirmed_size"] == tree_size(d) - 1 and rep["pending_content"] == 0
        assert state(d)["content_bytes_sent"] < size + chunk
        assert_in_sync(d, centre_dir)
        assert row(report(centre_dir))["content_missing"] == 0
        (blob,) = (p for p in (centre_dir / "blobs" / "sha256").rglob("*") if p.is_file())
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name
    finally:
        srv.kill(signal.SIGTERM)


def test_cut_mid_upload_resumes_and_resends_at_most_one_chunk(
    tmp_path: Path, centre_dir: Path
) -> None:
    with CentreServer(centre_dir) as srv:
        relay = Relay(("127.0.0.1", srv.port))
        try:
            d = _enrolled(tmp_path, centre_dir, relay.url)
            size = 600_000
            populate(d, 1, content=(size,))
            chunk = 64 * 1024
            set_sync(d, bandwidth_kbit=1600, chunk_bytes=chunk, stall_timeout_s=3,
                     read_timeout_s=3)
            agent = subprocess.Popen(
                [*LUUTRU, "sync", "--data", str(d), "--once"], cwd=REPO,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
            # Cut once both lanes hold some bytes (content goes at 200 KB/s, so 600 KB take
            # three seconds): waiting for that, not for a fixed time, keeps a loaded machine
            # from cutting before the second lane has started.
            uploads = centre_dir / "blobs" / "uploads"
            deadline = time.monotonic() + 60
            while not (
                any(p.stat().st_size > 0 for p in uploads.glob("*.lane-*"))
                and any(p.stat().st_size > 0 for p in uploads.glob("*.part"))
            ):
                assert time.monotonic() < deadline and agent.poll() is None, "no two lanes"
                time.sleep(0.02)
            relay.cut()
            agent.communicate(timeout=60)
            assert agent.returncode != 0
            first = state(d)["content_bytes_sent"]
            assert 0 < first < size
            # The file went up in two lanes (on two connections: lane 0, and its last quarter
            # in gaps lane 0 leaves) and the cut came partway through lane 0.
            (lane,) = uploads.glob("*.lane-*")
            start = int(lane.name.rsplit("-", 1)[1])
            held = (uploads / f"{lane.name[:64]}.part").stat().st_size
            assert 0 < held < start and 0 < lane.stat().st_size <= size - start
            relay.restore()
            _sync(d)
            total = state(d)["content_bytes_sent"]
            assert size <= total <= size + chunk, (first, total)
            assert_in_sync(d, centre_dir)
            assert row(report(centre_dir))["content_missing"] == 0
        finally:
            relay.close()


def test_cut_with_two_files_in_flight_resends_less_than_one_chunk(
    tmp_path: Path, centre_dir: Path
) -> None:
    """Streamed PATCHes of several files, two at a time: a cut keeps every complete piece,
    and the resume (offsets from the centre's answer) resends less than one chunk in all."""
    with CentreServer(centre_dir) as srv:
        relay = Relay(("127.0.0.1", srv.port))
        try:
            d = _enrolled(tmp_path, centre_dir, relay.url)
            sizes = (150_000, 90_000, 200_000, 120_000)
            populate(d, len(sizes), content=sizes)
            chunk = 64 * 1024
            set_sync(d, bandwidth_kbit=1600, chunk_bytes=chunk, stall_timeout_s=3,
                     read_timeout_s=3)
            agent = subprocess.Popen(
                [*LUUTRU, "sync", "--data", str(d), "--once"], cwd=REPO,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
            blobs = centre_dir / "blobs"
            deadline = time.monotonic() + 60
            while not list((blobs / "sha256").rglob("*")) or not list(
                (blobs / "uploads").glob("*.part")
            ):  # a file is done and the next one is under way
                assert time.monotonic() < deadline, "the uploads did not start"
                time.sleep(0.05)
            relay.cut()
            agent.communicate(timeout=60)
            assert agent.returncode != 0
            first = state(d)["content_bytes_sent"]
            assert 0 < first < sum(sizes)
            relay.restore()
            rep = json.loads(_sync(d).stdout)
            assert rep["pending_content"] == 0
            total = state(d)["content_bytes_sent"]
            assert sum(sizes) <= total < sum(sizes) + chunk, (first, total)
            assert_in_sync(d, centre_dir)
            assert row(report(centre_dir))["content_missing"] == 0
        finally:
            relay.close()


def test_entry_tampered_in_flight_is_refused_then_sent_intact(
    tmp_path: Path, centre_dir: Path
) -> None:
    with CentreServer(centre_dir) as srv:
        relay = Relay(("127.0.0.1", srv.port))
        try:
            d = _enrolled(tmp_path, centre_dir, relay.url)
            populate(d, 5, subject="Kế hoạch phòng chống lụt bão")
            relay.tamper = "lụt bão".encode()
            bad = _sync(d, check=False)
            assert relay.tampered and bad.returncode != 0
            assert "bad_signature" in state(d)["last_error_code"]
            assert centre_entries(centre_dir, appliance_id(d)) == []
            assert row(report(centre_dir))["anomaly_kinds"].startswith("bad_signature")
            _sync(d)
            assert_in_sync(d, centre_dir)
        finally:
            relay.close()


def test_unknown_key_is_refused_and_counted(tmp_path: Path, centre_dir: Path) -> None:
    with CentreServer(centre_dir) as srv:
        good = _enrolled(tmp_path, centre_dir, srv.url)
        stranger = new_appliance(tmp_path / "stranger")
        populate(stranger, 2)
        shutil.copytree(good / "sync", stranger / "sync")  # pretends to be enrolled
        (stranger / "sync" / "state.json").unlink()
        out = _sync(stranger, check=False)
        assert out.returncode != 0 and "not enrolled" in out.stderr
        assert report(centre_dir)["totals"]["unknown_key_refusals"] == 1
        assert centre_entries(centre_dir, appliance_id(stranger)) == []


def test_restored_backup_forks_quarantine_alert_and_clear(
    tmp_path: Path, centre_dir: Path
) -> None:
    with CentreServer(centre_dir) as srv:
        d = _enrolled(tmp_path, centre_dir, srv.url)
        populate(d, 3)
        _sync(d)
        shutil.copytree(d, tmp_path / "backup")
        populate(d, 3, seed=1)
        _sync(d)
        accepted = state(d)["acknowledged_size"]
        shutil.rmtree(d)
        shutil.copytree(tmp_path / "backup", d)
        populate(d, 5, seed=2, subject="Sau khi khôi phục")
        out = _sync(d, check=False)
        assert out.returncode != 0 and "quarantined" in out.stderr
        st = state(d)
        assert st["quarantined"] is True and sync_status(d).quarantined
        rep = report(centre_dir)
        r = row(rep)
        assert r["status"] == "quarantined" and r["accepted_size"] == accepted
        # The restored box came back behind what the centre accepted (its request sequence went
        # back: a 'behind' alert), and its new entries fork the log (the 'fork' alert).
        assert sorted(a["kind"] for a in rep["alerts"]) == ["behind", "fork"]
        assert rep["totals"]["quarantined"] == 1
        html = dashboard_opener(srv.url, centre_dir).open(srv.url + "/", timeout=10).read()
        assert "cách ly" in html.decode() and "fork" in html.decode()
        # Still refused, and nothing of the new branch stored, until a technician clears it.
        assert _sync(d, check=False).returncode != 0
        assert len(centre_entries(centre_dir, appliance_id(d))) == accepted
        cleared = run_json(
            "central", "clear", "--data", str(centre_dir), "--appliance", appliance_id(d),
            "--by", "Nguyễn Văn Kỹ",
        )
        assert cleared["superseded"] > 0
        _sync(d)
        assert_in_sync(d, centre_dir)
        assert row(report(centre_dir))["status"] == "active"


def test_appliance_clock_a_day_wrong(tmp_path: Path, centre_dir: Path) -> None:
    with CentreServer(centre_dir) as srv:
        d = _enrolled(tmp_path, centre_dir, srv.url)
        populate(d, 4)
        rep = json.loads(_sync(d, "--clock-offset", "86400").stdout)
        assert rep["confirmed_size"] == tree_size(d) - 1
        assert state(d)["clock_skew_s"] > 86_000
        assert "clock_skew" in row(report(centre_dir))["anomaly_kinds"]
        assert_in_sync(d, centre_dir)


def test_usb_round_trip_reordered_and_repeated(tmp_path: Path, centre_dir: Path) -> None:
    """Enrol, export, import at the centre out of order and twice, import the receipts."""
    d = new_appliance(tmp_path / "app")
    stick = tmp_path / "stick"
    run("enrol", "--data", str(d), "--token", token(centre_dir), "--export", str(stick))
    run("central", "import", str(stick), "--data", str(centre_dir))
    run("sync", "--data", str(d), "--import-receipts", str(stick))
    assert sync_status(d).enrolled
    populate(d, 9, content=(30_000,), classified=1)
    set_sync(d, max_batch_entries=5)
    exp = run_json("sync", "--data", str(d), "--export", str(stick), "--json")
    assert exp["batches"] >= 3 and exp["content_files"] == 1
    outbox = next((stick / "luutru-sync").iterdir()) / "outbox"
    batches = sorted(outbox.glob("batch-*.cbor"))
    late = tmp_path / "late"
    late_box = late / "luutru-sync" / outbox.parent.name / "outbox"
    late_box.mkdir(parents=True)
    for b in batches[1:]:
        shutil.move(str(b), late_box / b.name)
    # The later batches arrive first: parked, not lost.
    first = run_json("central", "import", str(late), "--data", str(centre_dir), "--json")
    assert first["devices"][0]["batches"] == {"parked": len(batches) - 1}
    run("central", "import", str(stick), "--data", str(centre_dir))
    answers = {p.name: p.read_bytes() for p in (outbox.parent / "inbox").glob("*.cbor")}
    run("central", "import", str(stick), "--data", str(centre_dir))  # the same stick again
    again = {p.name: p.read_bytes() for p in (outbox.parent / "inbox").glob("*.cbor")}
    batch_answers = [n for n in answers if n.startswith("batch-")]
    assert batch_answers and all(answers[n] == again[n] for n in batch_answers)
    r = row(report(centre_dir))
    assert r["accepted_size"] == tree_size(d) and r["content_missing"] == 0
    got = run_json("sync", "--data", str(d), "--import-receipts", str(stick), "--json")
    assert got["confirmed_size"] == tree_size(d) - 1 and got["receipt_index"] is not None
    assert_in_sync(d, centre_dir)
    assert receipt_sizes(d) == [got["confirmed_size"]]
