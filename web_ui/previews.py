"""The first page of a scan as PNG, within a pixel budget, a memory limit and a bounded count.

Browsers on office PCs often show neither PDF nor TIFF, so the document page shows a PNG of
the first page. A PDF page can claim any size (a 14400 pt square at 80 dpi is a 1 GB bitmap),
so poppler is asked to fit the page into ``MAX_SIDE`` pixels (``-scale-to``: it computes the
resolution from the page's own size), the renderer runs under an address-space and CPU limit
(``prlimit``), and at most ``WebConfig.preview_renders`` renders run at once; the others wait
their turn for a while, then get a clear "busy" answer. A render that fails, runs out of time
or memory is a clear Vietnamese message (with English after it), never a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import shutil
from pathlib import Path
from typing import Any

from aiohttp import web

from appliance.errors import NotFoundError

from .errors import WebError

MAX_SIDE = 1000  # pixels of the longer side; an A4 page comes out at about 85 dpi
MEMORY = 256 << 20  # address space of the renderer; a 1000-px page needs about 15 MB
CPU_SECONDS = 20
PNG_END = b"IEND\xaeB`\x82"
RENDERS = web.AppKey("preview_renders", asyncio.Semaphore)


class PreviewError(WebError):
    """The first page could not be rendered within the limits; the file itself is intact."""

    status = 422


class PreviewBusyError(WebError):
    """Every preview slot stayed busy while the request waited; trying again later helps."""

    status = 503
    retryable = True

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def setup_previews(app: web.Application, renders: int) -> None:
    """Give the application its bound on concurrent renders."""
    app[RENDERS] = asyncio.Semaphore(max(1, renders))


def _failed(what: str) -> PreviewError:
    return PreviewError(
        "Không tạo được ảnh xem trước trang đầu: tệp quá lớn hoặc quá phức tạp để xem trước. "
        f"Hãy tải tệp về để xem (the first page could not be previewed: {what})."
    )


def pdf_command(path: Path | None, page: int = 1, side: int = MAX_SIDE) -> list[str]:
    """pdftoppm fitting ``page`` into ``side`` pixels, under prlimit's memory and CPU limits
    (``path`` None: the PDF comes on standard input)."""
    exe = shutil.which("pdftoppm")
    if exe is None:
        raise NotFoundError("pdftoppm (poppler-utils) is not installed: no preview")
    cmd = [exe, "-png", "-scale-to", str(side), "-f", str(page), "-l", str(page), "-singlefile",
           "-" if path is None else str(path)]
    limiter = shutil.which("prlimit")  # util-linux: on every Debian system
    if limiter is None:
        raise NotFoundError("prlimit (util-linux) is not installed: no preview")
    return [limiter, f"--as={MEMORY}", f"--cpu={CPU_SECONDS}", "--", *cmd]


async def pdf_preview(path: Path | None, timeout: float, page: int = 1, side: int = MAX_SIDE,
                      data: bytes | None = None) -> bytes:
    """A page of a PDF (the file at ``path``, or ``data``) as PNG; the renderer is killed when
    the request goes away."""
    proc = await asyncio.create_subprocess_exec(
        *pdf_command(path, page, side), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        stdin=asyncio.subprocess.DEVNULL if data is None else asyncio.subprocess.PIPE,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(data), timeout)
    except TimeoutError:
        raise _failed(f"no answer within {timeout:.0f} s") from None
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    # Out of memory, poppler may still exit 0 with a cut PNG: a whole one ends with IEND.
    if proc.returncode != 0 or not out.startswith(b"\x89PNG") or not out.endswith(PNG_END):
        raise _failed(f"the renderer stopped (exit {proc.returncode})")
    return out


def tiff_preview(path: Path) -> bytes:
    """The first page of a TIFF as PNG, fitted into MAX_SIDE pixels (only Safari shows TIFF).
    The upload check bounded its pixels; this runs in a thread, one slot of the bound."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.seek(0)
            frame = img.convert("RGB") if img.mode not in ("1", "L", "RGB") else img.copy()
    except (OSError, ValueError, MemoryError) as exc:
        raise _failed(type(exc).__name__) from None
    frame.thumbnail((MAX_SIDE, MAX_SIDE))
    out = io.BytesIO()
    frame.save(out, "PNG")
    return out.getvalue()


async def preview_png(app: web.Application, path: Path, mime: str, timeout: float) -> bytes:
    """The PNG preview, rendered in one of the application's slots (waiting ``timeout`` s at
    most for one)."""
    slots = app[RENDERS]
    if not await _acquire(slots, timeout):
        raise PreviewBusyError(
            "Máy đang bận tạo ảnh xem trước cho người khác; hãy thử lại sau ít phút "
            "(previews are busy; try again in a few minutes).", retry_after=30
        )
    if mime == "application/pdf":
        try:
            return await pdf_preview(path, timeout)
        finally:
            slots.release()
    # A thread cannot be stopped: its slot is given back when it ends, not when the request
    # does, so an abandoned request still counts until its render is over.
    fut = asyncio.get_running_loop().run_in_executor(None, tiff_preview, path)
    fut.add_done_callback(lambda _: slots.release())
    return await asyncio.shield(fut)


async def page_png(app: web.Application, pdf: bytes, page: int, side: int,
                   timeout: float) -> bytes:
    """Page ``page`` of the PDF ``pdf`` (kept in memory: no copy on disk) as PNG, in one of
    the application's slots, as ``preview_png``."""
    slots = app[RENDERS]
    if not await _acquire(slots, timeout):
        raise PreviewBusyError(
            "Máy đang bận tạo ảnh trang cho người khác; hãy thử lại sau ít phút "
            "(page renders are busy; try again in a few minutes).", retry_after=30
        )
    try:
        return await pdf_preview(None, timeout, page, side, data=pdf)
    finally:
        slots.release()


async def _acquire(slots: asyncio.Semaphore, timeout: float) -> bool:
    """Take a slot within ``timeout`` seconds; a slot granted as the wait ends, or to a
    request that went away meanwhile, is given back rather than lost."""
    task = asyncio.ensure_future(slots.acquire())
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout)
    except asyncio.CancelledError:
        _give_back(task, slots)
        raise
    if done:
        return True
    _give_back(task, slots)
    return False


def _give_back(task: asyncio.Future[Any], slots: asyncio.Semaphore) -> None:
    if task.done() and not task.cancelled():
        slots.release()
        return
    task.cancel()
    task.add_done_callback(lambda t: None if t.cancelled() else slots.release())
