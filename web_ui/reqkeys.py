"""What the middlewares store on each request for the handlers (typed request keys)."""

from __future__ import annotations

from aiohttp import web

from appliance.accounts import User

USER: web.RequestKey[User | None] = web.RequestKey("user")  # None: not signed in
AUTH: web.RequestKey[str | None] = web.RequestKey("auth")  # "session", "token" or None
SESSION_TOKEN = web.RequestKey("session_token", str)
CSRF_BINDING = web.RequestKey("csrf_binding", str)
CSRF = web.RequestKey("csrf", str)  # the token to put in forms
PRE = web.RequestKey("pre", str)  # the pre-session cookie's value (sign-in form)
LANG = web.RequestKey("lang", str)


def me(request: web.Request) -> User:
    """The signed-in user of a request that passed the role check."""
    user: User | None = request.get(USER)
    if user is None:  # the middleware lets no signed-out request reach a private handler
        raise web.HTTPUnauthorized()
    return user
