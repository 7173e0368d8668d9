"""The signer's signature on the prepared PDF (``document.sign``), made on the box with the
signer's key unlocked by their PIN, or made elsewhere and uploaded.

An upload is accepted only if it is the prepared PDF, byte for byte, followed by one
incremental update that signs the signer's field (box 7c) over the whole file; the
signature is intact and valid (pyHanko); its certificate is the signer's registered one
(same subject, same CA) and was valid when it signed; and nothing else changed but what a
signature adds.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from .. import clock as clockmod
from .. import writes
from ..errors import LuutruError, ValidationError
from ..kinds import Kind
from ..pdfsign import PdfSignError
from ..results import Record
from ..writer import Txn
from . import pdfform, signers
from .drafting import _draft, _in_state, _step
from .errors import NotYoursError, SigningError, WorkflowError

if TYPE_CHECKING:
    from ..store import Store

KeyOpener = Callable[[], AbstractContextManager[Any]]


def _prepared(store: Store, rec: Record) -> bytes:
    d = rec.data.get("Drafting") or {}
    if d.get("state") != "approved" or not d.get("prepared"):
        raise WorkflowError("Dự thảo chưa được duyệt nên chưa ký được.",
                            "The draft is not approved, so it cannot be signed yet.")
    with store.content.open(d["prepared"]["sha256"]) as fh:
        return fh.read()


def _signer_of(rec: Record, actor: str, on_behalf: bool) -> str:
    signer = str((rec.data.get("Drafting") or {}).get("approver") or "")
    if actor != signer and not on_behalf:
        raise NotYoursError("Chỉ người duyệt dự thảo (người có thẩm quyền) mới ký được.",
                            "Only the draft's approver (the competent person) signs it.")
    return signer


def sign_on_box(store: Store, doc_id: str, actor: str, pin: str,
                open_key: KeyOpener | None = None) -> Record:
    """Sign with the signer's key on the box, unlocked by ``pin`` for this signature only."""
    rec = store.get("document", doc_id)
    prepared = _prepared(store, rec)
    signer = _signer_of(rec, actor, False)
    profile = signers.require(store.data_dir, signer)
    opener = open_key or (lambda: signers.open_key(store.data_dir, profile, pin))
    image = signers.image_of(store.data_dir, profile)
    try:
        with opener() as key:
            cert = key.certificate
            _valid_now(cert, datetime.now(UTC))
            signed = pdfform.sign_field(prepared, key.pdf_signer(), pdfform.SIGNER_FIELD,
                                        image, str(rec.data.get("SignerFullName") or signer))
    except SigningError:
        raise
    except (LuutruError, PdfSignError) as exc:
        if _wrong_pin(exc):
            raise ValidationError(
                "wrong PIN", "pin",
                msgid="%(label)s is not right. After several wrong PINs the key locks for a "
                "while.") from exc
        if _locked(exc):
            raise SigningError(
                "Khóa của người ký đang tạm khóa vì nhập sai mã PIN nhiều lần; hãy thử lại "
                "sau ít phút.",
                "The signer's key is locked after too many wrong PINs; try again in a few "
                "minutes.") from exc
        raise SigningError(
            "Không mở được khóa của người ký: mã PIN sai, thiết bị ký chưa cắm, hoặc khóa chưa "
            f"có chứng thư ({exc}).",
            f"The signer's key cannot be used: wrong PIN, token not plugged in, or no "
            f"certificate yet ({exc}).") from exc
    return _record(store, doc_id, rec.version, actor, signed, cert, profile.backing)


_WRONG_PIN = ("HMAC check failed", "AUTH_FAIL", "BAD_AUTH", "PinIncorrect", "PIN_INCORRECT")


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in out:
        out.append(cur)
        cur = cur.__cause__ or cur.__context__
    return out


def _wrong_pin(exc: BaseException) -> bool:
    """The TPM refused the PIN (authorisation failed) or the token said it is incorrect."""
    return any(m in f"{type(e).__name__} {e}" for e in _chain(exc) for m in _WRONG_PIN)


def _locked(exc: BaseException) -> bool:
    from ..keys.errors import TpmLockoutError

    return any(isinstance(e, TpmLockoutError) or type(e).__name__ == "PinLocked"
               for e in _chain(exc))


def _valid_now(cert: x509.Certificate, now: datetime) -> None:
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise SigningError(
            f"Chứng thư của người ký hết hạn hoặc chưa có hiệu lực (đến "
            f"{clockmod.vn_date(cert.not_valid_after_utc.date())}).",
            "The signer's certificate has expired or is not valid yet.")


