"""The JSON API under /api/v1: the same operations as the pages, for scripts (token auth).

Every handler is a thin adapter over the same library calls as the pages; errors are
``{"error": {"code", "message", "field"?}}`` with the status of ``middleware.status_of``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from aiohttp import web

from appliance import records
from appliance import registers as regs
from appliance.accounts import ROLE_LABELS_VI
from appliance.errors import NotFoundError, ValidationError
from appliance.store import Record

from . import permissions, queries
from .common import audit_list, blocking, require_cleared, services, visible_file
from .content import send_content
from .errors import BadRequestError, UploadError
from .messages import error_text
from .openapi import openapi_document
from .params import register_params, resolved_filters, search_filters
from .register_print import print_register
from .reqkeys import LANG, me
from .status import device_info, status_summary
from .uploads import check_file_isolated

# Fields the system sets; a client that sends them is told so rather than silently ignored.
SYSTEM_FIELDS = frozenset({
    "Content", "Direction", "Status", "Series", "Year", "ArrivalNumber", "DocOrdinal", "DocId",
})
MAX_JSON = permissions.JSON_BODY
# A document is 3 levels deep (its recipients' list of objects); 32 leaves room and keeps
# every later step (checks, CBOR) far from Python's recursion limit.
MAX_DEPTH = 32


def _has_surrogates(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_surrogates(k) or _has_surrogates(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_surrogates(v) for v in value)
    return False


async def json_body(request: web.Request) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > MAX_JSON:
        raise ValidationError("the JSON body is too large (max 256 KiB)")
    raw = await request.read()
    if len(raw) > MAX_JSON:
        raise ValidationError("the JSON body is too large (max 256 KiB)")
    too_deep = BadRequestError(
        f"Dữ liệu JSON lồng nhau quá sâu, tối đa {MAX_DEPTH} cấp (the JSON body is nested "
        f"too deeply: at most {MAX_DEPTH} levels)."
    )
    try:
        value = json.loads(raw.decode("utf-8") if raw else "{}", parse_constant=_no_constant)
    except RecursionError:
        raise too_deep from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError(f"the body is not valid JSON: {exc}") from None
    if _depth_exceeds(value, MAX_DEPTH):  # before anything walks it recursively
        raise too_deep
    if not isinstance(value, dict):
        raise ValidationError("the body must be a JSON object")
    if _has_surrogates(value):
        raise ValidationError("the body contains text that is not valid Unicode")
    return value


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether lists and objects nest deeper than ``limit`` (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _fields(body: dict[str, Any]) -> dict[str, Any]:
    bad = sorted(SYSTEM_FIELDS.intersection(body))
    if bad:
        raise ValidationError(f"{', '.join(bad)} is set by the system", bad[0])
    return body


def doc_json(rec: Record) -> dict[str, Any]:
    return {"id": rec.id, "version": rec.version, "log_index": rec.log_index, "data": rec.data}


def qint(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    """An integer query parameter; out of range or not a number is a 422, never a guess."""
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        n = int(raw)
    except ValueError:
        raise ValidationError(f"{name} must be a whole number", name) from None
    if not lo <= n <= hi:
        raise ValidationError(f"{name} must be between {lo} and {hi}", name)
    return n


def qenum(request: web.Request, name: str, choices: tuple[str, ...]) -> str | None:
    raw = request.query.get(name)
    if raw is not None and raw not in choices:
        raise ValidationError(f"{name} must be one of {', '.join(choices)}", name)
    return raw


def _actor(request: web.Request) -> str:
    return str(me(request).username)


async def _visible(request: web.Request) -> Record:
    s = services(request)
    try:
        rec = await blocking(s.store.get, "document", request.match_info["id"])
    except NotFoundError:
        raise NotFoundError("no such document") from None
    try:
        require_cleared(request, rec.data)
    except web.HTTPNotFound:
        raise NotFoundError("no such document") from None
    return rec


async def api_openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


async def api_me(request: web.Request) -> web.Response:
    u = me(request)
    return web.json_response({
        "username": u.username, "role": u.role.value, "role_label": ROLE_LABELS_VI[u.role],
        "full_name": u.full_name, "cleared": u.cleared,
    })


async def api_status(request: web.Request) -> web.Response:
    s = services(request)
    st = await blocking(status_summary, s)
    sync = st.pop("sync")
    st["sync"] = {
        "enrolled": sync.enrolled, "acknowledged_size": sync.acknowledged_size,
        "confirmed_size": sync.confirmed_size, "last_contact": sync.last_contact,
        "last_error": sync.last_error, "pending_entries": sync.pending_entries,
        "pending_content": sync.pending_content, "quarantined": sync.quarantined,
    }
    return web.json_response(st)


async def api_device(request: web.Request) -> web.Response:
    return web.json_response(await blocking(device_info, services(request)))


async def api_search(request: web.Request) -> web.Response:
    from appliance.search import search as run_search

    s = services(request)
    q = request.query.get("q", "")
    if len(q) > 200:
        raise ValidationError("q is longer than 200 characters", "q")
    limit = qint(request, "limit", 50, 1, 200)
    offset = qint(request, "offset", 0, 0, 10**7)
    qint(request, "year", 0, 1900, 2200)
    qenum(request, "direction", ("incoming", "outgoing"))
    filters = await resolved_filters(request, search_filters(request.query, me(request).cleared))
    hits = await blocking(lambda: run_search(s.store.reader(), q, filters, limit, offset))
    await audit_list(request, "search", [h.id for h in hits], via="api")
    return web.json_response({
        "items": [{"id": h.id, "data": h.data} for h in hits], "limit": limit, "offset": offset,
    })


async def api_incoming(request: web.Request) -> web.Response:
    s = services(request)
    body = _fields(await json_body(request))
    res = await blocking(s.store.register_incoming, body, _actor(request))
    lang = request.get(LANG, "vi")
    plausible = records.plausibility(res.record.data, s.store.clock.now().date())
    warnings = [error_text(w, lang) for w in plausible] + list(res.warnings)
    return web.json_response({"document": doc_json(res.record), "warnings": warnings},
                             status=201)



async def api_document(request: web.Request) -> web.Response:
    from sync.agent.status import sync_status

    s = services(request)
    rec = await _visible(request)
    await blocking(s.store.audit, "view", _actor(request), "document", rec.id, {"via": "api"})
    seal = await blocking(s.seal.check, rec)
    cp = s.store.latest_checkpoint()
    sync = await blocking(sync_status, s.store.data_dir, cp[0] if cp else 0)
    out = doc_json(rec)
    out["seal"] = seal.to_json()
    out["confirmed_at_province"] = sync.confirmed(rec.log_index)
    from appliance.capture.intake import status as capture_status

    out["capture"] = (await blocking(capture_status, s.store.data_dir, rec.id)).to_json()
    return web.json_response(out)



async def api_history(request: web.Request) -> web.Response:
    s = services(request)
    rec = await _visible(request)
    items, complete = await blocking(s.log_index.history, "document", rec.id)
    return web.json_response({"items": [i.to_json() for i in items], "complete": complete})


async def api_upload(request: web.Request) -> web.Response:
    """The body is the file itself; ?name= gives its name. Checked before anything is stored."""
    from appliance.capture.intake import IntakeFile, take_in
    from appliance.capture.intake import status as capture_status

    s = services(request)
    rec = await _visible(request)
    name = request.query.get("name", "tep")
    if len(name) > 200:
        raise ValidationError("name is longer than 200 characters", "name")
    s.store.check_can_write()  # halted, or too little room for it: refused before reading
    s.store.space.check_records(2 * (request.content_length or 0))
    tmp_dir = s.store.data_dir / "content" / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=tmp_dir, prefix="api-")
    path = Path(tmp)
    try:
        size = 0
        with os.fdopen(fd, "wb") as out:
            async for chunk in request.content.iter_chunked(1 << 20):
                size += len(chunk)
                if size > s.config.max_upload:
                    raise UploadError(
                        f"Tệp quá lớn: tối đa {s.config.max_upload // 1048576} MB (too large)."
                    )
                out.write(chunk)
        checked = await blocking(check_file_isolated, path, s.config.max_upload,
                                 s.config.max_pixels, s.config.max_pdf_pages)
        before = {c["sha256"] for c in rec.data.get("Content") or ()}
        new = await blocking(
            take_in, s.store, rec.id,
            [IntakeFile(checked.safe_name(name), path, checked.mime, checked.born_digital)],
            _actor(request))
    finally:
        path.unlink(missing_ok=True)
    # A computer-made PDF is kept as sent; a photo or scan becomes the captured PDF (its
    # OCR'd, signed PDF/A follows from the background worker: see "capture" on the document).
    added = [c for c in new.data.get("Content") or () if c["sha256"] not in before]
    item = added[-1] if added else None  # None: that very file was already attached
    return web.json_response({"document": doc_json(new), "content": item,
                              "capture": capture_status(s.store.data_dir, rec.id).to_json()},
                             status=201)


async def api_content(request: web.Request) -> web.StreamResponse:
    qenum(request, "download", ("1",))
    qenum(request, "preview", ("png",))
    rec = await _visible(request)
    return await send_content(request, rec, request.match_info["sha256"])


async def api_add_to_file(request: web.Request) -> web.Response:
    s = services(request)
    rec = await _visible(request)
    body = await json_body(request)
    code = body.get("FileCode")
    if not isinstance(code, str) or not code.strip():
        raise ValidationError("FileCode is required", "FileCode")
    code = (await visible_file(request, code.strip())).data["FileCode"]
    if rec.data.get("FileCode"):
        await blocking(s.store.add_to_file, rec.id, code, _actor(request))
    else:
        await blocking(s.store.update_document, rec.id, {"FileCode": code},
                       _actor(request), rec.version)
    return web.json_response({"document": doc_json(await blocking(s.store.get, "document",
                                                                  rec.id))})


async def api_files(request: web.Request) -> web.Response:
    s = services(request)
    year = qint(request, "year", s.store.clock.now().year, 1900, 2200)
    rows = await blocking(queries.danh_muc, s.store.reader(), year, me(request).cleared)
    await audit_list(request, "files", [str(r["FileCode"]) for r in rows], year=year, via="api")
    return web.json_response({"year": year, "items": rows})


async def api_file_create(request: web.Request) -> web.Response:
    s = services(request)
    body = await json_body(request)
    for f in ("DocTotal", "PageTotal", "Status"):
        if f in body:
            raise ValidationError(f"{f} is set by the system", f)
    rec = await blocking(s.store.open_file, body, _actor(request))
    return web.json_response({"id": rec.id, "version": rec.version, "data": rec.data}, status=201)


async def api_retention(request: web.Request) -> web.Response:
    """The retention table the box uses, each kind with its Circular 05 maintenance code."""
    table = await blocking(services(request).store.retention_table)
    return web.json_response(table.to_json())


async def api_file(request: web.Request) -> web.Response:
    s = services(request)
    rec = await visible_file(request, request.match_info["code"])
    code = rec.data["FileCode"]  # as stored (an alias of the agency's code resolves to it)
    await blocking(s.store.audit, "view", _actor(request), "file", rec.id, {"via": "api"})
    docs = await blocking(queries.file_contents, s.store.reader(), code,
                          me(request).cleared)
    return web.json_response({
        "id": rec.id, "version": rec.version, "data": rec.data,
        "documents": [{"id": d.id, "data": d.data} for d in docs],
    })


async def api_file_close(request: web.Request) -> web.Response:
    s = services(request)
    code = (await visible_file(request, request.match_info["code"])).data["FileCode"]
    rec = await blocking(s.store.close_file, code, _actor(request))
    return web.json_response({"id": rec.id, "version": rec.version, "data": rec.data})


async def api_register(request: web.Request) -> web.StreamResponse:
    s = services(request)
    fmt = qenum(request, "format", ("json", "pdf", "xlsx")) or "json"
    qenum(request, "classified", ("0", "1"))
    limit = qint(request, "limit", 100, 1, 1000)
    offset = qint(request, "offset", 0, 0, 10**7)
    for name in ("from", "to"):  # the API takes a date or nothing, never an empty value
        if name in request.query and not request.query[name].strip():
            raise ValidationError(f"{name} is empty: give a date (YYYY-MM-DD) or leave it out",
                                  name)
    ask = register_params(request)
    if fmt in ("pdf", "xlsx"):
        return await print_register(request, ask, fmt)
    fond = s.store.config.fond_code
    day = s.store.clock.now().date()

    def load() -> dict[str, Any]:
        with s.store.snapshot() as conn:
            info = regs.register_info(conn, fond, s.org_name, ask.kind, ask.period,
                                      ask.classified)
            rows = regs.rows(conn, fond, ask.kind, ask.period, ask.classified, day, limit,
                             offset)
        return {
            **info.to_json(),
            "limit": limit,
            "offset": offset,
            "rows": [{"id": i, "cells": regs.display(ask.kind, c),
                      "values": regs.typed_json(ask.kind, c)} for i, c in rows],
        }

    body = await blocking(load)
    await audit_list(request, "register", [r["id"] for r in body["rows"]],
                     register=f"{ask.kind}:{ask.year}", period=ask.period.to_json(),
                     classified=ask.classified, via="api")
    return web.json_response(body)


async def api_users(request: web.Request) -> web.Response:
    s = services(request)
    rows = await blocking(s.accounts.list_users)
    return web.json_response({"items": [
        {"username": u.username, "role": u.role.value, "full_name": u.full_name,
         "disabled": u.disabled} for u in rows
    ]})


async def api_user_create(request: web.Request) -> web.Response:
    s = services(request)
    body = await json_body(request)
    args = [body.get(k) for k in ("username", "role", "password")]
    if not all(isinstance(a, str) for a in args):
        raise ValidationError("username, role and password are required strings")
    full = body.get("full_name", "")
    if not isinstance(full, str):
        raise ValidationError("full_name must be a string", "full_name")
    u = await blocking(s.accounts.add_user, args[0], args[1], args[2], _actor(request), full)
    return web.json_response(
        {"username": u.username, "role": u.role.value, "full_name": u.full_name,
         "disabled": False}, status=201)


HANDLERS = {
    "api_openapi": api_openapi,
    "api_me": api_me,
    "api_status": api_status,
    "api_device": api_device,
    "api_search": api_search,
    "api_incoming": api_incoming,
    "api_document": api_document,
    "api_history": api_history,
    "api_upload": api_upload,
    "api_content": api_content,
    "api_add_to_file": api_add_to_file,
    "api_files": api_files,
    "api_retention": api_retention,
    "api_file_create": api_file_create,
    "api_file": api_file,
    "api_file_close": api_file_close,
    "api_register": api_register,
    "api_users": api_users,
    "api_user_create": api_user_create,
}
