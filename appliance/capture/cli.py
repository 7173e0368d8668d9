"""Commands of the scanning (scan).

`register(main)` adds them to the `luutru` group.

Import only click at module level: heavy imports go inside the command bodies, so that
`luutru --help` stays fast on a small box.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

STAGES = ("scan", "normalise", "drop_blank", "split", "assemble", "store", "ocr", "sign")


def _data_dir(data: Path | None) -> Path:
    from ..config import resolve_data_dir

    return resolve_data_dir(data)


def _emit(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False))


def _fields(values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"'{item}' is not KEY=VALUE", param_hint="--field")
        out[key.strip()] = value
    return out


class _Bar:
    """One progress bar on stderr over the capture stages; the label says pages and step."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.pages = 0
        self._bar: Any = None
        if enabled:
            self._bar = click.progressbar(
                length=len(STAGES), label="scan", file=sys.stderr, show_eta=False, width=24
            )
            self._bar.__enter__()

    def stage(self, name: str, extra: str = "") -> None:
        if self._bar is None:
            return
        pos = STAGES.index(name) + 1 if name in STAGES else self._bar.pos
        self._bar.label = f"{name} ({self.pages} trang/pages){extra}"
        self._bar.update(max(0, pos - self._bar.pos))

    def page(self, n: int, _name: str) -> None:
        self.pages = n
        self.stage("scan")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None


def make_source(spec: str, opts: dict[str, Any]) -> Any:
    """A Source for SOURCE: sane:DEVICE, escl:URL or auto (folder: is handled by the caller)."""
    from .errors import SourceError

    kind, _, rest = spec.partition(":")
    if kind == "sane":
        from .sources.sane import SaneSource

        return SaneSource(
            rest,
            dpi=opts["dpi"],
            mode=opts["mode"],
            adf=opts["adf"],
            count=opts["pages"],
            options=tuple(opts["sane_option"]),
        )
    if kind == "escl":
        from .sources.escl import EsclSource

        return EsclSource(
            rest, dpi=opts["dpi"], colour=opts["mode"] != "Gray", adf=opts["adf"]
        )
    if spec == "auto":
        from .sources.escl import discover
        from .sources.sane import list_devices

        devices = list_devices()
        if devices:
            return make_source(f"sane:{devices[0]}", opts)
        found = discover(timeout=3.0)
        if found:
            return make_source(f"escl:{found[0].url}", opts)
        raise SourceError("no scanner found: no SANE device and no eSCL scanner on the network")
    raise click.BadParameter(
        f"'{spec}' is not sane:DEVICE, escl:URL, folder:PATH or auto", param_hint="--source"
    )


def _document_json(store: Any, doc_id: str, batch_id: str) -> dict[str, Any]:
    rec = store.get("document", doc_id)
    return {
        "id": rec.id,
        "version": rec.version,
        "batch": batch_id,
        "content": [
            {"name": c.get("name"), "sha256": c["sha256"], "size": c["size"], "mime": c["mime"]}
            for c in rec.data.get("Content") or []
        ],
        "data": rec.data,
    }


def register(main: click.Group) -> None:
    """Add this part's commands to the `luutru` group."""
    main.add_command(scan)
    main.add_command(capture)


def _work_now(store: Any, config: Any, queue: Any, bar: _Bar) -> None:
    """``scan --wait``: run the batch's OCR and signing jobs here, showing each."""
    from .worker import Worker

    worker = Worker(store, config, queue)
    worker.queue.make_due()

    def on_job(outcome: Any) -> None:
        bar.stage(outcome.job.kind.value, "" if outcome.ok else " (lỗi/error)")
        if not outcome.ok:
            click.echo(f"\n{outcome.job.kind.value}: {outcome.error}", err=True)

    worker.drain(on_job)


def _report(store: Any, results: list[Any], as_json: bool) -> None:
    """Each scanned document: a JSON line, or its id, hồ sơ, pages and batch."""
    for res in results:
        for note in res.notes:
            click.echo(f"note: {note}", err=True)
        for d in res.documents:
            if as_json:
                _emit(_document_json(store, d.id, res.batch_id))
            else:
                click.echo(
                    f"{d.id}  {d.data.get('FileCode') or '—'}  "
                    f"{d.data.get('PageAmount') or ''} trang  batch {res.batch_id}"
                )


