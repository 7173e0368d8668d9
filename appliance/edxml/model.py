"""What an edXML package holds, as plain values (QCVN 102:2016 element names in comments)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

NS_2016 = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
NS_OLD = "http://www.go.vn/eDoc"  # packages written before QCVN 102:2016
NAMESPACES = (NS_2016, NS_OLD)
DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
XLINK_NS = "http://www.w3.org/1999/xlink"


@dataclass(frozen=True)
class Organ:
    """``From`` / ``To``: an agency and how to reach it."""

    organ_id: str  # OrganId (QĐ 20/2020 mã định danh)
    organ_name: str = ""  # OrganName
    in_charge: str = ""  # OrganInCharge / OrganizationInCharge
    address: str = ""  # OrganAdd
    email: str = ""
    telephone: str = ""
    fax: str = ""
    website: str = ""

    def to_json(self) -> dict[str, str]:
        return {k: v for k, v in {
            "OrganId": self.organ_id, "OrganName": self.organ_name,
            "OrganInCharge": self.in_charge, "OrganAdd": self.address, "Email": self.email,
            "Telephone": self.telephone, "Fax": self.fax, "Website": self.website,
        }.items() if v}


@dataclass(frozen=True)
class Trace:
    """One ``TraceHeader``: an agency the package passed through, and when."""

    organ_id: str
    timestamp: str  # as written: YYYY/MM/DD hh:mm:ss


@dataclass(frozen=True)
class Attachment:
    """One attachment: its manifest entry and its decoded bytes."""

    content_id: str  # without the "cid:" prefix
    name: str  # AttachmentName
    content_type: str
    description: str
    data: bytes


@dataclass(frozen=True)
class Header:
    """``MessageHeader`` of a document package (fields absent from the package are empty)."""

    sender: Organ  # From
    recipients: tuple[Organ, ...]  # To, at least one
    document_id: str = ""  # DocumentId
    code_number: str = ""  # Code/CodeNumber
    code_notation: str = ""  # Code/CodeNotation
    place: str = ""  # PromulgationInfo/Place
    promulgation_date: str = ""  # PromulgationInfo/PromulgationDate, as ISO YYYY-MM-DD
    doc_type: str = ""  # DocumentType/Type
    doc_type_detail: str = ""  # DocumentType/TypeDetail
    type_name: str = ""  # DocumentType/TypeName
    subject: str = ""
    content: str = ""
    signer_competence: str = ""  # SignerInfo/Competence
    signer_position: str = ""  # SignerInfo/Position
    signer_full_name: str = ""  # SignerInfo/FullName
    due_date: str = ""  # DueDate, as ISO YYYY-MM-DD
    to_places: tuple[str, ...] = ()  # ToPlaces/Place
    priority: str = ""  # OtherInfo/Priority
    sphere: str = ""  # OtherInfo/SphereOfPromulgation
    typer_notation: str = ""  # OtherInfo/TyperNotation
    promulgation_amount: str = ""  # OtherInfo/PromulgationAmount
    page_amount: str = ""  # OtherInfo/PageAmount
    appendixes: tuple[str, ...] = ()  # OtherInfo/Appendixes/Appendix
    steering_type: str = ""  # SteeringType


@dataclass(frozen=True)
class Package:
    """A parsed document package."""

    namespace: str
    header: Header
    traces: tuple[Trace, ...]
    attachments: tuple[Attachment, ...]
    signed: bool  # an XML-DSig Signature element is present
    warnings: tuple[str, ...] = ()  # what was accepted although unusual (shown in the report)

    def summary(self) -> dict[str, Any]:
        """The header as the log and the inbox keep it (no attachment bytes)."""
        h = self.header
        return {
            "namespace": self.namespace,
            "From": h.sender.to_json(),
            "To": [r.to_json() for r in h.recipients],
            "DocumentId": h.document_id,
            "CodeNumber": h.code_number,
            "CodeNotation": h.code_notation,
            "Place": h.place,
            "PromulgationDate": h.promulgation_date,
            "Type": h.doc_type,
            "TypeDetail": h.doc_type_detail,
            "TypeName": h.type_name,
            "Subject": h.subject,
            "Content": h.content,
            "SignerCompetence": h.signer_competence,
            "SignerPosition": h.signer_position,
            "SignerFullName": h.signer_full_name,
            "DueDate": h.due_date,
            "ToPlaces": list(h.to_places),
            "Priority": h.priority,
            "SphereOfPromulgation": h.sphere,
            "TyperNotation": h.typer_notation,
            "PromulgationAmount": h.promulgation_amount,
            "PageAmount": h.page_amount,
            "Appendixes": list(h.appendixes),
            "SteeringType": h.steering_type,
            "TraceHeaderList": [{"OrganId": t.organ_id, "Timestamp": t.timestamp}
                                for t in self.traces],
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class StatusMessage:
    """A status package (``Status``): what became of a document the sender sent us."""

    namespace: str
    sender: Organ  # From: who reports the status (us)
    response_for_organ: str  # ResponseFor/OrganId: the agency that sent the document
    response_for_code: str  # ResponseFor/Code: số/ký hiệu
    response_for_date: str  # ResponseFor/PromulgationDate, YYYY/MM/DD
    response_for_document: str  # ResponseFor/DocumentId
    status_code: str  # StatusCode (status.CODES)
    description: str
    timestamp: str  # YYYY/MM/DD hh:mm:ss
    staff: str = ""  # StaffInfo/Staff
    department: str = ""  # StaffInfo/Department
