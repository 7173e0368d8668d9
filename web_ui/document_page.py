"""The document page: its fields, content, seal, what the leader and the handlers did, the
corrections the clerk may make, and its history as readable changes."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from appliance import handling
from appliance.accounts import Role
from appliance.capture.intake import status as capture_status
from appliance.errors import LuutruError, NotFoundError
from appliance.kinds import Kind
from appliance.results import Record

from . import i18n, queries
from .common import blocking, render, require_cleared, services
from .fieldview import describe_change, field_rows, kind_label
from .history import HistoryItem
from .logbooks import logbook_context
from .messages import error_field, error_text
from .reqkeys import LANG, me
from .services import Services


async def visible_document(request: web.Request, doc_id: str) -> Record:
    """The document if the user may see it (a mật one is not found for roles without
    clearance)."""
    s = services(request)
    try:
        rec = await blocking(s.store.get, "document", doc_id)
    except NotFoundError:
        raise web.HTTPNotFound() from None
    require_cleared(request, rec.data)
    return rec


def history_rows(items: list[HistoryItem], s: Services, lang: str,
                 names: dict[str, str]) -> list[dict[str, Any]]:
    """Each history entry as people read it: when, who, what, and for a new version the
    changes it made and why."""
    gettext = i18n.translations(lang).gettext
    rows = []
    box = gettext("the box")
    machine = {"system": box, "capture": gettext("the box (recognition and signing)"),
               "edxml": gettext("the box (electronic exchange)"),
               "centre": gettext("the provincial centre")}
    before: dict[str, Any] | None = None
    for h in items:
        changes: list[str] = []
        if h.data is not None:
            if before is not None:
                changes = describe_change(before, h.data, s.store.codes, gettext)
            before = h.data
        elif h.kind in (Kind.FILE_ADD_DOCUMENT, Kind.FILE_REMOVE_DOCUMENT):
            changes = [f"{gettext('File')}: {(h.detail or {}).get('FileCode', '')}"]
        rows.append({
            "index": h.index, "at": h.at, "actor": names.get(h.actor) or machine.get(h.actor) or (
                box if h.actor.startswith("luutru ") else h.actor),
            "what": kind_label(h.kind, gettext),
            "version": h.version, "changes": changes, "note": h.note,
            "via": (h.detail or {}).get("via"), "format": (h.detail or {}).get("format"),
        })
    return rows


def _handling_view(s: Services, rec: Record, names: dict[str, str]) -> dict[str, Any] | None:
    h = rec.data.get("Handling")
    if not h:
        return None
    today = s.store.clock.now().date().isoformat()
    answer = None
    if h.get("answer"):
        try:
            answer = s.store.get("document", h["answer"])
        except NotFoundError:
            answer = None
    return {
        **h,
        "lead_name": names.get(h.get("lead"), h.get("lead")),
        "support_names": [names.get(u, u) for u in h.get("support", [])],
        "overdue": h.get("status") != "done" and bool(h.get("due")) and h["due"] < today,
        "answer_doc": answer,
        "progress_names": [names.get(p["by"], p["by"]) for p in h.get("progress", [])],
    }


def _actions(request: web.Request, s: Services, rec: Record) -> dict[str, Any]:
    """Which forms the page offers this user for this document."""
    from appliance import writes

    user = me(request)
    d = rec.data
    correctable = True
    try:
        writes.check_correctable(s.store.reader(), rec)
    except LuutruError:
        correctable = False
    incoming_registered = d.get("Direction") == "incoming" and d.get("Status") == "registered"
    h = d.get("Handling") or {}
    open_task = incoming_registered and correctable and bool(h) and h.get("status") != "done"
    may_report = open_task and (
        handling.handler_of(rec, user.username) or user.role in (Role.LEADER, Role.CLERK))
    users = []
    if user.role is Role.LEADER and incoming_registered and correctable:
        users = [(u.username, u.full_name or u.username) for u in s.accounts.list_users()
                 if not u.disabled and u.role is not Role.TECHNICIAN
                 and (u.cleared or d.get("Mode") != "03")]
    answers: list[tuple[str, str]] = []
    if may_report:
        answers = queries.recent_outgoing(s.store.reader(), user.cleared)
    from appliance.documents import signed_issue

    return {"correctable": correctable and user.role is Role.CLERK,
            "signed": signed_issue(rec),  # recalled or corrected, never cancelled nor unfiled
            "may_direct": bool(users), "users": users, "may_report": may_report,
            "answers": answers}


def stored_versions(s: Any, data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Where each content version's bytes are (appliance/versions.py) and, for a PDF whose
    bytes are here, each page's size: what the document page shows of a scan."""
    import contextlib

    from appliance.capacity import page_sizes
    from appliance.versions import placement

    content = list(data.get("Content") or [])
    p = placement(content)
    out: dict[str, dict[str, Any]] = {}
    for c in content:
        sha = str(c["sha256"])
        where = ("released" if sha in p.released else "box" if sha in p.box_only
                 else "within" if sha in p.within else "own")
        entry: dict[str, Any] = {"where": where, "pages": []}
        if sha in p.within:
            entry["container"] = p.within[sha][0]
        pdf = c.get("mime") == "application/pdf"
        if where != "released" and pdf and s.store.content.exists(sha):
            with contextlib.suppress(Exception):
                entry["pages"] = page_sizes(s.store.content.read(sha))
        out[sha] = entry
    return out


