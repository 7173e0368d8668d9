"""edXML packages as integrators write them, built by the tests as text (not by our builder):
the root ``edXML`` with a default namespace and ``edXML:``-prefixed envelope elements,
``AttachmentEncoded`` outside the envelope, dates ``YYYY/MM/DD``, an enveloped XML-DSig in
``edXMLHeader`` made with signxml over the whole document, PDFs signed with pyHanko (PAdES)
by an identity of the test PKI (``tests/pki_services.py``).
"""

from __future__ import annotations

import base64
import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

from cryptography.hazmat.primitives import serialization
from lxml import etree

NS_2016 = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
NS_OLD = "http://www.go.vn/eDoc"
OUR_ORG = "000.21.08.H49"
OUR_NAME = "Ủy ban nhân dân xã Đông Hải"


@dataclass
class FieldAttachment:
    name: str
    data: bytes
    content_type: str = "application/pdf"
    cid: str = ""
    description: str = "Văn bản điện tử"


@dataclass
class FieldDoc:
    """The header fields of a package, Vietnamese in every field."""

    subject: str = "V/v triển khai kế hoạch chuyển đổi số năm 2026 trên địa bàn tỉnh"
    content: str = "Đề nghị các xã, phường triển khai thực hiện nghiêm túc."
    code_number: str = "1234"
    code_notation: str = "UBND-VX"
    type_name: str = "Công văn"
    type_code: str = "18"
    type_detail: str = "0"
    date: str = "2026/11/28"
    due: str = "2026/12/15"
    sender_id: str = "000.00.00.H49"
    sender_name: str = "Ủy ban nhân dân tỉnh Quảng Ninh"
    to: Sequence[tuple[str, str]] = (
        (OUR_ORG, OUR_NAME), ("000.21.09.H49", "Ủy ban nhân dân xã Tân Việt"))
    place: str = "Hạ Long"
    signer_position: str = "Phó Chủ tịch"
    signer_name: str = "Nguyễn Thị Hồng Hạnh"
    to_places: Sequence[str] = ("Các sở, ban, ngành tỉnh", "UBND các xã, phường")
    priority: str = "1"
    page_amount: str = "3"
    appendixes: Sequence[str] = ("Phụ lục I: Danh mục nhiệm vụ",)
    document_id: str = "000.00.00.H49,2026/11/28,1234/UBND-VX"
    extra_prolog: str = ""  # inserted before the root (a DOCTYPE, stray bytes)
    manifest_extra: Sequence[str] = field(default=())  # names the manifest lists, without files


def _organ(tag: str, organ_id: str, name: str, p: str) -> str:
    return (
        f"<{p}{tag}><{p}OrganId>{escape(organ_id)}</{p}OrganId>"
        f"<{p}OrganInCharge>{escape(name)}</{p}OrganInCharge>"
        f"<{p}OrganName>{escape(name)}</{p}OrganName>"
        f"<{p}OrganAdd>Số 1 đường Hạ Long, tỉnh Quảng Ninh</{p}OrganAdd>"
        f"<{p}Email>vanthu@quangninh.gov.vn</{p}Email><{p}Telephone>0203 3835 000</{p}Telephone>"
        f"<{p}Fax></{p}Fax><{p}Website>quangninh.gov.vn</{p}Website></{p}{tag}>"
    )


