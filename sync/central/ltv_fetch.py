"""``POST /v1/upgrade``: an appliance downloads a version the centre made of its signed PDF.

The request is signed by the appliance's current device key (type ``upgrade``, body
``{sha256, offset}``); the answer is up to 4 MiB of the file from ``offset``. Only versions
made for that appliance are served. The SHA-256 the box checks came in a signed answer
(``upgrades``), so the bytes need no signature of their own. Reading is idempotent: no
sequence number or nonce is spent.
"""

from __future__ import annotations

from .. import wire
from ..errors import SyncError, WireError
from .anomalies import note
from .intake import Intake
from .ltv_job import fetch_version
from .replacement import Fetched
from .storage import AnomalyKind


def fetch(intake: Intake, raw: bytes) -> Fetched:
    try:
        req = wire.parse_request(raw)
        if req.type is not wire.RequestType.UPGRADE:
            raise WireError(f"a {req.type.value} request does not go here")
        app, _ = intake.authenticate(req)
        sha = str(req.body.get("sha256", ""))
        offset = req.body.get("offset", 0)
        if not isinstance(offset, int) or offset < 0:
            raise WireError("offset must be a non-negative integer")
        data = fetch_version(intake.c, app.id, sha, offset)
    except SyncError as exc:
        status = {"malformed": 400, "content": 404}.get(exc.code, 403)
        if exc.code == "malformed":
            note(intake.c, None, AnomalyKind.MALFORMED, f"upgrade fetch: {exc}")
        return Fetched(status, str(exc).encode("utf-8"), "text/plain; charset=utf-8")
    return Fetched(200, data, "application/octet-stream")
