"""Writing edXML: a document package (our văn bản đi) and a status message (to a sender),
laid out as real packages are (QCVN 102:2016 namespace, the same element order), signed
with the agency key when one is given (``dsig``)."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Sequence
from typing import Any

from lxml import etree

from . import dsig
from .model import NS_2016, XLINK_NS, Attachment, Header, Organ, StatusMessage, Trace


def _q(name: str) -> str:
    return f"{{{NS_2016}}}{name}"


def _el(parent: Any, name: str, value: str | None = None) -> Any:
    el = etree.SubElement(parent, _q(name))
    if value is not None:
        el.text = value
    return el


def qcvn_date(iso: str) -> str:
    """ISO YYYY-MM-DD → YYYY/MM/DD (how QCVN 102 writes dates)."""
    return iso.replace("-", "/") if iso else ""


def _organ(parent: Any, name: str, organ: Organ) -> None:
    el = _el(parent, name)
    _el(el, "OrganId", organ.organ_id)
    _el(el, "OrganInCharge", organ.in_charge)
    _el(el, "OrganName", organ.organ_name)
    _el(el, "OrganAdd", organ.address)
    _el(el, "Email", organ.email)
    _el(el, "Telephone", organ.telephone)
    _el(el, "Fax", organ.fax)
    _el(el, "Website", organ.website)


def _root() -> tuple[Any, Any, Any]:
    root = etree.Element(_q("edXML"), nsmap={None: NS_2016, "xlink": XLINK_NS})
    envelope = _el(root, "edXMLEnvelope")
    header = _el(envelope, "edXMLHeader")
    return root, envelope, header


def _message_header(header_el: Any, h: Header) -> None:
    msg = _el(header_el, "MessageHeader")
    _organ(msg, "From", h.sender)
    for r in h.recipients:
        _organ(msg, "To", r)
    _el(msg, "DocumentId", h.document_id)
    code = _el(msg, "Code")
    _el(code, "CodeNumber", h.code_number)
    _el(code, "CodeNotation", h.code_notation)
    info = _el(msg, "PromulgationInfo")
    _el(info, "Place", h.place)
    _el(info, "PromulgationDate", qcvn_date(h.promulgation_date))
    dtype = _el(msg, "DocumentType")
    _el(dtype, "Type", h.doc_type)
    _el(dtype, "TypeDetail", h.doc_type_detail)
    _el(dtype, "TypeName", h.type_name)
    _el(msg, "Subject", h.subject)
    _el(msg, "Content", h.content)
    signer = _el(msg, "SignerInfo")
    _el(signer, "Competence", h.signer_competence)
    _el(signer, "Position", h.signer_position)
    _el(signer, "FullName", h.signer_full_name)
    _el(msg, "DueDate", qcvn_date(h.due_date))
    places = _el(msg, "ToPlaces")
    for p in h.to_places:
        _el(places, "Place", p)
    other = _el(msg, "OtherInfo")
    _el(other, "Priority", h.priority)
    _el(other, "SphereOfPromulgation", h.sphere)
    _el(other, "TyperNotation", h.typer_notation)
    _el(other, "PromulgationAmount", h.promulgation_amount)
    _el(other, "PageAmount", h.page_amount)
    apps = _el(other, "Appendixes")
    for a in h.appendixes:
        _el(apps, "Appendix", a)
    _el(msg, "SteeringType", h.steering_type)


def _traces(header_el: Any, traces: Sequence[Trace]) -> None:
    lst = _el(header_el, "TraceHeaderList")
    for t in traces:
        th = _el(lst, "TraceHeader")
        _el(th, "OrganId", t.organ_id)
        _el(th, "Timestamp", t.timestamp)


def document_package(
    header: Header,
    attachments: Sequence[Attachment],
    traces: Sequence[Trace],
    key: dsig.XmlSigningKey | None = None,
    when: dt.datetime | None = None,
) -> bytes:
    """A document package; signed over the whole document when ``key`` is given, with the
    signing time ``when``."""
    root, envelope, header_el = _root()
    _message_header(header_el, header)
    _traces(header_el, traces)
    if key is not None:
        dsig.add_placeholder(header_el)
    body = _el(envelope, "edXMLBody")
    manifest = _el(body, "edXMLManifest", None)
    manifest.set("version", "1.0")
    for a in attachments:
        ref = _el(manifest, "Reference")
        ref.set(f"{{{XLINK_NS}}}href", f"cid:{a.content_id}")
        ref.set(f"{{{XLINK_NS}}}type", "simple")
        _el(ref, "ContentId", f"cid:{a.content_id}")
        _el(ref, "ContentType", a.content_type)
        _el(ref, "Description", a.description)
        _el(ref, "AttachmentName", a.name)
    encoded = _el(root, "AttachmentEncoded")
    for a in attachments:
        att = _el(encoded, "Attachment")
        _el(att, "ContentType", a.content_type)
        _el(att, "ContentId", a.content_id)
        _el(att, "Description", a.description)
        _el(att, "AttachmentName", a.name)
        _el(att, "ContentTransferEncoded", base64.b64encode(a.data).decode("ascii"))
    if key is not None:
        return dsig.sign_document(root, key, when)
    out: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return out


def status_package(status: StatusMessage, key: dsig.XmlSigningKey | None = None,
                   when: dt.datetime | None = None) -> bytes:
    """A status message (``Status`` in the header), signed when ``key`` is given."""
    root, envelope, header_el = _root()
    st = _el(header_el, "Status")
    rf = _el(st, "ResponseFor")
    _el(rf, "OrganId", status.response_for_organ)
    _el(rf, "Code", status.response_for_code)
    _el(rf, "PromulgationDate", status.response_for_date)
    _el(rf, "DocumentId", status.response_for_document)
    _organ(st, "From", status.sender)
    _el(st, "StatusCode", status.status_code)
    _el(st, "Description", status.description)
    _el(st, "Timestamp", status.timestamp)
    staff = _el(st, "StaffInfo")
    _el(staff, "Department", status.department)
    _el(staff, "Staff", status.staff)
    if key is not None:
        dsig.add_placeholder(header_el)
    _el(_el(envelope, "edXMLBody"), "edXMLManifest").set("version", "1.0")
    if key is not None:
        return dsig.sign_document(root, key, when)
    out: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return out
