"""Replacement against both storage backends (SQLite and PostgreSQL), the centre served from
a thread: the restore, the key switch, refusals of the old key and of a reused token."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiohttp import web

from appliance.archive.restore import restore_data_dir
from appliance.codelists import load_bundled
from appliance.errors import LuutruError
from appliance.keys.software import SoftwareKey
from appliance.keys.verify import load_public_key, spki_der
from appliance.store import Store
from luutru.centre.app import create_app
from sync import wire
from sync.agent.outbox import build_batch
from sync.agent.restore import CentreSource
from sync.central.centre import Centre
from sync.central.intake import Intake
from sync.central.replacement import Replacements, issue_replacement_token
from tests.swtpm import Swtpm, swtpm, swtpm_factory
from tests.sync.conftest import Appliance, response
from tests.sync.procs import dashboard_opener, free_port

__all__ = ["swtpm", "swtpm_factory"]


@pytest.fixture(params=["sqlite", "postgresql"])
def centre_db(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def centre_url(centre: Centre) -> Iterator[str]:
    """The centre's HTTP API on a free loopback port, served from a thread."""
    port = free_port()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(create_app(centre))
    started = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        started.set()
        loop.run_forever()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    assert started.wait(10)
    yield f"http://127.0.0.1:{port}"
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    t.join(10)


def _synced(make_appliance: Callable[..., Appliance]) -> Appliance:
    app = make_appliance()
    # A province's own version of the code lists: its body must come back on the new box.
    raw, _ = load_bundled()
    doc = json.loads(raw)
    doc["version"] = "2026.11-tinh"
    app.store.load_codelists(json.dumps(doc, ensure_ascii=False).encode())
    app.add(6)
    c = app.store.content.put_bytes(b"%PDF-1.4 scan of a decision\n" * 50)
    rid = app.store.find("document")[0].id
    app.store.attach_content(rid, [{"sha256": c.sha256, "size": c.size, "name": "qd.pdf"}])
    assert app.store.wait_sealed()
    ans = app.send(0)
    assert ans.outcome is wire.Outcome.ACCEPTED, response(app.intake.c, ans).message
    return app


def _upload_all(centre: Centre, app: Appliance) -> None:
    for sha in app.store.content.iter_hashes():
        with app.store.content.open(sha) as fh:
            data = fh.read()
        centre.blobs.append_partial(sha, 0, data)
        assert centre.blobs.finish_partial(sha)
        with centre.storage.transaction() as tx:
            tx.record_blob(sha, len(data), centre.now())


def test_restore_from_each_backend_and_the_old_key_is_retired(
    tmp_path: Path, centre: Centre, intake: Intake, centre_url: str,
    make_appliance: Callable[..., Appliance],
) -> None:
    old = _synced(make_appliance)
    _upload_all(centre, old)
    accepted = old.store.tree_head()[0]
    tok = issue_replacement_token(centre, old.id)
    res = restore_data_dir(tmp_path / "new", CentreSource(centre_url, tok, key_kind="software"))
    assert res.verify["ok"] and res.provenance["tree_size"] == accepted
    assert res.provenance["missing_codelists"] == []
    with Store.open(tmp_path / "new", readonly=True) as s:
        assert s.codes.version == "2026.11-tinh"
    with centre.storage.view() as v:
        rec = v.appliance(old.id)
        assert rec is not None and rec.accepted_size == accepted + 1
        (k,) = v.keys(old.id)
        assert k.from_size == accepted and v.appliance_for_key(k.key_id) == rec
        assert v.appliance_for_key(old.id) == rec  # the log's id still names it

    # The dashboard shows the hand-over on the appliance's page.
    dash = dashboard_opener(centre_url, centre.data_dir)
    page = dash.open(f"{centre_url}/appliances/{old.id}", timeout=10).read()
    assert k.key_id.encode() in page and "Thay thiết bị".encode() in page

    # The old box's next batch is refused: its key was retired by the hand-over.
    old.add(1)
    ans = old.send(accepted)
    assert ans.outcome is wire.Outcome.REFUSED
    assert "retired" in response(centre, ans).message

    # The new box's next batch is accepted into the same log.
    with Store.open(tmp_path / "new", clock=old.clock) as s:
        s.register_incoming({**old.store.get("document", old.store.find("document")[0].id).data,
                             "CodeNumber": "777", "ArrivalNumber": None, "Subject": "Sau khi thay"})
        assert s.wait_sealed()
        assert s.key is not None
        start = centre_accepted(centre, old.id)
        out = build_batch(s, s.key, start, old.now())
        assert out is not None
        raw = wire.sign_request(s.key, wire.RequestType.BATCH, 5000, old.now(),
                                dict(out.batch.to_body(), head=out.head))
    ans = intake.handle(raw)
    assert ans.outcome is wire.Outcome.ACCEPTED, response(centre, ans).message

    # The token is spent.
    with pytest.raises(LuutruError, match="completed"):
        restore_data_dir(tmp_path / "third", CentreSource(centre_url, tok, key_kind="software"))

    # The replacement dies too: a second hand-over continues the chain of keys.
    tok2 = issue_replacement_token(centre, old.id)
    res = restore_data_dir(tmp_path / "third", CentreSource(centre_url, tok2, key_kind="software"))
    assert res.verify["ok"] and len(res.verify["handovers"]) == 2
    with centre.storage.view() as v:
        assert [k.from_size for k in v.keys(old.id)] == [accepted, res.provenance["tree_size"]]


