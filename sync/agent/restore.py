"""Replacement of a dead appliance from the provincial centre's copy (the new box's side).

``luutru restore --data DIR --from-centre URL --token TOKEN`` fills an empty folder:

1. a new device key (TPM when one answers, unless told otherwise);
2. RESTORE: the token (an HMAC of the new key under its secret) buys a signed answer naming
   the log; the centre key in it is pinned only if it matches the token's fingerprint;
3. FETCH: every entry, checked against its leaf hash and index, the tree rebuilt and its root
   compared with the checkpoint the old key signed; then the projections are rebuilt from the
   log and the content downloaded and checked against its SHA-256;
4. a ``device.handover`` entry sealed by the new key; the folder is verified as a whole;
5. HANDOVER: the centre checks the entry, switches the appliance to the new key and
   countersigns; its receipt goes into the log, and the sync state starts from there.

Nothing is sent to the centre that changes anything before step 5, and step 5 happens only
once the folder has verified, so a failure leaves the centre's copy as it was.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from appliance import cbor, schema, writes
from appliance import clock as clockmod
from appliance.archive.errors import RestoreError
from appliance.archive.state import destroyed_content
from appliance.config import DB_NAME, ApplianceConfig, save_config
from appliance.datadir import PUBLIC_KEY_NAME
from appliance.errors import NotFoundError
from appliance.fsutil import write_atomic
from appliance.handover import ACTOR, HANDOVER_KIND, handover_data
from appliance.keys.base import KeyProvider
from appliance.keys.loader import create_key, open_key
from appliance.keys.verify import key_id, load_public_key, spki_der
from appliance.replace import LogImporter, adopt_checkpoint
from appliance.retry import retry
from appliance.store import Store, create_tables
from appliance.versions import Placement, placement

from .. import wire
from ..errors import AuthError, CentreRefusedError, TransportError, WireError
from .enrol import pinned_answer
from .state import AgentState, Enrolment, save_enrolment, save_state

T = TypeVar("T")
ATTEMPTS = 8


@dataclass
class Progress:
    content_files: int = 0
    content_bytes: int = 0
    lost_content: list[str] = field(default_factory=list)
    missing_codelists: list[str] = field(default_factory=list)


class CentreFetch:
    """Downloads from the centre's copy of a log (signed FETCH requests, retried over a flaky
    link): entries, content, and the tables rebuilt from them. A replacement box uses it
    (CentreSource), and so does a box healing its own lost tail (tail.py)."""

    allow_lost_content: bool
    clock: clockmod.Clock
    report: Callable[[str], None]

    async def retry(self, what: str, make: Callable[[], Awaitable[T]]) -> T:
        """A download step, retried over a flaky link with capped backoff and jitter."""
        try:
            return await retry(make, attempts=ATTEMPTS, base=0.5, cap=30.0,
                               should_retry=lambda e: isinstance(e, TransportError))
        except TransportError as exc:
            raise RestoreError(f"{what}: the centre cannot be reached: {exc}") from exc

    def now(self) -> str:
        return clockmod.iso(self.clock.now())

    def sign(self, key: KeyProvider, rtype: wire.RequestType, body: dict[str, Any],
              seq: int = 0) -> bytes:
        body = dict(body, public_key=key.public_key_pem())
        return wire.sign_request(key, rtype, seq, self.now(), body)

    def rebuild(self, target: Path, progress: Progress, conn: Any = None) -> None:
        """Every table rebuilt from the log; code-list bodies from the content store."""
        from appliance.content import ContentStore
        from appliance.rebuild import rebuild_projections

        content = ContentStore(target / "content")

        def body(sha: str) -> bytes | None:
            if not content.exists(sha):
                return None
            with content.open(sha) as fh:
                return fh.read()

        own = conn is None
        if own:
            conn = schema.connect(str(target / DB_NAME))
            conn.execute("BEGIN IMMEDIATE")
        try:
            rep = rebuild_projections(conn, codelist_body=body, allow_missing_codelists=True)
            progress.missing_codelists = list(rep.missing_codelists)
            if own:
                conn.execute("COMMIT")
        except BaseException:
            if own and conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            if own:
                conn.close()

    async def fetch(self, client: Any, raw: bytes, what: str) -> bytes:
        status, body = await self.retry(
            what, lambda: client.post_cbor("/v1/restore/fetch", raw)
        )
        if status == 404:
            return b""
        if status != 200:
            raise RestoreError(f"{what}: the centre answered HTTP {status}: "
                               f"{body[:300].decode('utf-8', 'replace')}")
        return bytes(body)

    async def download_content(
        self, client: Any, key: KeyProvider, target: Path, lost_at_centre: set[str],
        progress: Progress, refs: list[str],
    ) -> None:
        """Every content file the folder's log references and lacks (the content table's,
        and ``refs``), from the centre; ``lost_at_centre``: what the centre says it never got."""
        conn = schema.connect(str(target / DB_NAME), readonly=True)
        try:
            sizes = {
                str(sha): int(size)
                for sha, size in conn.execute("SELECT sha256, size FROM content ORDER BY sha256")
            }
            # Documents' content (sizes known) and anything else an entry references (the
            # bodies of code-list versions).
            wanted = list(sizes.items()) + [(sha, -1) for sha in refs if sha not in sizes]
            gone = destroyed_content(conn)
            kept = _kept_elsewhere(conn)
        finally:
            conn.close()
        # Versions the centre never held on their own (appliance/versions.py): a released
        # lossless scan (nothing to fetch), the PDF/A inside its signed file (rebuilt from it
        # below), a lossless master kept only on the old box (lost with it, by design).
        gone = set(gone) | set(kept.released)
        store_dir = target / "content"
        tmp = target / ".restore-tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        from appliance.content import ContentStore, DerivedError

        content = ContentStore(store_dir)
        for sha, size in wanted:
            if sha in gone or sha in kept.within or content.exists(sha):
                continue
            if sha in kept.box_only or sha in lost_at_centre:
                progress.lost_content.append(sha)
                continue
            part = tmp / sha
            offset, digest = await self._fetch_one(client, key, sha, size, part)
            if offset == 0 and size != 0:
                progress.lost_content.append(sha)
                part.unlink(missing_ok=True)
                continue
            if digest != sha:
                raise RestoreError(f"content {sha} from the centre has another SHA-256")
            with part.open("rb") as fh:
                content.put_stream(fh)
            part.unlink()
            progress.content_files += 1
            progress.content_bytes += offset
        shutil.rmtree(tmp, ignore_errors=True)
        for sha, (outer, length) in sorted(kept.within.items()):
            if not content.exists(sha):
                try:
                    content.record_prefix(sha, outer, length)
                except (DerivedError, NotFoundError):
                    progress.lost_content.append(sha)
        unexpected = [s for s in progress.lost_content if s not in kept.box_only]
        if progress.lost_content:
            self.report(f"{len(progress.lost_content)} content files never reached the centre"
                        f" ({len(progress.lost_content) - len(unexpected)} lossless masters "
                        "kept only on the old box)")
            if unexpected and not self.allow_lost_content:
                raise RestoreError(
                    f"{len(unexpected)} content files never reached the centre "
                    f"(e.g. {unexpected[0]}); they are lost with the old box unless "
                    "its disk or a backup has them. Restore from the backup instead, or accept "
                    "the loss with --accept-lost-content (it is recorded in the log)"
                )

    async def _fetch_one(self, client: Any, key: KeyProvider, sha: str, size: int,
                         part: Path) -> tuple[int, str]:
        """One content file from the centre into ``part``, piece by piece; (bytes, SHA-256)."""
        digest = hashlib.sha256()
        with part.open("wb") as fh:
            offset = 0
            while True:
                raw = self.sign(
                    key, wire.RequestType.FETCH,
                    {"what": "content", "sha256": sha, "offset": offset},
                )
                piece = await self.fetch(client, raw, f"content {sha[:12]}… at {offset}")
                if not piece:
                    break
                fh.write(piece)
                digest.update(piece)
                offset += len(piece)
                if size >= 0 and offset >= size:
                    break
        return offset, digest.hexdigest()


@dataclass
class CentreSource(CentreFetch):
    """A ``RestoreSource`` (appliance/archive/restore.py) that is the provincial centre."""

    url: str
    token: str
    key_kind: str = "auto"
    key_options: dict[str, Any] = field(default_factory=dict)
    agency_abbr: str = "UBND"
    allow_lost_content: bool = False
    clock: clockmod.Clock = field(default_factory=clockmod.SystemClock)
    label: str = ""
    report: Callable[[str], None] = lambda _msg: None

    def materialise(self, target: Path) -> dict[str, Any]:
        self.label = self.url
        return asyncio.run(self._run(target))

    # -- the steps --------------------------------------------------------------------------

    async def _run(self, target: Path) -> dict[str, Any]:
        from .http import CentreClient

        secret, fingerprint = wire.parse_token(self.token)
        key_config = create_key(target, self.key_kind, dict(self.key_options))
        key = open_key(target, key_config)
        store: Store | None = None
        try:
            write_atomic(target / PUBLIC_KEY_NAME, key.public_key_pem().encode())
            self.report(f"new device key {key.kid.hex()} ({key.backing.value})")
            async with CentreClient(self.url) as client:
                begin = await self._begin(client, key, secret, fingerprint)
                info = begin.extra
                centre_key = load_public_key(str(info["centre_key"]))
                config = ApplianceConfig(
                    org_id=str(info["org_id"]),
                    org_name=str(info["org_name"]),
                    agency_abbr=self.agency_abbr,
                    origin=str(info["origin"]),
                    key=key_config,
                )
                save_config(target, config)
                progress = Progress()
                importer = await self._download_log(client, key, target, begin, progress)
                withheld = importer.withheld
                await self.download_content(
                    client, key, target, set(begin.missing), progress, list(importer.refs)
                )
                if progress.missing_codelists:  # their bodies came with the content
                    self.rebuild(target, progress)
                store = Store(target, config, key, self.clock)  # closes the key when closed
                index = self._append_handover(store, begin, secret, withheld, progress)
                self._verify(target, store)
                receipt_index = await self._handover(
                    client, store, begin, secret, centre_key, index
                )
        finally:
            if store is not None:
                store.close()
            else:
                key.close()
        return {
            "source": "centre",
            "centre": self.url,
            "centre_origin": str(info["centre_origin"]),
            "appliance_id": str(info["appliance_id"]),
            "tree_size": begin.accepted_size,
            "handover_index": index,
            "receipt_index": receipt_index,
            "withheld": len(withheld),
            "content_files": progress.content_files,
            "content_bytes": progress.content_bytes,
            "lost_content": len(progress.lost_content),
            "missing_codelists": progress.missing_codelists,
            "claimed_size": int(info.get("claimed_size", 0)),
            "unsent_lost": max(0, int(info.get("claimed_size", 0)) - begin.accepted_size),
        }

    async def _begin(
        self, client: Any, key: KeyProvider, secret: bytes, fingerprint: bytes
    ) -> wire.Response:
        spki = spki_der(load_public_key(key.public_key_pem()))
        raw = self.sign(
            key,
            wire.RequestType.RESTORE,
            {"token_id": wire.token_id(secret), "token_proof": wire.token_proof(secret, spki)},
        )
        _status, answer = await self.retry(
            "restore", lambda: client.post_cbor("/v1/restore", raw)
        )
        resp, _pem = pinned_answer(answer, wire.sha256(raw), fingerprint, "restore")
        if resp.outcome is not wire.Outcome.RESTORING:
            raise CentreRefusedError(resp.message or "restore refused", resp.code or "restore")
        if resp.receipt is None:
            raise RestoreError("the centre's answer carries no receipt for its copy")
        self.report(
            f"centre {resp.extra.get('centre_name')}: appliance {resp.extra.get('appliance_id')} "
            f"of {resp.extra.get('org_name')}, {resp.accepted_size} entries"
        )
        return resp

    async def _download_log(
        self, client: Any, key: KeyProvider, target: Path, begin: wire.Response,
        progress: Progress,
    ) -> LogImporter:
        info = begin.extra
        signer = load_public_key(str(info["signer_public_key"]))
        centre_key = load_public_key(str(info["centre_key"]))
        rc = wire.verify_receipt(begin.receipt or b"", centre_key)
        checkpoint = bytes(info["checkpoint"])
        if rc.checkpoint != checkpoint or rc.tree_size != begin.accepted_size:
            raise RestoreError("the centre's receipt does not countersign the checkpoint it sent")
        conn = schema.connect(str(target / DB_NAME))
        try:
            create_tables(conn)
            conn.execute("BEGIN IMMEDIATE")
            importer = LogImporter(conn)
            while importer.size < begin.accepted_size:
                start = importer.size
                raw = self.sign(key, wire.RequestType.FETCH, {"what": "entries", "from": start})
                page = await self.fetch(client, raw, f"entries from {start}")
                rows = cbor.loads(page).get("entries") if page else None
                if not isinstance(rows, list) or not rows:
                    raise RestoreError(f"the centre sent no entries from {start}")
                for leaf, entry in rows:
                    importer.add(bytes(leaf), None if entry is None else bytes(entry))
                self.report(f"entries: {importer.size}/{begin.accepted_size}")
            importer.flush()
            root = importer.root()
            if root != begin.accepted_root:
                raise RestoreError("the downloaded log does not hash to the centre's root")
            adopt_checkpoint(
                conn, checkpoint, signer, str(info["origin"]), begin.accepted_size, root
            )
            self.rebuild(target, progress, conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            conn.close()
        return importer

    def _append_handover(
        self, store: Store, begin: wire.Response, secret: bytes, withheld: list[int],
        progress: Progress,
    ) -> int:
        info = begin.extra
        assert store.key is not None
        data = handover_data(
            appliance_id=str(info["appliance_id"]),
            previous_public_key=str(info["signer_public_key"]),
            new_public_key=store.key.public_key_pem(),
            backing=store.key.backing.value,
            restored_size=begin.accepted_size,
            restored_root=begin.accepted_root,
            claimed_size=int(info.get("claimed_size", 0)),
            centre_origin=str(info["centre_origin"]),
            centre_key_id=key_id(load_public_key(str(info["centre_key"]))).hex(),
            token_id=wire.token_id(secret),
            withheld=withheld,
            lost_content=progress.lost_content,
        )
        size, _ = store.tree_head()
        if size != begin.accepted_size:
            raise RestoreError(f"the rebuilt log has {size} entries, not {begin.accepted_size}")
        entry = store.writer_or_fail().call(
            lambda txn: writes.append_event(txn, HANDOVER_KIND, ACTOR, data)
        )
        if not store.wait_sealed():
            raise RestoreError("the hand-over entry could not be sealed by the new key")
        return int(entry.index)

    def _verify(self, target: Path, store: Store) -> None:
        from appliance.verify import verify_data_dir

        assert store.key is not None
        rep = verify_data_dir(target, load_public_key(store.key.public_key_pem()))
        if not rep.ok:
            problems = "; ".join(f.message for f in rep.findings[:5])
            raise RestoreError(f"the restored folder does not verify: {problems}")

    async def _handover(
        self, client: Any, store: Store, begin: wire.Response, secret: bytes,
        centre_key: Any, index: int,
    ) -> int | None:
        from .outbox import _checkpoint_at
        from .receipts import check_receipt, store_receipt

        assert store.key is not None
        key = store.key
        raw_entry = next(iter(store.entries(index, index + 1)))[1]
        batch = wire.Batch(
            index,
            index + 1,
            _checkpoint_at(store, key, index + 1, self.now()),
            tuple(store.consistency_proof(index, index + 1)),
            (raw_entry,),
        )
        spki = spki_der(load_public_key(key.public_key_pem()))
        body = dict(
            batch.to_body(),
            token_id=wire.token_id(secret),
            token_proof=wire.token_proof(secret, spki),
            backing=key.backing.value,
            alg=key.alg,
        )
        raw = self.sign(key, wire.RequestType.HANDOVER, body, seq=1)
        status, answer = await self.retry(
            "hand-over", lambda: client.post_cbor("/v1/handover", raw)
        )
        try:
            resp = wire.verify_response(answer, centre_key, wire.sha256(raw))
        except (WireError, AuthError) as exc:
            raise RestoreError(f"the centre's answer to the hand-over (HTTP {status}) is not "
                               f"its own: {exc}") from exc
        if resp.outcome is not wire.Outcome.ACCEPTED or resp.receipt is None:
            raise CentreRefusedError(
                f"the centre refused the hand-over: {resp.message}", resp.code or "handover"
            )
        checked = check_receipt(resp.receipt, centre_key, store)
        info = begin.extra
        receipt_index = store_receipt(store, checked, str(info["centre_origin"]))
        store.wait_sealed()
        data_dir = store.data_dir
        save_enrolment(
            data_dir,
            Enrolment(
                centre_url=self.url.rstrip("/"),
                centre_key_pem=str(info["centre_key"]),
                centre_origin=str(info["centre_origin"]),
                centre_name=str(info["centre_name"]),
                appliance_id=str(info["appliance_id"]),
                org_id=str(info["org_id"]),
                enrolled_at=resp.centre_time,
            ),
        )
        save_state(
            data_dir,
            AgentState(
                centre_url=self.url.rstrip("/"),
                acknowledged_size=resp.accepted_size,
                confirmed_size=resp.accepted_size,
                settled_size=resp.accepted_size,
                acknowledged_root=resp.accepted_root.hex(),
                last_contact=resp.centre_time,
                seq_reserved=1,
            ),
        )
        self.report(f"hand-over accepted: the centre countersigned size {resp.accepted_size}")
        return receipt_index


def _kept_elsewhere(conn: Any) -> Placement:
    """Where every document's content versions are, over all documents (versions.py)."""
    import json

    within: dict[str, tuple[str, int]] = {}
    released: list[str] = []
    box_only: list[str] = []
    for (raw,) in conn.execute('SELECT "Content" FROM documents WHERE "Content" IS NOT NULL'):
        p = placement(json.loads(raw))
        within.update(p.within)
        released.extend(p.released)
        box_only.extend(p.box_only)
    return Placement((), within, tuple(released), tuple(box_only))
