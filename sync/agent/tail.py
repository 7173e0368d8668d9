"""Healing a lost tail from the centre's copy (`luutru restore --tail-from-centre`).

When the log lost its tail (a lost or cut write-ahead log, an older copy of the disk put back)
the box stops writing: its start-up check finds the log behind an anchor (appliance/anchors.py),
or the sync agent hears it from the centre. This brings back what the centre holds, on the box
itself, with its own device key:

1. a STATUS answer from the centre names the size and root it accepted from this appliance,
   with its receipt: the centre's countersignature of a checkpoint this box signed (checked
   against the pinned centre key and the device key);
2. the entries from the box's own size to the centre's are fetched (signed FETCH requests:
   a device key may read its own log), each checked against its leaf hash and its index; the
   tree folded from the box's own prefix and these leaves must give the receipted root, which
   proves the box's prefix is the centre's too; their content is downloaded and checked;
3. in one transaction: the entries and their Merkle nodes, the receipted checkpoint, every
   projection rebuilt from the log, the numbers the lost tail had taken (the counters mirrored
   with the last anchor) logged as ``numbering.used`` so that none is given again, and a
   ``log.tail_restored`` entry naming what came back and which anchors' entries are lost for
   good; the TPM counter's expected value becomes the chip's;
4. the anchors are reset to the restored log, and the store is opened (its start-up check
   passes) to seal the new entries; the folder is verified.

Entries signed on the box but never sent to the centre cannot come back: the command refuses
unless the operator accepts that loss (``accept_loss``), and the entry records it.
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance import anchors, cbor, merkle, schema, writes
from appliance import clock as clockmod
from appliance.archive.errors import RestoreError
from appliance.checkpoint import verify_checkpoint
from appliance.config import DB_NAME, load_config
from appliance.errors import LuutruError
from appliance.keys.base import KeyProvider, counter_of
from appliance.keys.loader import open_key
from appliance.keys.verify import load_public_key
from appliance.kinds import Kind
from appliance.ledger import Entry, Ledger
from appliance.numbering import NUMBER_USED_KIND, observe_number
from appliance.replace import CopyError, LogImporter
from appliance.store import Store, Txn

from .. import wire
from ..errors import CentreRefusedError, QuarantinedError, WireError
from .restore import CentreFetch, Progress
from .state import (
    USB_CENTRE,
    AgentLock,
    AgentState,
    Enrolment,
    Sequencer,
    load_enrolment,
    load_state,
    save_state,
)

ACTOR = "luutru restore"


@dataclass
class TailResult:
    local_size: int  # what the box held
    centre_size: int  # what the centre had accepted
    restored: int  # entries brought back
    content_files: int
    lost_content: list[str]
    lost_anchors: list[dict[str, Any]]  # anchors whose entries nobody holds any more
    numbers_kept: int  # numbering.used entries for numbers the lost tail had taken
    entry_index: int | None  # the log.tail_restored entry (None: nothing was behind)
    verify_ok: bool = True
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class _Plan:
    """What the centre answered and what will be written."""

    local: int
    centre: int
    root: bytes
    checkpoint: bytes
    receipt: bytes
    signed_at: str
    leaves: list[tuple[bytes, bytes | None]]
    refs: list[str]
    lost: list[anchors.Anchor]
    chip: int | None
    missing_at_centre: set[str]


@dataclass
class TailRestore(CentreFetch):
    data_dir: Path
    accept_loss: bool = False
    allow_lost_content: bool = False
    clock: clockmod.Clock = field(default_factory=clockmod.SystemClock)
    report: Any = lambda _msg: None

    def run(self) -> TailResult:
        return asyncio.run(self._run())

    async def _run(self) -> TailResult:
        from .http import CentreClient

        config = load_config(self.data_dir)
        enrolment = load_enrolment(self.data_dir)
        if enrolment.centre_url == USB_CENTRE:
            raise RestoreError("this appliance is enrolled for USB only: a lost tail can only "
                               "be brought back over the network")
        key = open_key(self.data_dir, config.key)
        try:
            with AgentLock(self.data_dir, wait=True):
                state = load_state(self.data_dir)
                async with CentreClient(enrolment.centre_url) as client:
                    plan = await self._plan(client, key, enrolment, state)
                    if plan is None:
                        return self._nothing(state)
                    progress = Progress()
                    await self.download_content(client, key, self.data_dir,
                                                plan.missing_at_centre, progress, plan.refs)
                index, kept = await asyncio.to_thread(self._write, plan, progress)
                self._reset_anchors(plan)
                state.acknowledged_size = state.settled_size = plan.centre
                state.acknowledged_root = plan.root.hex()
                state.confirmed_size = min(state.confirmed_size, plan.centre)
                state.last_error = state.last_error_code = None
                save_state(self.data_dir, state)
        finally:
            key.close()
        ok = await asyncio.to_thread(self._seal_and_verify)
        return TailResult(
            plan.local, plan.centre, max(0, plan.centre - plan.local), progress.content_files,
            progress.lost_content, [a.ident for a in plan.lost], kept, index, ok,
        )

    def _nothing(self, state: AgentState) -> TailResult:
        self.report("the log is not behind the centre's copy or any anchor: nothing to do")
        return TailResult(0, state.acknowledged_size, 0, 0, [], [], 0, None)

    # -- 1–2: ask, fetch, check -----------------------------------------------------------

    async def _status(
        self, client: Any, key: KeyProvider, enrolment: Enrolment, state: AgentState,
        head: bytes | None,
    ) -> wire.Response:
        seq = Sequencer(self.data_dir, state)
        body: dict[str, Any] = {"head": head} if head else {}
        for _ in range(2):
            raw = wire.sign_request(key, wire.RequestType.STATUS, seq.next(), self.now(), body)
            _status, answer = await self.retry("status", _post(client, "/v1/status", raw))
            try:
                resp = wire.verify_response(answer, enrolment.centre_key, wire.sha256(raw))
            except WireError as exc:
                raise RestoreError(f"the centre's answer is not its own: {exc}") from exc
            if resp.outcome is wire.Outcome.REFUSED and resp.code == "replay":
                seq.skip_past(resp.last_seq)  # an older copy of state.json: its numbers are used
                continue
            if resp.outcome is wire.Outcome.QUARANTINED:
                raise QuarantinedError(f"quarantined by the centre: {resp.message}")
            if resp.outcome is wire.Outcome.REFUSED:
                raise CentreRefusedError(resp.message, resp.code, resp.retryable)
            return resp
        raise CentreRefusedError("the centre keeps refusing our sequence numbers", "replay")

    async def _plan(
        self, client: Any, key: KeyProvider, enrolment: Enrolment, state: AgentState
    ) -> _Plan | None:
        conn = schema.connect(str(self.data_dir / DB_NAME), readonly=True)
        try:
            local = anchors.log_size(conn)
            latest = conn.execute(
                "SELECT cose FROM checkpoints ORDER BY tree_size DESC LIMIT 1").fetchone()
        finally:
            conn.close()
        resp = await self._status(client, key, enrolment, state,
                                  bytes(latest[0]) if latest else None)
        if resp.receipt is None:
            raise RestoreError("the centre holds nothing of this appliance's log yet")
        rc = wire.verify_receipt(resp.receipt, enrolment.centre_key)
        try:
            cp = verify_checkpoint(rc.checkpoint, load_public_key(key.public_key_pem()))
        except LuutruError as exc:
            raise RestoreError(f"the centre's receipt is not over a checkpoint of this "
                               f"appliance's key: {exc}") from exc
        if (cp.tree_size, cp.root_hash) != (rc.tree_size, rc.root_hash) or (
            rc.tree_size != resp.accepted_size or rc.root_hash != resp.accepted_root
        ):
            raise RestoreError("the centre's receipt does not match the size and root it states")
        centre = resp.accepted_size
        leaves = await self._fetch_entries(client, key, local, centre)
        chip = _chip(key)
        lost = self._lost(max(local, centre), chip)
        if centre <= local and not lost:
            return None
        refs: dict[str, None] = {}
        for _leaf, raw in leaves:
            if raw is not None:
                for r in Entry.decode(raw).refs:
                    refs[r.hex()] = None
        self.report(f"the box holds {local} entries, the centre {centre}: "
                    f"{max(0, centre - local)} come back")
        return _Plan(local, centre, rc.root_hash, rc.checkpoint, resp.receipt, cp.time, leaves,
                     list(refs), lost, chip, set(resp.missing))

    async def _fetch_entries(
        self, client: Any, key: KeyProvider, start: int, end: int
    ) -> list[tuple[bytes, bytes | None]]:
        out: list[tuple[bytes, bytes | None]] = []
        while start + len(out) < end:
            at = start + len(out)
            raw = self.sign(key, wire.RequestType.FETCH, {"what": "entries", "from": at})
            page = await self.fetch(client, raw, f"entries from {at}")
            rows = cbor.loads(page).get("entries") if page else None
            if not isinstance(rows, list) or not rows:
                raise RestoreError(f"the centre sent no entries from {at}")
            for leaf, entry in rows[: end - at]:
                out.append((bytes(leaf), None if entry is None else bytes(entry)))
            self.report(f"entries: {start + len(out)}/{end}")
        return out

    def _lost(self, held: int, chip: int | None) -> list[anchors.Anchor]:
        """Anchors beyond what the box and the centre hold between them: their entries are
        gone; with ``accept_loss`` the tail-restored entry names them, else nothing is done."""
        found, _damaged = anchors.read_anchors(self.data_dir)
        conn = schema.connect(str(self.data_dir / DB_NAME), readonly=True)
        try:
            acked = anchors.acknowledged(conn)
            expected = anchors.db_counter(conn)
        finally:
            conn.close()
        lost = [a for a in found if a.tree_size > held and a.ident not in acked]
        behind_chip = chip is not None and expected is not None and chip > expected
        if (lost or behind_chip) and not self.accept_loss:
            sizes = ", ".join(f"{a.source} anchor at {a.tree_size}" for a in lost) or (
                f"{(chip or 0) - (expected or 0)} checkpoints counted by the TPM")
            raise RestoreError(
                f"entries signed on this box beyond the {held} that it and the centre hold "
                f"between them are lost ({sizes}): nothing was changed. If there is no backup "
                "holding them, run again with --accept-loss (the loss is recorded in the log, "
                "and the numbers those entries took are never given again)"
            )
        return lost

    # -- 3: write --------------------------------------------------------------------------

    def _write(self, plan: _Plan, progress: Progress) -> tuple[int, int]:
        conn = schema.connect(str(self.data_dir / DB_NAME))
        try:
            conn.execute("BEGIN IMMEDIATE")
            if anchors.log_size(conn) != plan.local:
                raise RestoreError("the log changed while its tail was being fetched (is "
                                   "`luutru serve` writing? stop it first)")
            importer = LogImporter(conn, extending=True)
            for leaf, raw in plan.leaves:
                importer.add(leaf, raw)
            importer.flush()
            root = merkle.root_hash(_nodes(conn), plan.centre)
            if root != plan.root:
                raise CopyError(
                    f"this box's log and the centre's entries do not hash to the root the "
                    f"centre receipted at size {plan.centre}: the box's own entries differ from "
                    "the centre's copy (a fork); nothing was changed — call the province"
                )
            conn.execute(
                "INSERT OR IGNORE INTO checkpoints (tree_size, root_hash, signed_at, cose) "
                "VALUES (?, ?, ?, ?)", (plan.centre, plan.root, plan.signed_at, plan.checkpoint))
            self.rebuild(self.data_dir, progress, conn)
            txn = Txn(conn, Ledger(conn), self.clock)
            numbers = _numbers_to_keep(conn, plan.lost)
            entry = writes.append_event(txn, Kind.LOG_TAIL_RESTORED, ACTOR, {
                "log_size": plan.local,
                "centre_size": plan.centre,
                "centre_root": plan.root.hex(),
                "restored": max(0, plan.centre - plan.local),
                "lost_anchors": [a.ident for a in plan.lost],
                "numbers_kept": len(numbers),
                "lost_content": sorted(progress.lost_content),
                "tpm_counter": plan.chip,
            })
            _keep_numbers(txn, numbers)
            anchors.acknowledge(conn, [a.ident for a in plan.lost])
            if plan.chip is not None:
                anchors.set_db_counter(conn, plan.chip)
            conn.execute("COMMIT")
            return entry.index, len(numbers)
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            conn.close()

    # -- 4: anchors, seal, verify ------------------------------------------------------------

    def _reset_anchors(self, plan: _Plan) -> None:
        """The anchors that stopped the box now describe the restored log (the entries beyond
        them are acknowledged as lost in the log); the next checkpoint moves them on."""
        anchors.save_anchor(self.data_dir, anchors.Anchor(
            anchors.CENTRE, plan.centre, plan.root, plan.checkpoint, plan.signed_at,
            receipt=plan.receipt), force=True)
        conn = schema.connect(str(self.data_dir / DB_NAME), readonly=True)
        try:
            size, root, at, cose = conn.execute(
                "SELECT tree_size, root_hash, signed_at, cose FROM checkpoints "
                "ORDER BY tree_size DESC LIMIT 1").fetchone()
            numbers = anchors.read_counters(conn)
        finally:
            conn.close()
        anchors.save_anchor(self.data_dir, anchors.Anchor(
            anchors.CHECKPOINT, int(size), bytes(root), bytes(cose), str(at), numbers,
            plan.chip), force=True)

    def _seal_and_verify(self) -> bool:
        from appliance.verify import verify_data_dir

        with Store.open(self.data_dir, clock=self.clock) as store:
            store.wait_sealed()
        rep = verify_data_dir(self.data_dir, counter=True)
        for f in rep.findings:
            self.report(f"verify: {f.severity.value}: [{f.code}] {f.message}")
        return rep.ok


def _post(client: Any, path: str, raw: bytes) -> Any:
    """A retryable POST of ``raw`` (a fresh coroutine per try)."""
    return lambda: client.post_cbor(path, raw)


def _nodes(conn: sqlite3.Connection) -> Any:
    from appliance.ledger import node_source

    return node_source(conn)


def _chip(key: KeyProvider) -> int | None:
    counter = counter_of(key)
    return counter.read() if counter is not None else None


def _numbers_to_keep(
    conn: sqlite3.Connection, lost: list[anchors.Anchor]
) -> list[tuple[str, str, int, int]]:
    """The highest number of each series the lost tail had taken (the counters mirrored with
    its anchors), where the restored log's counters are below it."""
    highest: dict[tuple[str, str, int], int] = {}
    for a in lost:
        for fond, series, year, last in a.counters:
            k = (fond, series, year)
            highest[k] = max(highest.get(k, 0), last)
    out = []
    for (fond, series, year), last in sorted(highest.items()):
        row = conn.execute(
            "SELECT last FROM number_counters WHERE fond = ? AND series = ? AND year = ?",
            (fond, series, year)).fetchone()
        if row is None or int(row[0]) < last:
            out.append((fond, series, year, last))
    return out


def _keep_numbers(txn: Txn, numbers: list[tuple[str, str, int, int]]) -> None:
    """Log each as taken (numbering.used) and raise its counter: never given again."""
    for fond, series, year, last in numbers:
        writes.append_event(txn, NUMBER_USED_KIND, ACTOR, {
            "FondCode": fond, "Series": series, "Year": year, "Number": last,
            "reason": "taken by entries lost with the log's tail",
        })
        observe_number(txn.conn, fond, series, year, last)
