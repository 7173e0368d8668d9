"""The data folder is its owner's alone, whatever the umask: 0700 folders, 0600 database,
write-ahead log, queue, keys and secrets, 0440 content files."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.capture.queue import Queue
from appliance.datadir import init_data_dir
from appliance.fsutil import private_dirs, private_file
from appliance.keys.sealing import SecretStore
from appliance.store import Store
from tests.conftest import ORG_ID, ORG_NAME, incoming


@pytest.fixture
def loose_umask() -> Iterator[None]:
    old = os.umask(0o022)  # a shell's usual umask: group and world could read
    yield
    os.umask(old)


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_a_new_data_folder_is_private_under_a_loose_umask(
    tmp_path: Path, loose_umask: None
) -> None:
    d = tmp_path / "a" / "appliance"
    init_data_dir(d, ORG_ID, ORG_NAME, "software")
    with Store.open(d) as s:
        rec = s.register_incoming(incoming()).record
        c = s.content.put_bytes(b"%PDF-1.7 scan")
        s.attach_content(rec.id, [{"sha256": c.sha256, "size": c.size, "name": "s.pdf"}])
        s.wait_sealed()
        db = Path(s.db_path)
        for f in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
            assert _mode(f) == 0o600, f.name
        content = s.content.path(c.sha256)
        assert _mode(content) == 0o440
        p = content.parent
        while p != d:
            assert _mode(p) == 0o700, p
            p = p.parent
    Queue(d)
    assert _mode(d / "capture" / "queue.db") == 0o600 and _mode(d / "capture") == 0o700
    assert _mode(d) == 0o700 and _mode(d / "keys") == 0o700
    for f in (d / "keys").iterdir():
        expect = 0o644 if f.name.endswith(".pub.pem") else 0o600
        assert _mode(f) == expect, f.name
    SecretStore(d, None).get_or_create("session")
    assert _mode(d / "secrets") == 0o700 and _mode(d / "secrets" / "session.secret") == 0o600


def test_private_file_tightens_a_loose_one_and_private_dirs_fsyncs_new_ones(
    tmp_path: Path, loose_umask: None
) -> None:
    f = tmp_path / "x.db"
    f.write_bytes(b"")
    os.chmod(f, 0o644)
    private_file(f)
    assert _mode(f) == 0o600
    private_dirs(tmp_path / "p" / "q" / "r")
    assert all(_mode(tmp_path / x) == 0o700 for x in ("p", "p/q", "p/q/r"))


def test_the_program_sets_a_private_umask_and_an_in_process_invocation_does_not(
    tmp_path: Path, loose_umask: None
) -> None:
    """The luutru program runs under umask 077 whatever it inherits; invoking the
    command group inside another process (tests, a wrapper) leaves that process's umask."""
    import subprocess
    import sys

    from click.testing import CliRunner

    from luutru.cli import main

    CliRunner().invoke(main, ["--help"])
    assert os.umask(0o022) == 0o022  # unchanged by the in-process invocation
    probe = ("import os, luutru.cli as c; "
             "c.main = lambda: print(oct(os.umask(0))); c.run()")
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True,
                         text=True, preexec_fn=lambda: os.umask(0o022))
    assert out.stdout.strip() == "0o77"


def test_a_new_data_folder_and_a_registration_leave_no_entry_undurable(tmp_path: Path) -> None:
    """Every file and folder that init and a registration with a scan make is in a folder
    fsynced after it (LazyFS cannot see this: it writes folder entries through)."""
    from appliance.capture.queue import JobKind
    from appliance.capture.separator import Target
    from sync.agent.state import AgentLock, AgentState, save_state
    from tests.durability import DurabilityTrace

    d = tmp_path / "appliance"
    with DurabilityTrace(tmp_path) as trace:
        init_data_dir(d, ORG_ID, ORG_NAME, "software")
        assert trace.pending() == []
        with Store.open(d) as store:
            rec = store.register_incoming(incoming()).record
            c = store.content.put_bytes(b"%PDF-1.4 scan")
            store.attach_content(rec.id, [{"sha256": c.sha256, "size": c.size,
                                           "name": "a.pdf"}])
            assert store.wait_sealed()
            queue = Queue(d)
            queue.enqueue(JobKind.OCR, rec.id, c.sha256)
            batch = queue.new_batch("folder:/srv/scans", Target(file_code=None,
                                                                document_id=rec.id))
            queue.add_page(batch, "page-1.png", b"\x89PNG page")  # its only copy until filed
            with AgentLock(d):
                save_state(d, AgentState(acknowledged_size=1))
            assert trace.pending() == []
