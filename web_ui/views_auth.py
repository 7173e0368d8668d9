"""Sign-in, sign-out, the language switch, /healthz and the static assets."""

from __future__ import annotations

import hashlib
import mimetypes
from functools import cache
from pathlib import Path
from typing import Any

from aiohttp import web

from appliance.accounts import SESSION_COOKIE
from appliance.diskspace import Level
from appliance.errors import AuthError

from . import i18n
from .common import blocking, form_of, guess_keys, render, services
from .errors import ThrottledError
from .reqkeys import SESSION_TOKEN, USER

STATIC = Path(__file__).parent / "static"


@cache
def _asset(name: str) -> tuple[bytes, str, str] | None:
    path = STATIC / name
    if "/" in name or name.startswith(".") or not path.is_file():
        return None
    body = path.read_bytes()
    ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return body, ctype, '"' + hashlib.sha256(body).hexdigest()[:16] + '"'


async def static(request: web.Request) -> web.StreamResponse:
    found = _asset(request.match_info["name"])
    if found is None:
        raise web.HTTPNotFound()
    body, ctype, etag = found
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers={"ETag": etag})
    charset = "utf-8" if ctype.startswith("text/") or ctype.endswith("javascript") else None
    return web.Response(
        body=body,
        content_type=ctype,
        charset=charset,
        headers={"ETag": etag, "Cache-Control": "public, max-age=86400"},
    )


async def healthz(request: web.Request) -> web.Response:
    """The box's own state for monitors and the health hook: ``ok``; ``disk_low`` (below the
    warning threshold) and ``disk_full`` (new records refused) with 200, since reading works;
    ``halted`` (a start-up fault: nothing is written) with 503. Answered on the event loop
    without a thread, so that an answer proves the loop turns."""
    s = services(request)
    cp = s.store.latest_checkpoint()
    space = s.store.space.status()
    status = {Level.OK: "ok", Level.LOW: "disk_low", Level.FULL: "disk_full"}[space.level]
    if s.store.is_halted:
        status = "halted"
    body: dict[str, Any] = {
        "status": status,
        "signed_tree_size": cp[0] if cp else 0,
        "key_backing": s.key_backing,
        "disk": space.to_json(),
    }
    if s.store.faults:
        body["faults"] = [f.to_json() for f in s.store.faults]
    return web.json_response(body, status=503 if status == "halted" else 200)


def _next(value: Any) -> str:
    """Only local paths: an open redirect would help phishing."""
    if isinstance(value, str) and value.startswith("/") and not value.startswith("//"):
        return value
    return "/"


async def signin_form(request: web.Request) -> web.Response:
    if request.get(USER) is not None:
        raise web.HTTPSeeOther(_next(request.query.get("next")))
    return render(request, "signin.html", next=_next(request.query.get("next")), error=None)


async def signin(request: web.Request) -> web.StreamResponse:
    s = services(request)
    form = await form_of(request)
    username = str(form.get("username") or "").strip().lower()[:64]
    password = str(form.get("password") or "")
    target = _next(form.get("next"))
    keys = guess_keys(request, username)
    try:
        # Reserved before argon2 runs, so a burst cannot get more guesses checked than allowed.
        with s.throttle.reserve(*keys) as attempt:
            user = await blocking(s.accounts.authenticate, username, password)
            attempt.succeeded(clear=keys[:1])
    except (AuthError, ThrottledError) as exc:
        throttled = isinstance(exc, ThrottledError)
        resp = render(request, "signin.html", status=429 if throttled else 401, next=target,
                      error=str(exc), username=username)
        if isinstance(exc, ThrottledError):
            resp.headers["Retry-After"] = str(exc.retry_after)
        return resp
    token = await blocking(s.accounts.create_session, user, s.session_ttl())
    resp = web.HTTPSeeOther(target)
    resp.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="Strict",
        path="/",
        secure=s.config.secure_cookies,
        max_age=int(s.session_ttl().total_seconds()),
    )
    raise resp


async def signout(request: web.Request) -> web.StreamResponse:
    s = services(request)
    token = request.get(SESSION_TOKEN)
    if token:
        await blocking(s.accounts.end_session, token)
    resp = web.HTTPSeeOther("/signin")
    resp.del_cookie(SESSION_COOKIE, path="/")
    raise resp


async def lang(request: web.Request) -> web.StreamResponse:
    form = await form_of(request)
    choice = str(form.get("lang") or "")
    resp = web.HTTPSeeOther(_next(form.get("next")))
    if choice in i18n.LANGUAGES:
        resp.set_cookie(i18n.LANG_COOKIE, choice, samesite="Strict", path="/",
                        max_age=365 * 86400)
    raise resp


HANDLERS = {
    "static": static,
    "healthz": healthz,
    "signin_form": signin_form,
    "signin": signin,
    "signout": signout,
    "lang": lang,
}
