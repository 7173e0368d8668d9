"""The centre's storage seam: the records and the protocols, no implementation.

Everything above this module speaks in these dataclasses and the protocols; nothing above it
knows SQL. The implementations (``sqlite_storage``, the embedded default, and ``pg_storage``:
several stateless intake workers, one database, per-appliance ordering by row locks) import
this module, never the other way round; ``open.open_storage`` picks one by URL.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from .catalogue_store import CatalogueTx, CatalogueView


class ApplianceStatus(StrEnum):
    ACTIVE = "active"
    QUARANTINED = "quarantined"


class AnomalyKind(StrEnum):
    """Why something was refused or looked wrong; counted per appliance (None: unknown key)."""

    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"
    MALFORMED = "malformed"
    REPLAY = "replay"
    SEQUENCE_REGRESSED = "sequence_regressed"
    CLOCK_SKEW = "clock_skew"
    CLASSIFIED = "classified"
    BAD_BATCH = "bad_batch"
    FORK = "fork"
    QUARANTINED_REQUEST = "quarantined_request"
    CONTENT_MISMATCH = "content_mismatch"
    CENTRE_AHEAD = "centre_ahead"
    BEHIND = "behind"  # the appliance came back with less than the centre accepted from it
    ENROLMENT = "enrolment"


@dataclass(frozen=True)
class ApplianceRecord:
    id: str  # the device key id, hex
    org_id: str
    org_name: str
    origin: str
    public_key_pem: str
    backing: str
    alg: int
    enrolled_at: str
    status: ApplianceStatus = ApplianceStatus.ACTIVE
    accepted_size: int = 0
    accepted_root: bytes = b""
    frontier: tuple[bytes, ...] = ()
    last_seq: int = 0
    last_contact: str | None = None
    claimed_size: int = 0
    claimed_at: str | None = None
    withheld: int = 0


@dataclass(frozen=True)
class TokenRecord:
    token_id: bytes
    secret: bytes
    org_id: str
    created_at: str
    expires_at: str
    used_by: str | None = None
    used_at: str | None = None


@dataclass(frozen=True)
class KeyRecord:
    """A device key that took over an appliance's log by a hand-over entry (replacement)."""

    appliance_id: str  # the log's id: the key id it was first enrolled with
    key_id: str
    public_key_pem: str
    backing: str
    alg: int
    from_size: int  # index of the hand-over entry: checkpoints beyond it are this key's
    added_at: str


@dataclass(frozen=True)
class ReplacementRecord:
    """A one-time token that lets a new box take over a dead appliance's log."""

    token_id: bytes
    appliance_id: str
    created_at: str
    new_key_id: str | None = None  # the new box's key, bound when it first uses the token
    started_at: str | None = None
    completed_at: str | None = None
    handover_size: int | None = None  # tree size once the hand-over entry was accepted


@dataclass(frozen=True)
class CheckpointRecord:
    appliance_id: str
    tree_size: int
    root_hash: bytes
    cose: bytes
    frontier: tuple[bytes, ...]
    accepted_at: str
    receipt: bytes


@dataclass(frozen=True)
class EntryRow:
    index: int
    leaf_hash: bytes
    entry: bytes | None  # None: withheld (a classified record's entry)


@dataclass(frozen=True)
class ContentRef:
    sha256: str
    size: int  # -1 when the entry did not say
    first_index: int


@dataclass(frozen=True)
class ContentLink:
    """A content version an appliance does not send on its own (appliance/versions.py)."""

    sha256: str
    kind: str  # "within": the first ``size`` bytes of ``container``; "unsent": never sent
    container: str | None
    size: int
    first_index: int
    checked: str | None = None  # when the prefix was found to hash right


@dataclass(frozen=True)
class DocumentRow:
    """A document of any commune, as the province-wide search reads it."""

    appliance_id: str
    org_id: str
    doc_id: str
    version: int
    log_index: int
    direction: str | None
    type_name: str | None
    code_number: str | None
    code_notation: str | None
    organ_name: str | None
    subject: str | None
    issued_date: str | None
    arrival_date: str | None
    arrival_number: int | None
    year: int | None
    file_code: str | None
    folded: str  # folded text for search (diacritics and đ folded, lower case)
    data_json: str


@dataclass(frozen=True)
class ParkedBatch:
    appliance_id: str
    start: int
    end: int
    digest: bytes
    raw: bytes
    parked_at: str


@dataclass(frozen=True)
class Anomaly:
    appliance_id: str | None
    kind: AnomalyKind
    detail: str
    first_at: str
    last_at: str
    count: int


