"""An eSCL (AirScan) scanner emulator: platen + feeder, PNG/JPEG, for tests on loopback.

usage: python -m tests.capture.escl_emulator HOST PORT [--adf-pages N] [--die-after K]
       [--formats image/png,image/jpeg] [--mdns NAME]

It speaks the protocol our client and sane-airscan use (ScannerCapabilities, ScannerStatus,
ScanJobs, NextDocument until 404, DELETE). ``--die-after K`` ends the process abruptly while
serving document K+1, as a scanner that is unplugged mid-batch. ``--mdns NAME`` announces
`_uscan._tcp` on the given HOST only (tests use 127.0.0.1: never the LAN).
"""

from __future__ import annotations

import argparse
import io
import os
import socket
import sys
import uuid
import xml.etree.ElementTree as ET
from typing import Any

from aiohttp import web
from PIL import Image, ImageDraw, ImageFont

NS = {
    "scan": "http://schemas.hp.com/imaging/escl/2011/05/03",
    "pwg": "http://www.pwg.org/schemas/2010/12/sm",
}
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def caps_input(tag: str, formats: list[str]) -> str:
    fmts = "".join(
        f"<pwg:DocumentFormat>{f}</pwg:DocumentFormat><scan:DocumentFormatExt>{f}"
        "</scan:DocumentFormatExt>"
        for f in formats
    )
    res = "".join(
        f"<scan:DiscreteResolution><scan:XResolution>{r}</scan:XResolution>"
        f"<scan:YResolution>{r}</scan:YResolution></scan:DiscreteResolution>"
        for r in (150, 200, 300)
    )
    return (
        f"<scan:{tag}><scan:MinWidth>16</scan:MinWidth><scan:MaxWidth>2550</scan:MaxWidth>"
        "<scan:MinHeight>16</scan:MinHeight><scan:MaxHeight>3508</scan:MaxHeight>"
        "<scan:MaxScanRegions>1</scan:MaxScanRegions><scan:SettingProfiles><scan:SettingProfile>"
        "<scan:ColorModes><scan:ColorMode>RGB24</scan:ColorMode>"
        "<scan:ColorMode>Grayscale8</scan:ColorMode></scan:ColorModes>"
        f"<scan:DocumentFormats>{fmts}</scan:DocumentFormats><scan:SupportedResolutions>"
        f"<scan:DiscreteResolutions>{res}</scan:DiscreteResolutions></scan:SupportedResolutions>"
        "</scan:SettingProfile></scan:SettingProfiles><scan:SupportedIntents>"
        f"<scan:Intent>Document</scan:Intent></scan:SupportedIntents></scan:{tag}>"
    )


def capabilities(formats: list[str]) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<scan:ScannerCapabilities xmlns:scan="{NS["scan"]}" xmlns:pwg="{NS["pwg"]}">'
        "<pwg:Version>2.63</pwg:Version><pwg:MakeAndModel>luutru test eSCL Emulator"
        "</pwg:MakeAndModel><pwg:SerialNumber>EMU0001</pwg:SerialNumber>"
        "<scan:UUID>4509a320-00a0-008f-00b6-002507510eca</scan:UUID>"
        f"<scan:Platen>{caps_input('PlatenInputCaps', formats)}</scan:Platen>"
        f"<scan:Adf>{caps_input('AdfSimplexInputCaps', formats)}"
        "<scan:FeederCapacity>50</scan:FeederCapacity></scan:Adf></scan:ScannerCapabilities>"
    )


