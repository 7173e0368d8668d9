"""A register printed (PDF) or exported (XLSX) as an HTTP answer, each a logged print or
download; the register page and the JSON API both answer with it."""

from __future__ import annotations

from aiohttp import web

from appliance import registers as regs

from .common import blocking, services
from .params import RegisterAsk
from .reqkeys import me
from .status import today

FILE_NAMES = {"incoming": "so-den", "outgoing": "so-di", "handling": "so-theo-doi-giai-quyet",
              "post": "so-gui-buu-dien", "copies": "so-su-dung-ban-luu"}


def file_name(ask: RegisterAsk, fmt: str) -> str:
    """so-den-2025.pdf, so-den-2025-04-01-2025-06-30-mat.xlsx…"""
    p = ask.period
    span = str(ask.year) if p.whole_year else f"{p.start.isoformat()}-{p.end.isoformat()}"
    return f"{FILE_NAMES[ask.kind]}-{span}{'-mat' if ask.classified else ''}.{fmt}"


async def print_register(request: web.Request, ask: RegisterAsk, fmt: str) -> web.Response:
    """The register of the period as PDF or XLSX; each print or export is a log entry."""
    s = services(request)
    user = me(request)
    fond = s.store.config.fond_code

    def build() -> tuple[regs.Register, bytes]:
        with s.store.snapshot() as conn:
            info = regs.register_info(conn, fond, s.org_name, ask.kind, ask.period,
                                      ask.classified)
            rows = regs.rows(conn, fond, ask.kind, ask.period, ask.classified, today(s))
        if fmt == "pdf":
            return info, regs.render_pdf(info, rows, s.store.clock.now(), user.username)
        return info, regs.render_xlsx(info, rows)

    info, body = await blocking(build)
    await blocking(
        s.store.audit, "print" if fmt == "pdf" else "download", user.username, "register",
        f"{ask.kind}:{ask.year}" + (":mat" if ask.classified else ""),
        {"format": fmt, "rows": info.total, "from": info.first_number, "to": info.last_number,
         "period": ask.period.to_json(), "classified": ask.classified},
    )
    ctype = ("application/pdf" if fmt == "pdf" else
             "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    disposition = "inline" if fmt == "pdf" else "attachment"
    return web.Response(body=body, content_type=ctype, headers={
        "Content-Disposition": f'{disposition}; filename="{file_name(ask, fmt)}"',
    })
