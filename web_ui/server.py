"""Running ``serve``: bind, start, print where to connect, stop cleanly on SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import faulthandler
import gc
import logging
import signal
import socket
import ssl
import sys

from aiohttp import web

from appliance.sdnotify import notify, watchdog_interval

from .app import create_app
from .config import WebConfig
from .mdns import HOST_KEY, PORT_KEY, instance_name
from .services import Services


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


def _urls(config: WebConfig, port: int, services: Services) -> list[str]:
    shown = "127.0.0.1" if config.host in ("0.0.0.0", "::", "") else config.host
    scheme = "https" if config.tls_cert else "http"
    urls = [f"{scheme}://{shown}:{port}/"]
    if config.mdns:
        urls.append(f"{scheme}://{instance_name(services.org_name)}.local:{port}/ (mDNS)")
    return urls


def _ssl_context(config: WebConfig) -> ssl.SSLContext | None:
    if config.tls_cert is None or config.tls_key is None:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(config.tls_cert, config.tls_key)
    return ctx


async def serve_forever(config: WebConfig) -> None:
    sock = _bind(config.host, config.port)
    port = sock.getsockname()[1]
    ready: list[Services] = []
    app = create_app(config, on_ready=ready.append)
    app[HOST_KEY] = config.host
    app[PORT_KEY] = port
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.SockSite(runner, sock, shutdown_timeout=5.0, ssl_context=_ssl_context(config))
    await site.start()
    services = ready[0]
    # What start-up built (modules, templates, code lists) lives as long as the process: out
    # of the collector's way, so that a full collection under load walks only newer objects.
    gc.collect()
    gc.freeze()
    for url in _urls(config, port, services):
        print(f"luutru: serving {services.org_name} at {url}", flush=True)
    if services.key_backing == "software":
        print("luutru: WARNING: the device key is a SOFTWARE key (no TPM)", file=sys.stderr,
              flush=True)
    if services.store.is_halted:
        for f in services.store.faults:
            print(f"luutru: HALTED, nothing is written: {f.english} To repair: {f.recovery}",
                  file=sys.stderr, flush=True)
    state = "halted" if services.store.is_halted else "serving"
    notify(f"READY=1\nSTATUS={state} {services.org_name} on port {port}")
    pinger = asyncio.create_task(watchdog(watchdog_interval()))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        notify("STOPPING=1")
        pinger.cancel()
        await runner.cleanup()
        print("luutru: stopped", flush=True)


async def watchdog(interval: float | None) -> None:
    """Tell systemd the event loop turns (WATCHDOG=1) every ``interval`` seconds: a task on
    the loop itself, so that a loop blocked by a hung call stops the pings and systemd kills
    and restarts the process (the web unit's WatchdogSec)."""
    if interval is None:
        return
    while True:
        notify("WATCHDOG=1")
        await asyncio.sleep(interval)


def run(config: WebConfig) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # When the watchdog kills a hung server (SIGABRT), every thread's stack goes to the journal.
    faulthandler.enable()
    asyncio.run(serve_forever(config))
