"""/api/v1 for the registers kept beside the documents and for the Danh mục hồ sơ: postal
sendings, uses of kept copies and their return, the year's heading structure and its approval.
Thin adapters over appliance/postal.py, copyuse.py and fileplan.py, as api.py's handlers are."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from appliance import copyuse, fileplan, postal
from appliance.errors import NotFoundError, ValidationError

from .api import _actor, _visible, json_body
from .common import audit_list, blocking, services
from .queries import danh_muc
from .reqkeys import me


def _year(request: web.Request) -> int:
    try:
        year = int(request.match_info["year"])
    except ValueError:
        raise web.HTTPNotFound() from None
    if not 1900 <= year <= 2200:
        raise web.HTTPNotFound()
    return year


async def api_postal(request: web.Request) -> web.Response:
    """Record that an issued văn bản đi was handed to the post."""
    s = services(request)
    rec = await _visible(request)
    body = await json_body(request)
    _only(body, ("sent_on", "addressees", "envelopes", "note"))
    sent = await blocking(postal.send, s.store, rec.id, body, _actor(request))
    return web.json_response({"sending": sent.to_json()}, status=201)


async def api_postal_list(request: web.Request) -> web.Response:
    s = services(request)
    rec = await _visible(request)
    items = await blocking(postal.sendings_of, s.store.reader(), rec.id)
    return web.json_response({"items": [i.to_json() for i in items]})


async def api_copy_use(request: web.Request) -> web.Response:
    """Record that the kept copy of a văn bản đi was lent for use."""
    s = services(request)
    rec = await _visible(request)
    body = await json_body(request)
    _only(body, ("used_on", "user_name", "approved_by", "note"))
    use = await blocking(copyuse.lend, s.store, rec.id, body, _actor(request))
    return web.json_response({"use": use.to_json()}, status=201)


async def api_copy_uses(request: web.Request) -> web.Response:
    s = services(request)
    rec = await _visible(request)
    items = await blocking(copyuse.uses_of, s.store.reader(), rec.id)
    return web.json_response({"items": [i.to_json() for i in items]})


async def api_copy_return(request: web.Request) -> web.Response:
    """Record that a lent kept copy came back."""
    s = services(request)
    rec = await _visible(request)
    body = await json_body(request)
    _only(body, ("returned_on", "note"))
    try:
        use = await blocking(copyuse.give_back, s.store, rec.id, request.match_info["use_id"],
                             body, _actor(request))
    except NotFoundError:
        raise NotFoundError("no such use of the kept copy") from None
    return web.json_response({"use": use.to_json()})


def _only(body: dict[str, Any], names: tuple[str, ...]) -> None:
    extra = sorted(set(body) - set(names))
    if extra:
        raise ValidationError(f"unknown field '{extra[0]}'", extra[0])


async def api_fileplan(request: web.Request) -> web.Response:
    """The year's Danh mục hồ sơ: its heading structure, its approval and its hồ sơ."""
    s = services(request)
    year = _year(request)

    def load() -> dict[str, Any]:
        with s.store.snapshot() as conn:
            st = fileplan.structure(conn, year)
            ap = fileplan.approval(conn, year)
            files = danh_muc(conn, year, me(request).cleared)
            changed = fileplan.changed_since(conn, year, ap)
        return {"year": year, "headings": st.to_json() if st else None,
                "approval": ap.to_json() if ap else None, "changed_since_approval": changed,
                "files": files}

    out = await blocking(load)
    await audit_list(request, "files", [str(f["FileCode"]) for f in out["files"]], year=year,
                     via="api")
    return web.json_response(out)


async def api_fileplan_headings(request: web.Request) -> web.Response:
    """A new version of the year's heading structure."""
    s = services(request)
    year = _year(request)
    body = await json_body(request)
    _only(body, ("headings",))
    headings = body.get("headings")
    if not isinstance(headings, list):
        raise ValidationError("headings must be a list of main headings", "headings")
    st = await blocking(fileplan.set_headings, s.store, year, headings, _actor(request))
    return web.json_response(st.to_json(), status=201)


async def api_fileplan_approve(request: web.Request) -> web.Response:
    """The head approves the year's Danh mục hồ sơ as it stands."""
    s = services(request)
    year = _year(request)
    body = await json_body(request)
    _only(body, ("decision", "approved_on", "position"))
    user = me(request)
    for name in ("decision", "approved_on", "position"):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise ValidationError(f"{name} must be text", name)
    approver = {"username": user.username, "full_name": user.full_name or user.username,
                "position": str(body.get("position") or "")}
    ap = await blocking(fileplan.approve, s.store, year, str(body.get("decision") or ""),
                        str(body.get("approved_on") or s.store.clock.now().date().isoformat()),
                        approver, _actor(request))
    return web.json_response(ap.to_json(), status=201)


HANDLERS = {
    "api_postal": api_postal,
    "api_postal_list": api_postal_list,
    "api_copy_use": api_copy_use,
    "api_copy_uses": api_copy_uses,
    "api_copy_return": api_copy_return,
    "api_fileplan": api_fileplan,
    "api_fileplan_headings": api_fileplan_headings,
    "api_fileplan_approve": api_fileplan_approve,
}
