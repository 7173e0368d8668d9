"""Helpers the page handlers share: rendering with the base context, forms, blocking calls."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from aiohttp import web

from appliance.accounts import User
from appliance.errors import megabytes
from appliance.passwords import PasswordRuleError
from appliance.results import Record

from . import i18n, permissions
from .errors import ForbiddenError
from .render import gettext_for
from .reqkeys import CSRF, LANG, USER
from .services import SERVICES, Services

T = TypeVar("T")


def services(request: web.Request) -> Services:
    return request.app[SERVICES]


async def blocking(fn: Callable[..., T], *args: Any, **kw: Any) -> T:
    """Run a store call off the event loop (writes wait on the writer thread; big reads)."""
    return await asyncio.to_thread(fn, *args, **kw)


# Queries that only use the CPU (SQLite gives up the GIL while it works) run on as many
# threads as there are cores, first come first served: more threads would only share the
# cores, so that every query of a burst finished late instead of most finishing early.
_READERS = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2),
                              thread_name_prefix="web-read")


async def cpu_read(fn: Callable[[], T]) -> T:
    """Run a read-only, CPU-bound query (a search) off the event loop."""
    return await asyncio.get_running_loop().run_in_executor(_READERS, fn)


def error_text(request: web.Request, exc: Exception) -> str:
    """What a page says about ``exc``: in the page's language when the error knows how."""
    if isinstance(exc, PasswordRuleError):
        return exc.translated(gettext_for(request))
    return str(exc)


def guess_keys(request: web.Request, username: str) -> tuple[str, str]:
    """The throttle's keys for a password typed as ``username`` from this client: sign-in and
    the change-password form share them, so they share one budget of guesses."""
    return f"user:{username}", f"ip:{request.remote or '?'}"


def can(request: web.Request, route_name: str) -> bool:
    user: User | None = request.get(USER)
    return permissions.allowed(route_name, user.role if user else None,
                               services(request).use_approvers)


def box_state(s: Services, lang: str) -> dict[str, Any]:
    """What every page says about the box itself: a halted log (each fault and its repair)
    and a disk that is filling up."""
    space = s.store.space.status()
    return {
        "faults": [(f.english if lang == "en" else f.vi, f.recovery) for f in s.store.faults],
        "disk": space,
        "disk_free": megabytes(space.free_bytes),
        "disk_refuse_mb": space.limits.refuse >> 20,
    }


def render(request: web.Request, template: str, status: int = 200, **ctx: Any) -> web.Response:
    s = services(request)
    lang = request.get(LANG, i18n.DEFAULT)
    env = s.envs[lang]
    base = {
        "user": request.get(USER),
        "csrf": request.get(CSRF, ""),
        "org_name": s.org_name,
        "org_id": s.store.config.org_id,
        "key_backing": s.key_backing,
        "can": lambda name: can(request, name),
        "approvers": s.use_approvers,
        "path": request.path,
        "path_qs": request.path_qs,
        "max_upload_mb": s.config.max_upload // (1 << 20),
        **box_state(s, lang),
    }
    base.update(ctx)
    html = env.get_template(template).render(base)
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")


async def form_of(request: web.Request) -> dict[str, Any]:
    """The posted form as a dict of str (files kept as FileField), without the CSRF token."""
    form = await request.post()
    out: dict[str, Any] = {}
    for k in form:
        if k == "csrf_token":
            continue
        out[k] = form.get(k)
    return out


def clean(form: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """The named text fields of a form that are not blank."""
    out = {}
    for n in names:
        v = form.get(n)
        if isinstance(v, str) and v.strip():
            out[n] = v.strip()
    return out


def require_cleared(request: web.Request, data: Mapping[str, Any]) -> None:
    """Classified (mật) records are hidden from roles without clearance: as if absent."""
    from appliance.classified import is_classified

    user: User | None = request.get(USER)
    if is_classified(data) and (user is None or not user.cleared):
        raise web.HTTPNotFound()


async def visible_file(request: web.Request, code: str) -> Record:
    """The hồ sơ ``code`` if it exists and the user may see it; a classified (mật) hồ sơ is
    not found for roles without clearance, exactly as if it did not exist. A code written with
    the agency's former (or current) mã định danh finds the hồ sơ stored under the other."""
    from appliance.agency_ids import resolve_file_code
    from appliance.errors import NotFoundError

    store = services(request).store
    rec = await blocking(store.find_one, "file", FileCode=code)
    if rec is None:  # a mã hồ sơ written with another of the agency's codes (a re-keying)
        found = await blocking(resolve_file_code, store.reader(), store.config, code)
        rec = None if found is None else await blocking(store.find_one, "file", FileCode=found)
    if rec is None:
        raise NotFoundError(f"không có hồ sơ {code}")
    require_cleared(request, rec.data)
    return rec


async def audit_list(request: web.Request, what: str, ids: Sequence[str],
                     **detail: Any) -> None:
    """Log one entry for a bulk read (a list, a search, a register page) naming the records it
    returned, ids only (DESIGN.md: every view is logged). A read that returned nothing read
    no record and is not logged. An entry naming a mật record is withheld from sync like any
    other (appliance.classified)."""
    if not ids:
        return
    user: User | None = request.get(USER)
    await blocking(services(request).store.audit, "list", user.username if user else "?",
                   None, None, {"what": what, "ids": list(ids), **detail})


def forbid(message: str) -> ForbiddenError:
    return ForbiddenError(message)
