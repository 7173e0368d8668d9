"""The METS documents of a SIP_hoso: the package's (root) and its representation's.

Laid out as the E-ARK CSIP/SIP 2.1 profiles and the E-ARK validator (eark-validator 1.1.3,
schematron included) want, keeping Circular 05/2025's rules (spec §3.2): ``uuid-{UUID}`` IDs
(``ID-{UUID}`` for files), SHA-256 checksums with SIZE and CREATED in +07:00, TYPE Mixed,
csip:OAISPACKAGETYPE SIP, the archival creator's IDENTIFICATIONCODE = mã phông, the
fileCode as submission agreement.

- metsHdr: the software (ROLE CREATOR, TYPE OTHER/SOFTWARE, its version), the archival
  creator (ROLE ARCHIVIST: the fonds' agency and its mã phông, SIP9–SIP14) and the submitting
  agency (ROLE OTHER/SUBMITTER: the box's agency and its mã định danh). The submitter is not
  ROLE CREATOR because eark-validator applies its software-agent rules (CSIP12–16) to every
  CREATOR agent.
- every fileGrp is csip:CONTENTINFORMATIONTYPE OTHER with OTHERCONTENTINFORMATIONTYPE (CSIP63
  as the validator tests it); Documentation, Schemas and Representations divisions point at
  their file groups, the representation's division nested in "Representations".
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from lxml import etree

METS_NS = "http://www.loc.gov/METS/"
XLINK_NS = "http://www.w3.org/1999/xlink"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
CSIP_NS = "https://DILCIS.eu/XML/METS/CSIPExtensionMETS"
SIP_NS = "https://DILCIS.eu/XML/METS/SIPExtensionMETS"
NSMAP = {None: METS_NS, "xlink": XLINK_NS, "xsi": XSI_NS, "csip": CSIP_NS, "sip": SIP_NS}
SIP_PROFILE = "https://earksip.dilcis.eu/profile/E-ARK-SIP.xml"
CSIP_PROFILE = "https://earkcsip.dilcis.eu/profile/E-ARK-CSIP.xml"
CONTENT_TYPE = "Thông tư 05/2025/TT-BNV SIP_hoso"  # csip:OTHERCONTENTINFORMATIONTYPE
SOFTWARE = "luutru"


def software_version() -> str:
    """luutru's version, as the METS software agent and PREMIS agents name it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("luutru")
    except PackageNotFoundError:
        return "0"


def m(tag: str) -> str:
    return f"{{{METS_NS}}}{tag}"


def _x(tag: str) -> str:
    return f"{{{XLINK_NS}}}{tag}"


def _c(tag: str) -> str:
    return f"{{{CSIP_NS}}}{tag}"


def new_id(prefix: str = "uuid-") -> str:
    """TT 05 IDs: ``uuid-{UUID}`` (``ID-{UUID}`` for <file>), upper-case."""
    return prefix + str(uuid.uuid4()).upper()


@dataclass(frozen=True)
class Ref:
    """A file the METS names: its path in the package, size, SHA-256 and time."""

    id: str
    href: str
    size: int
    sha256: str
    created: str
    mime: str


@dataclass(frozen=True)
class Header:
    """Who made the package: the software, the archival creator, the submitter."""

    created: str
    status: str  # RECORDSTATUS: NEW · SUPPLEMENT · REPLACEMENT · TEST · OTHER
    version: str
    creator_name: str  # the agency whose fonds the records belong to
    fond_code: str  # its mã phông
    submitter_name: str  # the agency preparing the package (the box's)
    submitter_id: str  # its mã định danh
    actor: str = ""  # the person who built it (representation METS)
    profile: str = SIP_PROFILE


def _root(objid: str, label: str, hdr: Header) -> etree._Element:
    root = etree.Element(m("mets"), nsmap=NSMAP)
    root.set("OBJID", objid)
    if label:
        root.set("LABEL", label)
    root.set("TYPE", "Mixed")
    root.set(_c("CONTENTINFORMATIONTYPE"), "MIXED")
    root.set("PROFILE", hdr.profile)
    return root


