"""/api/v1 for the registry's daily work: corrections with a reason, cancellation, removing an
attachment, the leader's direction, handlers' progress and their work list.

A refused change answers 409 (closed, frozen, cancelled) or 422 (invalid), with a message in
the request's language and the field's name as people know it (web_ui/middleware.py).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from appliance import handling
from appliance.accounts import Role
from appliance.errors import ValidationError
from appliance.records import require

from .api import doc_json, json_body, qenum
from .common import blocking, services
from .document_page import visible_document
from .reqkeys import me
from .status import today


def _text(body: dict[str, Any], name: str, field: str) -> str:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise ValidationError(f"{name} must be text", field, msgid="%(label)s must be text.")
    return value or ""


async def api_document_update(request: web.Request) -> web.Response:
    """PATCH {"changes": {...}, "reason": "…"} -> 200, the new version."""
    s = services(request)
    rec = await visible_document(request, request.match_info["id"])
    body = await json_body(request)
    changes = body.get("changes")
    if not isinstance(changes, dict) or not changes:
        raise ValidationError("changes must be an object of fields", "changes",
                              msgid="Nothing was changed: correct a field, then save.")
    reason = _text(body, "reason", "Reason")
    require({"Reason": reason.strip()}, "Reason")
    new = await blocking(s.store.update_document, rec.id, changes, me(request).username,
                         body.get("version") if isinstance(body.get("version"), int) else None,
                         reason)
    return web.json_response({"document": doc_json(new)})


async def api_cancel(request: web.Request) -> web.Response:
    s = services(request)
    rec = await visible_document(request, request.match_info["id"])
    body = await json_body(request)
    new = await blocking(s.store.cancel_document, rec.id, _text(body, "reason", "Reason"),
                         me(request).username)
    return web.json_response({"document": doc_json(new)})


async def api_content_remove(request: web.Request) -> web.Response:
    s = services(request)
    rec = await visible_document(request, request.match_info["id"])
    new = await blocking(s.store.remove_content, rec.id, request.match_info["sha256"],
                         request.query.get("reason", ""), me(request).username)
    return web.json_response({"document": doc_json(new)})


async def api_remove_from_file(request: web.Request) -> web.Response:
    """DELETE …/file/{code}?reason=…: out of that open hồ sơ (its own, or one it was added to)."""
    s = services(request)
    rec = await visible_document(request, request.match_info["id"])
    new = await blocking(s.store.remove_from_file, rec.id, request.match_info["code"],
                         request.query.get("reason", ""), me(request).username)
    return web.json_response({"document": doc_json(new)})


async def api_direction(request: web.Request) -> web.Response:
    """{"direction": "…", "lead": "user", "support": ["user"], "due": "YYYY-MM-DD"}, or
    {"direction": "…", "for_information": true} (để biết: no handler, no deadline)."""
    s = services(request)
    rec = await visible_document(request, request.match_info["id"])
    body = await json_body(request)
    if body.get("for_information") is True:
        new = await blocking(handling.for_information, s.store, rec.id,
                             _text(body, "direction", "Instruction"), me(request).username)
        return web.json_response({"document": doc_json(new)})
    support = body.get("support") or []
    if not isinstance(support, list) or not all(isinstance(u, str) for u in support):
        raise ValidationError("support is a list of user names", "Support",
                              msgid="%(label)s must be a list of user names.")
    new = await blocking(handling.direct, s.store, rec.id, _text(body, "direction", "Instruction"),
                         _text(body, "lead", "Lead"), support,
                         _text(body, "due", "Due") or None, me(request).username)
    return web.json_response({"document": doc_json(new)})


async def api_progress(request: web.Request) -> web.Response:
    """{"note": "…", "done": true, "answer": "<id of a văn bản đi>"}."""
    s = services(request)
    rec = await visible_document(request, request.match_info["id"])
    body = await json_body(request)
    user = me(request)
    new = await blocking(handling.report_progress, s.store, rec.id,
                         _text(body, "note", "Note"), user.username, body.get("done") is True,
                         _text(body, "answer", "Answer") or None,
                         user.role in (Role.LEADER, Role.CLERK))
    return web.json_response({"document": doc_json(new)})


async def api_tasks(request: web.Request) -> web.Response:
    """GET ?mine=1&overdue=1: văn bản đến to handle (everyone's, or the caller's own)."""
    s = services(request)
    user = me(request)
    mine = qenum(request, "mine", ("0", "1")) == "1"
    overdue = qenum(request, "overdue", ("0", "1")) == "1"
    got = await blocking(handling.tasks, s.store.reader(), today(s),
                         user.username if mine else None, overdue, False, user.cleared)
    return web.json_response({"items": [t.to_json() for t in got]})


HANDLERS = {
    "api_document_update": api_document_update,
    "api_cancel": api_cancel,
    "api_content_remove": api_content_remove,
    "api_remove_from_file": api_remove_from_file,
    "api_direction": api_direction,
    "api_progress": api_progress,
    "api_tasks": api_tasks,
}
