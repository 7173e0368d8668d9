"""Middlewares: security headers, errors, who is asking (session or token), roles, body size,
CSRF.

Order (outermost first): headers → errors → auth → body → csrf. Roles and body limits come
from the one table in ``permissions.py``; a request to a route the role may not use never
reaches its handler, and its body is never read.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from aiohttp import web

from appliance.accounts import SESSION_COOKIE
from appliance.capture.errors import DiskFull, ImageRejected
from appliance.errors import (
    AuthError,
    ConfigError,
    ConflictError,
    DiskFullError,
    KeyUnavailableError,
    LuutruError,
    NotFoundError,
    StoreClosedError,
    ValidationError,
)

from . import i18n, permissions
from .errors import CsrfError, ForbiddenError, ThrottledError
from .messages import error_text, field_label
from .reqkeys import AUTH, CSRF, CSRF_BINDING, LANG, PRE, SESSION_TOKEN, USER
from .services import SERVICES

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PRE_COOKIE = "luutru_csrf"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSP = (
    "default-src 'self'; img-src 'self' data: blob:; object-src 'self'; frame-src 'self'; "
    "frame-ancestors 'self'; form-action 'self'; base-uri 'none'"
)
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/")


def status_of(exc: LuutruError) -> int:
    status = getattr(exc, "status", None)  # the web UI's errors, and accounts' (core)
    if isinstance(status, int):
        return status
    if isinstance(exc, DiskFullError):
        return 507  # RFC 4918 Insufficient Storage
    if isinstance(exc, ValidationError | ImageRejected):  # a scan the pipeline refused too
        return 422
    if isinstance(exc, DiskFull):
        return 507
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, ConflictError):
        return 409
    if isinstance(exc, KeyUnavailableError | StoreClosedError):
        return 503
    if isinstance(exc, ConfigError):
        return 500
    return 400


def error_body(code: str, message: str, field: str | None = None,
               label: str | None = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if field:
        err["field"] = field  # the field's code name, for programs
        err["label"] = label or field  # its name as people know it, in the page's language
    return {"error": err}


def error_response(request: web.Request, status: int, code: str, message: str,
                   field: str | None = None) -> web.Response:
    if is_api(request) or request.path == "/healthz":
        label = None
        if field:
            label = field_label(field, i18n.translations(request.get(LANG, i18n.DEFAULT)).gettext)
        return web.json_response(error_body(code, message, field, label), status=status)
    services = request.app.get(SERVICES)
    if services is None:
        return web.Response(status=status, text=message)
    env = services.envs[request.get(LANG, i18n.DEFAULT)]
    user = request.get(USER)
    role = user.role if user is not None else None
    from .common import box_state

    html = env.get_template("error.html").render(
        status=status, message=message, user=user, csrf=request.get(CSRF, ""),
        path=request.path,
        can=lambda name: permissions.allowed(name, role, services.use_approvers),
        approvers=services.use_approvers,
        org_name=services.org_name, **box_state(services, request.get(LANG, i18n.DEFAULT)),
    )
    return web.Response(status=status, text=html, content_type="text/html")


@web.middleware
async def headers_mw(request: web.Request, handler: Handler) -> web.StreamResponse:
    pre = request.cookies.get(PRE_COOKIE)
    if not pre or len(pre) > 64:
        pre = None
    request[PRE] = pre or secrets.token_urlsafe(24)
    try:
        resp = await handler(request)
    except web.HTTPException as exc:
        _decorate(request, exc, set_pre=pre is None)
        raise
    _decorate(request, resp, set_pre=pre is None)
    return resp


def _decorate(request: web.Request, resp: web.StreamResponse, set_pre: bool) -> None:
    if resp.prepared:
        return
    h = resp.headers
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("Referrer-Policy", "same-origin")
    h.setdefault("X-Frame-Options", "SAMEORIGIN")
    if resp.content_type == "text/html":
        h.setdefault("Content-Security-Policy", CSP)
    if request.get(USER) is not None or request.path.startswith("/api/"):
        h.setdefault("Cache-Control", "no-store")  # record data stays off shared PCs' caches
    if set_pre and not is_api(request):
        services = request.app.get(SERVICES)
        secure = bool(services and services.config.secure_cookies)
        resp.set_cookie(
            PRE_COOKIE, request[PRE], httponly=True, samesite="Strict", path="/", secure=secure
        )


@web.middleware
async def errors_mw(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if (exc.status >= 400 and exc.status != 401) or (exc.status == 401 and is_api(request)):
            code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(
                exc.status, "http_error"
            )
            message = {
                404: "Không tìm thấy trang hoặc bản ghi này (not found).",
                405: "Phương thức không được hỗ trợ (method not allowed).",
                413: "Tệp tải lên quá lớn (the upload is too large).",
            }.get(exc.status, exc.text or exc.reason)
            resp = error_response(request, exc.status, code, message)
            if exc.status == 413:
                resp.force_close()  # the rest of the body is drained, never kept
            for k in ("Allow", "Retry-After", "WWW-Authenticate"):
                if k in exc.headers:
                    resp.headers[k] = exc.headers[k]
            return resp
        raise
    except ThrottledError as exc:
        resp = error_response(request, 429, "throttled", str(exc))
        resp.headers["Retry-After"] = str(exc.retry_after)
        return resp
    except LuutruError as exc:
        status = status_of(exc)
        if status >= 500:
            log.error("%s %s: %s", request.method, request.path, exc)
        field = getattr(exc, "field", None)
        message = error_text(exc, request.get(LANG, i18n.DEFAULT))
        resp = error_response(request, status, type(exc).__name__, message, field)
        retry_after = getattr(exc, "retry_after", None)
        if isinstance(retry_after, int):
            resp.headers["Retry-After"] = str(retry_after)
        return resp
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(
            request, 500, "internal", "Lỗi hệ thống; đã ghi nhật ký (internal error; logged)."
        )


@web.middleware
async def auth_mw(request: web.Request, handler: Handler) -> web.StreamResponse:
    services = request.app[SERVICES]
    request[LANG] = i18n.pick(request.cookies.get(i18n.LANG_COOKIE))
    name = request.match_info.route.name
    if name is None:  # 404 / 405 from the router
        return await handler(request)
    route = permissions.BY_NAME[name]
    user = None
    auth = None
    header = request.headers.get("Authorization", "")
    token_auth = None
    if header[:7].lower() == "bearer ":
        token_auth = services.accounts.token_user(header[7:].strip())
        user = token_auth.user if token_auth else None
        if user is None and not route.public:
            raise AuthError("Khóa API không hợp lệ, đã hết hạn hoặc đã bị thu hồi "
                            "(invalid, expired or revoked token)")
        auth = "token" if user else None
    else:
        token = request.cookies.get(SESSION_COOKIE, "")
        if token:
            user = services.accounts.session_user(token)
            if user is not None:
                auth = "session"
                request[SESSION_TOKEN] = token
    request[USER] = user
    request[AUTH] = auth
    binding = f"s:{request[SESSION_TOKEN]}" if auth == "session" else f"p:{request[PRE]}"
    request[CSRF_BINDING] = binding
    request[CSRF] = services.accounts.csrf_token(binding)
    if not permissions.allowed(name, user.role if user else None, services.use_approvers):
        if user is None:
            if route.api:
                raise AuthError("Cần đăng nhập hoặc khóa API (sign-in or API token required)")
            target = request.path_qs if request.method == "GET" else "/"
            raise web.HTTPSeeOther(f"/signin?next={quote(target, safe='/?=&')}")
        raise ForbiddenError(
            "Vai trò của bạn không được dùng trang hoặc chức năng này "
            "(your role may not use this page or call)."
        )
    if token_auth is not None:
        refusal = permissions.token_refusal(name, request.method, token_auth.scope)
        if refusal:
            raise ForbiddenError(refusal)
    return await handler(request)


@web.middleware
async def body_mw(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Each route reads at most its own body limit (``Route.max_body``). It runs after
    auth_mw, so a body sent to a route the caller may not use is never read, and the routes
    anyone may post to (sign-in, language) take a few KB; an announced larger body is refused
    before a byte of it is read, a chunked one where it passes the limit."""
    name = request.match_info.route.name
    if name is None or not request.body_exists:
        return await handler(request)
    route = permissions.BY_NAME[name]
    limit = route.max_body(request.app[SERVICES].config.max_upload)
    length = request.content_length
    if length is not None and length > limit:
        if route.api and not route.upload:  # as api.json_body has always answered
            raise ValidationError(f"the JSON body is too large (max {limit // 1024} KiB)")
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=length)
    return await handler(request.clone(client_max_size=limit))


@web.middleware
async def csrf_mw(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method in UNSAFE and request.get(AUTH) != "token" and (
        request.match_info.route.name is not None
    ):
        origin = request.headers.get("Origin")
        if origin and origin != "null" and origin != f"{request.scheme}://{request.host}":
            raise CsrfError("Yêu cầu đến từ trang khác (cross-site request refused).")
        token = request.headers.get("X-CSRF-Token", "")
        if not token and request.content_type in FORM_TYPES:
            form = await request.post()
            value = form.get("csrf_token", "")
            token = value if isinstance(value, str) else ""
        services = request.app[SERVICES]
        if not services.accounts.check_csrf(request[CSRF_BINDING], token):
            raise CsrfError(
                "Phiên làm việc của biểu mẫu đã hết hạn hoặc thiếu mã bảo vệ; hãy tải lại trang "
                "và gửi lại (missing or wrong CSRF token)."
            )
    return await handler(request)


MIDDLEWARES = [headers_mw, errors_mw, auth_mw, body_mw, csrf_mw]
