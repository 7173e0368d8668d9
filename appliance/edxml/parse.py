"""Reading an edXML package as found in the wild, with a hardened parser and the field rules.

Safety first: the size is checked before anything is read into memory; a document type
declaration is refused outright (no edXML package has one, and every entity-expansion bomb
and external entity needs one), and the parser neither loads DTDs, resolves entities nor
touches the network. Attachments may be tens of megabytes of base64 in one text node, so
libxml2's "huge" limit is lifted; with no DTD there is nothing left to expand.

What is accepted: the root ``edXML`` (or the older ``EdXMLEnvelope``) in the namespace of QCVN
102:2016 or the older ``http://www.go.vn/eDoc``; element names compared without regard to
case or prefix (integrators differ); stray bytes before the XML declaration (seen in real
packages) are dropped with a warning. What is refused, with a Vietnamese reason: a missing
or over-long Subject, an OrganName over 200 characters, no ``To``, a repeated ``To/OrganId``,
an agency identifier that is not one (spec §6.1), a manifest naming an attachment that is not
there or an attachment the manifest does not name, attachments that are not valid base64.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lxml import etree

from ..errors import ValidationError
from ..identifiers import validate_organ_id
from ..text import nfc, nfc_multiline
from .errors import PackageRefused
from .model import NAMESPACES, Attachment, Header, Organ, Package, Trace

DEFAULT_MAX_BYTES = 100 * 1024 * 1024  # a package with a few signed scans; configurable
# Lengths of spec §7.1 (the public edXML checker): element → (characters, Vietnamese name).
LIMITS = {
    "Subject": (500, "Trích yếu (Subject)"),
    "Content": (500, "Nội dung (Content)"),
    "OrganName": (200, "Tên cơ quan (OrganName)"),
    "OrganAdd": (250, "Địa chỉ cơ quan (OrganAdd)"),
    "Place": (150, "Nơi nhận (ToPlaces/Place)"),
    "AttachmentName": (200, "Tên tệp đính kèm (AttachmentName)"),
}
DOCUMENT_ID_MAX = 15  # the checker's limit; real packages exceed it ("org,date,số/ký hiệu")
_DOCTYPE = re.compile(rb"<!DOCTYPE|<!ENTITY", re.IGNORECASE)
_DATE = re.compile(r"^(\d{4})[/-](\d{1,2})[/-](\d{1,2})")


def read_limited(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """The file's bytes, refused before reading when it is larger than ``max_bytes``."""
    size = path.stat().st_size
    if size > max_bytes:
        raise PackageRefused(
            f"Gói tin quá lớn: {size / 1048576:.1f} MB, tối đa {max_bytes / 1048576:.0f} MB."
        )
    with path.open("rb") as fh:
        raw = fh.read(max_bytes + 1)
    if len(raw) > max_bytes:  # grew while being read
        raise PackageRefused(f"Gói tin quá lớn: tối đa {max_bytes / 1048576:.0f} MB.")
    return raw


def parse_xml(raw: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[Any, list[str]]:
    """The root element of ``raw`` read safely, and warnings about what was tolerated."""
    if len(raw) > max_bytes:
        raise PackageRefused(
            f"Gói tin quá lớn: {len(raw) / 1048576:.1f} MB, tối đa {max_bytes / 1048576:.0f} MB."
        )
    warnings: list[str] = []
    start = raw.find(b"<")
    if start < 0:
        raise PackageRefused("Tệp không phải một gói tin edXML (không có nội dung XML).")
    if start > 0:
        if raw[:start] != b"\xef\xbb\xbf":
            warnings.append(f"Đã bỏ {start} byte lạ đứng trước khai báo XML.")
        raw = raw[start:]
    root_at = _first_element(raw)
    if _DOCTYPE.search(raw, 0, root_at):
        raise PackageRefused(
            "Gói tin có khai báo DOCTYPE/ENTITY: bị từ chối vì có thể là tấn công XML "
            "(XML bomb, thực thể ngoài)."
        )
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
        huge_tree=True, remove_blank_text=False,
    )
    try:
        root = etree.fromstring(raw, parser)
    except etree.XMLSyntaxError as exc:
        raise PackageRefused(f"Gói tin không phải XML hợp lệ: {exc}.") from exc
    if root.getroottree().docinfo.doctype:
        raise PackageRefused("Gói tin có khai báo DOCTYPE: bị từ chối.")
    return root, warnings


