"""The appliance's sync state under ``<data>/sync/``: enrolment (the pinned centre key),
``state.json`` (what sync/status.py shows), and the lock that lets one agent run at a time.

``state.json`` is written atomically (temp, fsync, rename) and only by holders of the lock.
Sequence numbers for signed requests are reserved in blocks, so a crash can skip numbers but
never reuse one.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from appliance.fsutil import private_dirs, write_atomic
from appliance.keys.verify import PublicKey, load_public_key

from .. import wire
from ..errors import NotEnrolledError, SyncError

SYNC_DIR = "sync"
STATE_NAME = "state.json"
ENROLMENT_NAME = "enrolment.json"
PENDING_ENROLMENT_NAME = "enrolment-pending.json"
LOCK_NAME = "agent.lock"
SEQ_BLOCK = 1000
USB_CENTRE = "usb:"  # centre_url of an appliance enrolled by USB stick only


class AgentBusyError(SyncError):
    """Another sync agent (inside `luutru serve`, or a `luutru sync`) holds the lock."""

    code = "busy"
    retryable = True


@dataclass(frozen=True)
class Enrolment:
    centre_url: str
    centre_key_pem: str
    centre_origin: str
    centre_name: str
    appliance_id: str
    org_id: str
    enrolled_at: str

    @property
    def centre_key(self) -> PublicKey:
        return load_public_key(self.centre_key_pem)


@dataclass
class AgentState:
    """Fields read by sync/status.py come first; the rest are the agent's own."""

    centre_url: str | None = None
    acknowledged_size: int = 0
    confirmed_size: int = 0
    last_contact: str | None = None
    last_error: str | None = None
    pending_content: int = 0
    quarantined: bool = False
    settled_size: int = 0  # entries below this need no sending (receipts only after acked)
    acknowledged_root: str = ""
    last_error_code: str | None = None
    clock_skew_s: int | None = None
    seq_reserved: int = 0
    missing: list[str] = field(default_factory=list)  # content the centre said it lacks
    content_unavailable: int = 0  # missing at the centre and unreadable here
    last_batch: str | None = None  # outcome of the last batch, for the technician
    bytes_sent: int = 0  # HTTP bytes sent to the centre, all time (a metered 3G link)
    bytes_received: int = 0
    content_bytes_sent: int = 0  # of which upload chunk bodies (resends after cuts included)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> AgentState:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in value.items() if k in names})


def sync_dir(data_dir: Path) -> Path:
    return data_dir / SYNC_DIR


def load_state(data_dir: Path) -> AgentState:
    try:
        raw = json.loads((sync_dir(data_dir) / STATE_NAME).read_text("utf-8"))
    except FileNotFoundError:
        return AgentState()
    except (OSError, ValueError) as exc:
        raise SyncError(f"cannot read {STATE_NAME}: {exc}") from exc
    return AgentState.from_json(raw)


def save_state(data_dir: Path, state: AgentState) -> None:
    body = json.dumps(state.to_json(), ensure_ascii=False, indent=1) + "\n"
    write_atomic(sync_dir(data_dir) / STATE_NAME, body.encode("utf-8"))


def load_enrolment(data_dir: Path) -> Enrolment:
    try:
        raw = json.loads((sync_dir(data_dir) / ENROLMENT_NAME).read_text("utf-8"))
        return Enrolment(**raw)
    except FileNotFoundError:
        raise NotEnrolledError(
            "this appliance is not enrolled at a provincial centre; run `luutru enrol`"
        ) from None
    except (OSError, ValueError, TypeError) as exc:
        raise SyncError(f"cannot read {ENROLMENT_NAME}: {exc}") from exc


def save_enrolment(data_dir: Path, enrolment: Enrolment) -> None:
    body = json.dumps(asdict(enrolment), ensure_ascii=False, indent=1) + "\n"
    write_atomic(sync_dir(data_dir) / ENROLMENT_NAME, body.encode("utf-8"), mode=0o640)


class AgentLock:
    """An exclusive flock on ``<data>/sync/agent.lock`` for one sync at a time."""

    def __init__(self, data_dir: Path, wait: bool = False) -> None:
        self.path = sync_dir(data_dir) / LOCK_NAME
        self.wait = wait
        self._fd: int | None = None

    def __enter__(self) -> AgentLock:
        private_dirs(self.path.parent)  # state.json is renamed into it
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if self.wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            raise AgentBusyError(
                "another sync agent is running for this data folder (inside `luutru serve`?)"
            ) from None
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class Sequencer:
    """Monotonic request sequence numbers, reserved in blocks persisted in state.json."""

    def __init__(self, data_dir: Path, state: AgentState) -> None:
        self.data_dir = data_dir
        self.state = state
        self._next = state.seq_reserved + 1
        self._limit = state.seq_reserved

    def next(self) -> int:
        if self._next > self._limit:
            self._limit = self._next + SEQ_BLOCK
            self.state.seq_reserved = self._limit
            save_state(self.data_dir, self.state)
        n = self._next
        self._next += 1
        return n

    def skip_past(self, seq: int) -> None:
        """The centre has seen ``seq`` (this appliance was restored from a backup)."""
        if self._next <= seq:
            self._next = seq + 1


def device_dir(folder: Path, kid: bytes) -> Path:
    """This appliance's folder on a USB stick: its outbox and inbox live there."""
    return folder / wire.USB_ROOT / kid.hex()
