"""Centre intake as a library: good, bad, forged, forked, replayed and classified batches."""

from __future__ import annotations

import shutil
from collections.abc import Callable

import pytest

from appliance import cbor, merkle
from appliance.checkpoint import verify_checkpoint
from appliance.keys.software import SoftwareKey
from appliance.store import Store
from sync import wire
from sync.central.centre import Centre
from sync.central.intake import Intake, Transport
from sync.central.quarantine import clear_quarantine
from sync.central.storage import AnomalyKind, ApplianceStatus
from tests.sync.conftest import Appliance, response


@pytest.fixture(params=["sqlite", "postgresql"])
def centre_db(request: pytest.FixtureRequest) -> str:
    """Every test here runs against both storage backends."""
    return str(request.param)


def _anomalies(centre: Centre, app_id: str | None) -> dict[str, int]:
    with centre.storage.view() as v:
        return {
            a.kind.value: a.count for a in v.anomalies() if a.appliance_id == app_id
        }


def _accepted(centre: Centre, app_id: str) -> int:
    with centre.storage.view() as v:
        rec = v.appliance(app_id)
        assert rec is not None
        return rec.accepted_size


def _stored_entries(centre: Centre, app_id: str) -> list[bytes | None]:
    with centre.storage.view() as v:
        return [r.entry for r in v.entries(app_id, 0, 1 << 30)]


def test_first_batch_is_accepted_and_receipted(
    make_appliance: Callable[..., Appliance], centre: Centre
) -> None:
    """TOFU from size 0: the root is recomputed from all entries and a receipt comes back."""
    app = make_appliance()
    app.add(5)
    ans = app.send(0)
    resp = response(centre, ans)
    assert ans.status == 200 and resp.outcome is wire.Outcome.ACCEPTED
    size, _ = app.store.tree_head()
    assert resp.accepted_size == size
    rc = wire.verify_receipt(resp.receipt or b"", centre.public_key)
    assert rc.tree_size == size and rc.root_hash == app.store.root_at(size)
    assert rc.witness == centre.origin
    device = app.store.key
    assert device is not None
    from appliance.keys.verify import load_public_key

    cp = verify_checkpoint(rc.checkpoint, load_public_key(device.public_key_pem()))
    assert cp.root_hash == rc.root_hash
    assert _stored_entries(centre, app.id) == [raw for _, raw in app.store.entries()]


def test_consecutive_batches_chain_by_consistency_proof(
    make_appliance: Callable[..., Appliance], centre: Centre
) -> None:
    """A second batch from the acknowledged size is checked against the stored frontier."""
    app = make_appliance()
    app.add(3)
    first = response(centre, app.send(0)).accepted_size
    app.add(4)
    ans = app.send(first)
    assert response(centre, ans).outcome is wire.Outcome.ACCEPTED
    assert _accepted(centre, app.id) == app.store.tree_head()[0]
    assert len(_stored_entries(centre, app.id)) == app.store.tree_head()[0]


def test_same_batch_twice_gives_the_same_receipt(
    make_appliance: Callable[..., Appliance], centre: Centre
) -> None:
    app = make_appliance()
    app.add(3)
    a = response(centre, app.send(0))
    b = response(centre, app.send(0))  # freshly signed, same entries
    assert a.outcome is wire.Outcome.ACCEPTED and b.outcome is wire.Outcome.DUPLICATE
    assert a.receipt == b.receipt
    assert len(_stored_entries(centre, app.id)) == app.store.tree_head()[0]


def test_byte_identical_replay_is_answered_as_before_and_counted(
    make_appliance: Callable[..., Appliance], centre: Centre, intake: Intake
) -> None:
    app = make_appliance()
    app.add(2)
    raw = app.sign(wire.RequestType.BATCH, app.batch_body(0))
    first = intake.handle(raw)
    again = intake.handle(raw)
    assert again.body == first.body
    assert _anomalies(centre, app.id).get("replay") == 1
    assert len(_stored_entries(centre, app.id)) == app.store.tree_head()[0]


def test_sequence_going_back_is_refused(
    make_appliance: Callable[..., Appliance], centre: Centre
) -> None:
    """A new request with an old sequence number is a replay (or a restored appliance)."""
    app = make_appliance()
    app.add(2)
    response(centre, app.send(0))
    app.seq = 0
    ans = app.send(0)
    resp = response(centre, ans)
    assert ans.status == 409 and resp.code == "replay" and resp.last_seq >= 1
    assert _anomalies(centre, app.id).get("sequence_regressed") == 1


