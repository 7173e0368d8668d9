"""A provincial LGSP over HTTP: the connector and the shapes of its requests.

The LGSP side (or an adapter in front of the province's e-office system) answers::

    GET  {url}/packages
         200 {"packages": [{"id": "…", "name": "…", "size": 123}]}   oldest first
    GET  {url}/packages/{id}
         200 the package's bytes (Content-Type application/xml)
    POST {url}/packages/{id}/ack   {"result": "received"}  or  {"result": "refused", "reason": "…"}
         200 or 204: the package is not offered again
    POST {url}/messages?name=NAME   body: an edXML package (status message or document)
         200, 201 or 204: durably accepted

Every request carries ``Authorization: Bearer TOKEN`` when a token is configured. A
connection error, a timeout, 408, 429 and any 5xx are retried with the project's backoff
(``appliance.retry``: capped exponential, jittered); other answers are errors that no retry
mends (``TransportError`` with ``retryable`` False). A package larger than the limit is
acknowledged as refused without being downloaded.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from appliance.edxml.errors import TransportError
from appliance.retry import backoff

from .connector import Waiting

RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class HttpSettings:
    url: str
    token: str = ""
    timeout_s: float = 30.0
    attempts: int = 4
    retry_base_s: float = 2.0
    retry_cap_s: float = 60.0


class HttpError(TransportError):
    """The LGSP answered with an error (``status``) or could not be reached (status 0)."""

    def __init__(self, message: str, status: int, retryable: bool) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable


class HttpConnector:
    """A connector over the LGSP's HTTP interface (see the module docstring)."""

    def __init__(self, settings: HttpSettings,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings
        self.base = settings.url.rstrip("/")
        self.name = f"http:{self.base}"
        self._sleep = sleep

    def _once(self, method: str, path: str, body: bytes | None, ctype: str) -> tuple[int, bytes]:
        req = urllib.request.Request(self.base + path, data=body, method=method)
        if body is not None:
            req.add_header("Content-Type", ctype)
        if self.settings.token:
            req.add_header("Authorization", f"Bearer {self.settings.token}")
        try:
            with urllib.request.urlopen(req, timeout=self.settings.timeout_s) as resp:
                return int(resp.status), resp.read()
        except urllib.error.HTTPError as exc:
            retry = exc.code in RETRY_STATUS
            raise HttpError(f"{method} {path}: HTTP {exc.code}", exc.code, retry) from exc
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
            raise HttpError(f"{method} {path}: {exc}", 0, True) from exc

    def request(self, method: str, path: str, body: bytes | None = None,
                ctype: str = "application/json") -> tuple[int, bytes]:
        """One request, retried while the failure is retryable."""
        s = self.settings
        for attempt in range(1, s.attempts + 1):
            try:
                return self._once(method, path, body, ctype)
            except HttpError as exc:
                if attempt == s.attempts or not exc.retryable:
                    raise
                self._sleep(backoff(attempt, s.retry_cap_s, s.retry_base_s))
        raise AssertionError("unreachable")

    def _json(self, method: str, path: str, payload: Any = None) -> Any:
        body = None if payload is None else json.dumps(payload, ensure_ascii=False).encode()
        _, raw = self.request(method, path, body)
        return json.loads(raw) if raw else None

    def fetch(self, max_bytes: int) -> Iterator[Waiting]:
        listing = self._json("GET", "/packages") or {}
        for p in listing.get("packages", []):
            pid = str(p["id"])
            item = Waiting(str(p.get("name") or pid), b"", pid)
            if int(p.get("size") or 0) > max_bytes:
                self.refuse(item, f"Gói tin quá lớn: tối đa {max_bytes / 1048576:.0f} MB.")
                continue
            _, data = self.request("GET", f"/packages/{urllib.parse.quote(pid, safe='')}")
            if len(data) > max_bytes:
                self.refuse(item, f"Gói tin quá lớn: tối đa {max_bytes / 1048576:.0f} MB.")
                continue
            yield Waiting(item.name, data, pid)

    def done(self, item: Waiting) -> None:
        self._json("POST", f"/packages/{urllib.parse.quote(str(item.handle), safe='')}/ack",
                   {"result": "received"})

    def refuse(self, item: Waiting, reason: str) -> None:
        self._json("POST", f"/packages/{urllib.parse.quote(str(item.handle), safe='')}/ack",
                   {"result": "refused", "reason": reason})

    def send(self, name: str, data: bytes) -> None:
        self.request("POST", f"/messages?name={urllib.parse.quote(name)}", data,
                     "application/xml")