def _first_element(raw: bytes) -> int:
    """Where the root element starts (after the declaration, comments, PIs, a DOCTYPE)."""
    i = 0
    while True:
        i = raw.find(b"<", i)
        if i < 0 or i + 1 >= len(raw):
            return len(raw)
        nxt = raw[i + 1 : i + 2]
        if nxt in (b"?", b"!"):
            i += 2
            continue
        return i


# -- element access, namespace- and case-insensitive -------------------------------------


def local(el: Any) -> str:
    return str(etree.QName(el).localname).lower() if isinstance(el.tag, str) else ""


def children(el: Any, name: str) -> Iterator[Any]:
    key = name.lower()
    for c in el:
        if isinstance(c.tag, str) and local(c) == key:
            yield c


def child(el: Any, *names: str) -> Any:
    for name in names:
        for c in children(el, name):
            return c
    return None


def text(el: Any, *path: str) -> str:
    """The trimmed NFC text at ``path`` under ``el`` ('' when absent)."""
    node = el
    for name in path:
        if node is None:
            return ""
        node = child(node, name)
    if node is None or node.text is None:
        return ""
    return nfc_multiline(node.text) if path and path[-1] == "Content" else nfc(node.text)


def namespace_of(root: Any) -> str:
    ns = etree.QName(root).namespace or ""
    if ns not in NAMESPACES:
        raise PackageRefused(
            f"Không nhận gói tin theo không gian tên '{ns or '(không có)'}': chỉ nhận "
            f"{' hoặc '.join(NAMESPACES)}."
        )
    return ns


def envelope_parts(root: Any) -> tuple[Any, Any, Any]:
    """(envelope, header, body) of a package; the older layout has no edXML wrapper."""
    if local(root) == "edxml":
        envelope = child(root, "edXMLEnvelope", "EdXMLEnvelope", "Envelope")
    elif local(root) in ("edxmlenvelope", "envelope"):
        envelope = root
    else:
        raise PackageRefused(f"Gốc của gói tin là '{local(root)}', không phải edXML.")
    if envelope is None:
        raise PackageRefused("Gói tin thiếu edXMLEnvelope.")
    header = child(envelope, "edXMLHeader", "Header")
    if header is None:
        raise PackageRefused("Gói tin thiếu edXMLHeader.")
    return envelope, header, child(envelope, "edXMLBody", "Body")


# -- the document package ------------------------------------------------------------------


