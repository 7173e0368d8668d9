"""Replacing a dead appliance from the centre's copy, with real processes on loopback.

The box dies (its folder is deleted); a technician issues a replacement token at the centre;
`luutru restore --from-centre` rebuilds the folder on a new box with a new key; the log goes
on after a hand-over entry the centre countersigns, and the old key is refused from then on.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from appliance.errors import LuutruError
from appliance.ledger import Entry
from appliance.store import Store
from tests.conftest import ORG_ID, ORG_NAME
from tests.sync.procs import (
    LUUTRU,
    REPO,
    CentreServer,
    appliance_id,
    new_appliance,
    populate,
    report,
    row,
    run,
    run_json,
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


def _sync(d: Path, check: bool = True) -> dict:  # type: ignore[type-arg]
    p = run("sync", "--data", str(d), "--once", "--json", check=check)
    return json.loads(p.stdout) if p.stdout.strip() else {"stderr": p.stderr}


def _replacement_token(centre_dir: Path, name: str) -> str:
    out = run("central", "token", "--data", str(centre_dir), "--replace", name).stdout
    return out.strip().splitlines()[-1]


def _restore(d: Path, url: str, tok: str, *extra: str, check: bool = True) -> object:
    return run("restore", "--data", str(d), "--from-centre", url, "--token", tok,
               "--key", "software", "--json", *extra, check=check)


def _dead_box(tmp_path: Path, centre_dir: Path, url: str) -> tuple[Path, str, list[str]]:
    """An appliance that registered, scanned, froze and synced, and then died."""
    d = new_appliance(tmp_path / "old")
    run("enrol", "--data", str(d), "--centre", url, "--token", token(centre_dir))
    ids = populate(d, 20, content=(30_000, 4_000), classified=1)
    run("freeze", "--data", str(d), "--doc", ids[3], "--reason", "Thanh tra đang xem xét")
    rep = _sync(d)
    assert rep["confirmed_size"] == tree_size(d) - 1
    return d, appliance_id(d), ids


def test_replace_dead_appliance_from_centre(tmp_path: Path, centre_dir: Path) -> None:
    with CentreServer(centre_dir) as srv:
        old, log_id, ids = _dead_box(tmp_path, centre_dir, srv.url)
        accepted = row(report(centre_dir))["accepted_size"]
        stolen = tmp_path / "stolen"  # the old disk, kept to show its key is refused later
        shutil.copytree(old, stolen)
        shutil.rmtree(old)  # the flood

        # An enrolment token cannot be spent on a restore, nor a replacement token on enrol.
        bad = _restore(tmp_path / "new", srv.url, token(centre_dir), check=False)
        assert bad.returncode != 0 and "unknown" in bad.stderr  # type: ignore[attr-defined]
        assert not (tmp_path / "new").exists() or not any((tmp_path / "new").iterdir())
        tok = _replacement_token(centre_dir, log_id[:12])
        other = new_appliance(tmp_path / "other")
        refused = run("enrol", "--data", str(other), "--centre", srv.url, "--token", tok,
                      check=False)
        assert refused.returncode != 0 and "restore" in refused.stderr

        new = tmp_path / "new"
        res = json.loads(_restore(new, srv.url, tok).stdout)  # type: ignore[attr-defined]
        prov = res["provenance"]
        assert prov["source"] == "centre" and prov["appliance_id"] == log_id
        assert prov["tree_size"] == accepted and prov["handover_index"] == accepted
        assert prov["withheld"] == 2  # the classified register and its scan: hashes only
        assert prov["content_files"] == 2 and prov["lost_content"] == 0
        assert res["verify"]["ok"] is True

        # The same log, a new key; the hand-over entry names both keys.
        new_kid = appliance_id(new)
        assert new_kid != log_id
        with Store.open(new, readonly=True) as s:
            raw = next(iter(s.entries(accepted, accepted + 1)))[1]
            h = Entry.decode(raw)
            assert h.kind == "device.handover"
            assert h.data and h.data["previous_key_id"] == log_id
            assert h.data["new_key_id"] == new_kid and len(h.data["withheld"]) == 2
            # Every public record and its scan came back; the frozen one is still frozen.
            assert s.count("document") == 20
            doc = s.get("document", ids[0])
            assert s.content.exists(doc.data["Content"][0]["sha256"])
        verify = run_json("verify", "--data", str(new), "--json")
        assert verify["ok"] is True
        codes = {f["code"] for f in verify["findings"]}
        assert codes == {"log.withheld"}
        out = run("search", "--data", str(new), "quan ly dat dai", "--json").stdout
        found = {json.loads(line)["id"] for line in out.splitlines() if line.strip()}
        assert set(ids) <= found
        with Store.open(new) as s, pytest.raises(LuutruError, match="phong tỏa"):
            s.update_document(ids[3], {"Subject": "Sửa sau khi thay thiết bị"})
        st = state(new)
        assert st["acknowledged_size"] == accepted + 1 == st["confirmed_size"]

        # What the log does not hold is provisioned again: the first administrator and the
        # LAN certificate; the identity, key and enrolment are kept.
        prov_run = subprocess.run(
            [*LUUTRU, "provision", "--data", str(new), "--non-interactive", "--json",
             "--org-id", ORG_ID, "--org-name", ORG_NAME, "--unit-code", "07123",
             "--ip", "127.0.0.1", "--admin-username", "lanhdao",
             "--admin-full-name", "Trần Văn Hùng", "--admin-password-stdin",
             "--skip-check", "scanners", "--skip-check", "mdns"],
            input="mat-khau-rat-dai-2026\n", capture_output=True, text=True, cwd=REPO,
            timeout=300,
        )
        assert prov_run.stdout.strip(), prov_run.stderr
        steps = {s["name"]: s["status"] for s in json.loads(prov_run.stdout)["steps"]}
        assert steps["device-key"] == "kept" and steps["enrol"] == "kept", prov_run.stdout
        assert steps["admin"] == "done" and steps["tls"] == "done"
        assert appliance_id(new) == new_kid
        assert run_json("verify", "--data", str(new), "--json")["ok"] is True

        # The new box goes on with the same log at the centre: one appliance, a new key.
        later = populate(new, 3, content=(7_000,), seed=7)
        with Store.open(new, readonly=True) as s:
            # 20 public and 1 classified số đến were given before: the classified one is a
            # leaf hash here, but its number was logged on its own, so 21 is not given again.
            assert s.get("document", later[0]).data["ArrivalNumber"] == 22
        rep = _sync(new)
        assert rep["confirmed_size"] == tree_size(new) - 1
        r = row(report(centre_dir))
        assert r["appliance_id"] == log_id and r["accepted_size"] == rep["confirmed_size"]
        assert rep["uploaded_files"] == 1
        assert r["claimed_size"] == r["accepted_size"] and r["content_missing"] == 0
        assert r["key_id"] == new_kid and r["handovers"] == 1
        assert run("verify", "--data", str(new)).returncode == 0

        # The old key is refused from now on, and counted.
        populate(stolen, 1, seed=9)
        old_try = run("sync", "--data", str(stolen), "--once", "--json", check=False)
        assert old_try.returncode != 0
        assert "retired" in old_try.stdout + old_try.stderr
        anomalies = report(centre_dir)
        assert "retired" in json.dumps(anomalies, ensure_ascii=False)

        # The token is spent: a second box cannot take the log over with it.
        again = _restore(tmp_path / "third", srv.url, tok, check=False)
        assert again.returncode != 0 and "completed" in again.stderr  # type: ignore[attr-defined]
        assert not (tmp_path / "third").exists() or not any((tmp_path / "third").iterdir())


def test_restore_refuses_a_tampered_copy_and_changes_nothing(
    tmp_path: Path, centre_dir: Path
) -> None:
    with CentreServer(centre_dir) as srv:
        old, log_id, _ = _dead_box(tmp_path, centre_dir, srv.url)
        shutil.rmtree(old)
        tok = _replacement_token(centre_dir, log_id)
        db = centre_dir / "centre.db"
        with sqlite3.connect(db) as c:
            # A registration's subject rewritten in the centre's database, same length.
            idx, entry = next(
                (int(i), bytes(e))
                for i, e in c.execute(
                    "SELECT idx, entry FROM entries WHERE appliance_id = ? ORDER BY idx", (log_id,)
                )
                if e is not None and b" 0-1" in bytes(e)
            )
            forged = entry.replace(b" 0-1", b" 0-9")
            c.execute("UPDATE entries SET entry = ? WHERE appliance_id = ? AND idx = ?",
                      (forged, log_id, idx))
        new = tmp_path / "new"
        bad = _restore(new, srv.url, tok, check=False)
        assert bad.returncode != 0  # type: ignore[attr-defined]
        assert f"entry {idx} does not hash to its leaf" in bad.stderr  # type: ignore[attr-defined]
        assert not new.exists() or not any(new.iterdir())
        # The leaf changed with it: now the tree no longer matches the signed checkpoint.
        from appliance.merkle import leaf_hash

        with sqlite3.connect(db) as c:
            c.execute("UPDATE entries SET leaf = ? WHERE appliance_id = ? AND idx = ?",
                      (leaf_hash(forged), log_id, idx))
        bad = _restore(new, srv.url, tok, check=False)
        assert bad.returncode != 0 and "root" in bad.stderr  # type: ignore[attr-defined]
        assert not new.exists() or not any(new.iterdir())
        # The centre's copy is untouched: still the old key's, nothing handed over.
        r = row(report(centre_dir))
        assert r["appliance_id"] == log_id
        with sqlite3.connect(db) as c:
            assert c.execute("SELECT count(*) FROM appliance_keys").fetchone()[0] == 0


def test_content_that_never_reached_the_centre(tmp_path: Path, centre_dir: Path) -> None:
    with CentreServer(centre_dir) as srv:
        old, log_id, ids = _dead_box(tmp_path, centre_dir, srv.url)
        with Store.open(old, readonly=True) as s:
            lost = s.get("document", ids[1]).data["Content"][0]["sha256"]
        medium = tmp_path / "usb-backup"  # the commune's last backup of the old box
        run("backup", "--data", str(old), "--to", str(medium), "--full")
        shutil.rmtree(old)
        # As if the box died before this scan was uploaded: the centre has its entry only.
        with sqlite3.connect(centre_dir / "centre.db") as c:
            c.execute("DELETE FROM blobs WHERE sha256 = ?", (lost,))
        for p in (centre_dir / "blobs").rglob(lost):
            p.unlink()
        tok = _replacement_token(centre_dir, log_id)
        new = tmp_path / "new"
        bad = _restore(new, srv.url, tok, check=False)
        assert bad.returncode != 0 and "--accept-lost-content" in bad.stderr  # type: ignore
        assert not new.exists() or not any(new.iterdir())
        res = json.loads(_restore(new, srv.url, tok, "--accept-lost-content").stdout)  # type: ignore
        assert res["provenance"]["lost_content"] == 1
        verify = run_json("verify", "--data", str(new), "--json")
        assert verify["ok"] is True
        assert {f["code"] for f in verify["findings"]} == {"log.withheld", "content.lost"}
        # A fixity audit lists it as lost at the replacement, not as a failure; healing from
        # the old box's backup brings it back.
        audit = run_json("fixity", "--data", str(new), "--json")["audit"]
        assert audit["ok"] is True and audit["known_lost"] == [lost]
        healed = run_json("fixity", "--data", str(new), "--media", str(medium), "--heal",
                          "--json")
        assert [h["sha256"] for h in healed["heal"]["healed"]] == [lost]
        assert healed["heal"]["healed"][0]["kind"] == "content.lost"
        assert healed["after"]["ok"] and healed["after"]["known_lost"] == []
        assert any(p.name == lost for p in (new / "content").rglob("*"))


def _stored_once(d: Path) -> tuple[str, str, dict[str, str]]:
    """A scan in its three versions (lossless released, PDF/A inside the signed file) and a
    document whose lossless master is kept on the box only."""
    import hashlib

    from appliance import versions
    from appliance.capture.filing import content_ref
    from tests.conftest import incoming

    raw, master = b"%PDF lossless" * 3000, b"%PDF master" * 2000
    archival = b"%PDF-1.7 archival" * 2000
    signed = archival + b"% signature" * 500
    sha = {k: hashlib.sha256(v).hexdigest() for k, v in
           (("raw", raw), ("archival", archival), ("signed", signed), ("master", master))}
    with Store.open(d) as s:
        r = s.content.put_bytes(raw)
        doc = s.register_incoming(incoming(Content=[content_ref(r.sha256, r.size, "s.pdf")]))
        a = s.content.put_bytes(archival)
        versions.add_version(s, doc.record.id, content_ref(a.sha256, a.size, "a.pdf"),
                             r.sha256, keep_source=versions.KEEP_NONE)
        s.content.release(r.sha256)
        sg = s.content.put_bytes(signed)
        versions.add_version(s, doc.record.id, content_ref(sg.sha256, sg.size, "s.pdf"),
                             a.sha256, extends=True)
        assert s.content.derive(a.sha256, sg.sha256)
        m = s.content.put_bytes(master)
        other = s.register_incoming(incoming(CodeNumber="77",
                                             Content=[content_ref(m.sha256, m.size, "m.pdf")]))
        kept = s.content.put_bytes(archival + b"2")
        versions.add_version(s, other.record.id, content_ref(kept.sha256, kept.size, "k.pdf"),
                             m.sha256, keep_source=versions.KEEP_BOX)
        s.wait_sealed()
        return doc.record.id, other.record.id, sha


def test_a_scan_stored_once_is_restored_from_its_signed_file(
    tmp_path: Path, centre_dir: Path
) -> None:
    """The centre held only the signed file: the new box rebuilds the PDF/A from its prefix,
    knows the lossless scan was released, and names the box-only master as lost with the old
    box (recorded in the hand-over, no --accept-lost-content needed); verify passes."""
    with CentreServer(centre_dir) as srv:
        old = new_appliance(tmp_path / "old")
        run("enrol", "--data", str(old), "--centre", srv.url, "--token", token(centre_dir))
        _doc, _other, sha = _stored_once(old)
        rep = _sync(old)
        assert rep["pending_content"] == 0 and rep["uploaded_files"] == 2, rep
        log_id = appliance_id(old)
        shutil.rmtree(old)
        new = tmp_path / "new"
        res = json.loads(_restore(new, srv.url, _replacement_token(centre_dir, log_id[:12])).stdout)  # type: ignore[attr-defined]
        assert res["provenance"]["lost_content"] == 1 and res["verify"]["ok"] is True
        with Store.open(new, readonly=True) as s:
            assert s.content.has_file(sha["signed"]) and not s.content.has_file(sha["archival"])
            assert s.content.hash_file(sha["archival"]) == sha["archival"]
            assert not s.content.exists(sha["raw"]) and not s.content.exists(sha["master"])
