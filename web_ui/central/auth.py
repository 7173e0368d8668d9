"""Who may open the centre's dashboard: accounts, sign-in and sessions.

The dashboard shows every commune's register metadata (province-wide search) and each
appliance's state, on the same port the appliances reach over the WAN, so every page but the
sign-in form needs a signed-in account. The sync API (/v1/…) and /healthz are untouched: they
authenticate appliances by their keys.

- Accounts live in ``dashboard-users.json`` in the centre folder (mode 0600, written
  atomically), so SQLite and PostgreSQL centres and every worker process share them. Passwords
  are argon2id hashes (pynacl), as on the appliance. `luutru central dashboard-user` manages
  them.
- A session is a cookie (HttpOnly, SameSite=Strict, 8 hours) holding the username, its expiry,
  a random session id and an HMAC under a secret kept in the folder (``dashboard-secret``,
  0600). The MAC also covers the account's password hash, so a new password or a removed
  account ends its sessions at once. Each session id is also a file in ``dashboard-sessions/``
  (0700): sign-out deletes it, so a copy of the cookie stops working then, in every worker
  (they share the folder); expired ones are swept when a session starts.
- Sign-in and sign-out are POSTs with a CSRF token bound to a pre-session cookie; failed
  sign-ins are throttled per username and per address (web_ui.throttle).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from appliance.accounts import (
    _dummy_hash,
    check_password,
    hash_password,
    validate_username,
)
from appliance.clock import SystemClock, iso
from appliance.errors import ConfigError
from appliance.fsutil import write_atomic
from appliance.passwords import validate_password
from appliance.text import nfc

from ..throttle import Throttle

USERS_NAME = "dashboard-users.json"
SECRET_NAME = "dashboard-secret"
SESSIONS_NAME = "dashboard-sessions"
SID_HEX = 32  # 128-bit session ids
COOKIE = "luutru_centre"
PRE_COOKIE = "luutru_centre_pre"  # binds the sign-in form's CSRF token to this browser
SESSION_S = 8 * 3600
OPEN_PATHS = ("/signin", "/static/central/")  # everything else of the dashboard needs a session


@dataclass(frozen=True)
class DashboardUser:
    username: str
    pw_hash: bytes
    created: str


class DashboardUsers:
    """The accounts file of a centre folder, re-read when it changes on disk."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / USERS_NAME
        self.secret_path = data_dir / SECRET_NAME
        self.sessions_dir = data_dir / SESSIONS_NAME
        self._lock = threading.Lock()
        self._seen: tuple[int, int] | None = None
        self._users: dict[str, DashboardUser] = {}
        self._secret: bytes | None = None

    # -- the file --------------------------------------------------------------------------

    def _load(self) -> dict[str, DashboardUser]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._seen, self._users = None, {}
            return self._users
        seen = (st.st_mtime_ns, st.st_size)
        if seen != self._seen:
            try:
                raw = json.loads(self.path.read_text("utf-8"))
                users = {
                    name: DashboardUser(name, base64.b64decode(v["hash"]), str(v["created"]))
                    for name, v in raw["users"].items()
                }
            except (ValueError, KeyError, TypeError) as exc:
                raise ConfigError(f"{self.path} is not a dashboard accounts file: {exc}") from exc
            self._seen, self._users = seen, users
        return self._users

    def _save(self, users: dict[str, DashboardUser]) -> None:
        body = {"users": {
            u.username: {"hash": base64.b64encode(u.pw_hash).decode(), "created": u.created}
            for u in sorted(users.values(), key=lambda u: u.username)
        }}
        write_atomic(self.path, json.dumps(body, ensure_ascii=False, indent=1).encode(), 0o600)
        self._seen = None

    def users(self) -> list[str]:
        with self._lock:
            return sorted(self._load())

    def get(self, username: str) -> DashboardUser | None:
        with self._lock:
            return self._load().get(username)

    def set_password(self, username: str, password: str, now: str | None = None) -> bool:
        """Add the account, or give it a new password (its sessions end); True if new."""
        username = validate_username(username)
        pw_hash = hash_password(validate_password(password))
        with self._lock:
            users = dict(self._load())
            old = users.get(username)
            users[username] = DashboardUser(
                username, pw_hash, old.created if old else (now or iso(SystemClock().now()))
            )
            self._save(users)
            return old is None

    def remove(self, username: str) -> bool:
        with self._lock:
            users = dict(self._load())
            if users.pop(username, None) is None:
                return False
            self._save(users)
            return True

    # -- sessions --------------------------------------------------------------------------

    def secret(self) -> bytes:
        with self._lock:
            if self._secret is None:
                try:
                    self._secret = self.secret_path.read_bytes()
                except FileNotFoundError:
                    new = secrets.token_bytes(32)
                    try:  # first writer wins; other workers read what it wrote
                        fd = os.open(self.secret_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                    except FileExistsError:
                        pass
                    else:
                        with os.fdopen(fd, "wb") as fh:
                            fh.write(new)
                            fh.flush()
                            os.fsync(fh.fileno())
                    self._secret = self.secret_path.read_bytes()
                if len(self._secret) < 32:
                    raise ConfigError(f"{self.secret_path} is too short to be a secret")
            return self._secret

    def _mac(self, *parts: str | bytes) -> str:
        m = hmac.new(self.secret(), digestmod=hashlib.sha256)
        for p in parts:
            b = p.encode() if isinstance(p, str) else p
            m.update(len(b).to_bytes(4, "big") + b)
        return m.hexdigest()

    def authenticate(self, username: str, password: str) -> DashboardUser | None:
        # Names are kept as validate_username leaves them. An unknown name costs as much as a
        # wrong password: no probing for account names.
        user = self.get(nfc(username).strip().lower())
        ok = check_password(user.pw_hash if user else _dummy_hash(), password)
        return user if ok and user is not None else None

    def session_cookie(self, user: DashboardUser, now: float | None = None) -> str:
        """Start a session (its record on disk) and return its cookie value."""
        t = now or time.time()
        expires = int(t + SESSION_S)
        sid = secrets.token_hex(SID_HEX // 2)
        self.sessions_dir.mkdir(mode=0o700, exist_ok=True)
        self._sweep(t)
        fd = os.open(self.sessions_dir / sid, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(f"{expires}\n")
        name = base64.urlsafe_b64encode(user.username.encode()).decode().rstrip("=")
        mac = self._mac("session", user.username, str(expires), sid, user.pw_hash)
        return f"{name}.{expires}.{sid}{mac}"

    def _parse(self, cookie: str | None) -> tuple[str, str, str, str] | None:
        """(username, expiry, session id, MAC) of a well-formed cookie."""
        if not cookie or cookie.count(".") != 2:
            return None
        name, expires, tail = cookie.split(".")
        if len(tail) != SID_HEX + 64 or not all(ch in "0123456789abcdef" for ch in tail):
            return None
        try:
            username = base64.urlsafe_b64decode(name + "=" * (-len(name) % 4)).decode()
            int(expires)
        except (ValueError, UnicodeDecodeError):
            return None
        return username, expires, tail[:SID_HEX], tail[SID_HEX:]

    def session_user(self, cookie: str | None, now: float | None = None) -> DashboardUser | None:
        parsed = self._parse(cookie)
        if parsed is None:
            return None
        username, expires, sid, mac = parsed
        if int(expires) < (now or time.time()):
            return None
        user = self.get(username)
        if user is None:
            return None
        want = self._mac("session", user.username, expires, sid, user.pw_hash)
        if not hmac.compare_digest(want, mac):
            return None
        return user if (self.sessions_dir / sid).is_file() else None

    def end_session(self, cookie: str | None) -> None:
        """Sign-out: the session's record goes, and with it every copy of the cookie."""
        parsed = self._parse(cookie)
        if parsed is not None and self.session_user(cookie) is not None:
            (self.sessions_dir / parsed[2]).unlink(missing_ok=True)

    def _sweep(self, now: float) -> None:
        for path in self.sessions_dir.iterdir():
            try:
                if int(path.read_text().strip() or 0) < now:
                    path.unlink(missing_ok=True)
            except (OSError, ValueError):
                continue

    def csrf_token(self, binding: str) -> str:
        return self._mac("csrf", binding)

    def check_csrf(self, binding: str, token: str) -> bool:
        return bool(binding) and hmac.compare_digest(self.csrf_token(binding), token)


DASH_USERS = web.AppKey("dashboard_users", DashboardUsers)
DASH_THROTTLE = web.AppKey("dashboard_throttle", Throttle)
DASH_USER = web.RequestKey("dashboard_user", str)
# Path prefixes another part of the application serves to the public (web_ui/catalogue): the
# dashboard's sign-in does not guard them.
PUBLIC_PARTS = web.AppKey("dashboard_public_parts", tuple)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def is_dashboard_path(path: str, public: tuple[str, ...] = ()) -> bool:
    """The sync API and /healthz answer appliances and monitors, ``public`` prefixes anyone;
    the rest is the dashboard."""
    return not (path == "/healthz" or path.startswith("/v1/") or path.startswith(public))


# The pages have no script at all and only the one stylesheet: anything injected stays inert.
CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
HSTS = "max-age=31536000"  # a year; not includeSubDomains: the centre's domain is not ours


def _secure_headers(request: web.Request, resp: web.StreamResponse) -> None:
    resp.headers.setdefault("Cache-Control", "no-store")
    resp.headers.setdefault("X-Content-Type-Options", "nosniff")
    resp.headers.setdefault("X-Frame-Options", "DENY")
    resp.headers.setdefault("Referrer-Policy", "same-origin")
    resp.headers.setdefault("Content-Security-Policy", CSP)
    if request.secure:  # TLS here, or https at a trusted proxy (proxy.py)
        resp.headers.setdefault("Strict-Transport-Security", HSTS)


@web.middleware
async def dashboard_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not is_dashboard_path(request.path, request.app.get(PUBLIC_PARTS, ())):
        return await handler(request)
    try:
        resp = await _signed_in(request, handler)
    except web.HTTPException as exc:  # redirects to the sign-in form, 401, 404
        _secure_headers(request, exc)
        raise
    _secure_headers(request, resp)
    return resp


async def _signed_in(request: web.Request, handler: Handler) -> web.StreamResponse:
    path = request.path
    users = request.app[DASH_USERS]
    if not path.startswith(OPEN_PATHS):
        user = users.session_user(request.cookies.get(COOKIE))
        if user is None:
            if path.endswith((".csv", ".json")):
                raise web.HTTPUnauthorized(text="sign in to the dashboard first\n")
            nxt = request.path_qs if request.method == "GET" else "/"
            raise web.HTTPSeeOther(f"/signin?next={_quote(nxt)}")
        request[DASH_USER] = user.username
    return await handler(request)


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


def safe_next(value: str | None) -> str:
    """Only a path of this site: never an absolute or scheme-relative URL."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def client_address(request: web.Request) -> str:
    """The peer, or the client a trusted proxy names (proxy.py has rewritten ``remote``)."""
    return request.remote or "?"


def new_binding() -> str:
    return secrets.token_urlsafe(24)


def set_session(resp: web.StreamResponse, request: web.Request, cookie: str) -> None:
    resp.set_cookie(COOKIE, cookie, max_age=SESSION_S, httponly=True, samesite="Strict",
                    secure=request.secure, path="/")


def sign_in_attempt(request: web.Request, form: Any) -> tuple[DashboardUser | None, str | None]:
    """(the user, None) or (None, why). Raises ThrottledError while the name or address must
    wait."""
    users = request.app[DASH_USERS]
    throttle = request.app[DASH_THROTTLE]
    binding = request.cookies.get(PRE_COOKIE, "")
    if not users.check_csrf(binding, str(form.get("csrf_token", ""))):
        return None, "csrf"
    username = str(form.get("username", "")).strip()
    keys = (f"user:{username.casefold()}", f"addr:{client_address(request)}")
    # Reserved before argon2 runs, so a burst cannot get more guesses checked than allowed.
    with throttle.reserve(*keys) as attempt:
        user = users.authenticate(username, str(form.get("password", "")))
        if user is None:
            return None, "bad"
        attempt.succeeded(clear=keys[:1])
    return user, None