def package_xml(doc: FieldDoc, attachments: Sequence[FieldAttachment], ns: str = NS_2016,
                signature_placeholder: bool = True) -> str:
    """The package as text, as the public builders write it."""
    p = "edXML:"
    to = "".join(_organ("To", i, n, p) for i, n in doc.to)
    places = "".join(f"<{p}Place>{escape(x)}</{p}Place>" for x in doc.to_places)
    apps = "".join(f"<{p}Appendix>{escape(x)}</{p}Appendix>" for x in doc.appendixes)
    refs, encoded = [], []
    for i, a in enumerate(attachments):
        cid = a.cid or f"att{i + 1}-{abs(hash(a.name)) % 10**8}"
        a.cid = cid
        refs.append(
            f'<{p}Reference xmlns:xlink="http://www.w3.org/1999/xlink" xlink:href="cid:{cid}" '
            f'xlink:role="XLinkRole" xlink:type="simple"><{p}Description>{escape(a.description)}'
            f"</{p}Description><{p}AttachmentName>{escape(a.name)}</{p}AttachmentName>"
            f"<{p}ContentType>{a.content_type}</{p}ContentType><{p}ContentId>cid:{cid}"
            f"</{p}ContentId></{p}Reference>"
        )
        encoded.append(
            f"<Attachment><ContentType>{a.content_type}</ContentType><ContentId>{cid}"
            f"</ContentId><Description>{escape(a.description)}</Description>"
            f"<ContentTransferEncoded>{base64.b64encode(a.data).decode()}</ContentTransferEncoded>"
            f"<AttachmentName>{escape(a.name)}</AttachmentName></Attachment>"
        )
    for j, name in enumerate(doc.manifest_extra):
        refs.append(
            f"<{p}Reference><{p}AttachmentName>{escape(name)}</{p}AttachmentName>"
            f"<{p}ContentType>application/pdf</{p}ContentType><{p}ContentId>cid:missing-{j}"
            f"</{p}ContentId></{p}Reference>"
        )
    sig = ('<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#" Id="placeholder"/>'
           if signature_placeholder else "")
    return (
        f'{doc.extra_prolog}<?xml version="1.0" encoding="utf-8"?>\n'
        f'<edXML xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        f'xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns="{ns}">'
        f'<edXML:edXMLEnvelope xmlns:edXML="{ns}"><{p}edXMLHeader><{p}MessageHeader>'
        f"{_organ('From', doc.sender_id, doc.sender_name, p)}{to}"
        f"<{p}Code><{p}CodeNumber>{escape(doc.code_number)}</{p}CodeNumber>"
        f"<{p}CodeNotation>{escape(doc.code_notation)}</{p}CodeNotation></{p}Code>"
        f"<{p}PromulgationInfo><{p}Place>{escape(doc.place)}</{p}Place>"
        f"<{p}PromulgationDate>{doc.date}</{p}PromulgationDate></{p}PromulgationInfo>"
        f"<{p}DocumentType><{p}Type>{doc.type_code}</{p}Type><{p}TypeDetail>{doc.type_detail}"
        f"</{p}TypeDetail><{p}TypeName>{escape(doc.type_name)}</{p}TypeName></{p}DocumentType>"
        f"<{p}Subject>{escape(doc.subject)}</{p}Subject><{p}Content>{escape(doc.content)}"
        f"</{p}Content><{p}SignerInfo><{p}Competence>Ký thay Chủ tịch</{p}Competence>"
        f"<{p}Position>{escape(doc.signer_position)}</{p}Position><{p}FullName>"
        f"{escape(doc.signer_name)}</{p}FullName></{p}SignerInfo>"
        f"<{p}DueDate>{doc.due}</{p}DueDate><{p}ToPlaces>{places}</{p}ToPlaces>"
        f"<{p}OtherInfo><{p}Priority>{doc.priority}</{p}Priority><{p}SphereOfPromulgation>"
        f"Liên thông văn bản</{p}SphereOfPromulgation><{p}TyperNotation>NTH</{p}TyperNotation>"
        f"<{p}PromulgationAmount>25</{p}PromulgationAmount><{p}PageAmount>{doc.page_amount}"
        f"</{p}PageAmount><{p}Appendixes>{apps}</{p}Appendixes></{p}OtherInfo>"
        f"<{p}SteeringType>0</{p}SteeringType><{p}DocumentId>{escape(doc.document_id)}"
        f"</{p}DocumentId></{p}MessageHeader>"
        f'<{p}TraceHeaderList id="a1b2c3d4" version="1.0" mustUnderstand="1">'
        f"<{p}TraceHeader><{p}OrganId>{doc.sender_id}</{p}OrganId><{p}Timestamp>"
        f"{doc.date} 08:30:00</{p}Timestamp></{p}TraceHeader></{p}TraceHeaderList>{sig}"
        f"</{p}edXMLHeader><{p}edXMLBody><{p}edXMLManifest version=\"1.0\">{''.join(refs)}"
        f"</{p}edXMLManifest></{p}edXMLBody></edXML:edXMLEnvelope>"
        f"<AttachmentEncoded>{''.join(encoded)}</AttachmentEncoded></edXML>"
    )


