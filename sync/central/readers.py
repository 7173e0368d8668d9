"""Readers of the province's catalogue and their online requests (mức độ 4, end to end).

A reader signs up with a username and a password (argon2id), and may give a national identity
number; no e-mail. A signed-in reader asks for a copy of a published document; the archivist
approves it in the dashboard, which makes the copy at once: the document's digitised PDF,
marked "BẢN SAO" with its mã lưu trữ and the date, signed (PAdES) with the archive's agency key;
the reader follows the status and downloads the copy. Nothing unpublished can be asked for or
handed out: every step reads the ``catalogue`` table, which only the publishing rule writes.

Sessions are random tokens kept as their SHA-256 only (a copy of the database opens none).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import nacl.exceptions
import nacl.pwhash

from appliance.errors import ConflictError, NotFoundError, ValidationError
from appliance.text import nfc

from .catalogue_store import ReaderRecord, ReaderRequest
from .centre import Centre

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{2,39}$")
IDENTITY = re.compile(r"^\d{12}$")  # số định danh cá nhân (căn cước): 12 digits
SESSION_HOURS = 12
FORMS = {"copy": "Bản sao có chứng thực (PDF ký số)"}
STATUS_VI = {"pending": "Đang chờ duyệt", "approved": "Đã duyệt — tải bản sao",
             "refused": "Bị từ chối"}
_DUMMY: bytes | None = None


@dataclass(frozen=True)
class HashCost:
    opslimit: int = nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE
    memlimit: int = nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE


def _hash(password: str, cost: HashCost) -> bytes:
    return bytes(nacl.pwhash.argon2id.str(password.encode(), opslimit=cost.opslimit,
                                          memlimit=cost.memlimit))


def sign_up(centre: Centre, username: str, password: str, full_name: str,
            identity_no: str = "", cost: HashCost | None = None) -> ReaderRecord:
    """A new reader account; the password follows the house rule (appliance.passwords)."""
    from appliance.passwords import validate_password

    username = username.strip().lower()
    if not USERNAME.match(username):
        raise ValidationError("Tên đăng nhập 3–40 ký tự: chữ thường không dấu, số, . _ -",
                              "username")
    full_name = nfc(full_name)
    if not 2 <= len(full_name) <= 100:
        raise ValidationError("Cần họ và tên (2–100 ký tự)", "full_name")
    identity_no = identity_no.strip()
    if identity_no and not IDENTITY.match(identity_no):
        raise ValidationError("Số định danh cá nhân gồm 12 chữ số", "identity_no")
    validate_password(password)
    rec = ReaderRecord(username, full_name, identity_no or None,
                       _hash(password, cost or HashCost()), centre.now())
    with centre.storage.transaction() as tx:
        if tx.reader(username) is not None:
            raise ConflictError("Tên đăng nhập này đã có người dùng")
        tx.add_reader(rec)
    return rec


def authenticate(centre: Centre, username: str, password: str) -> ReaderRecord | None:
    global _DUMMY
    with centre.storage.view() as v:
        rec = v.reader(username.strip().lower())
    if rec is None or rec.disabled:
        if _DUMMY is None:
            _DUMMY = _hash("not a password, for timing", HashCost())
        stored = _DUMMY
    else:
        stored = rec.pw_hash
    try:
        ok = nacl.pwhash.verify(stored, password.encode())
    except nacl.exceptions.InvalidkeyError:
        ok = False
    return rec if ok and rec is not None and not rec.disabled else None


def _token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def start_session(centre: Centre, username: str) -> str:
    token = secrets.token_urlsafe(32)
    until = centre.clock.now() + dt.timedelta(hours=SESSION_HOURS)
    with centre.storage.transaction() as tx:
        tx.add_reader_session(_token_hash(token), username, until.isoformat())
    return token


def session_reader(centre: Centre, token: str | None) -> str | None:
    if not token:
        return None
    with centre.storage.view() as v:
        return v.reader_session(_token_hash(token), centre.clock.now().isoformat())


def end_session(centre: Centre, token: str | None) -> None:
    if token:
        with centre.storage.transaction() as tx:
            tx.end_reader_session(_token_hash(token))


def ask(centre: Centre, username: str, oai_id: str, purpose: str) -> ReaderRequest:
    """A reader asks for a copy of a published document."""
    purpose = nfc(purpose)
    if not 5 <= len(purpose) <= 1000:
        raise ValidationError("Cần ghi mục đích sử dụng (ít nhất 5 ký tự)", "purpose")
    with centre.storage.transaction() as tx:
        row = tx.catalogue_item(oai_id)
        if row is None or row.deleted or row.kind != "document":
            raise NotFoundError("Không có tài liệu này trong mục lục công bố")
        req = ReaderRequest(secrets.token_hex(8), username, oai_id, "copy", purpose, "pending",
                            centre.now())
        tx.add_reader_request(req)
    return req


CopyMaker = Callable[[bytes, str], bytes]  # (original PDF, mã lưu trữ) -> the marked copy


def decide(centre: Centre, request_id: str, approve: bool, by: str, note: str,
           make_copy: CopyMaker | None) -> ReaderRequest:
    """The archivist's decision; approving makes the marked, signed copy at once."""
    note = nfc(note)
    if not approve and not note:
        raise ValidationError("Cần ghi lý do từ chối", "note")
    with centre.storage.view() as v:
        req = v.reader_request(request_id)
        if req is None:
            raise NotFoundError("Không có yêu cầu này")
        if req.status != "pending":
            raise ConflictError("Yêu cầu đã được quyết định")
        row = v.catalogue_item(req.oai_id)
        if approve and (row is None or row.deleted or row.doc_id is None):
            raise ConflictError("Tài liệu không còn trong mục lục công bố; hãy từ chối")
        data = v.document_data(row.appliance_id, row.doc_id) if approve and row and \
            row.doc_id else None
    pdf = sha = None
    if approve:
        assert row is not None
        if make_copy is None:
            raise ConflictError("Trung tâm chưa có khóa ký số để ký bản sao")
        original = _original(centre, data)
        code = str(json.loads(row.meta_json).get("DocCode") or row.file_code)
        pdf = make_copy(original, code)
        sha = hashlib.sha256(pdf).hexdigest()
    with centre.storage.transaction() as tx:
        now = tx.reader_request(request_id)
        if now is None or now.status != "pending":
            raise ConflictError("Yêu cầu đã được quyết định")
        tx.decide_reader_request(request_id, "approved" if approve else "refused", by,
                                 centre.now(), note, sha, pdf)
        out = tx.reader_request(request_id)
    assert out is not None
    return out


