"""A box that lost the tail of its log heals from the centre's copy, with real processes:
its write-ahead log lost after a sync, or an older copy of its whole disk put back. The
centre raises an alert, the agent says ``behind_centre`` (not ``bad_signature``), the box
stops numbering, and `luutru restore --tail-from-centre` brings the entries and their
content back, after which numbering continues without giving any number twice."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import cbor2
import pytest

from appliance.store import Store
from tests.faults import add_clerk, call, kill, lose_wal, no_traceback, register, wait_sealed
from tests.faults import tree_size as raw_size
from tests.sync.procs import (
    CentreServer,
    appliance_id,
    assert_in_sync,
    new_appliance,
    populate,
    report,
    row,
    run,
    state,
    token,
)
from tests.web.server import serve

pytestmark = pytest.mark.slow


@pytest.fixture
def centre_dir(tmp_path: Path) -> Path:
    d = tmp_path / "centre"
    run("central", "init", "--data", str(d))
    return d


def _sync(d: Path) -> tuple[int, dict[str, Any], str]:
    p = run("sync", "--data", str(d), "--once", "--json", check=False)
    no_traceback(p.stdout, p.stderr)
    out = json.loads(p.stdout) if p.stdout.strip() else {}
    return p.returncode, out, p.stderr


def _tail(d: Path, *extra: str) -> tuple[int, dict[str, Any], str]:
    p = run("restore", "--data", str(d), "--tail-from-centre", "--json", *extra, check=False)
    no_traceback(p.stdout, p.stderr)
    return p.returncode, (json.loads(p.stdout) if p.stdout.strip() else {}), p.stderr


def _alerts(centre_dir: Path, app_id: str) -> list[dict[str, Any]]:
    return [a for a in report(centre_dir)["alerts"] if a["appliance_id"] == app_id]


def _numbers(d: Path) -> list[int]:
    with Store.open(d, readonly=True) as s:
        return sorted(int(r.data["ArrivalNumber"]) for r in s.find("document")
                      if r.data.get("ArrivalNumber"))


def _kinds(d: Path, start: int) -> list[dict[str, Any]]:
    with Store.open(d, readonly=True) as s:
        return [cbor2.loads(raw) for _, raw in s.entries(start)]


def test_a_lost_wal_heals_from_the_centre_and_numbering_goes_on(
    tmp_path: Path, centre_dir: Path
) -> None:
    with CentreServer(centre_dir) as centre:
        box = new_appliance(tmp_path / "box")
        run("enrol", "--data", str(box), "--centre", centre.url, "--token", token(centre_dir))
        app_id = appliance_id(box)
        populate(box, 4, content=(20_000,))
        clerk = add_clerk(box)
        with serve(box) as srv:
            register(srv, clerk, 6, start=100)
            rc, rep, err = _sync(box)  # beside the running server: the centre holds all of it
            assert rc == 0, err
            synced = rep["acknowledged_size"]
            register(srv, clerk, 3, start=200)  # acknowledged, never sent
            acked = raw_size(box)
            wait_sealed(srv, acked, box)
            kill(srv)
        lose_wal(box)
        lost_size = raw_size(box)
        assert lost_size < synced < acked

        # The box knows: it is halted, says why and how to repair, and numbers nothing.
        verify = run("verify", "--data", str(box), "--json", check=False)
        codes = {f["code"] for f in json.loads(verify.stdout)["findings"]}
        assert {"log.behind_anchor", "log.behind_centre"} <= codes
        with serve(box, ready=(503,)) as srv:
            status, health = call(srv.url + "/healthz")
            assert status == 503 and health["status"] == "halted"
        rc, _, err = _sync(box)
        assert rc != 0 and "--tail-from-centre" in err

        # Entries signed here that never reached the centre are lost: said, nothing changed.
        rc, _, err = _tail(box)
        assert rc != 0 and "--accept-loss" in err
        assert raw_size(box) == lost_size
        rc, res, err = _tail(box, "--accept-loss")
        assert rc == 0, err
        assert res["local_size"] == lost_size and res["centre_size"] == synced
        assert res["restored"] == synced - lost_size and res["verify_ok"] is True
        assert res["numbers_kept"] >= 1 and res["lost_anchors"]
        alerts = _alerts(centre_dir, app_id)
        assert [a["kind"] for a in alerts] == ["behind"]

        healed = _kinds(box, synced)
        assert healed[0]["kind"] == "log.tail_restored"
        assert any(e["kind"] == "numbering.used" and e["data"]["Number"] == 13
                   for e in healed)  # 4 + 6 + 3: the last number the lost tail took
        # Numbering goes on past the numbers the lost tail had given: none is given twice.
        with serve(box) as srv:
            status, health = call(srv.url + "/healthz")
            assert status == 200 and health["status"] == "ok"
            (doc,) = register(srv, clerk, 1, start=300)
            assert doc["data"]["ArrivalNumber"] == 14, doc
        rc, rep, err = _sync(box)
        assert rc == 0, err
        assert rep["acknowledged_size"] > doc["log_index"]  # the healed part and the new one
        assert_in_sync(box, centre_dir)
        assert row(report(centre_dir))["status"] == "active"  # no fork: the same log
        ok = run("verify", "--data", str(box), "--json", check=False)
        assert json.loads(ok.stdout)["ok"] is True, ok.stdout


def test_an_older_disk_put_back_is_an_alert_and_heals(tmp_path: Path, centre_dir: Path) -> None:
    """No anchor can tell (the whole folder is older, its anchors too, a software key): the
    centre does. Formerly only a `sequence_regressed` anomaly and a `bad_signature` error."""
    with CentreServer(centre_dir) as centre:
        box = new_appliance(tmp_path / "box")
        run("enrol", "--data", str(box), "--centre", centre.url, "--token", token(centre_dir))
        app_id = appliance_id(box)
        populate(box, 5, content=(10_000,))
        assert _sync(box)[0] == 0
        older = tmp_path / "older"
        shutil.copytree(box, older)
        later = populate(box, 4, content=(30_000, 12_000), seed=7)
        rc, rep, _ = _sync(box)
        assert rc == 0
        centre_size = rep["acknowledged_size"]
        shutil.rmtree(box)
        shutil.copytree(older, box)  # the older backup put back
        numbers_then = _numbers(box)

        rc, _, err = _sync(box)
        assert rc != 0
        assert state(box)["last_error_code"] == "behind_centre", state(box)
        assert "--tail-from-centre" in err
        alerts = _alerts(centre_dir, app_id)
        assert [a["kind"] for a in alerts] == ["behind"]
        with serve(box, ready=(503,)) as srv:  # the centre's receipt is now an anchor too
            status, health = call(srv.url + "/healthz")
            assert status == 503 and health["faults"][0]["code"] == "log.behind_centre"

        rc, res, err = _tail(box)
        assert rc == 0, err
        assert res["centre_size"] == centre_size and res["lost_anchors"] == []
        assert res["content_files"] == 2  # the two later scans came back from the centre
        with Store.open(box, readonly=True) as s:
            for doc_id in later:
                doc = s.get("document", doc_id)
                for c in doc.data.get("Content", []):
                    assert s.content.hash_file(c["sha256"]) == c["sha256"]
        assert _numbers(box) == sorted({*numbers_then, 6, 7, 8, 9})
        ok = run("verify", "--data", str(box), "--json", check=False)
        assert json.loads(ok.stdout)["ok"] is True, ok.stdout
        rc, rep, err = _sync(box)
        assert rc == 0, err
        assert row(report(centre_dir))["status"] == "active"
        assert rep["acknowledged_size"] > centre_size
