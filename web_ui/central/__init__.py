"""The centre's dashboard: the province's appliances, their backlog and anomalies, search
across communes, and CSV/JSON export. Read-only, server-rendered, every asset local; every
page needs a signed-in dashboard account (auth.py, `luutru central dashboard-user`).

Vietnamese first; ``?lang=en`` shows English labels. Dates dd/mm/yyyy, times with +07:00.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from appliance.clock import TZ, vn_date
from appliance.text import fold
from sync.central.centre import Centre
from sync.central.report import build_report, to_csv

from ..errors import ThrottledError
from ..throttle import Throttle
from .auth import (
    COOKIE,
    DASH_THROTTLE,
    DASH_USER,
    DASH_USERS,
    PRE_COOKIE,
    DashboardUsers,
    dashboard_auth,
    new_binding,
    safe_next,
    set_session,
    sign_in_attempt,
)
from .proxy import Network, forwarded_middleware

HERE = Path(__file__).parent
DASH_CENTRE = web.AppKey("dashboard_centre", Centre)
DASH_ENV = web.AppKey("dashboard_env", jinja2.Environment)

LABELS: dict[str, dict[str, str]] = {
    "vi": {
        "title": "Trung tâm dữ liệu tỉnh — đồng bộ từ các xã",
        "appliances": "Thiết bị",
        "quarantined": "Đang cách ly",
        "entries": "Mục nhật ký đã nhận",
        "documents": "Văn bản",
        "withheld": "Mục mật (chỉ mã băm)",
        "backlog": "Tệp còn thiếu",
        "lag": "Mục chưa nhận",
        "anomalies": "Bất thường",
        "unknown_key": "Từ chối khóa lạ",
        "alerts": "Cảnh báo",
        "org": "Cơ quan",
        "status": "Trạng thái",
        "last_contact": "Liên lạc gần nhất",
        "accepted": "Đã nhận / thiết bị báo",
        "content": "Tệp (thiếu / cần)",
        "search": "Tìm văn bản toàn tỉnh",
        "search_btn": "Tìm",
        "csv": "Xuất CSV",
        "json": "Xuất JSON",
        "none": "Không có",
        "detail": "Chi tiết thiết bị",
        "forks": "Bằng chứng rẽ nhánh",
        "back": "Về trang chính",
        "active": "hoạt động",
        "q_hint": "ví dụ: quyet dinh dat dai",
        "results": "kết quả",
        "enrolled_at": "Đăng ký",
        "key": "Khóa thiết bị",
        "handovers": "Thay thiết bị (bàn giao khóa)",
        "from_entry": "Từ mục",
        "diverge": "Rẽ nhánh tại mục",
        "reason": "Lý do",
        "kind": "Loại",
        "count": "Số lần",
        "detail_col": "Chi tiết",
        "when": "Lúc",
        "signin": "Đăng nhập bảng điều khiển",
        "username": "Tên đăng nhập",
        "password": "Mật khẩu",
        "signin_btn": "Đăng nhập",
        "signout": "Đăng xuất",
        "bad_login": "Sai tên đăng nhập hoặc mật khẩu.",
        "bad_form": "Biểu mẫu đã hết hạn; vui lòng đăng nhập lại.",
        "no_accounts": "Chưa có tài khoản nào. Trên máy trung tâm, chạy:",
        "online_requests": "Yêu cầu trực tuyến",
        "withheld_catalogue": "Không công bố",
    },
    "en": {
        "title": "Provincial data centre — sync from communes",
        "appliances": "Appliances",
        "quarantined": "Quarantined",
        "entries": "Log entries received",
        "documents": "Documents",
        "withheld": "Classified entries (hash only)",
        "backlog": "Content files missing",
        "lag": "Entries not yet received",
        "anomalies": "Anomalies",
        "unknown_key": "Unknown-key refusals",
        "alerts": "Alerts",
        "org": "Agency",
        "status": "Status",
        "last_contact": "Last contact",
        "accepted": "Accepted / claimed",
        "content": "Files (missing / expected)",
        "search": "Search documents province-wide",
        "search_btn": "Search",
        "csv": "Export CSV",
        "json": "Export JSON",
        "none": "None",
        "detail": "Appliance detail",
        "forks": "Fork evidence",
        "back": "Back",
        "active": "active",
        "q_hint": "e.g. quyet dinh dat dai",
        "results": "results",
        "enrolled_at": "Enrolled",
        "key": "Device key",
        "handovers": "Replacements (key hand-overs)",
        "from_entry": "From entry",
        "diverge": "Diverges at entry",
        "reason": "Reason",
        "kind": "Kind",
        "count": "Count",
        "detail_col": "Detail",
        "when": "When",
        "signin": "Sign in to the dashboard",
        "username": "Username",
        "password": "Password",
        "signin_btn": "Sign in",
        "signout": "Sign out",
        "bad_login": "Wrong username or password.",
        "bad_form": "The form had expired; please sign in again.",
        "no_accounts": "There is no account yet. On the centre machine, run:",
        "online_requests": "Online requests",
        "withheld_catalogue": "Withheld from the catalogue",
    },
}
STATUS_VI = {"active": "hoạt động", "quarantined": "cách ly"}


def when(value: str | None) -> str:
    """dd/mm/yyyy HH:MM in Vietnam time, or an em dash."""
    if not value:
        return "—"
    try:
        t = dt.datetime.fromisoformat(value).astimezone(TZ)
    except ValueError:
        return value
    return f"{vn_date(t.date())} {t:%H:%M}"


def setup_dashboard(
    app: web.Application, centre: Centre, trusted_proxies: tuple[Network, ...] = ()
) -> None:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
    )
    env.filters["when"] = when
    env.filters["vndate"] = lambda v: vn_date(v) if v else "—"
    app[DASH_CENTRE] = centre
    app[DASH_ENV] = env
    app[DASH_USERS] = DashboardUsers(centre.data_dir)
    # Shared by the worker processes (`central serve --workers N`): one count of guesses.
    app[DASH_THROTTLE] = Throttle.shared(centre.data_dir / "dashboard-throttle.db")
    if trusted_proxies:  # before dashboard_auth, which reads the client's address and scheme
        app.middlewares.append(forwarded_middleware(trusted_proxies))
    app.middlewares.append(dashboard_auth)
    app.router.add_get("/signin", signin_form)
    app.router.add_post("/signin", signin)
    app.router.add_post("/signout", signout)
    app.router.add_get("/", overview)
    app.router.add_get("/appliances/{id}", appliance_detail)
    app.router.add_get("/search", search)
    app.router.add_get("/report.csv", report_csv)
    app.router.add_get("/report.json", report_json)
    app.router.add_static("/static/central/", HERE / "static")


def _lang(request: web.Request) -> str:
    return "en" if request.query.get("lang") == "en" else "vi"


def _render(
    request: web.Request, template: str, status: int = 200, **ctx: Any
) -> web.Response:
    lang = _lang(request)
    env = request.app[DASH_ENV]
    user = request.get(DASH_USER)
    signout_csrf = ""
    if user is not None:  # the sign-out form's token, bound to this session
        signout_csrf = request.app[DASH_USERS].csrf_token(request.cookies.get(COOKIE, ""))
    html = env.get_template(template).render(
        L=LABELS[lang], lang=lang, status_vi=STATUS_VI, user=user, signout_csrf=signout_csrf,
        **ctx,
    )
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")


# -- signing in -------------------------------------------------------------------------------

def _signin_page(
    request: web.Request, status: int = 200, error: str | None = None, username: str = ""
) -> web.Response:
    binding = request.cookies.get(PRE_COOKIE) or new_binding()
    users = request.app[DASH_USERS]
    resp = _render(
        request, "signin.html", status=status, error=error, username=username,
        csrf=users.csrf_token(binding), next=safe_next(request.query.get("next")),
        no_accounts=not users.users(), data_dir=str(request.app[DASH_CENTRE].data_dir),
    )
    resp.set_cookie(PRE_COOKIE, binding, httponly=True, samesite="Strict",
                    secure=request.secure, path="/")
    return resp


async def signin_form(request: web.Request) -> web.Response:
    return _signin_page(request)


async def signin(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    L = LABELS[_lang(request)]
    try:
        user, why = await asyncio.to_thread(sign_in_attempt, request, form)
    except ThrottledError as exc:
        return _signin_page(request, 429, str(exc), str(form.get("username", "")))
    if user is None:
        error = L["bad_form"] if why == "csrf" else L["bad_login"]
        return _signin_page(request, 403 if why == "csrf" else 401, error,
                            str(form.get("username", "")))
    users = request.app[DASH_USERS]
    resp = web.Response(status=303, headers={"Location": safe_next(str(form.get("next", "/")))})
    set_session(resp, request, await asyncio.to_thread(users.session_cookie, user))
    resp.del_cookie(PRE_COOKIE, path="/")
    return resp


async def signout(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    users = request.app[DASH_USERS]
    if not users.check_csrf(request.cookies.get(COOKIE, ""), str(form.get("csrf_token", ""))):
        raise web.HTTPForbidden(text="CSRF token missing or wrong\n")
    await asyncio.to_thread(users.end_session, request.cookies.get(COOKIE))
    resp = web.Response(status=303, headers={"Location": "/signin"})
    resp.del_cookie(COOKIE, path="/")
    return resp


async def _report(request: web.Request) -> Any:
    c = request.app[DASH_CENTRE]

    def build() -> Any:
        with c.storage.view() as v:
            return build_report(v, c.now(), c.origin)

    return await asyncio.to_thread(build)


async def overview(request: web.Request) -> web.Response:
    rep = await _report(request)
    return _render(request, "overview.html", rep=rep, centre=request.app[DASH_CENTRE])


async def appliance_detail(request: web.Request) -> web.Response:
    c = request.app[DASH_CENTRE]
    app_id = request.match_info["id"]

    def load() -> tuple[Any, Any, Any, Any, Any]:
        with c.storage.view() as v:
            app = v.appliance(app_id)
            if app is None:
                raise web.HTTPNotFound(text="no such appliance")
            return (app, v.counts(app_id), v.anomalies(app_id), v.forks(app_id),
                    v.keys(app_id))

    app, counts, anomalies, forks, keys = await asyncio.to_thread(load)
    return _render(
        request, "appliance.html", app=app, counts=counts, anomalies=anomalies, forks=forks,
        keys=keys,
    )


async def search(request: web.Request) -> web.Response:
    c = request.app[DASH_CENTRE]
    q = request.query.get("q", "")
    org = request.query.get("org") or None

    def run() -> Any:
        with c.storage.view() as v:
            return v.search_documents(fold(q), org, 100)

    hits = await asyncio.to_thread(run) if q or org else []
    return _render(request, "search.html", q=q, org=org or "", hits=hits)


async def report_csv(request: web.Request) -> web.Response:
    rep = await _report(request)
    return web.Response(
        body=to_csv(rep).encode("utf-8"),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": 'attachment; filename="bao-cao-dong-bo.csv"'},
    )


async def report_json(request: web.Request) -> web.Response:
    rep = await _report(request)
    return web.json_response(rep.to_json(), dumps=_dumps)


def _dumps(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)
