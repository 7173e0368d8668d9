"""Văn bản đến / đi: register, draft, issue, the document page, content upload and viewing."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from aiohttp import web

from appliance.errors import LuutruError, NotFoundError, ValidationError
from appliance.fields import AUTO_FILLED, field_map
from appliance.store import Record

from . import queries
from .common import (
    blocking,
    clean,
    form_of,
    render,
    require_cleared,
    services,
    visible_file,
)
from .content import send_content
from .errors import UploadError, text_of
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
SHOWN_FIELDS = (
    "Direction", "Status", "ArrivalNumber", "ArrivalDate", "TypeName", "CodeNumber",
    "CodeNotation", "IssuedDate", "OrganName", "Subject", "PageAmount", "SignerPosition",
    "SignerFullName", "To", "ToPlaces", "Priority", "DueDate", "IssuedAmount", "Mode",
    "Maintenance", "Language", "FileCode", "DocOrdinal", "FondCode", "Series", "Year",
    "Keyword", "Description", "TraceHeaderList",
)
_SHA = re.compile(r"^[0-9a-f]{64}$")
_LABELS = {
    "Direction": {"incoming": "Văn bản đến", "outgoing": "Văn bản đi"},
    "Status": {"draft": "Dự thảo", "registered": "Đã đăng ký", "issued": "Đã ban hành",
               "recalled": "Đã thu hồi"},
    "Series": {"den": "Sổ văn bản đến", "di": "Sổ văn bản đi", "mat": "Sổ văn bản mật",
               "sao": "Sổ bản sao"},
}


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
    """Check an uploaded file in a temp file; returns (what it is, its name, the temp path)."""
    if field is None or isinstance(field, str) or not getattr(field, "filename", None):
        return None
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


async def _store_upload(s: Services, upload: tuple[CheckedFile, str, Path]) -> dict[str, Any]:
    checked, name, path = upload
    try:
        with path.open("rb") as fh:
            stored = await blocking(s.store.content.put_stream, fh)
    finally:
        path.unlink(missing_ok=True)
    return {"sha256": stored.sha256, "size": stored.size, "name": name, "mime": checked.mime}


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


def _recipients(text: str) -> list[dict[str, str]]:
    return [{"OrganName": line.strip()} for line in text.splitlines() if line.strip()]


# -- văn bản đến ---------------------------------------------------------------------------

async def incoming_form(request: web.Request) -> web.Response:
    s = services(request)
    return render(request, "incoming.html", values={}, error=None, warnings=[],
                  auto=AUTO_FILLED["incoming"], **_options(s, request))


async def incoming_create(request: web.Request) -> web.Response:
    s = services(request)
    form = await form_of(request)
    values = clean(form, INCOMING_FIELDS)

    def again(
        error: str | None, warnings: list[str] | None = None, status: int = 422
    ) -> web.Response:
        return render(request, "incoming.html", status=status, values=values, error=error,
                      warnings=warnings or [], auto=AUTO_FILLED["incoming"], **_options(s, request))

    try:
        prepared = s.store.prepare_document("incoming", values)
    except LuutruError as exc:
        return again(str(exc))
    if not form.get("confirm_duplicate"):
        warnings = await blocking(queries.duplicates, s.store, prepared)
        if warnings:
            return again(None, warnings, status=409)
    try:
        uploads = await _uploads(s, form)
    except UploadError as exc:
        return again(text_of(exc, request.get(LANG, "vi")))
    content = [await _store_upload(s, u) for u in uploads]
    if content:
        values["Content"] = content
    try:
        res = await blocking(s.store.register_incoming, values, _actor(request))
    except LuutruError as exc:
        values.pop("Content", None)
        return again(str(exc))
    raise web.HTTPSeeOther(f"/documents/{res.record.id}?done=registered")


# -- văn bản đi ----------------------------------------------------------------------------

async def outgoing_form(request: web.Request) -> web.Response:
    s = services(request)
    return render(request, "outgoing.html", values={}, error=None,
                  auto=AUTO_FILLED["outgoing"], **_options(s, request))


async def outgoing_create(request: web.Request) -> web.Response:
    s = services(request)
    form = await form_of(request)
    values: dict[str, Any] = clean(form, OUTGOING_FIELDS)
    to_text = str(form.get("To") or "")

    def again(error: str) -> web.Response:
        return render(request, "outgoing.html", status=422, values={**values, "To": to_text},
                      error=error, auto=AUTO_FILLED["outgoing"], **_options(s, request))

    if to_text.strip():
        values["To"] = _recipients(to_text)
    try:
        s.store.prepare_document("outgoing", values)
    except LuutruError as exc:
        return again(str(exc))
    try:
        uploads = await _uploads(s, form)
    except UploadError as exc:
        return again(text_of(exc, request.get(LANG, "vi")))
    content = [await _store_upload(s, u) for u in uploads]
    if content:
        values["Content"] = content
    try:
        res = await blocking(s.store.draft_outgoing, values, _actor(request))
    except LuutruError as exc:
        values.pop("Content", None)
        return again(str(exc))
    raise web.HTTPSeeOther(f"/documents/{res.record.id}?done=drafted")


async def document_issue(request: web.Request) -> web.Response:
    s = services(request)
    doc_id = request.match_info["id"]
    rec = await _visible(request, doc_id)
    try:
        await blocking(s.store.issue_outgoing, rec.id, _actor(request))
    except LuutruError as exc:
        return await _document_page(request, rec.id, error=str(exc), status=409)
    raise web.HTTPSeeOther(f"/documents/{rec.id}?done=issued")


# -- the document page -----------------------------------------------------------------------

async def _visible(request: web.Request, doc_id: str) -> Record:
    s = services(request)
    try:
        rec = await blocking(s.store.get, "document", doc_id)
    except NotFoundError:
        raise web.HTTPNotFound() from None
    require_cleared(request, rec.data)
    return rec


def _field_rows(s: Services, data: dict[str, Any], lang: str) -> list[tuple[str, str]]:
    fmap = field_map("document")
    codes = s.store.codes
    rows = []
    for name in SHOWN_FIELDS:
        if name not in data:
            continue
        f = fmap[name]
        value = data[name]
        if f.code_list:
            with contextlib.suppress(LuutruError):
                value = codes[f.code_list].by_code(str(value)).label
        if name == "To":
            value = "; ".join(r.get("OrganName", "") for r in value)
        if name in _LABELS:
            value = _LABELS[name].get(str(value), value)
        if f.kind.value == "date":
            from .render import _vndate

            value = _vndate(value)
        rows.append((f.label_vi if lang == "vi" else name, str(value)))
    return rows


async def _document_page(request: web.Request, doc_id: str, error: str | None = None,
                         status: int = 200) -> web.Response:
    from sync.agent.status import sync_status

    s = services(request)
    rec = await _visible(request, doc_id)
    # Fail closed: a view that cannot be logged is not shown.
    await blocking(s.store.audit, "view", _actor(request), "document", rec.id, {"via": "web"})
    seal = await blocking(s.seal.check, rec)
    history, complete = await blocking(s.log_index.history, "document", rec.id)
    # Changes first: the reads (views, prints, downloads) are behind a toggle, so that a
    # much-read document's history stays readable.
    show_reads = request.query.get("reads") == "1"
    reads = sum(1 for h in history if h.kind.startswith("audit."))
    if not show_reads:
        history = [h for h in history if not h.kind.startswith("audit.")]
    cp = s.store.latest_checkpoint()
    sync = await blocking(sync_status, s.store.data_dir, cp[0] if cp else 0)
    preview = None
    if rec.data.get("Direction") == "outgoing" and rec.data.get("Status") == "draft":
        preview = await blocking(queries.preview_number, s.store, rec.data,
                                 s.store.clock.now().date())
    lang = request.get(LANG, "vi")
    return render(
        request, "document.html", status=status, doc=rec, data=rec.data,
        rows=_field_rows(s, rec.data, lang), seal=seal,
        confirmed=sync.confirmed(rec.log_index), sync=sync, history=history,
        show_reads=show_reads, reads=reads,
        history_complete=complete, preview=preview, error=error,
        done=request.query.get("done"),
        open_files=queries.open_files(s.store.reader(), me(request).cleared),
    )


async def document(request: web.Request) -> web.Response:
    return await _document_page(request, request.match_info["id"])


async def document_upload(request: web.Request) -> web.Response:
    s = services(request)
    rec = await _visible(request, request.match_info["id"])
    form = await form_of(request)
    try:
        uploads = await _uploads(s, form)
        if not uploads:
            raise UploadError("Chưa chọn tệp nào (no file was chosen).")
    except UploadError as exc:
        return await _document_page(request, rec.id, error=text_of(exc, request.get(LANG, "vi")),
                                    status=422)
    content = [await _store_upload(s, u) for u in uploads]
    try:
        await blocking(s.store.attach_content, rec.id, content, _actor(request))
    except LuutruError as exc:
        return await _document_page(request, rec.id, error=str(exc), status=409)
    raise web.HTTPSeeOther(f"/documents/{rec.id}?done=uploaded")


async def document_file(request: web.Request) -> web.Response:
    """Put the document into a hồ sơ: its own when it has none, else as a member (no copy)."""
    s = services(request)
    rec = await _visible(request, request.match_info["id"])
    form = await form_of(request)
    code = str(form.get("FileCode") or "").strip()
    try:
        if not code:
            raise ValidationError("Chọn một hồ sơ (choose a hồ sơ)", "FileCode")
        await visible_file(request, code)
        if rec.data.get("FileCode"):
            await blocking(s.store.add_to_file, rec.id, code, _actor(request))
        else:
            await blocking(s.store.update_document, rec.id, {"FileCode": code}, _actor(request),
                           rec.version)
    except LuutruError as exc:
        return await _document_page(request, rec.id, error=str(exc), status=409)
    raise web.HTTPSeeOther(f"/documents/{rec.id}?done=filed")


# -- content -------------------------------------------------------------------------------

async def content(request: web.Request) -> web.StreamResponse:
    rec = await _visible(request, request.match_info["id"])
    return await send_content(request, rec, request.match_info["sha256"])


HANDLERS = {
    "incoming_form": incoming_form,
    "incoming_create": incoming_create,
    "outgoing_form": outgoing_form,
    "outgoing_create": outgoing_create,
    "document": document,
    "document_issue": document_issue,
    "document_upload": document_upload,
    "document_file": document_file,
    "content": content,
}