def centre_accepted(centre: Centre, app_id: str) -> int:
    with centre.storage.view() as v:
        rec = v.appliance(app_id)
        assert rec is not None
        return rec.accepted_size


def test_fetch_needs_a_bound_key(
    tmp_path: Path, centre: Centre, intake: Intake, make_appliance: Callable[..., Appliance]
) -> None:
    old = _synced(make_appliance)
    reps = Replacements(intake)
    stranger = SoftwareKey.create(tmp_path / "stranger.key")
    body = {"what": "entries", "from": 0, "public_key": stranger.public_key_pem()}
    got = reps.fetch(wire.sign_request(stranger, wire.RequestType.FETCH, 0, old.now(), body))
    assert got.status == 403
    # Bound by a replacement token, the same key may read the log.
    tok = issue_replacement_token(centre, old.id)
    secret, _ = wire.parse_token(tok)
    spki = spki_der(load_public_key(stranger.public_key_pem()))
    begin = {"token_id": wire.token_id(secret), "token_proof": wire.token_proof(secret, spki),
             "public_key": stranger.public_key_pem()}
    ans = reps.begin(wire.sign_request(stranger, wire.RequestType.RESTORE, 0, old.now(), begin))
    assert ans.outcome is wire.Outcome.RESTORING
    got = reps.fetch(wire.sign_request(stranger, wire.RequestType.FETCH, 0, old.now(), body))
    assert got.status == 200
    # A wrong proof (token mistyped) is refused, and the token stays with the first key.
    other = SoftwareKey.create(tmp_path / "other.key")
    wrong = dict(begin, public_key=other.public_key_pem())
    ans = reps.begin(wire.sign_request(other, wire.RequestType.RESTORE, 0, old.now(), wrong))
    assert ans.outcome is wire.Outcome.REFUSED
    assert "proof" in response(centre, ans).message


@pytest.mark.parametrize("centre_db", ["sqlite"])  # the key does not depend on the database
def test_the_new_box_keeps_its_key_in_a_tpm(
    tmp_path: Path, centre: Centre, centre_url: str, swtpm: Swtpm,
    make_appliance: Callable[..., Appliance],
) -> None:
    """The replacement's key is made in the (software) TPM; the log verifies across keys."""
    old = _synced(make_appliance)
    _upload_all(centre, old)
    tok = issue_replacement_token(centre, old.id)
    source = CentreSource(centre_url, tok, key_kind="tpm", key_options={"tcti": swtpm.tcti})
    res = restore_data_dir(tmp_path / "new", source)
    assert res.verify["ok"]
    with Store.open(tmp_path / "new") as s:
        assert s.key is not None and s.key.backing.value == "tpm"
        cp = s.latest_checkpoint()
        assert cp is not None and cp[0] == s.tree_head()[0]
    with centre.storage.view() as v:
        (k,) = v.keys(old.id)
        assert k.backing == "tpm"