def sign_uploaded(store: Store, doc_id: str, actor: str, upload: bytes,
                  on_behalf: bool = False) -> Record:
    """Accept a PDF signed outside the box, after checking it (see the module's docstring)."""
    rec = store.get("document", doc_id)
    prepared = _prepared(store, rec)
    signer = _signer_of(rec, actor, on_behalf)
    profile = signers.require(store.data_dir, signer)
    chain = signers.chain_of(store.data_dir, profile)
    if not chain:
        raise SigningError("Chưa đăng ký chứng thư của người ký nên chưa kiểm tra được tệp ký.",
                           "The signer's certificate is not registered, so the upload cannot "
                           "be checked.")
    cert = check_upload(prepared, upload, chain)
    return _record(store, doc_id, rec.version, actor, upload, cert, "external")


def _refuse(vi: str, en: str) -> SigningError:
    return SigningError(f"Tệp đã ký không được nhận: {vi}", f"The signed file is refused: {en}")


def check_upload(prepared: bytes, upload: bytes, chain: list[x509.Certificate]) -> x509.Certificate:
    """The signer's certificate of a valid upload; raises SigningError saying what is wrong."""
    from asn1crypto import x509 as asn1_x509
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.diff_analysis import ModificationLevel
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    if not upload.startswith(prepared) or len(upload) == len(prepared):
        raise _refuse("đây không phải tệp cần ký đã tải về (nội dung khác), hoặc chưa ký.",
                      "it is not the prepared PDF (its bytes differ), or it is not signed.")
    try:
        reader = PdfFileReader(io.BytesIO(upload), strict=False)
        sigs = list(reader.embedded_regular_signatures)
    except Exception as exc:
        raise _refuse("tệp hỏng.", f"it cannot be read ({exc}).") from exc
    if len(sigs) != 1 or sigs[0].field_name != pdfform.SIGNER_FIELD:
        raise _refuse("phải có đúng một chữ ký, ở ô chữ ký của người ký.",
                      "it must carry one signature, in the signer's field.")
    sig = sigs[0]
    der = [asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER))
           for c in chain]
    vc = ValidationContext(trust_roots=[der[-1]], other_certs=der[:-1], allow_fetching=False,
                           revocation_mode="soft-fail")
    try:
        status = validate_pdf_signature(sig, vc)
    except Exception as exc:
        raise _refuse("chữ ký không kiểm tra được.", f"its signature cannot be checked ({exc}).") \
            from exc
    if not (status.intact and status.valid):
        raise _refuse("chữ ký không hợp lệ (nội dung đã bị sửa sau khi ký).",
                      "the signature is not valid (the content changed after signing).")
    if status.coverage is None or status.coverage.name != "ENTIRE_FILE":
        raise _refuse("chữ ký không bao trùm toàn bộ tệp.", "the signature does not cover "
                      "the whole file.")
    if status.modification_level not in (None, ModificationLevel.NONE,
                                         ModificationLevel.FORM_FILLING):
        raise _refuse("tệp có thay đổi khác ngoài chữ ký.", "it changes more than a signature.")
    got = x509.load_der_x509_certificate(sig.signer_cert.dump())
    if not signers.same_person(got, chain[0]):
        raise _refuse(f"người ký là {got.subject.rfc4514_string()}, không phải "
                      f"{chain[0].subject.rfc4514_string()}.",
                      f"it is signed by {got.subject.rfc4514_string()}, not by "
                      f"{chain[0].subject.rfc4514_string()}.")
    when = status.signer_reported_dt or datetime.now(UTC)
    if not got.not_valid_before_utc <= when <= got.not_valid_after_utc:
        raise _refuse("chứng thư của người ký không còn hiệu lực khi ký.",
                      "the signer's certificate was not valid when it signed.")
    return got


def _record(store: Store, doc_id: str, seen_version: int, actor: str, signed: bytes,
            cert: x509.Certificate, method: str) -> Record:
    stored = store.content.put_bytes(signed)

    def job(txn: Txn) -> Record:
        rec, d = _draft(txn, doc_id)
        _in_state(d, "approved")
        if rec.version != seen_version:
            raise WorkflowError("Dự thảo vừa thay đổi trong lúc ký; hãy ký lại.",
                                "The draft changed while it was being signed; sign again.")
        prepared = d["prepared"]["sha256"]
        d["state"] = "signed"
        d["signature"] = {"sha256": stored.sha256, "by": d.get("approver"),
                          "at": clockmod.iso(txn.clock.now()), "method": method,
                          "subject": cert.subject.rfc4514_string(),
                          "serial": format(cert.serial_number, "x")}
        d["steps"] = [*d.get("steps", []), _step(txn, actor, "sign")]
        ref = {"sha256": stored.sha256, "size": stored.size, "name": "ban-da-ky.pdf",
               "mime": "application/pdf", "from": prepared, "rendition": "signer",
               "tool": f"luutru outgoing.signing ({method})"}
        data = dict(rec.data, Drafting=d,
                    Content=[ref, *list(rec.data.get("Content") or [])[1:]])
        return writes.put(txn, "document", Kind.DOCUMENT_SIGN, actor, data, rec.id,
                          rec.version)

    return store.writer_or_fail().call(job)
