"""Who the client is when the centre sits behind a TLS-terminating reverse proxy.

Only a peer inside the networks given by ``luutru central serve --trusted-proxy`` may tell,
in ``X-Forwarded-For`` and ``X-Forwarded-Proto``, which address and scheme the client used;
anyone else's headers are ignored, so a client cannot pick its own throttle key or claim
https. Behind a trusted proxy:

- the client is the right-most ``X-Forwarded-For`` address that is not itself a trusted proxy
  (what a client prepends is never read); an unreadable entry leaves the proxy's own address;
- the scheme is ``X-Forwarded-Proto`` when the proxy sends it, else https (the setting says
  that the proxy terminates TLS), so cookies are Secure and HSTS is sent.

``Forwarded`` (RFC 7239) is not read: nginx, HAProxy and Caddy all send the X- headers.
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network

from aiohttp import web
from aiohttp.typedefs import Middleware

from .auth import Handler, is_dashboard_path

Network = IPv4Network | IPv6Network


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """Addresses or CIDR blocks (``10.0.0.5``, ``10.0.0.0/24``, ``::1``); ValueError if not."""
    return tuple(ip_network(v.strip(), strict=False) for v in values)


def _in(networks: tuple[Network, ...], addr: str | None) -> bool:
    if not addr:
        return False
    try:
        ip = ip_address(addr)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def forwarded_client(networks: tuple[Network, ...], peer: str, forwarded_for: list[str]) -> str:
    """The client address a trusted proxy ``peer`` reports, or ``peer`` itself."""
    hops = [h.strip() for header in forwarded_for for h in header.split(",") if h.strip()]
    for hop in reversed(hops):
        try:
            ip_address(hop)
        except ValueError:
            return peer
        if not _in(networks, hop):
            return hop
    return peer


def forwarded_middleware(networks: tuple[Network, ...]) -> Middleware:
    """A middleware that, for a dashboard request from a trusted proxy, makes
    ``request.remote`` the client's address and ``request.scheme`` the client's scheme."""

    @web.middleware
    async def forwarded(request: web.Request, handler: Handler) -> web.StreamResponse:
        peer = request.remote
        if not networks or not is_dashboard_path(request.path) or not _in(networks, peer):
            return await handler(request)
        assert peer is not None  # _in is False for None
        client = forwarded_client(networks, peer, request.headers.getall("X-Forwarded-For", []))
        proto = request.headers.get("X-Forwarded-Proto", "https").split(",")[-1].strip().lower()
        scheme = proto if proto in ("http", "https") else "https"
        return await handler(request.clone(remote=client, scheme=scheme))

    return forwarded