def sign_xml(text: str, identity: Any, sha1: bool = False) -> bytes:
    """Sign a package text (with its placeholder) by an identity of the test PKI, with
    signxml, enveloped over the whole document (URI="")."""
    from signxml import (
        CanonicalizationMethod,
        DigestAlgorithm,
        SignatureMethod,
        XMLSigner,
        methods,
    )

    start = text.index("<?xml")
    prolog, body = text[:start], text[start:]
    root = etree.fromstring(body.encode("utf-8"))
    from cryptography.hazmat.primitives.asymmetric import ec

    ecdsa = isinstance(identity.key, ec.EllipticCurvePrivateKey)
    alg = (SignatureMethod.ECDSA_SHA256 if ecdsa else
           (SignatureMethod.RSA_SHA1 if sha1 else SignatureMethod.RSA_SHA256))
    signer = XMLSigner(
        method=methods.enveloped, signature_algorithm=alg,
        digest_algorithm=DigestAlgorithm.SHA1 if sha1 else DigestAlgorithm.SHA256,
        c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
    )
    if sha1:
        signer.check_deprecated_methods = lambda: None  # type: ignore[method-assign]
    pems = [c.public_bytes(serialization.Encoding.PEM).decode()
            for c in (identity.cert, *identity.chain)]
    signed = signer.sign(root, key=identity.key, cert=pems)
    out: bytes = etree.tostring(signed, xml_declaration=True, encoding="UTF-8")
    return prolog.encode() + out