def _schema_location(root: etree._Element, prefix: str) -> None:
    root.set(
        f"{{{XSI_NS}}}schemaLocation",
        f"{METS_NS} {prefix}schemas/mets1_12.xsd {XLINK_NS} {prefix}schemas/xlink.xsd "
        f"{CSIP_NS} {prefix}schemas/DILCISExtensionMETS.xsd "
        f"{SIP_NS} {prefix}schemas/DILCISExtensionSIPMETS.xsd",
    )


def _agent(hdr: etree._Element, role: str, kind: str, name: str, note: tuple[str, str] | None,
           other_type: str | None = None, other_role: str | None = None) -> None:
    a = etree.SubElement(hdr, m("agent"))
    a.set("ROLE", role)
    if other_role:
        a.set("OTHERROLE", other_role)
    a.set("TYPE", kind)
    if other_type:
        a.set("OTHERTYPE", other_type)
    etree.SubElement(a, m("name")).text = name
    if note:
        n = etree.SubElement(a, m("note"))
        n.set(_c("NOTETYPE"), note[0])
        n.text = note[1]


def _header(root: etree._Element, h: Header, agreement: str | None, rep: bool) -> None:
    hdr = etree.SubElement(root, m("metsHdr"))
    hdr.set("CREATEDATE", h.created)
    hdr.set("LASTMODDATE", h.created)
    hdr.set("RECORDSTATUS", h.status)
    hdr.set(_c("OAISPACKAGETYPE"), "SIP")
    _agent(hdr, "CREATOR", "OTHER", SOFTWARE, ("SOFTWARE VERSION", h.version), "SOFTWARE")
    _agent(hdr, "ARCHIVIST", "ORGANIZATION", h.creator_name, ("IDENTIFICATIONCODE", h.fond_code))
    _agent(hdr, "OTHER", "ORGANIZATION", h.submitter_name,
           ("IDENTIFICATIONCODE", h.submitter_id), other_role="SUBMITTER")
    if rep and h.actor:
        _agent(hdr, "OTHER", "INDIVIDUAL", h.actor, None, other_role="SUBMITTER")
    if agreement:
        alt = etree.SubElement(hdr, m("altRecordID"))
        alt.set("TYPE", "SUBMISSIONAGREEMENT")
        alt.text = agreement


def _md_ref(parent: etree._Element, ref: Ref, mdtype: str, version: str,
            other: str | None = None) -> None:
    md = etree.SubElement(parent, m("mdRef"))
    md.set("LOCTYPE", "URL")
    md.set(_x("type"), "simple")
    md.set(_x("href"), ref.href)
    md.set("MDTYPE", mdtype)
    if other:
        md.set("OTHERMDTYPE", other)
    md.set("MDTYPEVERSION", version)
    md.set("MIMETYPE", ref.mime)
    md.set("SIZE", str(ref.size))
    md.set("CREATED", ref.created)
    md.set("CHECKSUM", ref.sha256.upper())
    md.set("CHECKSUMTYPE", "SHA-256")


def _dmd(root: etree._Element, ref: Ref) -> str:
    sec = etree.SubElement(root, m("dmdSec"))
    sec.set("ID", new_id())
    sec.set("CREATED", ref.created)
    sec.set("STATUS", "CURRENT")
    _md_ref(sec, ref, "DC", "1.0.0")
    return str(sec.get("ID"))


def _amd(root: etree._Element, premis: Sequence[Ref]) -> list[str]:
    """One amdSec, a digiprovMD per PREMIS file (CSIP31–CSIP44)."""
    sec = etree.SubElement(root, m("amdSec"))
    sec.set("ID", new_id())
    ids = []
    for ref in premis:
        dp = etree.SubElement(sec, m("digiprovMD"))
        dp.set("ID", new_id())
        dp.set("STATUS", "CURRENT")
        _md_ref(dp, ref, "PREMIS", "3.0")
        ids.append(str(dp.get("ID")))
    return ids


