"""Scanner capture and digitisation: paper in, signed searchable PDF/A out.

Entry points for other parts (imported lazily so `luutru --help` stays light):
``ingest_upload(store, files, target=..., metadata=...)`` for the web UI's uploads,
``progress(store, batch_id=None)`` for its progress view, ``Capture`` for scanner batches,
``Worker`` for the background OCR and signing, ``sheet_pdf(Target(...))`` for separator sheets.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "ingest_upload": "batch",
    "progress": "batch",
    "Capture": "batch",
    "CaptureResult": "batch",
    "CaptureConfig": "config",
    "Worker": "worker",
    "Target": "separator",
    "sheet_pdf": "separator",
    "BatchState": "queue",
    "JobState": "queue",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(name)
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
