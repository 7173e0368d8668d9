"""A package refused for its structure still gets an answer: status 02 to its sender.

Decree 30 Điều 21.2 has the registry return what it cannot take in. A package that does not
parse, breaks the field rules or carries unsafe PDFs never reaches the inbox, but when its
sender can still be read (a valid ``From/OrganId``) and the document named (``DocumentId`` or
``Code``), the box prepares the signed status message 02 (từ chối tiếp nhận) with the reason,
logs ``edxml.refused`` with it, and the exchange hands it over like every other status
message (``edxml_outbox``). The sender is read leniently (libxml2's recovering parser, still
with no DTD, entities or network); a package with a DOCTYPE/ENTITY (a possible XML bomb) or
over the size limit is not read at all and gets no answer. The same refused package twice is
answered once: the entry's id comes from the package's SHA-256.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lxml import etree

from .. import writes
from ..errors import ValidationError
from ..identifiers import validate_organ_id
from ..kinds import Kind
from ..writer import Txn
from . import inbox
from .dsig import XmlSigningKey
from .parse import _DOCTYPE, _date
from .status import RETURNED, stored_status

if TYPE_CHECKING:
    from ..store import Store

_NAMESPACE = uuid.UUID("6f1c1f0e-5d55-4c2e-9a53-6564786d6c02")  # refusal ids, per package


@dataclass(frozen=True)
class Refusal:
    """What was logged: the entry's id, and the status message's name (None: no answer)."""

    id: str
    status_name: str | None
    sender: str


def _local(el: Any) -> str:
    return str(etree.QName(el).localname).lower() if isinstance(el.tag, str) else ""


def _find(el: Any, *path: str) -> str:
    node = el
    for name in path:
        node = next((c for c in node if _local(c) == name.lower()), None)
        if node is None:
            return ""
    return " ".join((node.text or "").split())


def identify(raw: bytes, max_bytes: int) -> dict[str, Any] | None:
    """The sender and the document of a refused package, as ``Package.summary`` names them,
    or None when they cannot be read (or the package must not be read at all)."""
    if len(raw) > max_bytes or _DOCTYPE.search(raw):
        return None
    parser = etree.XMLParser(recover=True, resolve_entities=False, no_network=True,
                             load_dtd=False, huge_tree=True)
    try:
        root = etree.fromstring(raw[max(raw.find(b"<"), 0):], parser)
    except (etree.XMLSyntaxError, ValueError):
        return None
    if root is None:
        return None
    msg = next((e for e in root.iter() if _local(e) == "messageheader"), None)
    if msg is None:
        return None
    organ_id = _find(msg, "From", "OrganId")
    try:
        validate_organ_id(organ_id, "OrganId", strict=False)
    except ValidationError:
        return None
    document_id = _find(msg, "DocumentId")
    number, notation = _find(msg, "Code", "CodeNumber"), _find(msg, "Code", "CodeNotation")
    if not (document_id or number or notation):
        return None
    try:
        date = _date(_find(msg, "PromulgationInfo", "PromulgationDate"), "PromulgationDate", [])
    except ValidationError:
        date = ""
    return {"From": {"OrganId": organ_id, "OrganName": _find(msg, "From", "OrganName")},
            "DocumentId": document_id, "CodeNumber": number, "CodeNotation": notation,
            "PromulgationDate": date}


def refusal_id(raw: bytes) -> str:
    return str(uuid.uuid5(_NAMESPACE, hashlib.sha256(raw).hexdigest()))


def record_refusal(store: Store, raw: bytes, reason: str, *, source: str, max_bytes: int,
                   key: XmlSigningKey | None, actor: str) -> Refusal | None:
    """Log the refusal with its status 02 when the sender can be read (None otherwise)."""
    summary = identify(raw, max_bytes)
    if summary is None:
        return None
    rid = refusal_id(raw)
    known = store.reader().execute(
        "SELECT name FROM edxml_outbox WHERE item_id = ? AND code = '02'", (rid,)
    ).fetchone() if inbox.has_outbox(store.reader()) else None
    if known is not None:
        return Refusal(rid, str(known[0]), summary["From"]["OrganId"])
    answer = stored_status(store, rid, summary, RETURNED, reason[:500], "văn thư", key)
    data = {"source": source, "reason": reason,
            "package": {"sha256": hashlib.sha256(raw).hexdigest(), "size": len(raw)},
            "summary": summary, "status": answer}

    def job(txn: Txn) -> None:
        inbox.ensure_schema(txn.conn)
        if txn.conn.execute("SELECT 1 FROM edxml_outbox WHERE item_id = ? AND code = '02'",
                            (rid,)).fetchone():
            return
        e = writes.append_event(txn, Kind.EDXML_REFUSED, actor, data, "edxml", rid,
                                refs=[bytes.fromhex(answer["sha256"])])
        inbox.apply(txn.conn, e)

    store.writer_or_fail().call(job)
    return Refusal(rid, answer["name"], summary["From"]["OrganId"])
