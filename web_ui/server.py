"""Running ``serve``: bind, start, print where to connect, stop cleanly on SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import sys

from aiohttp import web

from .app import Services, create_app
from .config import WebConfig
from .mdns import HOST_KEY, PORT_KEY, instance_name


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


def _urls(config: WebConfig, port: int, services: Services) -> list[str]:
    shown = "127.0.0.1" if config.host in ("0.0.0.0", "::", "") else config.host
    urls = [f"http://{shown}:{port}/"]
    if config.mdns:
        urls.append(f"http://{instance_name(services.org_name)}.local:{port}/ (mDNS)")
    return urls


async def serve_forever(config: WebConfig) -> None:
    sock = _bind(config.host, config.port)
    port = sock.getsockname()[1]
    ready: list[Services] = []
    app = create_app(config, on_ready=ready.append)
    app[HOST_KEY] = config.host
    app[PORT_KEY] = port
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.SockSite(runner, sock, shutdown_timeout=5.0)
    await site.start()
    services = ready[0]
    for url in _urls(config, port, services):
        print(f"luutru: serving {services.org_name} at {url}", flush=True)
    if services.key_backing == "software":
        print("luutru: WARNING: the device key is a SOFTWARE key (no TPM)", file=sys.stderr,
              flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        print("luutru: stopped", flush=True)


def run(config: WebConfig) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(serve_forever(config))