def render(job: dict[str, Any], n: int) -> bytes:
    dpi = job["res"]
    w, h = max(16, job["w"] * dpi // 300), max(16, job["h"] * dpi // 300)
    img = Image.new("RGB" if job["color"] == "RGB24" else "L", (w, h), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(FONT, max(8, dpi * 14 // 72))
    draw.text((dpi // 2, dpi // 2), f"Trang {n} — Quyết định số {n}/QĐ-UBND", font=font, fill=0)
    out = io.BytesIO()
    fmt = "PNG" if job["fmt"] == "image/png" else "JPEG"
    img.save(out, fmt, dpi=(dpi, dpi))
    return out.getvalue()


def make_app(adf_pages: int, die_after: int | None, formats: list[str]) -> web.Application:
    jobs: dict[str, dict[str, Any]] = {}
    served = [0]

    async def caps(_r: web.Request) -> web.Response:
        return web.Response(text=capabilities(formats), content_type="text/xml")

    async def status(_r: web.Request) -> web.Response:
        js = "".join(
            f"<scan:JobInfo><pwg:JobUri>/eSCL/ScanJobs/{j}</pwg:JobUri>"
            f"<pwg:JobUuid>{j}</pwg:JobUuid><pwg:JobState>"
            f"{'Completed' if v['left'] == 0 else 'Processing'}</pwg:JobState></scan:JobInfo>"
            for j, v in jobs.items()
        )
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f'<scan:ScannerStatus xmlns:scan="{NS["scan"]}" xmlns:pwg="{NS["pwg"]}">'
            "<pwg:Version>2.63</pwg:Version><pwg:State>Idle</pwg:State>"
            f"<scan:Jobs>{js}</scan:Jobs></scan:ScannerStatus>"
        )
        return web.Response(text=body, content_type="text/xml")

    async def create(r: web.Request) -> web.Response:
        x = ET.fromstring(await r.read())

        def g(path: str, default: Any) -> Any:
            return x.findtext(path, namespaces=NS) or default

        fmt = g(".//scan:DocumentFormatExt", g(".//pwg:DocumentFormat", "image/jpeg"))
        if fmt not in formats:
            raise web.HTTPConflict(text=f"format {fmt} not supported")
        job = {
            "res": int(g(".//scan:XResolution", 300)),
            "color": g(".//scan:ColorMode", "RGB24"),
            "fmt": fmt,
            "w": int(g(".//pwg:Width", 2480)),
            "h": int(g(".//pwg:Height", 3508)),
            "left": adf_pages if g(".//pwg:InputSource", "Platen") == "Feeder" else 1,
            "n": 0,
        }
        jid = str(uuid.uuid4())
        jobs[jid] = job
        return web.Response(status=201, headers={"Location": f"/eSCL/ScanJobs/{jid}"})

    async def next_doc(r: web.Request) -> web.Response:
        job = jobs.get(r.match_info["jid"])
        if not job or job["left"] == 0:
            raise web.HTTPNotFound()
        if die_after is not None and served[0] >= die_after:
            os._exit(3)  # unplugged: no answer, the connection just drops
        job["left"] -= 1
        job["n"] += 1
        served[0] += 1
        return web.Response(body=render(job, job["n"]), content_type=job["fmt"])

    async def delete(r: web.Request) -> web.Response:
        jobs.pop(r.match_info["jid"], None)
        return web.Response()

    app = web.Application()
    app.add_routes(
        [
            web.get("/eSCL/ScannerCapabilities", caps),
            web.get("/eSCL/ScannerStatus", status),
            web.post("/eSCL/ScanJobs", create),
            web.get("/eSCL/ScanJobs/{jid}/NextDocument", next_doc),
            web.delete("/eSCL/ScanJobs/{jid}", delete),
        ]
    )
    return app


def advertise(host: str, port: int, name: str) -> Any:
    """Announce `_uscan._tcp` on ``host``'s interface only."""
    from zeroconf import IPVersion, ServiceInfo, Zeroconf

    zc = Zeroconf(interfaces=[host], ip_version=IPVersion.V4Only)
    info = ServiceInfo(
        "_uscan._tcp.local.",
        f"{name}._uscan._tcp.local.",
        addresses=[socket.inet_aton(host)],
        port=port,
        properties={"rs": "eSCL", "ty": name, "pdl": "image/png,image/jpeg", "vers": "2.63"},
        server="luutru-escl-emu.local.",
    )
    zc.register_service(info)
    return zc


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--adf-pages", type=int, default=3)
    p.add_argument("--die-after", type=int, default=None)
    p.add_argument("--formats", default="image/png,image/jpeg")
    p.add_argument("--mdns", default=None)
    a = p.parse_args(argv)
    zc = advertise(a.host, a.port, a.mdns) if a.mdns else None
    app = make_app(a.adf_pages, a.die_after, a.formats.split(","))
    try:
        web.run_app(
            app,
            host=a.host,
            port=a.port,
            print=lambda *_: print("eSCL emulator up", flush=True),
            handle_signals=True,
        )
    finally:
        if zc is not None:
            zc.close()
    sys.exit(0)


if __name__ == "__main__":
    main()