async def document_page(request: web.Request, doc_id: str, error: Any = None,
                        status: int = 200, values: dict[str, Any] | None = None,
                        extra: dict[str, Any] | None = None) -> web.Response:
    """The page; ``error`` is a message or a library error to show (its field highlighted);
    ``extra``: more for the template (a form of the postal and kept-copy section, kept)."""
    from sync.agent.status import sync_status

    s = services(request)
    rec = await visible_document(request, doc_id)
    lang = request.get(LANG, "vi")
    # Fail closed: a view that cannot be logged is not shown.
    await blocking(s.store.audit, "view", me(request).username, "document", rec.id,
                   {"via": "web"})
    seal = await blocking(s.seal.check, rec)
    history, complete = await blocking(s.log_index.history, "document", rec.id)
    # Changes first: the reads (views, prints, downloads) are behind a toggle, so that a
    # much-read document's history stays readable.
    show_reads = request.query.get("reads") == "1"
    reads = sum(1 for h in history if h.kind.startswith("audit."))
    names = await blocking(s.accounts.display_names)
    rows = history_rows(history, s, lang, names)
    if not show_reads:
        rows = [r for h, r in zip(history, rows, strict=True) if not h.kind.startswith("audit.")]
    cp = s.store.latest_checkpoint()
    sync = await blocking(sync_status, s.store.data_dir, cp[0] if cp else 0)
    from .outgoing_page import outgoing_view
    field = None
    if isinstance(error, LuutruError):
        field = error_field(error)
        error = error_text(error, lang)
    gettext = i18n.translations(lang).gettext
    return render(
        request, "document.html", status=status, doc=rec, data=rec.data,
        stored=await blocking(stored_versions, s, rec.data),
        rows=field_rows(rec.data, s.store.codes, gettext), seal=seal,
        confirmed=sync.confirmed(rec.log_index), sync=sync, history=rows,
        show_reads=show_reads, reads=reads, history_complete=complete,
        error=error, error_field=field, values=values or {},
        done=request.query.get("done"),
        open_files=queries.open_files(s.store.reader(), me(request).cleared,
                                      direction=rec.data.get("Direction"),
                                      year=rec.data.get("Year")),
        capture=await blocking(capture_status, s.store.data_dir, rec.id),
        in_files=await blocking(queries.files_holding, s.store.reader(), rec.id,
                                rec.data.get("FileCode")),
        handling=await blocking(_handling_view, s, rec, names),
        actions=await blocking(_actions, request, s, rec),
        outgoing=await blocking(outgoing_view, request, s, rec),
        **await blocking(logbook_context, s, rec), **(extra or {}),
    )
