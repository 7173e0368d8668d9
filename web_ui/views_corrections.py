"""Correcting a registered document (each field, with a reason), cancelling a registration or
a draft (huỷ), taking a wrong attachment off: each a log entry the history shows."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from appliance.errors import LuutruError
from appliance.fields import field_map

from .common import blocking, form_of, render, services
from .document_page import document_page, visible_document
from .fieldview import field_rows
from .messages import error_field, error_text
from .reqkeys import LANG, me

# What the clerk may correct on the form (numbers given by the registry are not here).
EDITABLE = {
    "incoming": ("TypeName", "CodeNumber", "CodeNotation", "IssuedDate", "OrganName",
                 "Subject", "ArrivalDate", "PageAmount", "SignerPosition", "SignerFullName",
                 "Priority", "ToPlaces", "DueDate", "Mode", "FileCode", "Keyword",
                 "Description"),
    "outgoing": ("TypeName", "Subject", "PageAmount", "SignerPosition", "SignerFullName",
                 "IssuedAmount", "Priority", "DueDate", "Mode", "FileCode", "Keyword",
                 "Description"),
}
DRAFT_ONLY = ("CodeNotation",)  # our own ký hiệu, until the document is issued


def _fields(data: dict[str, Any]) -> tuple[str, ...]:
    names = EDITABLE[str(data.get("Direction"))]
    if data.get("Direction") == "outgoing" and data.get("Status") == "draft":
        names = (*names, *DRAFT_ONLY)
    return names


async def document_edit_form(request: web.Request, error: Any = None,
                             values: dict[str, Any] | None = None,
                             status: int = 200) -> web.Response:
    from . import i18n, queries

    s = services(request)
    rec = await visible_document(request, request.match_info["id"])
    lang = request.get(LANG, "vi")
    current = {k: v for k, v in rec.data.items() if isinstance(v, str | int)}
    for k in ("IssuedDate", "ArrivalDate", "DueDate"):
        if isinstance(current.get(k), str):
            y, m, d = str(current[k]).split("-")
            current[k] = f"{d}/{m}/{y}"
    field = None
    if isinstance(error, LuutruError):
        field, error = error_field(error), error_text(error, lang)
    codes = s.store.codes
    fmap = field_map("document")
    return render(
        request, "document_edit.html", status=status, doc=rec, data=rec.data,
        values={**current, **(values or {})}, names=_fields(rec.data), fmap=fmap,
        error=error, error_field=field,
        rows=field_rows(rec.data, codes, i18n.translations(lang).gettext),
        priorities=[(i.code, i.label) for i in codes["priority"].items],
        modes=[(i.code, i.label) for i in codes["mode"].items],
        types=[i.label for i in codes["typeName"].items],
        open_files=queries.open_files(s.store.reader(), me(request).cleared,
                                      year=rec.data.get("Year")),
    )


async def document_edit(request: web.Request) -> web.Response:
    return await document_edit_form(request)


async def document_update(request: web.Request) -> web.Response:
    s = services(request)
    rec = await visible_document(request, request.match_info["id"])
    form = await form_of(request)
    names = _fields(rec.data)
    posted = {k: str(form.get(k) or "").strip() for k in names}
    changes: dict[str, Any] = {}
    for k, v in posted.items():
        old = rec.data.get(k)
        shown = old
        if k in ("IssuedDate", "ArrivalDate", "DueDate") and isinstance(old, str):
            y, m, d = old.split("-")
            shown = f"{d}/{m}/{y}"
        if v != ("" if shown is None else str(shown)):
            changes[k] = v
    reason = str(form.get("Reason") or "")
    values = {**posted, "Reason": reason}
    try:
        if not changes:
            raise _nothing()
        if not reason.strip():
            from appliance.records import require

            require({}, "Reason")
        await blocking(s.store.update_document, rec.id, changes, me(request).username,
                       rec.version, reason)
    except LuutruError as exc:
        return await document_edit_form(request, exc, values, status=422)
    raise web.HTTPSeeOther(f"/documents/{rec.id}?done=corrected")


def _nothing() -> LuutruError:
    from appliance.errors import ValidationError

    return ValidationError("nothing was changed", None,
                           msgid="Nothing was changed: correct a field, then save.")


async def document_cancel(request: web.Request) -> web.Response:
    s = services(request)
    rec = await visible_document(request, request.match_info["id"])
    form = await form_of(request)
    reason = str(form.get("Reason") or "")
    try:
        await blocking(s.store.cancel_document, rec.id, reason, me(request).username)
    except LuutruError as exc:
        return await document_page(request, rec.id, error=exc, status=_status(exc),
                                   values={"CancelReason": reason})
    raise web.HTTPSeeOther(f"/documents/{rec.id}?done=cancelled")


async def document_content_remove(request: web.Request) -> web.Response:
    s = services(request)
    rec = await visible_document(request, request.match_info["id"])
    form = await form_of(request)
    reason = str(form.get("Reason") or "")
    try:
        await blocking(s.store.remove_content, rec.id, request.match_info["sha256"], reason,
                       me(request).username)
    except LuutruError as exc:
        return await document_page(request, rec.id, error=exc, status=_status(exc))
    raise web.HTTPSeeOther(f"/documents/{rec.id}?done=removed")


async def document_unfile(request: web.Request) -> web.Response:
    """Take the document out of one of its open hồ sơ, with a reason."""
    s = services(request)
    rec = await visible_document(request, request.match_info["id"])
    form = await form_of(request)
    code, reason = str(form.get("FileCode") or ""), str(form.get("Reason") or "")
    try:
        await blocking(s.store.remove_from_file, rec.id, code, reason, me(request).username)
    except LuutruError as exc:
        return await document_page(request, rec.id, error=exc, status=_status(exc),
                                   values={"FileCode": code})
    raise web.HTTPSeeOther(f"/documents/{rec.id}?done=unfiled")


async def document_capture(request: web.Request) -> web.Response:
    """Where the document's scans stand (OCR, signing), for the page to follow without
    reloading; a status, not the record, so it is not logged as a view."""
    from appliance.capture.intake import status as capture_status

    s = services(request)
    rec = await visible_document(request, request.match_info["id"])
    got = await blocking(capture_status, s.store.data_dir, rec.id)
    return web.json_response({"step": got.step, "retrying": got.retrying})


def _status(exc: LuutruError) -> int:
    from appliance.errors import ConflictError, ValidationError

    if isinstance(exc, ValidationError):
        return 422
    return 409 if isinstance(exc, ConflictError) else 400


HANDLERS = {
    "document_edit": document_edit,
    "document_update": document_update,
    "document_cancel": document_cancel,
    "document_content_remove": document_content_remove,
    "document_unfile": document_unfile,
    "document_capture": document_capture,
}
