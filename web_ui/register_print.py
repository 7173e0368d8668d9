"""A whole register printed (PDF) or exported (XLSX) as an HTTP answer, each a logged print or
download; the register page and the JSON API both answer with it."""

from __future__ import annotations

from aiohttp import web

from appliance import registers as regs

from .common import blocking, services
from .reqkeys import me


async def print_register(request: web.Request, direction: str, year: int, classified: bool,
                         fmt: str) -> web.Response:
    """The whole year's register as PDF or XLSX; each print or export is a log entry."""
    s = services(request)
    user = me(request)
    fond = s.store.config.org_id

    def build() -> tuple[regs.Register, bytes]:
        with s.store.snapshot() as conn:
            info = regs.register_info(conn, fond, s.org_name, direction, year, classified)
            docs = regs.register_docs(conn, fond, direction, year, classified)
        if fmt == "pdf":
            return info, regs.render_pdf(info, docs, s.store.clock.now(), user.username)
        return info, regs.render_xlsx(info, docs)

    info, body = await blocking(build)
    await blocking(
        s.store.audit, "print" if fmt == "pdf" else "download", user.username, "register",
        f"{direction}:{year}" + (":mat" if classified else ""),
        {"format": fmt, "rows": info.total, "from": info.first_number, "to": info.last_number,
         "classified": classified},
    )
    name = f"so-{'den' if direction == 'incoming' else 'di'}-{year}{'-mat' if classified else ''}"
    ctype = ("application/pdf" if fmt == "pdf" else
             "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    disposition = "inline" if fmt == "pdf" else "attachment"
    return web.Response(body=body, content_type=ctype, headers={
        "Content-Disposition": f'{disposition}; filename="{name}.{fmt}"',
    })
