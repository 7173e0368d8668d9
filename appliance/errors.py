"""Errors of the appliance library: what an operator needs, and whether a retry helps."""

from __future__ import annotations

from typing import Any


class LuutruError(Exception):
    """Base class for every error the appliance raises on purpose."""

    retryable: bool = False


class EncodingError(LuutruError):
    """Bytes are not the deterministic CBOR (or COSE) they claim to be."""


class ProofError(LuutruError):
    """A Merkle inclusion or consistency proof does not verify."""


class SignatureError(LuutruError):
    """A checkpoint or message signature does not verify."""


class KeyError_(LuutruError):
    """The device key cannot be created, loaded or used."""


class KeyUnavailableError(KeyError_):
    """The device key is configured but cannot be used now (missing TPM, unreadable blob)."""

    retryable = True


class ConfigError(LuutruError):
    """The data folder or its configuration is missing or inconsistent."""


class ValidationError(LuutruError):
    """A record's field fails the rules of Decree 30 / Circular 05 (length, code list, format)."""

    def __init__(
        self, message: str, field: str | None = None, *, msgid: str | None = None,
        **params: Any,
    ) -> None:
        super().__init__(message)
        self.field = field
        # For people: an English message id (the web UI's catalogs translate it) whose
        # %(label)s is the field's name as users know it, and its other parameters.
        self.msgid = msgid
        self.params = params


class RefusedRowError(ValidationError):
    """The database refused a record's row (a CHECK or UNIQUE rule); nothing of it was written."""


class NotFoundError(LuutruError):
    """A record that the call names does not exist."""


class ConflictError(LuutruError):
    """The change conflicts with what is stored (duplicate number, closed fonds, wrong version)."""


class ReadOnlyError(ConflictError):
    """The record belongs to a closed fonds or a frozen collection and cannot change."""


class FrozenError(ReadOnlyError):
    """The record is frozen, recalled or destroyed and refuses edits."""


class ForbiddenActionError(LuutruError):
    """This person may not take this step (not a handler of the document, say)."""

    status = 403  # as the web UI answers it


class StoreClosedError(LuutruError):
    """The store was closed or its writer stopped; nothing more is accepted."""


class UnsafeContentError(ValidationError):
    """A file carries scripts, actions that run or fetch things, or attached files."""

    def __init__(self, found: list[str], attachment: bool = False) -> None:
        self.found = tuple(found)
        what = ", ".join(self.found)
        self.vi = (
            "Tệp PDF chứa nội dung tự chạy (mã JavaScript, hành động mở chương trình, gửi dữ "
            "liệu hoặc mở tệp khác)" + (" hoặc tệp đính kèm" if attachment else "")
            + f", nên không được nhận: {what}. Hãy in lại thành PDF thông thường hoặc quét bản "
            "giấy."
        )
        self.en = (
            "The PDF carries active content (JavaScript, actions that launch programs, submit "
            "data or open other files)" + (" or attached files" if attachment else "")
            + f", so it was refused: {what}. Print it to a plain PDF or scan the paper instead."
        )
        super().__init__(f"{self.vi} ({self.en})")

    def message(self, lang: str) -> str:
        """The refusal in the user's language (``vi`` or ``en``)."""
        return self.en if lang == "en" else self.vi


class AccountError(LuutruError):
    """A user, role, password or token request is not acceptable."""

    status = 400  # as the web UI answers it


class AuthError(LuutruError):
    """Sign-in failed, or the request carries no valid session or token."""

    status = 401

class UpgradeRefused(LuutruError, ValueError):
    """A signature upgrade from the centre would change a signed byte of the original PDF."""


def refusal(vi: str, en: str, field: str | None = None,
            cls: type[LuutruError] = ValidationError) -> LuutruError:
    """A refusal worded for the users in Vietnamese (its message) and in English
    (``english``, which the web UI shows when it is in English), naming the field."""
    exc = cls(vi)
    exc.field = field  # type: ignore[attr-defined]
    exc.english = en  # type: ignore[attr-defined]
    return exc


def megabytes(n: int) -> str:
    """Bytes as the pages say them: whole MB from 10 MB, one decimal below."""
    return f"{max(0, n) / 1048576:.0f} MB" if n >= 10 * 1048576 else f"{max(0, n) / 1048576:.1f} MB"


class DiskFullError(LuutruError):
    """The data disk has too little room for new records or files (reads and the audit
    entries that keep the box lawful go on); answered 507 by the web UI."""

    retryable = True

    def __init__(self, free_bytes: int, needed_bytes: int = 0) -> None:
        self.free_bytes = free_bytes
        self.needed_bytes = needed_bytes
        self.vi = (
            f"Ổ đĩa của máy gần hết chỗ: chỉ còn {megabytes(free_bytes)} trống, nên máy tạm "
            "ngừng nhận văn bản và tệp mới (xem và tra cứu vẫn dùng được). Hãy báo kỹ thuật "
            "viên giải phóng dung lượng (xóa tệp tạm, chuyển bản sao lưu cũ ra ổ khác) hoặc lắp "
            "ổ lớn hơn; máy tự nhận lại ngay khi có chỗ trống."
        )
        self.english = (
            f"The appliance's disk is almost full: only {megabytes(free_bytes)} free, so new "
            "documents and files are refused for now (viewing and searching still work). Ask "
            "the technician to free space (temporary files, old backups moved elsewhere) or "
            "fit a larger disk; the appliance accepts them again as soon as there is room."
        )
        super().__init__(self.vi)

    def message(self, lang: str) -> str:
        return self.english if lang == "en" else self.vi


class HaltedError(LuutruError):
    """A start-up check found a fault (a damaged database, a foreign device key, a log behind
    its anchors): nothing is written until it is repaired with the command it names.

    ``vi`` and ``english`` are for the people at the box (no commands); the message itself,
    for the technician at the command line and the journal, names the repair."""

    status = 503

    def __init__(self, faults: tuple[object, ...], vi: str, english: str, technical: str) -> None:
        self.faults = faults
        self.vi = vi
        self.english = english
        super().__init__(technical)

    def message(self, lang: str) -> str:
        return self.english if lang == "en" else self.vi
