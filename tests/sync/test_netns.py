"""The key scenarios over a bad 3G-like link: two network namespaces joined by linkem.py at
256 kbit/s, 300 ms each way, 5 % loss, with silent outages on SIGUSR1 (io-recipes §7a)."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.sync.procs import (
    LUUTRU,
    REPO,
    CentreServer,
    Link,
    assert_in_sync,
    emulated_link,
    namespaces_available,
    new_appliance,
    populate,
    report,
    row,
    run,
    set_sync,
    state,
    token,
    tree_size,
)

REASON = namespaces_available()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(REASON is not None, reason=f"no network namespaces: {REASON}"),
]
PORT = 8470


@pytest.fixture
def link() -> object:
    with emulated_link() as lk:
        yield lk


def _setup(tmp_path: Path, link: Link) -> tuple[Path, CentreServer, Path]:
    centre_dir = tmp_path / "centre"
    run("central", "init", "--data", str(centre_dir))
    srv = CentreServer(centre_dir, host=link.centre_ip, port=PORT, netns=link.centre_ns).start()
    d = new_appliance(tmp_path / "app")
    run("enrol", "--data", str(d), "--centre", srv.url, "--token", token(centre_dir),
        netns=link.appliance_ns)
    return centre_dir, srv, d


def _wait_for(pred: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():  # type: ignore[operator]
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def test_outage_mid_upload_resumes_over_the_emulated_link(tmp_path: Path, link: Link) -> None:
    """A silent outage longer than the stall timeout cuts the upload; the background agent
    backs off, resumes from the centre's offset, and resends at most one chunk."""
    centre_dir, srv, d = _setup(tmp_path, link)
    try:
        size, chunk = 160_000, 32 * 1024
        populate(d, 6, content=(size,), classified=1)
        set_sync(d, chunk_bytes=chunk, interval_s=2, backoff_max_s=4, stall_timeout_s=6,
                 read_timeout_s=10)
        agent = subprocess.Popen(
            ["ip", "netns", "exec", link.appliance_ns, *LUUTRU, "sync", "--data", str(d)],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        uploads = centre_dir / "blobs" / "uploads"
        _wait_for(
            lambda: any(p.stat().st_size >= chunk for p in uploads.glob("*.part")),
            120, "the first chunk at the centre",
        )
        link.outage()
        time.sleep(14)
        link.outage()
        _wait_for(lambda: state(d).get("confirmed_size", 0) >= tree_size(d) - 1, 240,
                  "the receipt after the outage")
        agent.send_signal(signal.SIGTERM)
        _, err = agent.communicate(timeout=30)
        assert "sync failed" in err  # the outage did cut the cycle; a later one finished it
        st = state(d)
        assert size <= st["content_bytes_sent"] <= size + chunk, (st["content_bytes_sent"], err)
        assert_in_sync(d, centre_dir)
        r = row(report(centre_dir))
        assert r["content_missing"] == 0 and r["withheld"] == 2
    finally:
        srv.kill(signal.SIGTERM)


def test_centre_killed_mid_batch_over_the_emulated_link(tmp_path: Path, link: Link) -> None:
    centre_dir, srv, d = _setup(tmp_path, link)
    try:
        populate(d, 600, noise=300)
        set_sync(d, stall_timeout_s=5, read_timeout_s=10)
        agent = subprocess.Popen(
            ["ip", "netns", "exec", link.appliance_ns, *LUUTRU, "sync", "--data", str(d),
             "--once"],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        time.sleep(3)  # ~470 KB of entries, ~170 KB deflated, take ~5 s on this link
        srv.kill(signal.SIGKILL)
        agent.communicate(timeout=120)
        assert agent.returncode != 0
        srv.start()
        out = run("sync", "--data", str(d), "--once", "--json", netns=link.appliance_ns)
        rep = json.loads(out.stdout)
        assert rep["confirmed_size"] == tree_size(d) - 1
        assert_in_sync(d, centre_dir)
    finally:
        srv.kill(signal.SIGTERM)


def test_tampered_and_unknown_over_the_emulated_link(tmp_path: Path, link: Link) -> None:
    """An unknown appliance on the same link is refused and counted; the enrolled one syncs."""
    centre_dir, srv, d = _setup(tmp_path, link)
    try:
        populate(d, 3)
        stranger = new_appliance(tmp_path / "stranger")
        populate(stranger, 2)
        (stranger / "sync").mkdir()
        (stranger / "sync" / "enrolment.json").write_text(
            (d / "sync" / "enrolment.json").read_text()
        )
        bad = run("sync", "--data", str(stranger), "--once", netns=link.appliance_ns,
                  check=False)
        assert bad.returncode != 0 and "not enrolled" in bad.stderr
        run("sync", "--data", str(d), "--once", netns=link.appliance_ns)
        assert_in_sync(d, centre_dir)
        assert report(centre_dir)["totals"]["unknown_key_refusals"] == 1
    finally:
        srv.kill(signal.SIGTERM)
