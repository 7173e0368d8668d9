"""The leader's inbox and direction, the handlers' work list and progress, the printed phiếu
giải quyết văn bản đến (appliance/handling.py does the work)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from appliance import handling
from appliance.accounts import Role
from appliance.errors import LuutruError
from appliance.outgoing import drafting

from .common import blocking, form_of, render, services
from .document_page import document_page, visible_document
from .reqkeys import me
from .status import today


async def document_direct(request: web.Request) -> web.Response:
    s = services(request)
    rec = await visible_document(request, request.match_info["id"])
    form = await form_of(request)
    support = [str(v) for v in (await request.post()).getall("Support", []) if v]
    values = {k: str(form.get(k) or "") for k in ("Instruction", "Lead", "Due", "info")}
    try:
        if values["info"] == "1":
            await blocking(handling.for_information, s.store, rec.id, values["Instruction"],
                           me(request).username)
        else:
            await blocking(handling.direct, s.store, rec.id, values["Instruction"],
                           values["Lead"], support, values["Due"] or None, me(request).username)
    except LuutruError as exc:
        return await document_page(request, rec.id, error=exc, status=422, values=values)
    raise web.HTTPSeeOther(f"/documents/{rec.id}?done=directed")


async def document_progress(request: web.Request) -> web.Response:
    s = services(request)
    rec = await visible_document(request, request.match_info["id"])
    form = await form_of(request)
    user = me(request)
    values = {k: str(form.get(k) or "") for k in ("Note", "Answer")}
    try:
        await blocking(handling.report_progress, s.store, rec.id, values["Note"],
                       user.username, form.get("done") == "1", values["Answer"] or None,
                       user.role in (Role.LEADER, Role.CLERK))
    except LuutruError as exc:
        return await document_page(request, rec.id, error=exc, status=422, values=values)
    raise web.HTTPSeeOther(f"/documents/{rec.id}?done=progress")


def _names(request: web.Request) -> dict[str, str]:
    return services(request).accounts.display_names()


async def inbox(request: web.Request) -> web.Response:
    """The leader's inbox: văn bản đến awaiting a direction, and everything overdue."""
    s = services(request)
    user = me(request)
    day = today(s)

    def load() -> dict[str, Any]:
        conn = s.store.reader()
        return {
            "awaiting": handling.awaiting_direction(conn, day, user.cleared),
            "overdue": handling.tasks(conn, day, overdue_only=True,
                                      include_classified=user.cleared),
            "open": handling.tasks(conn, day, include_classified=user.cleared),
            "drafts": drafting.awaiting(conn, user.username, user.cleared),
        }

    return render(request, "inbox.html", names=_names(request),
                  awaiting_days=handling.AWAITING_DAYS, **await blocking(load))


async def tasks(request: web.Request) -> web.Response:
    """Việc cần xử lý: the signed-in user's văn bản đến to handle, overdue first."""
    s = services(request)
    user = me(request)
    mine = await blocking(handling.tasks, s.store.reader(), today(s), user.username,
                          include_classified=user.cleared)
    drafts = await blocking(drafting.awaiting, s.store.reader(), user.username, user.cleared)
    return render(request, "tasks.html", tasks=mine, drafts=drafts, names=_names(request))


async def document_slip(request: web.Request) -> web.StreamResponse:
    """Phiếu giải quyết văn bản đến (PDF) for an office that works on paper."""
    from .slip import slip_pdf

    s = services(request)
    rec = await visible_document(request, request.match_info["id"])
    body = await blocking(slip_pdf, rec, s.store.config.org_name, _names(request),
                          s.store.clock.now())
    await blocking(s.store.audit, "print", me(request).username, "document", rec.id,
                   {"format": "phiếu giải quyết", "via": "web"})
    return web.Response(body=body, content_type="application/pdf", headers={
        "Content-Disposition":
            f'inline; filename="phieu-giai-quyet-{rec.data.get("ArrivalNumber", "")}.pdf"',
        "Cache-Control": "no-store",
    })


HANDLERS = {
    "document_direct": document_direct,
    "document_progress": document_progress,
    "inbox": inbox,
    "tasks": tasks,
    "document_slip": document_slip,
}