def _original(centre: Centre, data: dict[str, Any] | None) -> bytes:
    content = (data or {}).get("Content") or []
    pdfs = [c for c in content if isinstance(c, dict) and c.get("mime") == "application/pdf"]
    for c in pdfs:
        sha = str(c.get("sha256"))
        if centre.blobs.has(sha):
            with centre.blobs.open(sha) as fh:
                return fh.read()
    raise ConflictError("Trung tâm chưa nhận bản số hóa (PDF) của tài liệu này")


def copy_for(centre: Centre, username: str, request_id: str) -> bytes:
    """The approved copy, for the reader who asked, while the record is still published."""
    with centre.storage.view() as v:
        req = v.reader_request(request_id)
        if req is None or req.username != username or req.status != "approved":
            raise NotFoundError("Không có bản sao này")
        row = v.catalogue_item(req.oai_id)
        if row is None or row.deleted:
            raise NotFoundError("Tài liệu đã rút khỏi mục lục công bố")
        pdf = v.reader_copy(request_id)
    if pdf is None:
        raise NotFoundError("Không có bản sao này")
    return pdf


def copy_maker(archive_name: str, key: object, today: Callable[[], dt.date]) -> CopyMaker:
    """Mark and sign copies with ``key`` (an agency key: ``pdf_signer()``), as the archive."""
    from appliance.copymark import stamp_copy
    from appliance.pdfsign import PdfSigningKey, sign_pdf

    signer: PdfSigningKey = key  # type: ignore[assignment]

    def make(original: bytes, code: str) -> bytes:
        marked = stamp_copy(original, code, today(), below=72.0)
        return sign_pdf(marked, signer, agency_name=archive_name, copy_type="BẢN SAO",
                        doc_ref=code)

    return make
