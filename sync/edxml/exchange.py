"""The exchange loop: packages in through a connector, status messages out the same way.

``run_once`` takes every waiting package into the electronic inbox (verified, with its
acknowledgement, status 01, prepared in the same transaction), and every status message an
addressee sent back about one of our packages (checked, matched to its delivery, which it
moves when its signature is valid and trusted: ``appliance.edxml.answers``), tells the
connector which are in and which were refused, then hands over every status message not sent
yet (01 on receipt, 03 registered, 02 returned or refused) and logs each as sent
(``edxml.status_sent``), and every packaged electronic delivery of an issued văn bản đi
(made from the document's page), whose delivery then becomes "sent" (``document.delivery``).
A crash between the hand-over and the log sends it again next pass: the receiver knows a
package by its SHA-256. A poll every ``interval_s`` (a minute by default) sends the
acknowledgement the same day as required.

Configuration, parsed once, from ``DIR/edxml.json``::

    {"connector": "folder", "folder": "/srv/lienthong", "interval_s": 60,
     "max_package_mb": 100, "online": true}
    {"connector": "http", "url": "https://lgsp.example.vn/edxml", "token_file": "lgsp.token",
     "timeout_s": 30, "attempts": 4}
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.edxml.answers import is_status, take_status
from appliance.edxml.errors import PackageRefused
from appliance.edxml.inbox import unsent
from appliance.edxml.intake import import_package, mark_sent
from appliance.edxml.parse import DEFAULT_MAX_BYTES
from appliance.errors import ConfigError, LuutruError
from appliance.retry import backoff
from appliance.store import Store

from .connector import Connector
from .folder import FolderConnector
from .http import HttpConnector, HttpSettings

log = logging.getLogger(__name__)
CONFIG_NAME = "edxml.json"


@dataclass(frozen=True)
class ExchangeConfig:
    connector: str  # "folder" or "http"
    folder: Path | None = None
    http: HttpSettings | None = None
    interval_s: float = 60.0
    max_bytes: int = DEFAULT_MAX_BYTES
    online: bool = True  # fetch OCSP/CRLs while checking signatures
    settle_s: float = 2.0


def load_config(data_dir: Path) -> ExchangeConfig | None:
    """``DIR/edxml.json``, or None when the box has no exchange configured."""
    path = data_dir / CONFIG_NAME
    if not path.is_file():
        return None
    try:
        raw: dict[str, Any] = json.loads(path.read_text("utf-8"))
        kind = str(raw["connector"])
        common = {
            "interval_s": float(raw.get("interval_s", 60)),
            "max_bytes": int(float(raw.get("max_package_mb", 100)) * 1024 * 1024),
            "online": bool(raw.get("online", True)),
            "settle_s": float(raw.get("settle_s", 2.0)),
        }
        if kind == "folder":
            folder = Path(str(raw["folder"]))
            return ExchangeConfig("folder", folder=folder if folder.is_absolute()
                                  else data_dir / folder, **common)  # type: ignore[arg-type]
        if kind == "http":
            token = str(raw.get("token", ""))
            if raw.get("token_file"):
                token = (data_dir / str(raw["token_file"])).read_text("utf-8").strip()
            settings = HttpSettings(str(raw["url"]), token, float(raw.get("timeout_s", 30)),
                                    int(raw.get("attempts", 4)))
            return ExchangeConfig("http", http=settings, **common)  # type: ignore[arg-type]
    except (KeyError, ValueError, TypeError, OSError) as exc:
        raise ConfigError(f"{path} is malformed: {exc}") from exc
    raise ConfigError(f"{path}: connector must be 'folder' or 'http', not {kind!r}")


def connector_for(config: ExchangeConfig) -> Connector:
    if config.connector == "folder":
        assert config.folder is not None
        return FolderConnector(config.folder, settle_s=config.settle_s)
    assert config.http is not None
    return HttpConnector(config.http)


@dataclass
class ExchangeResult:
    imported: list[str] = field(default_factory=list)  # inbox item ids
    duplicates: int = 0
    refused: list[tuple[str, str]] = field(default_factory=list)  # (name, reason)
    sent: list[str] = field(default_factory=list)  # status message names
    errors: list[str] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)  # addressees' status messages taken

    def to_json(self) -> dict[str, Any]:
        return {"imported": self.imported, "duplicates": self.duplicates,
                "answers": self.answers,
                "refused": [{"name": n, "reason": r} for n, r in self.refused],
                "sent": self.sent, "errors": self.errors}


def run_once(store: Store, connector: Connector, config: ExchangeConfig,
             key: Any = None) -> ExchangeResult:
    """One pass: take in what waits, then send what is due."""
    res = ExchangeResult()
    for item in connector.fetch(config.max_bytes):
        if is_status(item.data, config.max_bytes):
            take_answer(store, connector, config, item, res)
            continue
        try:
            out = import_package(store, item.data, source=f"{connector.name}/{item.name}",
                                 online=config.online, max_bytes=config.max_bytes, key=key,
                                 actor="edxml exchange")
        except PackageRefused as exc:
            connector.refuse(item, exc.reason)
            res.refused.append((item.name, exc.reason))
            continue
        connector.done(item)  # only now: the inbox transaction is durable
        if out.duplicate:
            res.duplicates += 1
        else:
            res.imported.append(out.item.id)
    send_pending(store, connector, res)
    send_deliveries(store, connector, res)
    return res


def take_answer(store: Store, connector: Connector, config: ExchangeConfig, item: Any,
                res: ExchangeResult) -> None:
    """An addressee's status message: logged (and applied when trusted), then done; one that
    cannot be read is set aside with its reason, unanswered."""
    try:
        answer = take_status(store, item.data, source=f"{connector.name}/{item.name}",
                             online=config.online, max_bytes=config.max_bytes,
                             actor="edxml")
    except PackageRefused as exc:
        connector.refuse(item, exc.reason)
        res.refused.append((item.name, exc.reason))
        return
    connector.done(item)
    res.answers.append(answer.id)


def send_pending(store: Store, connector: Connector, res: ExchangeResult) -> None:
    """Hand every unsent status message to the exchange, oldest first."""
    for pending in unsent(store.reader()):
        with store.content.open(pending.sha256) as fh:
            data = fh.read()
        try:
            connector.send(pending.name, data)
        except LuutruError as exc:
            res.errors.append(f"{pending.name}: {exc}")
            if not getattr(exc, "retryable", False):
                continue
            return  # the link is down: the rest waits for the next pass
        mark_sent(store, pending.item_id, pending.code, connector.name)
        res.sent.append(pending.name)


def packaged(store: Store) -> list[tuple[str, int, str, str]]:
    """(document id, delivery n, package SHA-256, file name) of every electronic delivery
    packaged and not yet sent, oldest document first."""
    rows = store.reader().execute(
        'SELECT d.id, d."CodeNumber", d."CodeNotation", json_extract(x.value, \'$.n\'), '
        "json_extract(x.value, '$.package'), json_extract(x.value, '$.to.OrganId') "
        "FROM documents d, json_each(d.\"Deliveries\") x "
        "WHERE d.\"Direction\" = 'outgoing' AND d.\"Status\" = 'issued' "
        "AND json_extract(x.value, '$.channel') = 'electronic' "
        "AND json_extract(x.value, '$.status') = 'packaged' "
        "AND json_extract(x.value, '$.package') IS NOT NULL "
        'ORDER BY d."IssuedDate", CAST(d."CodeNumber" AS INTEGER)'
    ).fetchall()
    out = []
    for doc_id, number, notation, n, sha, organ in rows:
        code = f"{number}-{notation}".replace("/", "-")
        out.append((str(doc_id), int(n), str(sha), f"van-ban-{code}-{organ}-{sha[:8]}.edxml"))
    return out


def send_deliveries(store: Store, connector: Connector, res: ExchangeResult) -> None:
    """Hand every packaged electronic delivery to the exchange; each then becomes sent."""
    from appliance.classified import document_is_classified
    from appliance.outgoing.deliveries import set_status

    for doc_id, n, sha, name in packaged(store):
        if document_is_classified(store.reader(), {}, doc_id, projected=True):
            continue  # made mật since it was packaged: it never leaves electronically
        with store.content.open(sha) as fh:
            data = fh.read()
        try:
            connector.send(name, data)
        except LuutruError as exc:
            res.errors.append(f"{name}: {exc}")
            if not getattr(exc, "retryable", False):
                continue
            return
        set_status(store, doc_id, n, "sent", "edxml",
                   note="Gửi qua trục liên thông văn bản (edXML)")
        res.sent.append(name)


def run_forever(store: Store, config: ExchangeConfig, stop: threading.Event,
                key_opener: Any = None) -> None:
    """Poll until ``stop``; a failing pass waits by the project's backoff."""
    connector = connector_for(config)
    failures = 0
    while not stop.is_set():
        try:
            if key_opener is not None:
                with key_opener() as key:
                    res = run_once(store, connector, config, key)
            else:
                res = run_once(store, connector, config)
            failures = 0 if not res.errors else failures + 1
            if res.imported or res.refused or res.sent or res.answers:
                log.info("edxml exchange: %s", res.to_json())
        except Exception:
            failures += 1
            log.exception("edxml exchange pass failed")
        wait = config.interval_s if failures == 0 else max(
            config.interval_s, backoff(failures, 900.0, config.interval_s))
        stop.wait(wait)