def signed_pdf(identity: Any, text: str, pages: int = 1) -> bytes:
    """A PDF with Vietnamese text, PAdES-signed by ``identity`` (pyHanko)."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers
    from pyhanko.sign.fields import SigSeedSubFilter

    from tests.archive.conftest import pdf_bytes

    out = io.BytesIO()
    meta = signers.PdfSignatureMetadata(
        field_name="ChuKySo", md_algorithm="sha256", subfilter=SigSeedSubFilter.PADES)
    signers.PdfSigner(meta, signer=identity.pdf_signer()).sign_pdf(
        IncrementalPdfFileWriter(io.BytesIO(pdf_bytes(text, pages))), output=out)
    return out.getvalue()


def flip_signed_byte(pdf: bytes) -> bytes:
    """One byte changed inside the signed range (page content), as `pdfsig` then reports
    "Digest Mismatch"."""
    at = pdf.index(b"stream") + 40
    return pdf[:at] + bytes([pdf[at] ^ 0x01]) + pdf[at + 1:]


def field_package(identity: Any | None, doc: FieldDoc | None = None,
                  attachments: Sequence[FieldAttachment] | None = None,
                  ns: str = NS_2016, sha1: bool = False) -> bytes:
    """A complete package: signed PDF(s) and, when ``identity`` is given, the envelope's
    XML-DSig by the same identity."""
    doc = doc or FieldDoc()
    if attachments is None:
        assert identity is not None
        attachments = [FieldAttachment("1234-UBND-VX.signed.pdf",
                                       signed_pdf(identity, "Công văn số 1234/UBND-VX"))]
    text = package_xml(doc, attachments, ns, signature_placeholder=identity is not None)
    if identity is None:
        return text.encode("utf-8")
    return sign_xml(text, identity, sha1=sha1)


class AgencyXmlKey:
    """Another agency's key for signing its edXML (an addressee answering us), issued by the
    test CA ``ca`` with the agency identifier in the subject (as agency_subject writes it)."""

    def __init__(self, ca: Any, organ_id: str, name: str) -> None:
        from cryptography.hazmat.primitives.asymmetric import ec

        from appliance.keys import agency

        self.private = ec.generate_private_key(ec.SECP256R1())
        self.chain = [ca.issue(self.private.public_key(),
                               agency.agency_subject(name, None, organ_id)), ca.cert]

    def xml_signing_key(self) -> Any:
        return self.private


def answer_status(ref: tuple[str, str, str], code: str, key: Any, description: str,
                  sender: tuple[str, str], stamp: str, to: str = OUR_ORG) -> bytes:
    """The addressee ``sender`` (organ id, name)'s status message ``code`` about our document
    ``ref`` = (DocumentId, số/ký hiệu, YYYY/MM/DD), signed by ``key`` (None: unsigned)."""
    import datetime as dt

    from appliance.clock import TZ
    from appliance.edxml.build import status_package
    from appliance.edxml.model import Organ, StatusMessage

    msg = StatusMessage(
        namespace=NS_2016, sender=Organ(sender[0], sender[1]), response_for_organ=to,
        response_for_code=ref[1], response_for_date=ref[2], response_for_document=ref[0],
        status_code=code, description=description, timestamp=stamp,
        staff="Nguyễn Thị Văn Thư", department="Văn thư")
    return status_package(msg, key, dt.datetime.now(TZ) if key else None)


def edxml_everything(store: Any, secret_mode: str | None = None) -> dict[str, str]:
    """One of every ``edxml.*`` kind through the live paths, without a PKI (unsigned packages
    are "không kiểm tra được", registered with the clerk's confirmation): a trust root added
    and removed, two packages received and checked, one registered (as a mật document when
    ``secret_mode`` is "03"), one returned, one refused for its structure (answered with
    status 02), their status messages sent, an issued document exported, and the
    addressee's status message about it (unsigned: kept, not applied)."""
    from appliance.edxml import export, inbox, intake
    from appliance.edxml.errors import PackageRefused
    from appliance.edxml.intake_trust import add_root, remove_root
    from tests.archive.conftest import attach_pdf, pdf_bytes
    from tests.conftest import outgoing
    from tests.pki import make_ca, pem

    roots = add_root(store, pem(make_ca().cert), "kỹ thuật")
    remove_root(store, roots[0].fingerprint, "kỹ thuật")
    subject = ("V/v phương án bảo vệ bí mật khu vực phòng thủ" if secret_mode == "03"
               else "V/v tổ chức Ngày hội Đại đoàn kết toàn dân tộc")
    first = intake.import_package(store, field_package(
        None, FieldDoc(subject=subject, code_number="315", code_notation="UBND-VP"),
        [FieldAttachment("315-UBND-VP.pdf", pdf_bytes(f"Công văn 315 {subject}"))]),
        source="kiểm thử", online=False, actor="edxml")
    changes = {"Mode": secret_mode} if secret_mode else {}
    doc = intake.register(store, first.item.id, "vanthu", changes, accept_unverified=True)
    second = intake.import_package(store, field_package(
        None, FieldDoc(subject="V/v góp ý dự thảo quy chế (gửi nhầm)", code_number="316"),
        [FieldAttachment("316.pdf", pdf_bytes("Công văn 316 góp ý dự thảo"))]),
        source="kiểm thử", online=False)
    intake.return_package(store, second.item.id, "Sai thể thức văn bản", "vanthu")
    with contextlib.suppress(PackageRefused):
        intake.import_package(store, field_package(
            None, FieldDoc(subject="", code_number="317"),
            [FieldAttachment("317.pdf", pdf_bytes("Công văn 317"))]), source="kiểm thử",
            online=False)
    for pending in inbox.unsent(store.reader()):
        intake.mark_sent(store, pending.item_id, pending.code, "folder:/kiểm-thử")
    out = store.issue_outgoing(store.draft_outgoing(outgoing(
        Subject="Về việc báo cáo kết quả chuyển đổi số quý IV",
        To=[{"OrganId": "000.00.00.H49", "OrganName": "Ủy ban nhân dân tỉnh Quảng Ninh"}],
    )).record.id).record
    attach_pdf(store, out, "Báo cáo kết quả chuyển đổi số")
    export.export_document(store, out.id, "000.00.00.H49", None)
    from appliance.edxml.answers import take_status
    from appliance.edxml.build import status_package
    from appliance.edxml.model import Organ, StatusMessage

    code = f"{out.data['CodeNumber']}/{out.data['CodeNotation']}"
    date = str(out.data["IssuedDate"]).replace("-", "/")
    take_status(store, status_package(StatusMessage(
        NS_2016, Organ("000.00.00.H49", "Ủy ban nhân dân tỉnh Quảng Ninh"), OUR_ORG, code,
        date, f"{OUR_ORG},{date},{code}", "01", "Đã đến", "2026/12/03 09:41:00")),
        source="kiểm thử", online=False)
    return {"registered": doc.record.id, "returned": second.item.id}