def test_usb_batches_skip_sequence_rules(
    make_appliance: Callable[..., Appliance], centre: Centre
) -> None:
    app = make_appliance()
    app.add(2)
    response(centre, app.send(0))
    app.seq = 0
    resp = response(centre, app.send(0, Transport.USB))
    assert resp.outcome is wire.Outcome.DUPLICATE


def test_unknown_key_is_refused_and_counted(
    make_appliance: Callable[..., Appliance], centre: Centre
) -> None:
    app = make_appliance(enrolled=False)
    app.add(2)
    ans = app.send(0)
    assert ans.status == 403 and response(centre, ans).code == "unknown_key"
    assert _anomalies(centre, None).get("unknown_key") == 1
    with centre.storage.view() as v:
        assert v.appliance(app.id) is None


def test_forged_signature_is_refused(
    make_appliance: Callable[..., Appliance], centre: Centre, intake: Intake, tmp_path
) -> None:
    """Another key signs a request naming the enrolled device: refused, nothing stored."""
    app = make_appliance()
    app.add(2)
    other = SoftwareKey.create(tmp_path / "other.key")
    body = app.batch_body(0)
    msg = wire.cose.sign1(  # type: ignore[attr-defined]
        wire.encode_map(
            {
                "p": wire.PROTOCOL, "type": "batch", "device": app.store.key.kid,  # type: ignore[union-attr]
                "seq": 50, "nonce": wire.new_nonce(), "time": app.now(), "via": "http",
                "body": body,
            }
        ),
        other.alg, app.store.key.kid, other.sign,  # type: ignore[union-attr]
        {wire.cose.HDR_CONTENT_TYPE: wire.CT_REQUEST},  # type: ignore[attr-defined]
    )
    ans = intake.handle(msg.encode())
    assert ans.status == 403 and response(centre, ans).code == "bad_signature"
    assert _anomalies(centre, app.id).get("bad_signature") == 1
    assert _stored_entries(centre, app.id) == []


def test_entry_tampered_in_flight_breaks_the_signature(
    make_appliance: Callable[..., Appliance], centre: Centre, intake: Intake
) -> None:
    app = make_appliance()
    app.add(3)
    raw = bytearray(app.sign(wire.RequestType.BATCH, app.batch_body(0)))
    pos = bytes(raw).find("Ủy ban nhân dân tỉnh".encode())
    assert pos > 0
    raw[pos] ^= 0x01
    ans = intake.handle(bytes(raw))
    assert ans.status in (400, 403)
    assert _stored_entries(centre, app.id) == []
    assert response(centre, app.send(0)).outcome is wire.Outcome.ACCEPTED  # the real one


def test_device_signed_entries_that_miss_the_root_are_refused(
    make_appliance: Callable[..., Appliance], centre: Centre
) -> None:
    """Signed by the device but the entries do not hash to the checkpoint: bad batch."""
    app = make_appliance()
    app.add(3)
    body = app.batch_body(0)
    entries = list(body["entries"])  # type: ignore[call-overload]
    m = cbor.loads(entries[-1])
    m["actor"] = "mallory"
    entries[-1] = cbor.dumps_text_keyed(m)
    body["entries"] = entries
    ans = app.intake.handle(app.sign(wire.RequestType.BATCH, body))
    assert response(centre, ans).code == "bad_batch"
    assert _stored_entries(centre, app.id) == []


def test_classified_records_travel_as_leaf_hashes_only(
    make_appliance: Callable[..., Appliance], centre: Centre
) -> None:
    app = make_appliance()
    app.add(2)
    secret = app.add(1, Mode="03", Subject="Văn bản mật về quốc phòng")[0]
    app.store.audit("view", "clerk", "document", secret)
    c = app.store.content.put_bytes(b"classified scan")
    app.store.attach_content(secret, [{"sha256": c.sha256, "size": c.size, "name": "m.pdf"}])
    app.store.wait_sealed()
    body = app.batch_body(0)
    raw = app.sign(wire.RequestType.BATCH, body)
    assert b"quoc phong" not in raw and "quốc phòng".encode() not in raw
    assert c.sha256.encode() not in raw and bytes.fromhex(c.sha256) not in raw
    resp = response(centre, app.intake.handle(raw))
    assert resp.outcome is wire.Outcome.ACCEPTED
    stored = _stored_entries(centre, app.id)
    assert stored.count(None) == 3  # registration, audit, content attach
    assert c.sha256 not in resp.missing
    with centre.storage.view() as v:
        assert v.appliance(app.id).withheld == 3  # type: ignore[union-attr]
        assert [d.subject for d in v.search_documents("quoc phong")] == []