@dataclass(frozen=True)
class Alert:
    id: int
    appliance_id: str
    kind: str
    detail: str
    raised_at: str
    cleared_at: str | None = None
    cleared_by: str | None = None


@dataclass(frozen=True)
class ForkEvidence:
    appliance_id: str
    detected_at: str
    accepted_size: int
    accepted_checkpoint: bytes  # the checkpoint the centre had accepted (device-signed)
    claimed_size: int
    claimed_checkpoint: bytes  # the contradicting checkpoint (device-signed)
    diverge_index: int | None
    request: bytes  # the whole signed request that showed the fork
    reason: str


@dataclass(frozen=True)
class ApplianceCounts:
    entries: int
    documents: int
    content_expected: int
    content_missing: int


class LtvState(StrEnum):
    """Where a box's signed content stands in the signature upgrade (sync/central/ltv_job.py)."""

    PENDING = "pending"  # found; not tried yet
    RETRY = "retry"  # the TSA or revocation services were unreachable: tried again later
    UPGRADED = "upgraded"  # current_sha256 is its newest long-term version
    NOT_SIGNED = "not_signed"  # not a signed PDF: nothing to do
    REFUSED = "refused"  # cannot be upgraded (revoked signer, no room, untrusted chain)
    VERSION = "version"  # a version the centre made (never upgraded itself)


@dataclass(frozen=True)
class LtvRow:
    """One content file of an appliance as the signature upgrade sees it."""

    appliance_id: str
    sha256: str
    state: LtvState
    updated_at: str
    doc_id: str | None = None
    source_sha256: str | None = None  # a version: the box's original it was made from
    previous_sha256: str | None = None  # a version: the file it extends
    current_sha256: str | None = None  # an original: its newest version
    level: str | None = None
    attempts: int = 0
    last_error: str | None = None
    next_try_at: str | None = None
    timestamp_at: str | None = None  # newest document time-stamp of the current version
    renew_by: str | None = None


class CentreView(CatalogueView, Protocol):
    """Reads; a view is a consistent snapshot for as long as it is open."""

    def appliance(self, appliance_id: str) -> ApplianceRecord | None: ...

    def appliances(self) -> list[ApplianceRecord]: ...

    def appliance_for_key(self, key_id: str) -> ApplianceRecord | None:
        """The appliance whose log ``key_id`` signs or signed (its first key or a later one)."""
        ...

    def keys(self, appliance_id: str) -> list[KeyRecord]:
        """Keys that took the log over by hand-over, oldest first (not the first key)."""
        ...

    def replacement(self, token_id: bytes) -> ReplacementRecord | None: ...

    def replacement_for_key(self, key_id: str) -> ReplacementRecord | None:
        """The replacement bound to the new box's key ``key_id``, if any."""
        ...

    def token(self, token_id: bytes) -> TokenRecord | None: ...

    def checkpoint(self, appliance_id: str, tree_size: int) -> CheckpointRecord | None: ...

    def checkpoint_at_or_below(
        self, appliance_id: str, tree_size: int
    ) -> CheckpointRecord | None: ...

    def leaves(self, appliance_id: str, start: int, end: int) -> list[bytes]: ...

    def entries(self, appliance_id: str, start: int, end: int) -> list[EntryRow]: ...

    def response_for(self, appliance_id: str, digest: bytes) -> bytes | None: ...

    def nonce_seen(self, appliance_id: str, nonce: bytes) -> bool: ...

    def content_expected(self, appliance_id: str, sha256: str) -> ContentRef | None: ...

    def links_within(self, container: str) -> list[tuple[str, ContentLink]]: ...

    def links(self, appliance_id: str) -> list[ContentLink]: ...

    def unchecked_containers(self, appliance_id: str) -> list[str]: ...

    def blob_recorded(self, sha256: str) -> bool: ...

    def missing_content(self, appliance_id: str, limit: int) -> tuple[list[ContentRef], int]: ...

    def parked(self, appliance_id: str) -> list[ParkedBatch]: ...

    def anomalies(self, appliance_id: str | None = None) -> list[Anomaly]: ...

    def alerts(self, open_only: bool = True) -> list[Alert]: ...

    def forks(self, appliance_id: str) -> list[ForkEvidence]: ...

    def counts(self, appliance_id: str) -> ApplianceCounts: ...

    def all_counts(self) -> dict[str, ApplianceCounts]:
        """``counts`` of every appliance holding anything, in a few grouped scans (report)."""
        ...

    def search_documents(
        self, folded_query: str, org_id: str | None = None, limit: int = 50
    ) -> list[DocumentRow]: ...

    def ltv_candidates(self, limit: int) -> list[tuple[str, ContentRef]]:
        """Stored content of any appliance that the signature upgrade has not looked at."""
        ...

    def ltv_due(self, now: str, limit: int) -> list[LtvRow]:
        """Originals to try (again) or whose newest version is due for renewal by ``now``."""
        ...

    def ltv_rows(self, appliance_id: str | None = None) -> list[LtvRow]: ...

    def ltv_row(self, appliance_id: str, sha256: str) -> LtvRow | None: ...

    def ltv_undelivered(self, appliance_id: str, limit: int) -> list[LtvRow]:
        """Upgraded originals whose newest version the appliance's log does not name yet."""
        ...


