"""Errors of sync and the centre: what an operator needs, and whether a retry can help."""

from __future__ import annotations

from appliance.errors import LuutruError


class SyncError(LuutruError):
    """Base class for every error raised on purpose by sync/ and sync/central/."""

    retryable: bool = False
    # A short code that leaves the process (wire responses, state.json, the report).
    code: str = "sync_error"


class WireError(SyncError):
    """A message is not the CBOR/COSE object it claims to be."""

    code = "malformed"


class AuthError(SyncError):
    """A signature does not verify with the pinned key, or the key is not enrolled."""

    code = "bad_signature"


class UnknownKeyError(AuthError):
    """The request is signed by a key the centre has never enrolled."""

    code = "unknown_key"


class ReplayError(SyncError):
    """A signed request repeats a nonce or goes back in its sequence number."""

    code = "replay"

    def __init__(self, message: str, last_seq: int = 0) -> None:
        super().__init__(message)
        self.last_seq = last_seq


class ClassifiedError(SyncError):
    """A batch carries the full entry of a classified (mật, Mode 03) record."""

    code = "classified"


class BatchError(SyncError):
    """A batch is well signed but inconsistent (bad index, root, or proof shape)."""

    code = "bad_batch"


class ForkError(SyncError):
    """The appliance's log contradicts a checkpoint the centre accepted before."""

    code = "fork"

    def __init__(
        self,
        message: str,
        claimed_size: int = 0,
        claimed_checkpoint: bytes = b"",
        diverge_index: int | None = None,
        conflicting_checkpoint: bytes | None = None,
    ) -> None:
        super().__init__(message)
        self.claimed_size = claimed_size
        self.claimed_checkpoint = claimed_checkpoint
        self.diverge_index = diverge_index
        self.conflicting_checkpoint = conflicting_checkpoint


class BehindCentreError(SyncError):
    """The centre holds more of this appliance's log than the appliance itself (a lost
    write-ahead log, an older copy of the disk put back): writing stops until
    `luutru restore --tail-from-centre` brings the missing entries back."""

    code = "behind_centre"

    def __init__(self, message: str, local_size: int, centre_size: int) -> None:
        super().__init__(message)
        self.local_size = local_size
        self.centre_size = centre_size


class QuarantinedError(SyncError):
    """The appliance is quarantined after a fork; a technician must clear it."""

    code = "quarantined"


class GapError(SyncError):
    """A batch starts after the centre's accepted size; it was parked until the gap fills."""

    code = "gap"
    retryable = True

    def __init__(self, message: str, accepted_size: int) -> None:
        super().__init__(message)
        self.accepted_size = accepted_size


class EnrolmentError(SyncError):
    """Enrolment failed: bad or used token, wrong organisation, or centre key mismatch."""

    code = "enrolment"


class NotEnrolledError(SyncError):
    """The appliance has no enrolment yet (run `luutru enrol`)."""

    code = "not_enrolled"


class ContentError(SyncError):
    """An upload chunk or a finished content file is refused (offset, length or SHA-256)."""

    code = "content"

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message)
        self.offset = offset


class TransportError(SyncError):
    """The centre could not be reached or the connection broke; retrying later helps."""

    code = "transport"
    retryable = True


class CentreRefusedError(SyncError):
    """The centre answered with a refusal; ``code`` is its reason."""

    def __init__(self, message: str, code: str, retryable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.retryable = retryable


class StorageError(SyncError):
    """The centre's storage refused an operation (configuration, URL, integrity)."""

    code = "storage"
