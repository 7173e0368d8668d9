"""Users and roles, one's own account (password, API tokens), and the device page."""

from __future__ import annotations

from aiohttp import web

from appliance.accounts import (
    MAX_TOKEN_DAYS,
    ROLE_LABELS_VI,
    TOKEN_DAYS,
    Role,
    TokenScope,
)
from appliance.errors import AccountError, AuthError, LuutruError

from .common import blocking, error_text, form_of, guess_keys, render, services
from .errors import ThrottledError
from .reqkeys import me
from .status import device_info, status_summary


async def users(request: web.Request, error: str | None = None, status: int = 200,
                done: str | None = None) -> web.Response:
    s = services(request)
    rows = await blocking(s.accounts.list_users)
    return render(request, "users.html", status=status, users=rows, roles=list(Role),
                  role_labels=ROLE_LABELS_VI, error=error, done=done or request.query.get("done"))


async def user_create(request: web.Request) -> web.Response:
    s = services(request)
    form = await form_of(request)
    try:
        await blocking(
            s.accounts.add_user, str(form.get("username") or ""), str(form.get("role") or ""),
            str(form.get("password") or ""), me(request).username,
            str(form.get("full_name") or ""),
        )
    except LuutruError as exc:
        return await users(request, error=error_text(request, exc), status=422)
    raise web.HTTPSeeOther("/users?done=created")


async def user_update(request: web.Request) -> web.Response:
    s = services(request)
    username = request.match_info["username"]
    form = await form_of(request)
    action = str(form.get("action") or "")
    actor = me(request).username
    try:
        if username == actor and action in ("role", "disable"):
            raise AccountError("Không thể tự đổi vai trò hoặc tự khóa tài khoản của mình "
                               "(you cannot change your own role or disable yourself).")
        if username == actor and action == "password":
            raise AccountError("Đổi mật khẩu của chính mình ở trang Tài khoản, với mật khẩu "
                               "hiện tại (change your own password under My account, with the "
                               "current one).")
        if action == "role":
            await blocking(s.accounts.set_role, username, str(form.get("role") or ""), actor)
        elif action == "disable":
            await blocking(s.accounts.set_disabled, username, True, actor)
        elif action == "enable":
            await blocking(s.accounts.set_disabled, username, False, actor)
        elif action == "password":
            await blocking(s.accounts.set_password, username, str(form.get("password") or ""),
                           actor)
        else:
            raise AccountError(f"Thao tác không hợp lệ: '{action}'")
    except LuutruError as exc:
        return await users(request, error=error_text(request, exc), status=422)
    raise web.HTTPSeeOther(f"/users?done={action}")


async def account(request: web.Request, error: str | None = None, status: int = 200,
                  new_token: tuple[str, str] | None = None) -> web.Response:
    s = services(request)
    tokens = await blocking(s.accounts.list_tokens, me(request).username)
    new = next((t for t in tokens if new_token and t["id"] == new_token[0]), None)
    return render(request, "account.html", status=status, tokens=tokens, error=error,
                  new_token=new_token[1] if new_token else None, new=new,
                  token_days=TOKEN_DAYS, max_token_days=MAX_TOKEN_DAYS,
                  role_labels=ROLE_LABELS_VI, done=request.query.get("done"))


async def account_password(request: web.Request) -> web.Response:
    s = services(request)
    form = await form_of(request)
    user = me(request)
    keys = guess_keys(request, user.username)
    try:
        # The same budget of guesses as sign-in: a session left open is no password oracle.
        with s.throttle.reserve(*keys) as attempt:
            await blocking(s.accounts.authenticate, user.username, str(form.get("current") or ""))
            attempt.succeeded(clear=keys[:1])
        new = str(form.get("new") or "")
        if new != str(form.get("confirm") or ""):
            raise AccountError("Hai lần nhập mật khẩu mới không khớp (passwords differ).")
        await blocking(s.accounts.set_password, user.username, new, user.username)
    except ThrottledError as exc:
        resp = await account(request, error=str(exc), status=429)
        resp.headers["Retry-After"] = str(exc.retry_after)
        return resp
    except AuthError:
        return await account(request, error="Mật khẩu hiện tại không đúng (wrong password).",
                             status=422)
    except LuutruError as exc:
        return await account(request, error=error_text(request, exc), status=422)
    # Every session ended with the change, this one too: sign in again.
    raise web.HTTPSeeOther("/signin")


async def token_create(request: web.Request) -> web.Response:
    s = services(request)
    form = await form_of(request)
    user = me(request)
    try:
        days = str(form.get("days") or TOKEN_DAYS).strip()
        made = await blocking(s.accounts.create_token, user.username,
                              str(form.get("name") or ""), user.username,
                              int(days) if days.isdigit() else 0,  # 0: refused, with the range
                              str(form.get("scope") or TokenScope.READ))
    except LuutruError as exc:
        return await account(request, error=str(exc), status=422)
    # Shown once, on this response only (never stored in clear, never redirected through a URL).
    return await account(request, new_token=made)


async def token_revoke(request: web.Request) -> web.Response:
    s = services(request)
    user = me(request)
    try:
        await blocking(s.accounts.revoke_token, request.match_info["token_id"], user.username,
                       user.username)
    except LuutruError as exc:
        return await account(request, error=str(exc), status=422)
    raise web.HTTPSeeOther("/account?done=revoked")


async def device(request: web.Request) -> web.Response:
    s = services(request)
    info = await blocking(device_info, s)
    summary = await blocking(status_summary, s)
    return render(request, "device.html", info=info, summary=summary)


HANDLERS = {
    "users": users,
    "user_create": user_create,
    "user_update": user_update,
    "account": account,
    "account_password": account_password,
    "token_create": token_create,
    "token_revoke": token_revoke,
    "device": device,
}