class CentreTx(CentreView, CatalogueTx, Protocol):
    """Writes inside one transaction: all of them land, or none."""

    def add_token(self, token: TokenRecord) -> None: ...

    def use_token(self, token_id: bytes, appliance_id: str, at: str) -> None: ...

    def add_appliance(self, rec: ApplianceRecord) -> None: ...

    def add_replacement(self, rec: ReplacementRecord) -> None: ...

    def start_replacement(self, token_id: bytes, new_key_id: str, at: str) -> None: ...

    def complete_replacement(self, token_id: bytes, size: int, at: str) -> None: ...

    def rekey(self, rec: KeyRecord) -> None:
        """Make ``rec`` the appliance's current key; sequence numbers start again."""
        ...

    def set_accepted(
        self, appliance_id: str, size: int, root: bytes, frontier: Sequence[bytes], withheld: int
    ) -> None: ...

    def set_seq(self, appliance_id: str, seq: int) -> None: ...

    def touch(self, appliance_id: str, at: str) -> None: ...

    def set_claim(self, appliance_id: str, size: int, at: str) -> None: ...

    def set_status(self, appliance_id: str, status: ApplianceStatus) -> None: ...

    def add_nonce(self, appliance_id: str, nonce: bytes, at: str) -> None: ...

    def remember_response(
        self, appliance_id: str, digest: bytes, response: bytes, at: str
    ) -> None: ...

    def add_entries(self, appliance_id: str, rows: Sequence[EntryRow]) -> None: ...

    def add_checkpoint(self, rec: CheckpointRecord) -> None: ...

    def add_content_refs(self, appliance_id: str, refs: Sequence[ContentRef]) -> None: ...

    def add_content_links(self, appliance_id: str, links: Sequence[ContentLink]) -> None: ...

    def check_link(self, appliance_id: str, sha256: str, ok: bool, at: str) -> None: ...

    def record_blob(self, sha256: str, size: int, at: str) -> None: ...

    def upsert_documents(self, rows: Sequence[DocumentRow]) -> None: ...

    def record_anomaly(
        self, appliance_id: str | None, kind: AnomalyKind, detail: str, at: str
    ) -> None: ...

    def raise_alert(self, appliance_id: str, kind: str, detail: str, at: str) -> int: ...

    def clear_alerts(self, appliance_id: str, by: str, at: str) -> int: ...

    def add_fork(self, ev: ForkEvidence) -> None: ...

    def park(self, batch: ParkedBatch) -> None: ...

    def unpark(self, appliance_id: str, digest: bytes) -> None: ...

    def truncate(self, appliance_id: str, size: int, at: str) -> tuple[int, list[str]]:
        """Move entries at and above ``size`` to superseded evidence and drop the projections
        they made; returns (entries moved, ids of documents to re-project from the rest)."""
        ...

    def withhold_entries(
        self, appliance_id: str, indices: Sequence[int], doc_ids: Sequence[str],
        content: Sequence[str],
    ) -> tuple[int, list[str]]:
        """Keep only the leaf hash of entries ``indices`` (classified records that an earlier
        version sent in full); drop those documents' rows, their content references and the
        whole requests kept as evidence. Returns (documents removed, blobs no longer
        referenced by anyone, to delete from the blob store)."""
        ...

    def put_ltv(self, row: LtvRow) -> None: ...


class CentreStorage(Protocol):
    def transaction(self) -> AbstractContextManager[CentreTx]:
        """The one writer's transaction; commits on normal exit, rolls back on an exception."""
        ...

    def view(self) -> AbstractContextManager[CentreView]: ...

    def compact(self) -> None:
        """Rewrite storage so that deleted rows survive in no free page or log file."""
        ...

    def close(self) -> None: ...


def safe_url(url: str) -> str:
    """A database URL without its password, for messages and logs."""
    import re

    return re.sub(r"(://[^:/@]*):[^@]*@", r"\1:***@", url)
