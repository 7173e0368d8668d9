"""Serving a record's content file: inline or to print (a marked print copy: Circular 05
Chương III), as a download (the stored file, signature intact), or as a first-page preview,
each a logged read (DESIGN.md: every view, print and download is logged)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web

from appliance.errors import NotFoundError
from appliance.results import Record
from appliance.store import Store

from .common import blocking, services
from .previews import preview_png
from .reqkeys import me

SHA256 = re.compile(r"^[0-9a-f]{64}$")


def content_entry(rec: Record, sha256: str) -> dict[str, Any]:
    for c in rec.data.get("Content") or ():
        if c.get("sha256") == sha256:
            return dict(c)
    raise web.HTTPNotFound()


async def send_content(request: web.Request, rec: Record, sha256: str) -> web.StreamResponse:
    s = services(request)
    if not SHA256.match(sha256):
        raise web.HTTPNotFound()
    entry = content_entry(rec, sha256)
    download = request.query.get("download") == "1"
    preview = request.query.get("preview") == "png" and entry["mime"] in (
        "image/tiff", "application/pdf")
    # Opening a PDF in the browser (from where it is printed) or asking to print gives the
    # print copy with its marks; a download is the stored file itself, signature intact.
    printable = not download and not preview and (
        request.query.get("print") == "1" or entry["mime"] == "application/pdf")
    action = "download" if download else "print" if printable else "view"
    await blocking(s.store.audit, action, me(request).username, "document", rec.id,
                   {"sha256": sha256, "via": "api" if request.path.startswith("/api/") else "web"})
    path = s.store.content.path(sha256)
    if not s.store.content.exists(sha256):
        raise NotFoundError(f"content {sha256} is missing from the content store")
    name = entry.get("name") or sha256
    if preview:
        if path.is_file():
            body = await preview_png(request.app, path, entry["mime"], s.config.preview_timeout)
        else:  # kept inside another version (appliance/versions.py): rebuilt, then drawn
            with s.store.content.as_file(sha256) as rebuilt:
                body = await preview_png(request.app, rebuilt, entry["mime"],
                                         s.config.preview_timeout)
        return web.Response(body=body, content_type="image/png")
    if printable:
        if path.is_file():
            copy = await blocking(print_copy_of, s.store, rec, entry, path)
        else:  # kept inside another version: rebuilt (and checked) first
            with s.store.content.as_file(sha256) as rebuilt:
                copy = await blocking(print_copy_of, s.store, rec, entry, rebuilt)
        stem = str(name).rsplit(".", 1)[0]
        return web.Response(body=copy, headers={
            "Content-Type": "application/pdf",
            "Content-Disposition": f"inline; filename*=UTF-8''{quote(stem)}.ban-in.pdf",
            "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})
    disposition = "attachment" if download else "inline"
    headers = {
        "Content-Type": entry["mime"],
        "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(name)}",
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    }
    if entry["mime"] == "text/html":
        # A stored page (an edXML signature report): its own inline style, nothing else; no
        # script, no fetch, sandboxed away from the application's origin.
        headers["Content-Security-Policy"] = (
            "default-src 'none'; style-src 'unsafe-inline'; sandbox; base-uri 'none'")
        headers["Content-Type"] = "text/html; charset=utf-8"
    if not path.is_file():
        data = await asyncio.to_thread(s.store.content.read, sha256)
        return web.Response(body=data, headers=headers)
    return web.FileResponse(path, headers=headers)


def print_copy_of(store: Store, rec: Record, entry: dict[str, Any], path: Path) -> bytes:
    """The print copy of a content file: the conversion mark (mã lưu trữ, converting agency)
    after the content of the last page and "BẢN SAO" on every page; images become PDF."""
    from appliance.identifiers import doc_code
    from appliance.printmark import Mark, print_copy

    body = path.read_bytes()
    if str(entry.get("mime")).startswith("image/"):
        import img2pdf

        body = bytes(img2pdf.convert(body))
    data = rec.data
    code = (doc_code(str(data["FileCode"]), int(data["DocOrdinal"]))
            if data.get("FileCode") and data.get("DocOrdinal") else f"(chưa lập hồ sơ) {rec.id}")
    return print_copy(body, Mark(code, store.config.org_name, store.clock.now(), copy=True))