def test_a_batch_with_a_full_classified_entry_is_refused(
    make_appliance: Callable[..., Appliance], centre: Centre
) -> None:
    """Spec checklist: a sync batch containing a mode=03 item is refused."""
    app = make_appliance()
    app.add(1, Mode="03")
    size = app.store.tree_head()[0]
    cp = app.store.latest_checkpoint()
    assert cp is not None
    body = wire.Batch(
        0, size, cp[3], (), tuple(raw for _, raw in app.store.entries(0, size))
    ).to_body()
    ans = app.intake.handle(app.sign(wire.RequestType.BATCH, body))
    assert ans.status == 422 and response(centre, ans).code == "classified"
    assert _stored_entries(centre, app.id) == []
    assert _anomalies(centre, app.id).get("classified") == 1


def test_any_entry_kind_carrying_classified_fields_is_refused(
    make_appliance: Callable[..., Appliance], centre: Centre
) -> None:
    """Second line of defence: a hồ sơ's contents list naming a mật member, sent in full (as
    an earlier version did), is refused with 422 and the reason, whatever the entry's kind."""
    app = make_appliance()
    f = app.store.open_file({"FileCatalog": 2025, "FileNotation": "40.VP",
                             "Title": "Hồ sơ chung", "Maintenance": "05"})
    app.add(1, FileCode=f.data["FileCode"])
    app.add(1, FileCode=f.data["FileCode"], Mode="03", Subject="Văn bản mật biên giới")
    app.store.close_file(f.data["FileCode"])
    app.store.wait_sealed()
    size = app.store.tree_head()[0]
    cp = app.store.latest_checkpoint()
    assert cp is not None and cp[0] == size
    items = []
    for _, raw in app.store.entries(0, size):
        m = cbor.loads(raw)
        # An earlier outbox withheld only entries whose own data said Mode 03.
        keep = isinstance(m.get("data"), dict) and m["data"].get("Mode") == "03"
        items.append(wire.Withheld(merkle.leaf_hash(raw)) if keep else raw)
    body = wire.Batch(0, size, cp[3], (), tuple(items)).to_body()
    ans = app.intake.handle(app.sign(wire.RequestType.BATCH, body))
    resp = response(centre, ans)
    assert ans.status == 422 and resp.code == "classified"
    assert "file.contents" in resp.message
    assert _stored_entries(centre, app.id) == []


def test_reordered_batches_are_parked_then_applied(
    make_appliance: Callable[..., Appliance], centre: Centre
) -> None:
    app = make_appliance()
    app.add(4)
    raw1 = app.sign(wire.RequestType.BATCH, app.batch_body(0, max_entries=3))
    raw2 = app.sign(wire.RequestType.BATCH, app.batch_body(3))
    second = app.intake.handle(raw2, Transport.USB)
    assert second.status == 202 and response(centre, second).accepted_size == 0
    first = app.intake.handle(raw1, Transport.USB)
    assert response(centre, first).outcome is wire.Outcome.ACCEPTED
    size = app.store.tree_head()[0]
    assert _accepted(centre, app.id) == size
    assert len(_stored_entries(centre, app.id)) == size
    with centre.storage.view() as v:
        assert v.parked(app.id) == []


def test_clock_a_day_wrong_is_accepted_and_reported(
    make_appliance: Callable[..., Appliance], centre: Centre
) -> None:
    app = make_appliance(clock_offset_s=86_400)
    app.add(2)
    resp = response(centre, app.send(0))
    assert resp.outcome is wire.Outcome.ACCEPTED
    assert resp.extra["clock_skew_s"] >= 86_000
    assert _anomalies(centre, app.id).get("clock_skew") == 1


