"""mDNS: advertise the appliance as ``_http._tcp.local.`` under a name derived from the commune.

A clerk opens ``http://<name>.local:<port>/``. Registration runs in the background (probing
takes ~1.5 s) so it never delays the first answered request; it is withdrawn on shutdown.
Bound to loopback when the server is (tests), so nothing is multicast on the LAN then.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from appliance.text import fold

log = logging.getLogger(__name__)
SERVICE_TYPE = "_http._tcp.local."
HOST_KEY = web.AppKey("mdns_bind", str)
PORT_KEY = web.AppKey("mdns_port", int)
_ABBREVIATIONS = (
    ("uy ban nhan dan", "ubnd"),
    ("hoi dong nhan dan", "hdnd"),
)


def instance_name(org_name: str) -> str:
    """'Ủy ban nhân dân xã Đông Hải' -> 'ubnd-xa-dong-hai' (a valid DNS label, ≤ 63)."""
    text = fold(org_name)
    for long, short in _ABBREVIATIONS:
        text = text.replace(long, short)
    slug = re.sub(r"[^a-z0-9]+", "-", text).strip("-")
    return (slug or "luutru")[:63].rstrip("-")


def _addresses(bind: str) -> tuple[list[str] | None, list[bytes]]:
    """(interfaces for zeroconf, addresses to announce)."""
    if bind in ("127.0.0.1", "localhost"):
        return ["127.0.0.1"], [socket.inet_aton("127.0.0.1")]
    if bind not in ("0.0.0.0", "", "::"):
        return [bind], [socket.inet_aton(bind)]
    import ifaddr  # every interface of the office LAN

    addrs = [
        ip.ip for adapter in ifaddr.get_adapters() for ip in adapter.ips
        if isinstance(ip.ip, str) and not ip.ip.startswith("127.")
    ]
    return None, [socket.inet_aton(a) for a in addrs]


async def advertise(org_name: str, bind: str, port: int) -> tuple[Any, Any]:
    from zeroconf import IPVersion, ServiceInfo
    from zeroconf.asyncio import AsyncZeroconf

    interfaces, addresses = _addresses(bind)
    name = instance_name(org_name)
    kw: dict[str, Any] = {"ip_version": IPVersion.V4Only}
    if interfaces is not None:
        kw["interfaces"] = interfaces
    azc = AsyncZeroconf(**kw)
    info = ServiceInfo(
        SERVICE_TYPE,
        f"{name}.{SERVICE_TYPE}",
        addresses=addresses,
        port=port,
        properties={"path": "/", "product": "luutru"},
        server=f"{name}.local.",
    )
    # The coroutine returns a task that completes when probing and announcing are done.
    await (await azc.async_register_service(info, allow_name_change=True))
    return azc, info


async def mdns_ctx(app: web.Application) -> AsyncIterator[None]:
    from .services import SERVICES

    services = app[SERVICES]
    bind = app.get(HOST_KEY, services.config.host)
    port = app.get(PORT_KEY, services.config.port)
    state: dict[str, Any] = {}

    async def register() -> None:
        try:
            state["zc"] = await advertise(services.org_name, bind, port)
            log.info("mDNS: %s advertised on port %d", instance_name(services.org_name), port)
        except Exception:  # the UI works without mDNS; say why it is missing
            log.exception("mDNS advertisement failed")

    task = asyncio.create_task(register())
    yield
    # A registration still probing is let finish, so that it can be withdrawn properly.
    try:
        await asyncio.wait_for(asyncio.shield(task), timeout=5.0)
    except (TimeoutError, asyncio.CancelledError):
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    if "zc" in state:
        azc, info = state["zc"]
        try:
            await (await azc.async_unregister_service(info))  # goodbye packets sent
        finally:
            await azc.async_close()
