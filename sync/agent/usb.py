"""Offline transport: the same signed objects on a USB stick, for communes without a link.

Layout under the chosen folder::

    luutru-sync/<device key id>/outbox/enrol.cbor            enrolment request (once)
    luutru-sync/<device key id>/outbox/batch-<from>-<to>.cbor signed batches, as POSTed
    luutru-sync/<device key id>/outbox/content/<sha256>       content files the batches reference
    luutru-sync/<device key id>/inbox/*.cbor                  the centre's signed answers

Every file is written to a temp name, fsynced and renamed, so a stick pulled out early holds
whole objects or none.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance import classified
from appliance import clock as clockmod
from appliance.fsutil import durable_dirs, fsync_dir, write_atomic
from appliance.store import Store

from .. import wire
from ..errors import AuthError, NotEnrolledError, SyncError, WireError
from .enrol import accept_usb
from .outbox import build_batch, content_of_entries, held_back
from .receipts import CheckedReceipt, check_receipt, store_receipt
from .state import (
    PENDING_ENROLMENT_NAME,
    AgentLock,
    Sequencer,
    device_dir,
    load_enrolment,
    load_state,
    save_state,
    sync_dir,
)
from .upgrades import take_from_folder


def copy_atomic(src: Path, dst: Path) -> None:
    durable_dirs(dst.parent)
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as out, src.open("rb") as inp:
            shutil.copyfileobj(inp, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(dst.parent)


@dataclass
class ExportReport:
    folder: str
    batches: int = 0
    entries: int = 0
    withheld: int = 0
    content_files: int = 0
    content_bytes: int = 0
    content_unavailable: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def export(data_dir: Path, store: Store, folder: Path) -> ExportReport:
    """Write every batch after the acknowledged size, and the content they need, to ``folder``."""
    if store.key is None:
        raise SyncError("export needs the device key (open the store for writing)")
    key = store.key
    enrolled = (sync_dir(data_dir) / "enrolment.json").exists()
    if not enrolled and not (sync_dir(data_dir) / PENDING_ENROLMENT_NAME).exists():
        raise NotEnrolledError(
            "enrol first (`luutru enrol --token … --export DIR` works without a link)"
        )
    out = device_dir(folder, key.kid) / "outbox"
    rep = ExportReport(str(out))
    with AgentLock(data_dir):
        state = load_state(data_dir)
        seq = Sequencer(data_dir, state)
        secret = classified.load(store.reader())
        start = state.acknowledged_size
        end = start
        cfg = store.config.sync
        while True:
            now = clockmod.iso(store.clock.now())
            o = build_batch(
                store, key, start, now, cfg.max_batch_entries, cfg.max_batch_bytes, secret
            )
            if o is None or o.bookkeeping_only:
                break
            body = dict(o.batch.to_body(), head=o.head)
            raw = wire.sign_request(
                key, wire.RequestType.BATCH, seq.next(), now, body, wire.Via.USB
            )
            write_atomic(out / f"batch-{o.batch.start:012d}-{o.batch.end:012d}.cbor", raw)
            rep.batches += 1
            rep.entries += len(o.batch.items)
            rep.withheld += o.batch.withheld_count
            start = end = o.batch.end
        save_state(data_dir, state)
        never = secret.content
        wanted = dict.fromkeys(
            content_of_entries(store, state.confirmed_size, end, secret) + list(state.missing)
        )
        held = held_back(store, wanted, float(store.config.sync.capture_hold_s))
        for sha in wanted:
            if sha in never or sha in held:
                continue
            src = store.content.path(sha)
            if not src.is_file():
                rep.content_unavailable.append(sha)
                continue
            dst = out / "content" / sha
            if not dst.is_file() or dst.stat().st_size != src.stat().st_size:
                copy_atomic(src, dst)
            rep.content_files += 1
            rep.content_bytes += src.stat().st_size
    return rep


@dataclass
class ReceiptImport:
    answers: int = 0
    enrolled: bool = False
    acknowledged_size: int = 0
    confirmed_size: int = 0
    pending_content: int = 0
    receipt_index: int | None = None
    quarantined: bool = False
    refused: list[str] = field(default_factory=list)
    upgrades_recorded: int = 0  # signed PDFs the centre made long-term valid (upgrades.py)
    upgrades_refused: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def import_receipts(data_dir: Path, store: Store, folder: Path) -> ReceiptImport:
    """Read the centre's answers from ``folder``; keep the newest confirmed receipt in the log."""
    if store.key is None:
        raise SyncError("importing receipts needs the store open for writing")
    inbox = device_dir(folder, store.key.kid) / "inbox"
    answers = sorted(inbox.glob("*.cbor")) if inbox.is_dir() else []
    rep = ReceiptImport(answers=len(answers))
    with AgentLock(data_dir):
        enrolled_file = inbox / "enrolled.cbor"
        if enrolled_file.is_file() and not (sync_dir(data_dir) / "enrolment.json").exists():
            rep.enrolled = accept_usb(data_dir, enrolled_file.read_bytes()) is not None
        enrolment = load_enrolment(data_dir)
        state = load_state(data_dir)
        best: CheckedReceipt | None = None
        status: wire.Response | None = None
        for path in answers:
            if path.name == "enrolled.cbor":
                continue
            try:
                resp = wire.verify_response(path.read_bytes(), enrolment.centre_key, None)
            except (WireError, AuthError) as exc:
                rep.refused.append(f"{path.name}: {exc}")
                continue
            if resp.outcome is wire.Outcome.QUARANTINED:
                rep.quarantined = True
            if resp.outcome is wire.Outcome.REFUSED:
                rep.refused.append(f"{path.name}: {resp.code}: {resp.message}")
            if resp.outcome is wire.Outcome.STATUS and (
                status is None or resp.centre_time >= status.centre_time
            ):
                status = resp
            if resp.receipt is None:
                continue
            try:
                checked = check_receipt(resp.receipt, enrolment.centre_key, store)
            except (AuthError, WireError) as exc:
                rep.refused.append(f"{path.name}: {exc}")
                continue
            if best is None or checked.receipt.tree_size > best.receipt.tree_size:
                best = checked
        if best is not None:
            state.acknowledged_size = max(state.acknowledged_size, best.receipt.tree_size)
            state.acknowledged_root = best.receipt.root_hash.hex()
            state.settled_size = max(state.settled_size, state.acknowledged_size)
        state.quarantined = rep.quarantined
        if status is not None:
            state.pending_content = status.missing_count
            state.missing = list(status.missing)
            state.last_contact = status.centre_time
            if status.missing_count == 0 and status.receipt is not None:
                checked = check_receipt(status.receipt, enrolment.centre_key, store)
                if checked.receipt.tree_size > state.confirmed_size:
                    rep.receipt_index = store_receipt(store, checked, enrolment.centre_origin)
                    state.confirmed_size = checked.receipt.tree_size
                    state.acknowledged_size = max(state.acknowledged_size, state.confirmed_size)
                    if rep.receipt_index == state.acknowledged_size:
                        state.settled_size = rep.receipt_index + 1
        save_state(data_dir, state)
        if status is not None and status.extra.get("upgrades"):
            taken = take_from_folder(store, status.extra["upgrades"], inbox / "upgrades")
            rep.upgrades_recorded, rep.upgrades_refused = taken.recorded, taken.refused
        rep.acknowledged_size = state.acknowledged_size
        rep.confirmed_size = state.confirmed_size
        rep.pending_content = state.pending_content
        rep.quarantined = state.quarantined
    return rep