def _file(grp: etree._Element, ref: Ref) -> None:
    f = etree.SubElement(grp, m("file"))
    f.set("ID", ref.id)
    f.set("MIMETYPE", ref.mime)
    f.set("SIZE", str(ref.size))
    f.set("CREATED", ref.created)
    f.set("CHECKSUM", ref.sha256.upper())
    f.set("CHECKSUMTYPE", "SHA-256")
    loc = etree.SubElement(f, m("FLocat"))
    loc.set("LOCTYPE", "URL")
    loc.set(_x("type"), "simple")
    loc.set(_x("href"), ref.href)


def _group(sec: etree._Element, use: str, refs: Sequence[Ref]) -> str:
    grp = etree.SubElement(sec, m("fileGrp"))
    grp.set("ID", new_id())
    grp.set("USE", use)
    grp.set(_c("CONTENTINFORMATIONTYPE"), "OTHER")
    grp.set(_c("OTHERCONTENTINFORMATIONTYPE"), CONTENT_TYPE)
    for ref in refs:
        _file(grp, ref)
    return str(grp.get("ID"))


def _div(parent: etree._Element, label: str, **attrs: str) -> etree._Element:
    d = etree.SubElement(parent, m("div"))
    d.set("ID", new_id())
    d.set("LABEL", label)
    for k, v in attrs.items():
        d.set(k, v)
    return d


def _fptr(div: etree._Element, target: str) -> None:
    etree.SubElement(div, m("fptr")).set("FILEID", target)


def _struct_map(root: etree._Element, label: str) -> etree._Element:
    smap = etree.SubElement(root, m("structMap"))
    smap.set("ID", new_id())
    smap.set("TYPE", "PHYSICAL")
    smap.set("LABEL", "CSIP")
    return _div(smap, label)


def _bytes(root: etree._Element) -> bytes:
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


def rep_mets(h: Header, eads: Sequence[Ref], data: Sequence[Sequence[Ref]],
             premis: Ref) -> bytes:
    """representations/rep1/METS.xml: one dmdSec per EAD_doc, the archival files, PREMIS."""
    root = _root("rep1", "", h)
    _schema_location(root, "../../")
    _header(root, h, None, rep=True)
    dmd_ids = [_dmd(root, ref) for ref in eads]
    adm = _amd(root, [premis])
    sec = etree.SubElement(root, m("fileSec"))
    sec.set("ID", new_id())
    data_grp = _group(sec, "Data", [r for refs in data for r in refs])
    top = _struct_map(root, "rep1")
    _div(top, "Metadata", DMDID=" ".join(dmd_ids), ADMID=" ".join(adm))
    data_div = _div(top, "Data")
    _fptr(data_div, data_grp)
    for dmd_id, refs in zip(dmd_ids, data, strict=True):
        item = _div(data_div, "Data/Item", DMDID=dmd_id)
        for ref in refs:
            _fptr(item, ref.id)
    return _bytes(root)


def root_mets(objid: str, title: str, h: Header, agreement: str, ead: Ref,
              premis: Ref, docs: Sequence[Ref], schemas: Sequence[Ref], rep: Ref) -> bytes:
    """The package's METS.xml."""
    root = _root(objid, title, h)
    _schema_location(root, "")
    _header(root, h, agreement, rep=False)
    dmd_id = _dmd(root, ead)
    adm = _amd(root, [premis])
    sec = etree.SubElement(root, m("fileSec"))
    sec.set("ID", new_id())
    doc_grp = _group(sec, "Documentation", docs)
    schema_grp = _group(sec, "Schemas", schemas)
    rep_grp = _group(sec, "Representations/rep1", [rep])
    top = _struct_map(root, objid)
    _div(top, "Metadata", DMDID=dmd_id, ADMID=" ".join(adm))
    _fptr(_div(top, "Documentation"), doc_grp)
    _fptr(_div(top, "Schemas"), schema_grp)
    reps = _div(top, "Representations")
    _fptr(reps, rep_grp)
    mptr = etree.SubElement(_div(reps, "Representations/rep1"), m("mptr"))
    mptr.set("LOCTYPE", "URL")
    mptr.set(_x("type"), "simple")
    mptr.set(_x("href"), "representations/rep1/METS.xml")
    mptr.set(_x("title"), rep_grp)
    return _bytes(root)
