"""`luutru central import`: take the objects a commune sent on a USB stick, answer on it.

Per appliance folder: the enrolment request (if any), then the batches in log order (a batch
that starts beyond what the centre holds is parked, so sticks may arrive in any order), then
the content files the centre still lacks (each checked against its SHA-256), and finally a
signed status with the receipt for everything held. Answers are written back to the stick,
with the long-term-valid versions the centre made of the box's signed PDFs that the status
lists (``inbox/upgrades/<sha256>``: a box without a link gets them this way).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.fsutil import write_atomic

from .. import wire
from ..errors import SyncError
from .enrolment import enrol
from .intake import Intake, Transport
from .links import check_containers
from .storage import AnomalyKind


@dataclass
class DeviceImport:
    appliance_id: str
    enrolled: bool = False
    batches: dict[str, int] = field(default_factory=dict)  # outcome -> count
    content_stored: int = 0
    content_refused: int = 0
    content_ignored: int = 0
    accepted_size: int = 0
    missing_content: int = 0
    upgrades_written: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class ImportReport:
    devices: list[DeviceImport] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"devices": [d.__dict__ for d in self.devices]}


def _batch_key(path: Path) -> tuple[int, int, str]:
    parts = path.stem.split("-")
    try:
        return int(parts[1]), int(parts[2]), path.name
    except (IndexError, ValueError):
        return (1 << 62, 0, path.name)


def import_folder(intake: Intake, folder: Path) -> ImportReport:
    """Import every appliance's objects under ``folder`` and write the answers back."""
    root = folder / wire.USB_ROOT
    if not root.is_dir():
        raise SyncError(f"{folder} holds no {wire.USB_ROOT}/ folder (is this the right stick?)")
    report = ImportReport()
    for dev in sorted(p for p in root.iterdir() if p.is_dir()):
        report.devices.append(_import_device(intake, dev))
    return report


def _import_device(intake: Intake, dev: Path) -> DeviceImport:
    c = intake.c
    rep = DeviceImport(dev.name)
    outbox, inbox = dev / "outbox", dev / "inbox"
    enrol_file = outbox / "enrol.cbor"
    if enrol_file.is_file():
        ans = enrol(intake, enrol_file.read_bytes())
        write_atomic(inbox / "enrolled.cbor", ans.body)
        rep.enrolled = ans.outcome is wire.Outcome.ENROLLED
        if not rep.enrolled:
            rep.errors.append(f"enrolment refused ({ans.code})")
    for path in sorted(outbox.glob("batch-*.cbor"), key=_batch_key):
        ans = intake.handle(path.read_bytes(), Transport.USB)
        write_atomic(inbox / f"{path.stem}.answer.cbor", ans.body)
        rep.batches[ans.outcome.value] = rep.batches.get(ans.outcome.value, 0) + 1
        if ans.code and ans.outcome is not wire.Outcome.PARKED:
            rep.errors.append(f"{path.name}: {ans.code}")
    content = outbox / "content"
    if content.is_dir():
        for f in sorted(content.iterdir()):
            sha = f.name
            if f.name.startswith("."):
                continue
            with c.storage.view() as v:
                expected = v.content_expected(dev.name, sha)
                recorded = v.blob_recorded(sha)
            if expected is None or recorded:
                rep.content_ignored += 1
                continue
            try:
                with f.open("rb") as fh:
                    ok = c.blobs.put_stream(sha, fh)
            except (OSError, SyncError) as exc:
                ok = False
                rep.errors.append(f"content {sha}: {exc}")
            with c.storage.transaction() as tx:
                if ok:
                    tx.record_blob(sha, f.stat().st_size, c.now())
                else:
                    tx.record_anomaly(
                        dev.name,
                        AnomalyKind.CONTENT_MISMATCH,
                        f"content {sha} from a USB stick does not hash to its name",
                        c.now(),
                    )
            if ok:
                rep.content_stored += 1
                check_containers(c, [sha])
            else:
                rep.content_refused += 1
    try:
        status = intake.status_answer(dev.name)
    except SyncError as exc:
        rep.errors.append(str(exc))
        return rep
    write_atomic(inbox / "status.cbor", status)
    resp = wire.verify_response(status, c.public_key, None)
    rep.accepted_size = resp.accepted_size
    rep.missing_content = resp.missing_count
    rep.upgrades_written = _write_upgrades(intake, dev.name, resp.extra.get("upgrades"),
                                           inbox / "upgrades", rep.errors)
    return rep


def _write_upgrades(intake: Intake, app_id: str, offers: Any, folder: Path,
                    errors: list[str]) -> int:
    """Each version the signed status lists, onto the stick beside it (the box checks it
    against the status's SHA-256 and that no signed byte moved); already there: kept."""
    from .ltv_job import fetch_version

    written = 0
    for offer in offers if isinstance(offers, list) else []:
        try:
            sha, size = str(offer["sha256"]), int(offer["size"])
            target = folder / sha
            if target.is_file() and target.stat().st_size == size:
                continue
            data = bytearray()
            while len(data) < size:
                piece = fetch_version(intake.c, app_id, sha, len(data))
                if not piece:
                    raise SyncError(f"version {sha[:12]} ends before its {size} bytes")
                data.extend(piece)
            write_atomic(target, bytes(data))
            written += 1
        except (KeyError, TypeError, ValueError, OSError, SyncError) as exc:
            errors.append(f"upgrade: {exc}")
    return written
