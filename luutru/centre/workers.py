"""`luutru central serve --workers N`: N intake worker processes on one port.

The supervisor binds the listening socket once and hands it to N worker processes
(``python -m luutru.centre.workers --fd …``, the descriptor inherited); each worker opens the
centre itself (its own PostgreSQL connections, the shared folder blob store) and runs the
aiohttp application on that socket, so the kernel spreads connections over them. Per-appliance
ordering is the database's (row locks), so any worker may take any request. A worker that dies
is restarted; SIGTERM/SIGINT stop them all. SQLite has one writer per file: more than one
worker is refused for it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Any

from appliance.errors import ConfigError
from sync.central.centre import CONFIG_NAME

STOP_GRACE_S = 15.0


def database_url(data_dir: Path) -> str:
    """The ``db`` of a centre folder's configuration, without opening anything."""
    try:
        return str(json.loads((data_dir / CONFIG_NAME).read_text("utf-8"))["db"])
    except FileNotFoundError:
        raise ConfigError(
            f"{data_dir} is not a centre folder (no {CONFIG_NAME}); run `luutru central init`"
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"cannot read {data_dir / CONFIG_NAME}: {exc}") from exc


def check_workers(data_dir: Path, workers: int) -> None:
    if workers < 1:
        raise ConfigError("--workers must be at least 1")
    url = database_url(data_dir)
    if workers > 1 and not url.startswith(("postgresql:", "postgres:")):
        raise ConfigError(
            f"--workers {workers} needs PostgreSQL: this centre's storage is {url}, and SQLite "
            "has a single writer, so only one worker may use it. Run with --workers 1, or "
            "create the centre with `luutru central init --db postgresql://…`."
        )


def listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def _spawn(data_dir: Path, sock: socket.socket, k: int,
           trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = ()) -> subprocess.Popen[bytes]:
    fd = sock.fileno()
    proxies = [arg for net in trusted_proxies for arg in ("--trusted-proxy", str(net))]
    return subprocess.Popen(
        [sys.executable, "-m", "luutru.centre.workers", "--data", str(data_dir), "--fd", str(fd),
         "--index", str(k), *proxies],
        pass_fds=(fd,),
    )


def serve_workers(data_dir: Path, host: str, port: int, workers: int,
                  trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = ()) -> int:
    """Supervise ``workers`` processes on one socket until SIGTERM/SIGINT; returns 0."""
    check_workers(data_dir, workers)
    sock = listen(host, port)
    port = int(sock.getsockname()[1])
    stopping = False

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    procs = {k: _spawn(data_dir, sock, k, trusted_proxies) for k in range(workers)}
    shown = f"[{host}]" if ":" in host else host
    print(json.dumps({"listening": f"http://{shown}:{port}", "workers": workers}), flush=True)
    restarts: dict[int, float] = {}
    while not stopping:
        time.sleep(0.2)
        for k, p in list(procs.items()):
            code = p.poll()
            if code is None or stopping:
                continue
            print(f"worker {k} (pid {p.pid}) exited with {code}; restarting", file=sys.stderr,
                  flush=True)
            if time.monotonic() - restarts.get(k, 0.0) < 1.0:
                time.sleep(1.0)  # a worker that cannot start must not spin
            restarts[k] = time.monotonic()
            procs[k] = _spawn(data_dir, sock, k, trusted_proxies)
    for p in procs.values():
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for p in procs.values():
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    sock.close()
    return 0


def _worker_main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="luutru-centre-worker")
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--fd", type=int, required=True)
    ap.add_argument("--index", type=int, default=0)
    ap.add_argument("--trusted-proxy", action="append", default=[])
    a = ap.parse_args(argv)
    import logging

    from aiohttp import web

    from sync.central.centre import open_centre
    from sync.central.server import SHUTDOWN_S
    from web_ui.central.proxy import parse_networks

    from .app import create_app

    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s %(levelname)s worker{a.index} %(name)s %(message)s",
    )
    sock = socket.socket(fileno=a.fd)
    with open_centre(a.data) as c:
        app = create_app(c, trusted_proxies=parse_networks(a.trusted_proxy))
        web.run_app(app, sock=sock, print=None, access_log=None, shutdown_timeout=SHUTDOWN_S)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    _worker_main()
