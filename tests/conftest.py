"""Shared fixtures: small factories for data folders and stores."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from appliance.clock import TZ, ManualClock
from appliance.datadir import init_data_dir
from appliance.store import Store

ORG_ID = "000.21.08.H49"
ORG_NAME = "Ủy ban nhân dân xã Đông Hải"
# The folder beside the repository with the shared tools (linkem.py, eark-validate); golden
# vectors the tests depend on live in the repository itself, under VECTORS.
SHARED = Path(__file__).resolve().parents[2] / "shared"
VECTORS = Path(__file__).resolve().parent / "vectors"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "appliance"
    init_data_dir(d, ORG_ID, ORG_NAME, "software")
    return d


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(dt.datetime(2025, 9, 15, 9, 30, tzinfo=TZ))


@pytest.fixture
def open_store(data_dir: Path, clock: ManualClock) -> Iterator[Callable[..., Store]]:
    opened: list[Store] = []

    def factory(**kw: object) -> Store:
        kw.setdefault("clock", clock)
        s = Store.open(data_dir, **kw)  # type: ignore[arg-type]
        opened.append(s)
        return s

    yield factory
    for s in opened:
        s.close()


@pytest.fixture
def store(open_store: Callable[..., Store]) -> Store:
    return open_store()


def incoming(**over: object) -> dict[str, object]:
    """A valid incoming document; keyword arguments override fields."""
    base: dict[str, object] = {
        "TypeName": "Công văn",
        "CodeNumber": "1245",
        "CodeNotation": "UBND-NC",
        "IssuedDate": "2025-09-03",
        "OrganName": "Ủy ban nhân dân tỉnh Quảng Ninh",
        "Subject": "V/v triển khai công tác phòng, chống thiên tai năm 2025",
        "PageAmount": 2,
    }
    base.update(over)
    return base


def outgoing(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "TypeName": "Quyết định",
        "Subject": "Về việc thành lập Tổ công tác chuyển đổi số",
        "SignerInfo": {"Position": "Chủ tịch", "FullName": "Trần Văn Hùng"},
        "To": [{"OrganName": "Các thôn trên địa bàn xã"}],
        "PageAmount": 3,
    }
    base.update(over)
    return base
