"""Readers' pages: sign up, sign in and out, ask for a copy, follow it, download it.

Forms carry a CSRF token bound to the reader's session (or, before signing in, to a random
cookie of its own), keyed with the catalogue's secret. Password guesses are throttled per
username and per address (web_ui/throttle.py), and new passwords follow the house rule
(appliance/passwords.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from typing import Any
from urllib.parse import quote

from aiohttp import web

from appliance.errors import LuutruError
from appliance.passwords import PasswordRuleError
from sync.central import readers

from ..central.auth import client_address
from ..errors import ThrottledError
from .common import CATALOGUE, COOKIE, LANG, PRE_COOKIE, csrf_for, reader_of, render
from .common import check_csrf as _check_csrf
from .views import document_page


def add_routes(app: web.Application) -> None:
    app.router.add_get("/reader", home)
    app.router.add_get("/reader/signup", signup_form)
    app.router.add_post("/reader/signup", signup)
    app.router.add_get("/reader/signin", signin_form)
    app.router.add_post("/reader/signin", signin)
    app.router.add_post("/reader/signout", signout)
    app.router.add_post("/reader/requests", ask)
    app.router.add_get("/reader/requests/{id}/copy.pdf", download)


def _with_pre(request: web.Request, resp: web.Response) -> web.Response:
    """Give a visitor without a session the random cookie their form tokens are bound to."""
    if not request.cookies.get(COOKIE) and not request.cookies.get(PRE_COOKIE):
        pre = secrets.token_urlsafe(16)
        resp.set_cookie(PRE_COOKIE, pre, httponly=True, samesite="Strict", path="/reader",
                        secure=request.app[CATALOGUE].config.secure_cookies)
        binding = f"p:{pre}"
        token = hmac.new(request.app[CATALOGUE].secret, binding.encode(),
                         hashlib.sha256).hexdigest()
        assert resp.text is not None
        resp.text = resp.text.replace(csrf_for(request), token)
    return resp


def _lq(request: web.Request) -> str:
    return "?lang=en" if request.get(LANG) == "en" else ""


async def home(request: web.Request) -> web.Response:
    cat = request.app[CATALOGUE]
    user = await reader_of(request)
    if user is None:
        raise web.HTTPSeeOther("/reader/signin" + _lq(request))

    def load() -> Any:
        with cat.centre.storage.view() as v:
            reqs = v.reader_requests(user)
            return [(r, v.catalogue_item(r.oai_id)) for r in reqs]

    reqs = await asyncio.to_thread(load)
    return render(request, "reader_home.html", user=user, reqs=reqs, csrf=csrf_for(request),
                  status_vi=readers.STATUS_VI)


def _form_page(request: web.Request, template: str, status: int = 200, **ctx: Any
               ) -> web.Response:
    ctx.setdefault("error", None)
    ctx.setdefault("field", None)
    ctx.setdefault("values", {})
    ctx.setdefault("next", request.query.get("next", ""))
    resp = render(request, template, status, csrf=csrf_for(request), **ctx)
    return _with_pre(request, resp)


async def signup_form(request: web.Request) -> web.Response:
    return _form_page(request, "reader_signup.html")


async def signin_form(request: web.Request) -> web.Response:
    return _form_page(request, "reader_signin.html")


def _safe_next(value: str) -> str:
    return value if value.startswith("/catalogue") or value.startswith("/reader") else "/reader"


def _signed_in(request: web.Request, token: str, nxt: str) -> web.Response:
    resp = web.HTTPSeeOther(_safe_next(nxt))
    resp.set_cookie(COOKIE, token, httponly=True, samesite="Lax", path="/",
                    secure=request.app[CATALOGUE].config.secure_cookies,
                    max_age=readers.SESSION_HOURS * 3600)
    resp.del_cookie(PRE_COOKIE, path="/reader")
    raise resp


async def signup(request: web.Request) -> web.Response:
    cat = request.app[CATALOGUE]
    form = await request.post()
    _check_csrf(request, form)
    values = {k: str(form.get(k, "")) for k in ("username", "full_name", "identity_no")}
    password = str(form.get("password", ""))
    try:
        await asyncio.to_thread(readers.sign_up, cat.centre, values["username"], password,
                                values["full_name"], values["identity_no"])
    except PasswordRuleError as exc:
        from ..i18n import translations

        msg = exc.translated(translations(request.get(LANG, "vi")).gettext)
        return _form_page(request, "reader_signup.html", 400, error=msg, field="password",
                          values=values, next=str(form.get("next", "")))
    except LuutruError as exc:
        return _form_page(request, "reader_signup.html", 400, error=str(exc),
                          field=getattr(exc, "field", None) or "username", values=values,
                          next=str(form.get("next", "")))
    token = await asyncio.to_thread(readers.start_session, cat.centre,
                                    values["username"].strip().lower())
    return _signed_in(request, token, str(form.get("next", "")))


async def signin(request: web.Request) -> web.Response:
    cat = request.app[CATALOGUE]
    form = await request.post()
    _check_csrf(request, form)
    username = str(form.get("username", "")).strip().lower()
    keys = (f"reader:{username}", f"addr:{client_address(request)}")
    try:
        attempt = cat.throttle.reserve(*keys)
    except ThrottledError as exc:
        return _form_page(request, "reader_signin.html", 429, error=str(exc),
                          values={"username": username}, next=str(form.get("next", "")))
    with attempt:
        rec = await asyncio.to_thread(readers.authenticate, cat.centre, username,
                                      str(form.get("password", "")))
        if rec is None:
            return _form_page(request, "reader_signin.html", 401,
                              error="Sai tên đăng nhập hoặc mật khẩu", field="password",
                              values={"username": username}, next=str(form.get("next", "")))
        attempt.succeeded(clear=(keys[0],))
    token = await asyncio.to_thread(readers.start_session, cat.centre, rec.username)
    return _signed_in(request, token, str(form.get("next", "")))


async def signout(request: web.Request) -> web.Response:
    form = await request.post()
    _check_csrf(request, form)
    await asyncio.to_thread(readers.end_session, request.app[CATALOGUE].centre,
                            request.cookies.get(COOKIE))
    resp = web.HTTPSeeOther("/catalogue")
    resp.del_cookie(COOKIE, path="/")
    raise resp


async def ask(request: web.Request) -> web.Response:
    cat = request.app[CATALOGUE]
    form = await request.post()
    oai_id = str(form.get("id", ""))
    user = await reader_of(request)
    if user is None:
        target = f"/catalogue/{oai_id}"
        raise web.HTTPSeeOther(f"/reader/signin?next={quote(target, safe='/')}")
    _check_csrf(request, form)
    try:
        await asyncio.to_thread(readers.ask, cat.centre, user, oai_id,
                                str(form.get("purpose", "")))
    except LuutruError as exc:
        request.match_info["id"] = oai_id.removeprefix("tailieu/")
        resp = await document_page(request)
        resp.text = (resp.text or "").replace("<!--ask-error-->", f'<p class="error" '
                                              f'role="alert">{_esc(str(exc))}</p>')
        resp.set_status(400)
        return resp
    raise web.HTTPSeeOther("/reader" + _lq(request))


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


async def download(request: web.Request) -> web.Response:
    cat = request.app[CATALOGUE]
    user = await reader_of(request)
    if user is None:
        raise web.HTTPSeeOther("/reader/signin")
    try:
        pdf = await asyncio.to_thread(readers.copy_for, cat.centre, user,
                                      request.match_info["id"])
    except LuutruError:
        raise web.HTTPNotFound(text="Không có bản sao này\n") from None
    name = f"ban-sao-{request.match_info['id']}.pdf"
    return web.Response(body=pdf, content_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{name}"'})
