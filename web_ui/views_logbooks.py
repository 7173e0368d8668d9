"""On the page of an issued văn bản đi: its postal sendings (Sổ gửi văn bản đi bưu điện) and the
uses of its kept copy (Sổ sử dụng bản lưu), each recorded from a small form. A refused form is
shown again with the clerk's values kept, the field at fault marked and the reason."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from appliance import copyuse, postal
from appliance.errors import LuutruError, NotFoundError
from appliance.results import Record

from .common import blocking, form_of, services
from .document_page import document_page, visible_document
from .middleware import status_of
from .reqkeys import me

POSTAL_FIELDS = ("sent_on", "addressees", "envelopes", "note")
USE_FIELDS = ("used_on", "user_name", "approved_by", "note")
RETURN_FIELDS = ("returned_on", "note")


async def _again(request: web.Request, doc_id: str, form: str, values: dict[str, Any],
                 exc: LuutruError, status: int) -> web.Response:
    """The document page again, the form's values kept and its field at fault marked."""
    return await document_page(request, doc_id, error=exc, status=status,
                               extra={"lb_form": form, "lb_values": values})


def _values(form: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {n: str(form.get(n) or "").strip() for n in names}


async def _visible(request: web.Request) -> Record:
    return await visible_document(request, request.match_info["id"])


async def document_postal(request: web.Request) -> web.Response:
    s = services(request)
    rec = await _visible(request)
    values = _values(await form_of(request), POSTAL_FIELDS)
    try:
        await blocking(postal.send, s.store, rec.id, values, me(request).username)
    except LuutruError as exc:
        return await _again(request, rec.id, "postal", values, exc, status_of(exc))
    raise web.HTTPSeeOther(f"/documents/{rec.id}?done=posted#logbooks")


async def document_copy_use(request: web.Request) -> web.Response:
    s = services(request)
    rec = await _visible(request)
    values = _values(await form_of(request), USE_FIELDS)
    try:
        await blocking(copyuse.lend, s.store, rec.id, values, me(request).username)
    except LuutruError as exc:
        return await _again(request, rec.id, "use", values, exc, status_of(exc))
    raise web.HTTPSeeOther(f"/documents/{rec.id}?done=lent#logbooks")


async def document_copy_return(request: web.Request) -> web.Response:
    s = services(request)
    rec = await _visible(request)
    values = _values(await form_of(request), RETURN_FIELDS)
    use_id = request.match_info["use_id"]
    try:
        await blocking(copyuse.give_back, s.store, rec.id, use_id, values,
                       me(request).username)
    except NotFoundError:
        raise web.HTTPNotFound() from None
    except LuutruError as exc:
        values["use_id"] = use_id
        return await _again(request, rec.id, "return", values, exc, status_of(exc))
    raise web.HTTPSeeOther(f"/documents/{rec.id}?done=returned#logbooks")


HANDLERS = {
    "document_postal": document_postal,
    "document_copy_use": document_copy_use,
    "document_copy_return": document_copy_return,
}