def parse_package(raw: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> Package:
    """A document package, checked (raises PackageRefused with the reason)."""
    return read_package(raw, max_bytes)[0]


def read_package(raw: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[Package, Any]:
    """A document package, checked, and its parsed root (for the signature check)."""
    root, warnings = parse_xml(raw, max_bytes)
    ns = namespace_of(root)
    _, header_el, body = envelope_parts(root)
    msg = child(header_el, "MessageHeader")
    if msg is None:
        raise PackageRefused("Gói tin thiếu MessageHeader.")
    header = _header(msg, warnings)
    traces = tuple(
        Trace(text(t, "OrganId"), text(t, "Timestamp"))
        for lst in children(header_el, "TraceHeaderList")
        for t in children(lst, "TraceHeader")
    )
    signed = any(
        isinstance(e.tag, str) and local(e) == "signature"
        and etree.QName(e).namespace == "http://www.w3.org/2000/09/xmldsig#"
        for e in root.iter()
    )
    attachments = _attachments(root, body)
    return Package(ns, header, traces, attachments, signed, tuple(warnings)), root


def _organ(el: Any, what: str) -> Organ:
    organ_id = text(el, "OrganId")
    if not organ_id:
        raise PackageRefused(f"{what}: thiếu mã định danh cơ quan (OrganId).", "OrganId")
    try:
        validate_organ_id(organ_id, "OrganId", strict=False)
    except ValidationError:
        raise PackageRefused(
            f"{what}: '{organ_id}' không phải mã định danh cơ quan (QĐ 20/2020/QĐ-TTg, "
            "dạng 000.00.00.H49).", "OrganId",
        ) from None
    organ = Organ(
        organ_id=organ_id,
        organ_name=text(el, "OrganName"),
        in_charge=text(el, "OrganInCharge") or text(el, "OrganizationInCharge"),
        address=text(el, "OrganAdd"),
        email=text(el, "Email"),
        telephone=text(el, "Telephone"),
        fax=text(el, "Fax"),
        website=text(el, "Website"),
    )
    _limit("OrganName", organ.organ_name, what)
    _limit("OrganAdd", organ.address, what)
    return organ


def _limit(name: str, value: str, what: str = "") -> None:
    most, label = LIMITS[name]
    if len(value) > most:
        where = f"{what}: " if what else ""
        raise PackageRefused(
            f"{where}{label} dài {len(value)} ký tự, tối đa {most} ký tự (QCVN 102:2016).", name
        )


def _date(value: str, name: str, warnings: list[str]) -> str:
    """``YYYY/MM/DD`` (as QCVN 102 writes dates) → ISO; '' stays ''."""
    if not value:
        return ""
    m = _DATE.match(value)
    if m is None:
        raise PackageRefused(f"{name} '{value}' không phải ngày dạng YYYY/MM/DD.", name)
    if "-" in value[:10]:
        warnings.append(f"{name} viết '{value}', không theo dạng YYYY/MM/DD.")
    try:
        return dt.date(int(m[1]), int(m[2]), int(m[3])).isoformat()
    except ValueError:
        raise PackageRefused(f"{name} '{value}' không phải một ngày có thật.", name) from None


def _header(msg: Any, warnings: list[str]) -> Header:
    sender_el = child(msg, "From")
    if sender_el is None:
        raise PackageRefused("Gói tin thiếu nơi gửi (From).", "From")
    sender = _organ(sender_el, "Nơi gửi")
    recipients = tuple(_organ(el, "Nơi nhận") for el in children(msg, "To"))
    if not recipients:
        raise PackageRefused("Gói tin không có nơi nhận nào (To).", "To")
    ids = [r.organ_id for r in recipients]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise PackageRefused(f"Nơi nhận bị lặp: {', '.join(dup)} (To/OrganId).", "To")
    subject = text(msg, "Subject")
    if not subject:
        raise PackageRefused("Gói tin thiếu trích yếu (Subject).", "Subject")
    _limit("Subject", subject)
    content = text(msg, "Content")
    _limit("Content", content)
    document_id = text(msg, "DocumentId")
    if len(document_id) > DOCUMENT_ID_MAX:
        warnings.append(
            f"DocumentId dài {len(document_id)} ký tự (bộ kiểm tra công khai cho phép "
            f"{DOCUMENT_ID_MAX})."
        )
    places = tuple(
        nfc(p.text) for tp in children(msg, "ToPlaces") for p in children(tp, "Place") if p.text
        and p.text.strip()
    )
    for p in places:
        _limit("Place", p)
    other = child(msg, "OtherInfo")
    appendixes: tuple[str, ...] = ()
    if other is not None:
        appendixes = tuple(
            nfc(a.text) for lst in children(other, "Appendixes") for a in children(lst, "Appendix")
            if a.text and a.text.strip()
        )
    return Header(
        sender=sender,
        recipients=recipients,
        document_id=document_id,
        code_number=text(msg, "Code", "CodeNumber"),
        code_notation=text(msg, "Code", "CodeNotation"),
        place=text(msg, "PromulgationInfo", "Place"),
        promulgation_date=_date(
            text(msg, "PromulgationInfo", "PromulgationDate"), "PromulgationDate", warnings
        ),
        doc_type=text(msg, "DocumentType", "Type"),
        doc_type_detail=text(msg, "DocumentType", "TypeDetail"),
        type_name=text(msg, "DocumentType", "TypeName"),
        subject=subject,
        content=content,
        signer_competence=text(msg, "SignerInfo", "Competence"),
        signer_position=text(msg, "SignerInfo", "Position"),
        signer_full_name=text(msg, "SignerInfo", "FullName"),
        due_date=_date(text(msg, "DueDate"), "DueDate", warnings),
        to_places=places,
        priority=text(msg, "OtherInfo", "Priority"),
        sphere=text(msg, "OtherInfo", "SphereOfPromulgation"),
        typer_notation=text(msg, "OtherInfo", "TyperNotation"),
        promulgation_amount=text(msg, "OtherInfo", "PromulgationAmount"),
        page_amount=text(msg, "OtherInfo", "PageAmount"),
        appendixes=appendixes,
        steering_type=text(msg, "SteeringType"),
    )


def _cid(value: str) -> str:
    value = value.strip()
    return value[4:] if value.lower().startswith("cid:") else value


def _attachments(root: Any, body: Any) -> tuple[Attachment, ...]:
    """Attachments checked against the manifest, both ways."""
    manifest: dict[str, Any] = {}
    if body is not None:
        for m in children(body, "edXMLManifest"):
            for ref in children(m, "Reference"):
                href = ref.get(f"{{{'http://www.w3.org/1999/xlink'}}}href") or ""
                cid = _cid(text(ref, "ContentId") or href)
                if not cid:
                    raise PackageRefused(
                        "Mục lục (edXMLManifest) có tham chiếu không có ContentId.")
                manifest[cid] = ref
    encoded: dict[str, Any] = {}
    for holder in children(root, "AttachmentEncoded"):
        for att in children(holder, "Attachment"):
            cid = _cid(text(att, "ContentId"))
            if not cid or cid in encoded:
                raise PackageRefused("Tệp đính kèm không có ContentId hoặc ContentId bị lặp.")
            encoded[cid] = att
    missing = [c for c in manifest if c not in encoded]
    if missing:
        name = text(manifest[missing[0]], "AttachmentName") or missing[0]
        raise PackageRefused(
            f"Mục lục (edXMLManifest) nêu tệp '{name}' nhưng gói tin không có tệp đó.",
            "edXMLManifest",
        )
    orphans = [c for c in encoded if c not in manifest]
    if orphans:
        name = text(encoded[orphans[0]], "AttachmentName") or orphans[0]
        raise PackageRefused(
            f"Tệp đính kèm '{name}' không có trong mục lục (edXMLManifest).", "edXMLManifest"
        )
    if not encoded:
        raise PackageRefused("Gói tin không có tệp đính kèm nào (văn bản điện tử).")
    out = []
    for cid, att in encoded.items():
        ref = manifest[cid]
        name = text(att, "AttachmentName") or text(ref, "AttachmentName") or cid
        _limit("AttachmentName", name)
        blob = "".join((child(att, "ContentTransferEncoded").text or "").split()) if child(
            att, "ContentTransferEncoded") is not None else ""
        try:
            data = base64.b64decode(blob, validate=True)
        except (binascii.Error, ValueError):
            raise PackageRefused(f"Tệp '{name}' không giải mã được (base64 hỏng).") from None
        if not data:
            raise PackageRefused(f"Tệp '{name}' rỗng.")
        out.append(Attachment(
            content_id=cid,
            name=name,
            content_type=text(att, "ContentType") or text(ref, "ContentType")
            or "application/octet-stream",
            description=text(att, "Description") or text(ref, "Description"),
            data=data,
        ))
    return tuple(out)