@click.command("scan")
@click.option("--data", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option(
    "--source",
    "source_spec",
    default="auto",
    show_default=True,
    help="sane:DEVICE (sane:test = first device of that backend), escl:URL, folder:PATH "
    "or auto.",
)
@click.option("--to", "file_code", default=None, help="Mã hồ sơ to file the pages in.")
@click.option("--doc", "doc_id", default=None, help="Add the scan to this document.")
@click.option("--dpi", type=click.IntRange(200, 1200), default=300, show_default=True)
@click.option(
    "--mode", type=click.Choice(["Color", "Gray"]), default="Color", show_default=True
)
@click.option("--adf", is_flag=True, help="Scan from the document feeder until it is empty.")
@click.option("--pages", type=int, default=None, help="Flatbed: pages to scan (default 1).")
@click.option(
    "--sane-option", multiple=True, help="Extra scanimage option, e.g. --test-picture=Grid."
)
@click.option("--field", "fields", multiple=True, help="Document field KEY=VALUE.")
@click.option("--resume", "resume_id", default=None, help="Continue an interrupted batch.")
@click.option("--no-split", is_flag=True, help="Do not split at separator sheets.")
@click.option("--copy-type", default=None, help='Signature text, e.g. "SAO Y".')
@click.option(
    "--profile",
    type=click.Choice(["text", "drawing"]),
    default=None,
    help="Archival form: text (200 dpi paper, the default) or drawing (maps, drawings: "
    "the scan's resolution kept). Default: appliance.json scans.profile.",
)
@click.option("--wait", is_flag=True, help="Run OCR and signing now instead of queueing.")
@click.option("--json", "as_json", is_flag=True, help="Print the documents as JSON.")
def scan(
    data: Path | None,
    source_spec: str,
    file_code: str | None,
    doc_id: str | None,
    dpi: int,
    mode: str,
    adf: bool,
    pages: int | None,
    sane_option: tuple[str, ...],
    fields: tuple[str, ...],
    resume_id: str | None,
    no_split: bool,
    copy_type: str | None,
    profile: str | None,
    wait: bool,
    as_json: bool,
) -> None:
    """Scan paper into sealed records; OCR (Vietnamese PDF/A) and signing follow."""
    from ..errors import LuutruError
    from ..store import Store
    from .batch import Capture
    from .config import CaptureConfig
    from .separator import Target

    opts = {
        "dpi": dpi,
        "mode": mode,
        "adf": adf,
        "pages": pages,
        "sane_option": sane_option,
    }
    config = CaptureConfig(split_at_separators=not no_split, copy_type=copy_type)
    target = Target(file_code=file_code, document_id=doc_id)
    bar = _Bar(enabled=not as_json or sys.stderr.isatty())
    results: list[Any] = []
    try:
        with Store.open(_data_dir(data)) as store:
            cap = Capture(store, config)
            if source_spec.startswith("folder:"):
                from .sources.folder import WatchFolder

                folder = WatchFolder(Path(source_spec[len("folder:") :]), cap)
                for outcome in folder.drain(target, _fields(fields)):
                    if outcome.error:
                        click.echo(f"{outcome.name}: {outcome.error}", err=True)
                    elif outcome.result is not None:
                        results.append(outcome.result)
            else:
                if resume_id:
                    more = None if source_spec == "auto" else make_source(source_spec, opts)
                    res = cap.resume(resume_id, more, bar.page, bar.stage)
                else:
                    source = make_source(source_spec, opts)
                    res = cap.scan(
                        source, target, _fields(fields), "luutru scan", bar.page, bar.stage,
                        profile=profile,
                    )
                results.append(res)
            if wait:
                _work_now(store, config, cap.queue, bar)
            store.wait_sealed()
            bar.close()
            _report(store, results, as_json)
    except LuutruError as exc:
        bar.close()
        raise click.ClickException(str(exc)) from exc

@click.group("capture")
def capture() -> None:
    """Capture queue: progress, background work, separator sheets."""

@capture.command("status")
@click.option("--data", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.argument("batch_id", required=False)
def status(data: Path | None, batch_id: str | None) -> None:
    """Batches with pages, step, documents, jobs and errors (JSON lines)."""
    from ..errors import LuutruError
    from .queue import Queue

    try:
        queue = Queue(_data_dir(data))
        rows = [queue.status(batch_id)] if batch_id else queue.batches()
    except LuutruError as exc:
        raise click.ClickException(str(exc)) from exc
    for row in rows:
        _emit(row.to_json())

@capture.command("work")
@click.option("--data", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option("--once", is_flag=True, help="Run the due jobs and exit.")
@click.option("--retry-failed", is_flag=True, help="Queue failed jobs again first.")
def work(data: Path | None, once: bool, retry_failed: bool) -> None:
    """Run OCR and signing jobs (the appliance service runs this in its own process)."""
    import signal
    import threading

    from ..errors import LuutruError
    from ..store import Store
    from .worker import Worker

    try:
        with Store.open(_data_dir(data)) as store:
            worker = Worker(store)
            if retry_failed:
                worker.queue.retry_failed()
            if once:
                for o in worker.drain():
                    state = "ok" if o.ok else f"error: {o.error}"
                    click.echo(f"{o.job.kind.value} {o.job.document_id}: {state}")
                return
            stop = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            try:
                worker.run_forever(stop)
            except KeyboardInterrupt:
                stop.set()
    except LuutruError as exc:
        raise click.ClickException(str(exc)) from exc

@capture.command("separator")
@click.option("--to", "file_code", default=None, help="Mã hồ sơ (default: generic sheet).")
@click.option("--doc", "doc_id", default=None, help="Document id.")
@click.option("--title", default="", help="Caption under the code.")
@click.option("--copies", type=int, default=1, show_default=True)
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
def separator_cmd(
    file_code: str | None, doc_id: str | None, title: str, copies: int, out: Path
) -> None:
    """Write a printable separator sheet (PDF) for a hồ sơ, a document, or generic."""
    from .separator import Target, sheet_pdf

    out.write_bytes(sheet_pdf(Target(file_code, doc_id), title, copies))
    click.echo(str(out))
