"""The electronic inbox (văn bản điện tử đến): the list with each package's verdict, one
package's envelope and signature report, and the clerk's two decisions — register (one click,
every field prefilled, the signed PDF attached as received) or return with a reason. Pages
and the JSON API, each a thin adapter over ``appliance.edxml.intake``."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from aiohttp import web

from appliance.edxml import answers, inbox, intake
from appliance.edxml.errors import DecisionError
from appliance.edxml.signing import open_signer
from appliance.edxml.status import CODES as STATUS_CODES
from appliance.errors import LuutruError, NotFoundError, ValidationError

from . import queries
from .common import blocking, form_of, render, services
from .errors import BadRequestError
from .reqkeys import me

_SHA = re.compile(r"^[0-9a-f]{64}$")
STATUS_LABELS = {"received": "Chờ xử lý", "registered": "Đã vào sổ", "returned": "Đã trả lại"}
# The stored HTML report quotes a stranger's text (escaped); it needs its own inline style and
# nothing else: no script, no fetches, no frames.
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; sandbox; base-uri 'none'"


def _actor(request: web.Request) -> str:
    return str(me(request).username)


def _item(request: web.Request) -> inbox.InboxItem:
    s = services(request)
    item = inbox.get_item(s.store.reader(), request.match_info["id"])
    if item is None:
        raise web.HTTPNotFound()
    return item


def _report(request: web.Request, item: inbox.InboxItem) -> dict[str, Any]:
    if not item.report_json:
        return {}
    return intake.load_report(services(request).store, item)


def _register(request: web.Request, item_id: str, changes: dict[str, Any],
              accept_unverified: bool) -> Any:
    s = services(request)
    with open_signer(s.store.data_dir) as key:
        return intake.register(s.store, item_id, _actor(request), changes,
                               accept_unverified=accept_unverified, key=key)


def _return(request: web.Request, item_id: str, reason: str) -> inbox.InboxItem:
    s = services(request)
    with open_signer(s.store.data_dir) as key:
        return intake.return_package(s.store, item_id, reason, _actor(request), key=key)


# -- pages ---------------------------------------------------------------------------------


async def inbox_page(request: web.Request) -> web.Response:
    s = services(request)
    show = request.query.get("show", "received")
    status = None if show == "all" else "received"
    items = await blocking(inbox.list_items, s.store.reader(), status)
    refused = await blocking(inbox.list_refused, s.store.reader())
    unmatched = await blocking(answers.list_answers, s.store.reader(), True)
    return render(request, "inbox_electronic.html", items=items, show=show,
                  status_labels=STATUS_LABELS, done=request.query.get("done"),
                  refused=refused, unmatched=[a.to_json() for a in unmatched])


async def _item_page(request: web.Request, item: inbox.InboxItem, error: str | None = None,
                     status: int = 200, values: dict[str, str] | None = None) -> web.Response:
    s = services(request)
    report = await blocking(_report, request, item)
    fields = await blocking(intake.document_fields, s.store, item)
    statuses = await blocking(inbox.statuses_of, s.store.reader(), item.id)
    return render(
        request, "inbox_item.html", status=status, item=item, s=item.summary, report=report,
        fields=fields, statuses=statuses, status_labels=STATUS_LABELS, error=error,
        status_codes=STATUS_CODES,
        values=values or {}, open_files=queries.open_files(s.store.reader(), me(request).cleared),
    )


async def inbox_item_page(request: web.Request) -> web.Response:
    return await _item_page(request, _item(request))


async def inbox_register(request: web.Request) -> web.Response:
    item = _item(request)
    form = await form_of(request)
    changes = {}
    code = str(form.get("FileCode") or "").strip()
    if code:
        changes["FileCode"] = code
    try:
        res = await blocking(_register, request, item.id, changes,
                             form.get("accept_unverified") == "1")
    except LuutruError as exc:
        return await _item_page(request, item, str(exc), 409, {"FileCode": code})
    raise web.HTTPSeeOther(f"/documents/{res.record.id}?done=registered")


async def inbox_return(request: web.Request) -> web.Response:
    item = _item(request)
    form = await form_of(request)
    reason = str(form.get("reason") or "")
    try:
        await blocking(_return, request, item.id, reason)
    except DecisionError as exc:
        status = 422 if not reason.strip() else 409
        return await _item_page(request, item, str(exc), status, {"reason": reason})
    except LuutruError as exc:
        return await _item_page(request, item, str(exc), 409, {"reason": reason})
    raise web.HTTPSeeOther("/inbox/electronic?done=returned")


async def inbox_file(request: web.Request) -> web.StreamResponse:
    """An attachment, the package or the report of an inbox item (before registration)."""
    s = services(request)
    item = _item(request)
    sha = request.match_info["sha256"]
    known = {a["sha256"]: (a["name"], a["mime"]) for a in item.attachments}
    known[item.package_sha256] = (intake.PACKAGE_NAME, "application/xml")
    if item.report_json:
        known[item.report_json] = (intake.REPORT_JSON, "application/json")
    if item.report_html:
        known[item.report_html] = (intake.REPORT_HTML, "text/html")
    if not _SHA.match(sha) or sha not in known:
        raise web.HTTPNotFound()
    name, mime = known[sha]
    await blocking(s.store.audit, "view", _actor(request), "edxml", item.id,
                   {"sha256": sha, "via": "web"})
    path = s.store.content.path(sha)
    if not path.is_file():
        raise NotFoundError(f"content {sha} is missing from the content store")
    download = request.query.get("download") == "1" or mime not in (
        "application/pdf", "text/html", "application/json")
    headers = {
        "Content-Type": f"{mime}; charset=utf-8" if mime.startswith("text/") else mime,
        "Content-Disposition": f"{'attachment' if download else 'inline'}; "
                               f"filename*=UTF-8''{quote(name)}",
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    }
    if mime == "text/html":
        headers["Content-Security-Policy"] = REPORT_CSP
    return web.FileResponse(path, headers=headers)


# -- JSON API ------------------------------------------------------------------------------


async def api_inbox(request: web.Request) -> web.Response:
    s = services(request)
    status = request.query.get("status")
    if status not in (None, "received", "registered", "returned"):
        raise BadRequestError("status is one of received, registered, returned")
    items = await blocking(inbox.list_items, s.store.reader(), status)
    refused = await blocking(inbox.list_refused, s.store.reader())
    unmatched = await blocking(answers.list_answers, s.store.reader(), True)
    return web.json_response({
        "items": [i.to_json() for i in items],
        "refused": [{"id": r.id, "refused_at": r.refused_at, "source": r.source,
                     "package_sha256": r.package_sha256, "package_size": r.package_size,
                     "organ_id": r.organ_id, "organ_name": r.organ_name,
                     "document_id": r.document_ref, "code_number": r.code_number,
                     "code_notation": r.code_notation, "reason": r.reason,
                     "status_02": r.status_name, "status_02_sent_at": r.status_sent_at}
                    for r in refused],
        "unmatched_status": [a.to_json() for a in unmatched]})


async def api_inbox_register(request: web.Request) -> web.Response:
    from .api import doc_json, json_body

    item = _item(request)
    body = await json_body(request) if request.can_read_body else {}
    fields = body.get("fields") or {}
    if not isinstance(fields, dict):
        raise ValidationError("fields must be an object of document fields", "fields")
    try:
        res = await blocking(_register, request, item.id, fields,
                             bool(body.get("accept_unverified", False)))
    except DecisionError as exc:
        return web.json_response({"error": {"code": "conflict", "message": str(exc)}},
                                 status=409)
    return web.json_response(
        {"document": doc_json(res.record), "warnings": list(res.warnings)}, status=201)


async def api_inbox_return(request: web.Request) -> web.Response:
    from .api import json_body

    item = _item(request)
    body = await json_body(request)
    reason = body.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationError("reason (lý do trả lại) is required", "reason")
    try:
        out = await blocking(_return, request, item.id, reason)
    except DecisionError as exc:
        return web.json_response({"error": {"code": "conflict", "message": str(exc)}},
                                 status=409)
    return web.json_response(out.to_json())


HANDLERS = {
    "inbox_electronic": inbox_page,
    "inbox_electronic_item": inbox_item_page,
    "inbox_electronic_register": inbox_register,
    "inbox_electronic_return": inbox_return,
    "inbox_electronic_file": inbox_file,
    "api_inbox_electronic": api_inbox,
    "api_inbox_electronic_register": api_inbox_register,
    "api_inbox_electronic_return": api_inbox_return,
}