def _fork(make_appliance: Callable[..., Appliance], centre: Centre, tmp_path) -> Appliance:
    """Sync, keep a backup, sync more, restore the backup and write different entries."""
    app = make_appliance()
    app.add(3)
    backup_size = response(centre, app.send(0)).accepted_size
    app.store.close()
    shutil.copytree(app.data_dir, tmp_path / "backup")
    app.store = Store.open(app.data_dir, clock=app.clock)
    app.add(3)
    response(centre, app.send(backup_size))
    app.store.close()
    shutil.rmtree(app.data_dir)
    shutil.copytree(tmp_path / "backup", app.data_dir)
    app.store = Store.open(app.data_dir, clock=app.clock)
    app.add(2, Subject="Lịch sử khác sau khi khôi phục")
    return app


def test_restored_backup_forks_quarantines_and_keeps_evidence(
    make_appliance: Callable[..., Appliance], centre: Centre, tmp_path
) -> None:
    app = _fork(make_appliance, centre, tmp_path)
    accepted = _accepted(centre, app.id)
    ans = app.send(3)
    resp = response(centre, ans)
    assert ans.status == 409 and resp.outcome is wire.Outcome.QUARANTINED and resp.code == "fork"
    with centre.storage.view() as v:
        rec = v.appliance(app.id)
        assert rec is not None and rec.status is ApplianceStatus.QUARANTINED
        assert rec.accepted_size == accepted  # nothing of the forked branch stored
        (ev,) = v.forks(app.id)
        alerts = v.alerts()
    assert ev.accepted_size == accepted and ev.diverge_index == 5
    pub = centre.storage  # evidence checkpoints verify with the device key
    from appliance.keys.verify import load_public_key

    device = load_public_key(app.store.key.public_key_pem())  # type: ignore[union-attr]
    old, new = verify_checkpoint(ev.accepted_checkpoint, device), verify_checkpoint(
        ev.claimed_checkpoint, device
    )
    assert old.tree_size == accepted and new.tree_size == app.store.tree_head()[0]
    assert pub is not None and [a.kind for a in alerts] == ["fork"]
    # Quarantined: even a consistent request is refused until a technician clears it.
    assert response(centre, app.send(0)).code == "quarantined"
    res = clear_quarantine(centre, app.id, "kỹ thuật viên A")
    assert res.kept_size == 5 and res.superseded == 3
    assert response(centre, app.send(5)).outcome is wire.Outcome.ACCEPTED
    assert _stored_entries(centre, app.id) == [raw for _, raw in app.store.entries()]
    with centre.storage.view() as v:
        assert v.alerts() == [] and len(v.forks(app.id)) == 1


def test_different_root_for_an_accepted_size_is_a_fork(
    make_appliance: Callable[..., Appliance], centre: Centre, tmp_path
) -> None:
    app = _fork(make_appliance, centre, tmp_path)
    accepted = _accepted(centre, app.id)
    app.add(1)  # the restored log now reaches the accepted size with other entries
    assert app.store.tree_head()[0] == accepted
    resp = response(centre, app.send(3, max_entries=accepted - 3))
    assert resp.code == "fork"


def test_consistency_proof_that_fails_is_a_fork(
    make_appliance: Callable[..., Appliance], centre: Centre
) -> None:
    app = make_appliance()
    app.add(3)
    first = response(centre, app.send(0)).accepted_size
    app.add(3)
    body = app.batch_body(first)
    proof = list(body["proof"])  # type: ignore[call-overload]
    proof[0] = merkle.node_hash(proof[0], proof[0])
    body["proof"] = proof
    resp = response(centre, app.intake.handle(app.sign(wire.RequestType.BATCH, body)))
    assert resp.code == "fork"
    assert _anomalies(centre, app.id).get("fork") == 1


def test_status_lists_missing_content_and_never_classified(
    make_appliance: Callable[..., Appliance], centre: Centre
) -> None:
    app = make_appliance()
    doc = app.add(1)[0]
    c = app.store.content.put_bytes(b"scan " * 1000)
    app.store.attach_content(doc, [{"sha256": c.sha256, "size": c.size, "name": "a.pdf"}])
    app.store.wait_sealed()
    resp = response(centre, app.send(0))
    assert resp.missing == (c.sha256,) and resp.missing_count == 1
    status = response(centre, app.intake.handle(app.sign(wire.RequestType.STATUS, {})))
    assert status.outcome is wire.Outcome.STATUS and status.missing == (c.sha256,)
    assert status.receipt is not None


def test_anomaly_kinds_are_reported(centre: Centre, intake: Intake) -> None:
    ans = intake.handle(b"\xa1\x61x\x01")
    assert ans.status == 400
    assert _anomalies(centre, None).get(AnomalyKind.MALFORMED.value) == 1
