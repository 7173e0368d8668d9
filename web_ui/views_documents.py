"""Văn bản đến / đi: register, draft, issue, the document page, content upload and viewing."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

from aiohttp import web

from appliance import records
from appliance.capture.errors import CaptureError
from appliance.errors import DiskFullError, HaltedError, LuutruError, ValidationError
from appliance.fields import AUTO_FILLED
from appliance.identifiers import validate_organ_id
from appliance.store import Record

from . import queries
from .common import (
    blocking,
    clean,
    form_of,
    render,
    services,
    visible_file,
)
from .content import send_content
from .document_page import document_page, visible_document
from .errors import UploadError, form_status, text_of
from .messages import error_field, error_text
from .reqkeys import LANG, me
from .services import Services
from .uploads import CheckedFile, check_file_isolated

INCOMING_FIELDS = (
    "TypeName", "CodeNumber", "CodeNotation", "IssuedDate", "OrganName", "Subject",
    "PageAmount", "SignerPosition", "SignerFullName", "Priority", "ToPlaces", "DueDate", "Mode",
    "FileCode", "Description", "Keyword",
)
OUTGOING_FIELDS = (
    "TypeName", "CodeNotation", "Subject", "SignerPosition", "SignerFullName", "PageAmount",
    "IssuedAmount", "Priority", "DueDate", "Mode", "FileCode", "Description", "Keyword",
)
_SHA = re.compile(r"^[0-9a-f]{64}$")
def _actor(request: web.Request) -> str:
    return str(me(request).username)


def _options(s: Services, request: web.Request) -> dict[str, Any]:
    codes = s.store.codes
    return {
        "types": [i.label for i in codes["typeName"].items],
        "priorities": [(i.code, i.label) for i in codes["priority"].items],
        "modes": [(i.code, i.label) for i in codes["mode"].items],
        "open_files": queries.open_files(s.store.reader(), me(request).cleared),
    }


async def _save_upload(s: Services, field: Any) -> tuple[CheckedFile, str, Path] | None:
    """Check an uploaded file in a temp file; returns (what it is, its name, the temp path).
    A disk too full for it refuses it before a byte is copied (DiskFullError)."""
    if field is None or isinstance(field, str) or not getattr(field, "filename", None):
        return None
    field.file.seek(0, os.SEEK_END)
    s.store.space.check_records(2 * field.file.tell())  # the temp copy, then the stored one
    tmp_dir = s.store.data_dir / "content" / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=tmp_dir, prefix="up-")
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            src = field.file
            src.seek(0)
            while chunk := src.read(1 << 20):
                out.write(chunk)
        checked = await blocking(
            check_file_isolated, path, s.config.max_upload, s.config.max_pixels,
            s.config.max_pdf_pages,
        )
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return checked, checked.safe_name(str(field.filename)), path


async def take_in(s: Services, doc_id: str, uploads: list[tuple[CheckedFile, str, Path]],
                  actor: str) -> None:
    """File checked uploads into the document through capture (appliance.capture.intake):
    computer-made PDFs kept as they are, photos and scans made into signed, searchable PDF/A."""
    from appliance.capture.intake import IntakeFile
    from appliance.capture.intake import take_in as capture_take_in

    files = [IntakeFile(name, path, checked.mime, checked.born_digital)
             for checked, name, path in uploads]
    try:
        await blocking(capture_take_in, s.store, doc_id, files, actor)
    finally:
        for _, _, path in uploads:
            path.unlink(missing_ok=True)


async def _uploads(s: Services, form: dict[str, Any]) -> list[tuple[CheckedFile, str, Path]]:
    """Check every file of the form (scan, camera) before anything is stored."""
    out: list[tuple[CheckedFile, str, Path]] = []
    try:
        for key in ("scan", "camera"):
            up = await _save_upload(s, form.get(key))
            if up is not None:
                out.append(up)
    except BaseException:
        for _, _, p in out:
            p.unlink(missing_ok=True)
        raise
    return out


# An identifier-looking token in brackets at the end: a digit first, dots within.
_ORGAN_AT_END = re.compile(r"^(.*?)\s*\(\s*(\d[0-9A-Za-z]*(?:\.[0-9A-Za-z]*)+)\s*\)\s*$")


def _recipients(text: str) -> list[dict[str, str]]:
    """One nơi nhận a line; a mã định danh in brackets at the end ("Ủy ban nhân dân tỉnh
    Ninh Bình (000.00.00.H40)") makes it an electronic addressee (edXML)."""
    out: list[dict[str, str]] = []
    for line in text.splitlines():
        line = " ".join(line.split())
        if not line:
            continue
        m = _ORGAN_AT_END.match(line)
        if m is None:
            out.append({"OrganName": line})
            continue
        try:
            organ_id = validate_organ_id(m[2], "To")
        except ValidationError:
            raise ValidationError(f"not an agency identifier: {m[2]}", "To", msgid=(
                "%(label)s: '%(value)s' is not an agency identifier (mã định danh) of the "
                "form 000.00.00.H49."), value=m[2]) from None
        out.append({"OrganId": organ_id, "OrganName": m[1] or organ_id})
    return out


# -- văn bản đến ---------------------------------------------------------------------------

async def incoming_form(request: web.Request) -> web.Response:
    s = services(request)
    return render(request, "incoming.html", values={}, error=None, warnings=[],
                  auto=AUTO_FILLED["incoming"], **_options(s, request))


async def incoming_create(request: web.Request) -> web.Response:
    s = services(request)
    form = await form_of(request)
    values = clean(form, INCOMING_FIELDS)
    lang = request.get(LANG, "vi")

    def again(error: Any, warnings: list[str] | None = None, status: int = 422
              ) -> web.Response:
        field = error_field(error) if isinstance(error, LuutruError) else None
        text = error_text(error, lang) if isinstance(error, LuutruError) else error
        return render(request, "incoming.html", status=status, values=values, error=text,
                      error_field=field, warnings=warnings or [],
                      auto=AUTO_FILLED["incoming"], **_options(s, request))

    try:
        prepared = s.store.prepare_document("incoming", values)
    except LuutruError as exc:
        return again(exc)
    if not form.get("confirm_duplicate"):
        warnings = [error_text(w, lang)
                    for w in records.plausibility(prepared, s.store.clock.now().date())]
        warnings += await blocking(queries.duplicates, s.store, prepared)
        if warnings:
            return again(None, warnings, status=409)
    try:
        s.store.check_can_write()  # halted, or the disk too full: before any file is kept
        uploads = await _uploads(s, form)
    except (DiskFullError, HaltedError) as exc:
        return again(exc, status=form_status(exc))
    except UploadError as exc:
        return again(text_of(exc, lang))
    try:
        res = await blocking(s.store.register_incoming, values, _actor(request))
    except LuutruError as exc:
        for _, _, path in uploads:
            path.unlink(missing_ok=True)
        return again(exc, status=form_status(exc))
    try:
        await take_in(s, res.record.id, uploads, _actor(request))
    except LuutruError as exc:  # registered; the scan was refused: say so on its page
        return await document_page(request, res.record.id, error=exc, status=422)
    raise web.HTTPSeeOther(f"/documents/{res.record.id}?done=registered")


# -- văn bản đi ----------------------------------------------------------------------------




# -- the document page -----------------------------------------------------------------------

async def _visible(request: web.Request, doc_id: str) -> Record:
    return await visible_document(request, doc_id)


async def _document_page(request: web.Request, doc_id: str, error: Any = None,
                         status: int = 200) -> web.Response:
    return await document_page(request, doc_id, error=error, status=status)


async def document(request: web.Request) -> web.Response:
    return await _document_page(request, request.match_info["id"])


async def document_upload(request: web.Request) -> web.Response:
    s = services(request)
    rec = await _visible(request, request.match_info["id"])
    form = await form_of(request)
    try:
        s.store.check_can_write()
        uploads = await _uploads(s, form)
        if not uploads:
            raise UploadError("Chưa chọn tệp nào (no file was chosen).")
    except (DiskFullError, HaltedError) as exc:
        return await _document_page(request, rec.id, error=exc, status=form_status(exc))
    except UploadError as exc:
        return await _document_page(request, rec.id, error=text_of(exc, request.get(LANG, "vi")),
                                    status=422)
    try:
        await take_in(s, rec.id, uploads, _actor(request))
    except LuutruError as exc:
        status = 422 if isinstance(exc, CaptureError) else form_status(exc, 409)
        return await _document_page(request, rec.id, error=exc, status=status)
    raise web.HTTPSeeOther(f"/documents/{rec.id}?done=uploaded")


async def document_file(request: web.Request) -> web.Response:
    """Put the document into a hồ sơ: its own when it has none, else as a member (no copy)."""
    s = services(request)
    rec = await _visible(request, request.match_info["id"])
    form = await form_of(request)
    code = str(form.get("FileCode") or "").strip()
    try:
        if not code:
            raise ValidationError("choose a hồ sơ", "FileCode",
                                  msgid="%(label)s: choose one from the list.")
        await visible_file(request, code)
        if rec.data.get("FileCode"):
            await blocking(s.store.add_to_file, rec.id, code, _actor(request))
        else:
            await blocking(s.store.update_document, rec.id, {"FileCode": code}, _actor(request),
                           rec.version)
    except LuutruError as exc:
        return await _document_page(request, rec.id, error=exc, status=409)
    raise web.HTTPSeeOther(f"/documents/{rec.id}?done=filed")


# -- content -------------------------------------------------------------------------------

async def content(request: web.Request) -> web.StreamResponse:
    rec = await _visible(request, request.match_info["id"])
    return await send_content(request, rec, request.match_info["sha256"])


HANDLERS = {
    "incoming_form": incoming_form,
    "incoming_create": incoming_create,
    "document": document,
    "document_upload": document_upload,
    "document_file": document_file,
    "content": content,
}
