"""What `luutru serve` runs beside the pages: the sync agent, the capture worker (OCR and
signing of scans), the archive's scheduled backups and fixity audits, the scan sources
configured in ``<data>/capture.json`` (a watch folder, a serial barcode reader), and the edXML
exchange configured in ``<data>/edxml.json`` (an exchange folder or a provincial LGSP).

Each is the library's own loop; this module only starts them with the served Store (the one
writer) and stops them on shutdown. A failing service is logged and restarted with back-off;
it never takes the web UI down.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from appliance.store import Store

log = logging.getLogger(__name__)

ARCHIVE_EVERY_S = 3600.0  # the archive scheduler decides what is due; hourly is enough
ARCHIVE_FIRST_S = 600.0  # not while the office is just starting work after a power cut


async def _supervise(name: str, run: Callable[[], Awaitable[None]], stop: asyncio.Event) -> None:
    delay = 5.0
    while not stop.is_set():
        try:
            await run()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed; restarting in %.0f s", name, delay)
        try:
            await asyncio.wait_for(stop.wait(), delay)
        except TimeoutError:
            delay = min(600.0, delay * 2)


async def _capture_worker(store: Store, stop: asyncio.Event) -> None:
    from appliance.capture.worker import Worker

    await _in_thread(Worker(store, actor="capture").run_forever, stop)


async def _in_thread(run: Callable[[threading.Event], None], stop: asyncio.Event) -> None:
    """Run a library loop that takes a threading.Event until ``stop`` is set."""
    flag = threading.Event()
    waiter = asyncio.create_task(stop.wait())
    waiter.add_done_callback(lambda _: flag.set())
    try:
        await asyncio.to_thread(run, flag)
    finally:
        flag.set()
        waiter.cancel()


def capture_sources(store: Store) -> dict[str, Callable[[threading.Event], None]]:
    """The scan sources named in ``<data>/capture.json``: a watch folder that a scan-to-folder
    printer writes into, and a serial barcode reader whose codes route the next batch to a
    hồ sơ or document, e.g. ``{"watch_folder": "/srv/scans", "serial_port": "/dev/ttyACM0"}``.
    """
    path = store.data_dir / "capture.json"
    if not path.is_file():
        return {}
    import json

    from appliance.capture.batch import Capture
    from appliance.capture.routing import BarcodeRouter, SerialReader, store_exists
    from appliance.capture.sources.folder import WatchFolder
    from appliance.errors import ConfigError

    try:
        raw = json.loads(path.read_text("utf-8"))
        folder, port = raw.get("watch_folder"), raw.get("serial_port")
        terminator = str(raw.get("serial_terminator", "\r")).encode().decode("unicode_escape")
        baudrate = int(raw.get("serial_baudrate", 9600))
    except (ValueError, AttributeError) as exc:
        raise ConfigError(f"{path} is malformed: {exc}") from exc
    router = BarcodeRouter(store_exists(store))
    out: dict[str, Callable[[threading.Event], None]] = {}
    if port:

        def read_codes(flag: threading.Event) -> None:
            reader = SerialReader(str(port), router, terminator.encode(), baudrate)
            try:
                reader.run_forever(flag)
            finally:
                reader.close()

        out["barcode reader"] = read_codes
    if folder:
        watch = WatchFolder(Path(folder), Capture(store), router)
        out["watch folder"] = watch.run_forever
    return out


async def _archive_scheduler(store: Store, stop: asyncio.Event) -> None:
    """Backups and fixity audits read every content file and the whole log: each pass runs
    in a niced child process (its own Store; SQLite serialises the two writers), so that the
    clerks' pages never wait behind it."""
    delay = ARCHIVE_FIRST_S
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
        if stop.is_set():
            return
        delay = ARCHIVE_EVERY_S
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "web_ui.background", "archive-once", str(store.data_dir),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            log.warning("archive pass failed (%s): %s", proc.returncode, out.decode()[-2000:])
            continue
        try:
            result = json.loads(out.decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            log.warning("archive pass said: %s", out.decode()[-2000:])
            continue
        for err in result.get("errors", []):
            log.warning("archive scheduler: %s", err)


def archive_once(data_dir: Path) -> dict[str, Any]:
    """One archive pass in this process (the child that `_archive_scheduler` starts)."""
    from appliance.archive.scheduler import load_archive_config, run_once

    os.nice(10)
    with Store.open(data_dir) as store:
        return run_once(store, load_archive_config(data_dir))


def edxml_exchange(store: Store) -> Callable[[threading.Event], None] | None:
    """The edXML exchange loop when ``<data>/edxml.json`` configures one."""
    from appliance.edxml.signing import open_signer
    from sync.edxml.exchange import load_config, run_forever

    config = load_config(store.data_dir)
    if config is None:
        return None

    def run(flag: threading.Event) -> None:
        run_forever(store, config, flag, lambda: open_signer(store.data_dir))

    return run


async def _sync_agent(store: Store, stop: asyncio.Event) -> None:
    from sync.agent import run_agent

    await run_agent(store.data_dir, stop, store=store)


def background_ctx(
    store_of: Callable[[web.Application], Store],
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context starting the services once the store is open."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        store = store_of(app)
        if store.is_halted:  # nothing may be written: no sync, OCR or backups until repaired
            log.error("background services not started: the store is halted")
            yield
            return
        stop = asyncio.Event()
        services: dict[str, Callable[[], Awaitable[None]]] = {
            "sync agent": lambda: _sync_agent(store, stop),
            "capture worker": lambda: _capture_worker(store, stop),
            "archive scheduler": lambda: _archive_scheduler(store, stop),
        }
        try:
            sources = capture_sources(store)
        except Exception:  # a bad capture.json must not stop the web UI; say why
            log.exception("scan sources from capture.json not started")
            sources = {}
        try:
            exchange = edxml_exchange(store)
        except Exception:  # a bad edxml.json must not stop the web UI either
            log.exception("edXML exchange from edxml.json not started")
            exchange = None
        if exchange is not None:
            sources["edxml exchange"] = exchange
        for name, run in sources.items():
            services[name] = functools.partial(_in_thread, run, stop)
        tasks = [
            asyncio.create_task(_supervise(name, run, stop), name=name)
            for name, run in services.items()
        ]
        yield
        stop.set()
        _, pending = await asyncio.wait(tasks, timeout=15)
        for t in pending:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    return ctx


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "archive-once":
        print(json.dumps(archive_once(Path(sys.argv[2])), ensure_ascii=False, default=str))
    else:
        raise SystemExit("usage: python -m web_ui.background archive-once DATA_DIR")
