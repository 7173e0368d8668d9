"""Fixtures for sync tests: a centre folder, enrolled appliances, signed batches."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from appliance.clock import TZ, ManualClock, iso
from appliance.datadir import init_data_dir
from appliance.store import Store
from sync import wire
from sync.agent.enrol import accept, build_request
from sync.agent.outbox import build_batch
from sync.central.centre import Centre, init_centre
from sync.central.enrolment import enrol, issue_token
from sync.central.intake import Answer, Intake, Transport
from tests.conftest import ORG_ID, ORG_NAME, incoming
from tests.sync.pg import pg_cluster, pg_url  # noqa: F401  (fixtures)

START = dt.datetime(2025, 9, 15, 9, 30, tzinfo=TZ)


@pytest.fixture
def centre_db() -> str:
    """The centre's storage backend; test modules override it with params to run on both."""
    return "sqlite"


@pytest.fixture
def centre(tmp_path: Path, centre_db: str, request: pytest.FixtureRequest) -> Iterator[Centre]:
    db = request.getfixturevalue("pg_url") if centre_db == "postgresql" else None
    c = init_centre(tmp_path / "centre", db=db)
    c.clock = ManualClock(START)
    yield c
    c.close()


@pytest.fixture
def intake(centre: Centre) -> Intake:
    return Intake(centre)


@dataclass
class Appliance:
    """An appliance data folder with its store open, enrolled at ``intake``'s centre."""

    data_dir: Path
    store: Store
    clock: ManualClock
    intake: Intake
    seq: int = 0

    @property
    def id(self) -> str:
        assert self.store.key is not None
        return self.store.key.kid.hex()

    def add(self, n: int, **over: object) -> list[str]:
        ids = []
        for i in range(n):
            fields: dict[str, object] = {"CodeNumber": str(100 + i)}
            fields.update(over)
            ids.append(self.store.register_incoming(incoming(**fields)).record.id)
            self.clock.advance(1)
        assert self.store.wait_sealed()
        return ids

    def now(self) -> str:
        return iso(self.clock.now())

    def sign(self, rtype: wire.RequestType, body: dict[str, object], **kw: object) -> bytes:
        assert self.store.key is not None
        self.seq += 1
        return wire.sign_request(self.store.key, rtype, self.seq, self.now(), body, **kw)  # type: ignore[arg-type]

    def batch_body(self, start: int, **kw: object) -> dict[str, object]:
        assert self.store.key is not None
        out = build_batch(self.store, self.store.key, start, self.now(), **kw)  # type: ignore[arg-type]
        assert out is not None
        return dict(out.batch.to_body(), head=out.head)

    def send(self, start: int, transport: Transport = Transport.HTTP, **kw: object) -> Answer:
        raw = self.sign(wire.RequestType.BATCH, self.batch_body(start, **kw))
        return self.intake.handle(raw, transport)


def response(centre: Centre, answer: Answer) -> wire.Response:
    return wire.verify_response(answer.body, centre.public_key, None)


@pytest.fixture
def make_appliance(
    tmp_path: Path, intake: Intake
) -> Iterator[Callable[..., Appliance]]:
    opened: list[Store] = []

    def factory(name: str = "appliance", enrolled: bool = True, clock_offset_s: float = 0,
                org_id: str = ORG_ID) -> Appliance:
        d = tmp_path / name
        init_data_dir(d, org_id, ORG_NAME, "software")
        clock = ManualClock(START + dt.timedelta(seconds=clock_offset_s))
        store = Store.open(d, clock=clock)
        opened.append(store)
        app = Appliance(d, store, clock, intake)
        if enrolled:
            enrol_appliance(app, intake)
        return app

    yield factory
    for s in opened:
        s.close()


def enrol_appliance(app: Appliance, intake: Intake) -> None:
    assert app.store.key is not None
    token = issue_token(intake.c, app.store.config.org_id)
    req = build_request(app.store.key, app.store.config, token, app.now(), wire.Via.HTTP)
    ans = enrol(intake, req.raw)
    assert ans.outcome is wire.Outcome.ENROLLED, response(intake.c, ans).message
    accept(app.data_dir, ans.body, wire.sha256(req.raw), req.fingerprint, "http://test")
