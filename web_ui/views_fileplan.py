"""The Danh mục hồ sơ of a year: its heading structure (made once, then chosen from in the hồ
sơ form), its approval by the head, and its print (PDF)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from appliance import fileplan
from appliance import fileplan_print as plan_pdf
from appliance.errors import LuutruError

from .common import blocking, form_of, render, services
from .errors import text_of
from .middleware import status_of
from .queries import danh_muc
from .reqkeys import LANG, me
from .views_records import files_page, period_of

# A structure to start from when a year has none (the common Phụ lục V layout of a commune);
# the clerk edits it before saving.
EXAMPLE = ("I. Công tác tổng hợp, văn phòng | VP\n1. Văn thư, lưu trữ\n"
           "II. Tài chính - ngân sách | TC\nIII. Đất đai, nông nghiệp và môi trường | ĐC\n"
           "IV. Tư pháp - hộ tịch | TP\nV. Văn hóa - xã hội | VHXH\n")


def _year(request: web.Request) -> int:
    try:
        year = int(request.match_info["year"])
    except ValueError:
        raise web.HTTPNotFound() from None
    if not 1900 <= year <= 2200:
        raise web.HTTPNotFound()
    return year


def as_text(st: fileplan.Structure | None) -> str:
    """A structure written as the form takes it (one heading a line)."""
    if st is None:
        return ""
    lines = []
    for h in st.headings:
        lines.append(f"{h.short}" + (f" | {h.abbr}" if h.abbr else ""))
    return "\n".join(lines) + "\n"


async def fileplan_headings_form(request: web.Request) -> web.Response:
    s = services(request)
    year = _year(request)
    conn = s.store.reader()
    st = await blocking(fileplan.structure, conn, year)
    previous = st or await blocking(fileplan.structure, conn, year - 1)
    text = as_text(previous) or EXAMPLE
    return render(request, "fileplan_headings.html", year=year, structure=st, text=text,
                  error=None, from_last_year=st is None and previous is not None)


async def fileplan_headings(request: web.Request) -> web.Response:
    s = services(request)
    year = _year(request)
    text = str((await form_of(request)).get("headings") or "")
    try:
        await blocking(lambda: fileplan.set_headings(s.store, year, fileplan.parse_text(text),
                                                     me(request).username))
    except LuutruError as exc:
        st = await blocking(fileplan.structure, s.store.reader(), year)
        return render(request, "fileplan_headings.html", status=status_of(exc), year=year,
                      structure=st, text=text, error=text_of(exc, request.get(LANG, "vi")),
                      from_last_year=False)
    raise web.HTTPSeeOther(f"/files?year={year}&done=headings")


async def fileplan_approve(request: web.Request) -> web.Response:
    s = services(request)
    year = _year(request)
    form = await form_of(request)
    user = me(request)
    values = {k: str(form.get(k) or "").strip() for k in ("decision", "approved_on", "position")}
    approver = {"username": user.username, "full_name": user.full_name or user.username,
                "position": values["position"]}
    try:
        await blocking(fileplan.approve, s.store, year, values["decision"],
                       values["approved_on"], approver, user.username)
    except LuutruError as exc:
        return await files_page(request, year, error=text_of(exc, request.get(LANG, "vi")),
                                status=status_of(exc), approve_values=values,
                                error_field=getattr(exc, "field", None))
    raise web.HTTPSeeOther(f"/files?year={year}&done=approved")


async def fileplan_print(request: web.Request) -> web.Response:
    s = services(request)
    year = _year(request)
    user = me(request)
    labels = {i.code: i.label for i in s.store.codes["maintenance"].items}

    def build() -> tuple[list[dict[str, Any]], bytes]:
        with s.store.snapshot() as conn:
            files = danh_muc(conn, year, user.cleared)
            for f in files:
                f["period"] = period_of(f, labels)
            st = fileplan.structure(conn, year)
            ap = fileplan.approval(conn, year)
            changed = fileplan.changed_since(conn, year, ap)
        return files, plan_pdf.render_pdf(s.org_name, year, files, st, ap, changed,
                                                labels, s.store.clock.now(), user.username)

    files, body = await blocking(build)
    await blocking(s.store.audit, "print", user.username, "fileplan", str(year),
                   {"format": "pdf", "files": [str(f["FileCode"]) for f in files]})
    return web.Response(body=body, content_type="application/pdf", headers={
        "Content-Disposition": f'inline; filename="danh-muc-ho-so-{year}.pdf"'})


HANDLERS = {
    "fileplan_headings_form": fileplan_headings_form,
    "fileplan_headings": fileplan_headings,
    "fileplan_approve": fileplan_approve,
    "fileplan_print": fileplan_print,
}
