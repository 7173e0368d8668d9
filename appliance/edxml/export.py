"""An issued văn bản đi packaged as edXML for one electronic addressee.

The envelope comes from the document's metadata, the attachments are its content as it is
(its signed PDF when there is one, never re-encoded), the trace header names us, and the
whole package is signed with the agency key (XML-DSig, as real packages carry). Classified
(mật) documents are never packaged. The package is kept as content and the export logged
(``edxml.exported``).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from .. import classified, writes
from ..errors import ConflictError, ValidationError
from ..identifiers import validate_organ_id
from ..kinds import Kind
from ..writer import Txn
from .build import document_package, qcvn_date
from .doctypes import load_mapping
from .dsig import XmlSigningKey
from .model import Attachment, Header, Organ, Trace
from .status import timestamp

if TYPE_CHECKING:
    from ..store import Store


def _qcvn_type(type_name: str) -> str:
    """The QCVN 102 number of an administrative type, by name ('' when it has none)."""
    from ..text import fold

    for number, (name, _) in load_mapping().administrative.items():
        if fold(name) == fold(type_name):
            return number
    return ""


def _recipient(data: dict[str, Any], organ_id: str) -> Organ:
    for r in data.get("To") or []:
        if r.get("OrganId") == organ_id:
            return Organ(organ_id, str(r.get("OrganName") or ""))
    raise ValidationError(
        f"{organ_id} is not among the document's recipients (To); add it before sending",
        "To",
    )


def export_document(store: Store, doc_id: str, to: str, key: XmlSigningKey | None,
                    actor: str = "edxml") -> bytes:
    """The signed package of issued document ``doc_id`` for addressee ``to`` (its OrganId)."""
    to = validate_organ_id(to, "To", strict=False)
    rec = store.get("document", doc_id)
    data = rec.data
    if data.get("Direction") != "outgoing" or data.get("Status") != "issued":
        raise ConflictError(f"document {doc_id} is not an issued văn bản đi")
    if classified.document_is_classified(store.reader(), data, doc_id, projected=True):
        raise ConflictError("a classified (mật) document is never sent electronically")
    content = list(data.get("Content") or [])
    if not content:
        raise ConflictError(f"document {doc_id} has no content to send")
    # The signed PDF first: the document itself, then its attachments.
    content.sort(key=lambda c: (c.get("mime") != "application/pdf", ))
    attachments = []
    for i, c in enumerate(content, 1):
        with store.content.open(c["sha256"]) as fh:
            body = fh.read()
        attachments.append(Attachment(
            content_id=f"{c['sha256'][:16]}-{i}", name=c.get("name") or f"tep-{i}",
            content_type=c.get("mime") or "application/octet-stream",
            description="Văn bản" if i == 1 else "Tệp đính kèm", data=body,
        ))
    us = Organ(store.config.org_id, store.config.org_name, store.config.org_name)
    number, notation = str(data.get("CodeNumber", "")), str(data.get("CodeNotation", ""))
    issued = str(data.get("IssuedDate", ""))
    header = Header(
        sender=us,
        recipients=(_recipient(data, to),),
        document_id=f"{us.organ_id},{qcvn_date(issued)},{number}/{notation}",
        code_number=number,
        code_notation=notation,
        promulgation_date=issued,
        doc_type=_qcvn_type(str(data.get("TypeName", ""))),
        type_name=str(data.get("TypeName", "")),
        subject=str(data.get("Subject", "")),
        signer_position=str(data.get("SignerPosition", "")),
        signer_full_name=str(data.get("SignerFullName", "")),
        due_date=str(data.get("DueDate", "")),
        to_places=tuple(str(r.get("OrganName", "")) for r in data.get("To") or []),
        priority=str(data.get("Priority", "0")),
        promulgation_amount=str(data.get("IssuedAmount", "")),
        page_amount=str(data.get("PageAmount", "")),
        steering_type="0",
    )
    now = store.clock.now()
    raw = document_package(header, attachments, [Trace(us.organ_id, timestamp(now))], key, now)
    stored = store.content.put_bytes(raw)

    def job(txn: Txn) -> None:
        writes.append_event(
            txn, Kind.EDXML_EXPORTED, actor,
            {"to": to, "package": {"sha256": stored.sha256, "size": stored.size},
             "signed": key is not None},
            "document", doc_id, refs=[bytes.fromhex(stored.sha256)],
        )

    store.writer_or_fail().call(job)
    assert hashlib.sha256(raw).hexdigest() == stored.sha256
    return raw
