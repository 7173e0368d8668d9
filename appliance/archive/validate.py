"""Our own checks of a SIP_hoso: every file referenced, no orphans, every checksum right,
METS and EAD valid against the schemas shipped inside the package, the TT 05 rules."""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from lxml import etree

from ..classified import CLASSIFIED
from .mets import CSIP_NS, CSIP_PROFILE, METS_NS, SIP_PROFILE, XLINK_NS
from .premis import SCHEMA_FILE as PREMIS_XSD

_UUID = "[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}"
OBJID_RE = re.compile(f"^uuid-{_UUID}$")
FILE_ID_RE = re.compile(f"^ID-{_UUID}$")
ID_RE = re.compile(f"^uuid-{_UUID}$")
TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+07:00$")
DOC_CODE_RE = re.compile(r"^(?P<file>.+)\.(?P<n>\d{7})$")

_DRIVER = """<?xml version="1.0" encoding="UTF-8"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:luutru:driver">
  <xs:import namespace="http://www.w3.org/1999/xlink" schemaLocation="xlink.xsd"/>
  <xs:import namespace="http://www.loc.gov/METS/" schemaLocation="mets1_12.xsd"/>
  <xs:import namespace="https://DILCIS.eu/XML/METS/CSIPExtensionMETS"
             schemaLocation="DILCISExtensionMETS.xsd"/>
  <xs:import namespace="https://DILCIS.eu/XML/METS/SIPExtensionMETS"
             schemaLocation="DILCISExtensionSIPMETS.xsd"/>
</xs:schema>
"""


@dataclass
class PackageCheck:
    objid: str = ""
    files: int = 0
    references: int = 0
    documents: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "objid": self.objid,
            "files": self.files,
            "references": self.references,
            "documents": self.documents,
            "problems": self.problems,
        }


@contextmanager
def unpacked(path: Path) -> Iterator[Path]:
    """The package folder: ``path`` itself, or a ZIP's single top folder unpacked to a temp dir."""
    if path.is_dir():
        yield path
        return
    tmp = Path(tempfile.mkdtemp(prefix="sip-check-"))
    try:
        with zipfile.ZipFile(path) as zf:
            for name in zf.namelist():
                p = PurePosixPath(name)
                if p.is_absolute() or ".." in p.parts:
                    raise ValueError(f"unsafe path in ZIP: {name}")
            zf.extractall(tmp)
        tops = [p for p in tmp.iterdir()]
        yield tops[0] if len(tops) == 1 and tops[0].is_dir() else tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _sha256(p: Path) -> str:
    with p.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _refs(mets: etree._Element) -> list[etree._Element]:
    return list(mets.iter(f"{{{METS_NS}}}mdRef")) + [
        f for f in mets.iter(f"{{{METS_NS}}}file")
    ]


def _href(el: etree._Element) -> str | None:
    if el.tag != f"{{{METS_NS}}}mdRef":
        el = el.find(f"{{{METS_NS}}}FLocat")
    href = None if el is None else el.get(f"{{{XLINK_NS}}}href")
    return None if href is None else str(href)


def _check_mets(
    mets_path: Path, base: Path, pkg: Path, rep: PackageCheck, seen: set[Path], where: str
) -> etree._Element:
    tree = etree.parse(str(mets_path))
    root = tree.getroot()
    ids: dict[str, str] = {}
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        i = el.get("ID")
        if i is not None:
            if i in ids:
                rep.problems.append(f"{where}: ID {i} is used twice")
            ids[i] = el.tag
            pattern = FILE_ID_RE if el.tag == f"{{{METS_NS}}}file" else ID_RE
            if not pattern.match(i):
                rep.problems.append(f"{where}: ID {i} is not of the form uuid-/ID-{{UUID}}")
    if root.get("PROFILE") not in (SIP_PROFILE, CSIP_PROFILE):
        rep.problems.append(f"{where}: PROFILE is not the E-ARK SIP (or CSIP) profile")
    hdr = root.find(f"{{{METS_NS}}}metsHdr")
    if hdr is None or hdr.get(f"{{{CSIP_NS}}}OAISPACKAGETYPE") != "SIP":
        rep.problems.append(f"{where}: metsHdr lacks csip:OAISPACKAGETYPE=SIP")
    elif not TIME_RE.match(hdr.get("CREATEDATE", "")):
        rep.problems.append(f"{where}: CREATEDATE is not YYYY-MM-DDThh:mm:ss.sss+07:00")
    for el in _refs(root):
        href = _href(el)
        rep.references += 1
        if not href:
            rep.problems.append(f"{where}: a reference has no xlink:href")
            continue
        target = (base / href).resolve()
        if pkg.resolve() not in target.parents:
            rep.problems.append(f"{where}: {href} points outside the package")
            continue
        seen.add(target)
        if not target.is_file():
            rep.problems.append(f"{where}: {href} is referenced but missing")
            continue
        if el.get("CHECKSUMTYPE") != "SHA-256":
            rep.problems.append(f"{where}: {href} has CHECKSUMTYPE {el.get('CHECKSUMTYPE')}")
        if el.get("SIZE") != str(target.stat().st_size):
            rep.problems.append(
                f"{where}: {href} SIZE {el.get('SIZE')} but the file has {target.stat().st_size}"
            )
        if (el.get("CHECKSUM") or "").lower() != _sha256(target):
            rep.problems.append(f"{where}: {href} CHECKSUM does not match (file changed)")
        if not TIME_RE.match(el.get("CREATED", "")):
            rep.problems.append(f"{where}: {href} CREATED is not a +07:00 timestamp")
    used = {
        v
        for el in root.iter()
        if isinstance(el.tag, str)
        for k in ("FILEID", "DMDID", "ADMID")
        for v in (el.get(k) or "").split()
    }
    # A division may point at a whole file group (CSIP 2.1: Documentation, Schemas, …).
    for grp in root.iter(f"{{{METS_NS}}}fileGrp"):
        if grp.get("ID") in used:
            used.update(str(f.get("ID")) for f in grp.iter(f"{{{METS_NS}}}file"))
    # A representation's METS is linked by <mptr xlink:title="{its fileGrp ID}"> (CSIP).
    for mptr in root.iter(f"{{{METS_NS}}}mptr"):
        for grp in root.iter(f"{{{METS_NS}}}fileGrp"):
            if grp.get("ID") == mptr.get(f"{{{XLINK_NS}}}title"):
                used.update(f.get("ID") for f in grp.iter(f"{{{METS_NS}}}file"))
    for i, tag in ids.items():
        linked = (f"{{{METS_NS}}}file", f"{{{METS_NS}}}dmdSec", f"{{{METS_NS}}}digiprovMD")
        if tag in linked and i not in used:
            rep.problems.append(f"{where}: {tag.split('}')[1]} {i} is not linked in structMap")
    for i in used - set(ids):
        rep.problems.append(f"{where}: structMap points at unknown ID {i}")
    return root


def _schemas(pkg: Path, rep: PackageCheck) -> dict[str, etree.XMLSchema]:
    out: dict[str, etree.XMLSchema] = {}
    sdir = pkg / "schemas"
    try:
        for name in ("ead.xsd", "ead_doc.xsd", PREMIS_XSD):
            out[name] = etree.XMLSchema(etree.parse(str(sdir / name)))
        with tempfile.TemporaryDirectory() as tmp:
            for p in sdir.iterdir():
                shutil.copy(p, Path(tmp) / p.name)
            (Path(tmp) / "driver.xsd").write_text(_DRIVER, "utf-8")
            out["mets"] = etree.XMLSchema(etree.parse(str(Path(tmp) / "driver.xsd")))
    except (OSError, etree.XMLSchemaParseError, etree.XMLSyntaxError) as exc:
        rep.problems.append(f"schemas/: the shipped schemas cannot be loaded ({exc})")
    return out


def _validate(schema: etree.XMLSchema | None, path: Path, rep: PackageCheck, where: str) -> None:
    if schema is None:
        return
    try:
        doc = etree.parse(str(path))
    except etree.XMLSyntaxError as exc:
        rep.problems.append(f"{where}: not well-formed XML ({exc})")
        return
    if not schema.validate(doc):
        for err in list(schema.error_log)[:5]:
            rep.problems.append(f"{where}: line {err.line}: {err.message}")


def _text(doc: etree._Element, name: str) -> str:
    el = doc.find(name)
    return (el.text or "").strip() if el is not None else ""


def _rules(pkg: Path, rep: PackageCheck) -> None:
    """TT 05 rules an XSD cannot say."""
    ead = etree.parse(str(pkg / "metadata/descriptive/EAD.xml")).getroot()
    code = _text(ead, "fileCode")
    if _text(ead, "maintenance") != "01":
        rep.problems.append("EAD.xml: maintenance is not 01 (only permanent files transfer)")
    if _text(ead, "riskRecovery") == "1" and not _text(ead, "riskRecoveryStatus"):
        rep.problems.append("EAD.xml: riskRecoveryStatus is required when riskRecovery = 1")
    if _text(ead, "confidenceLevel") == "02" and not _text(ead, "paperFileCode"):
        rep.problems.append("EAD.xml: paperFileCode is required for a digitised file (02)")
    docs = sorted((pkg / "representations/rep1/metadata/descriptive").glob("EAD_DOC_*.xml"))
    rep.documents = len(docs)
    if _text(ead, "totalDoc") != str(len(docs)):
        rep.problems.append(f"EAD.xml: totalDoc {_text(ead, 'totalDoc')} but {len(docs)} items")
    for p in docs:
        d = etree.parse(str(p)).getroot()
        m = DOC_CODE_RE.match(_text(d, "docCode"))
        if not m or m["file"] != code:
            rep.problems.append(f"{p.name}: docCode is not fileCode + 7-digit ordinal")
        elif _text(d, "docId") != f"{code}.{int(m['n'])}":
            rep.problems.append(f"{p.name}: docId is not fileCode + '.' + ordinal")
        if _text(d, "mode") == CLASSIFIED:
            rep.problems.append(f"{p.name}: a classified (mật) item is in the package")


def check_package(path: Path) -> PackageCheck:
    """Check a package (ZIP or folder) and list every problem found; never repairs anything."""
    rep = PackageCheck()
    try:
        with unpacked(Path(path)) as pkg:
            _check(pkg, rep)
    except (zipfile.BadZipFile, ValueError, OSError, etree.XMLSyntaxError) as exc:
        rep.problems.append(f"cannot read the package: {exc}")
    return rep


def _check(pkg: Path, rep: PackageCheck) -> None:
    root_mets = pkg / "METS.xml"
    if not root_mets.is_file():
        rep.problems.append("METS.xml is missing at the package root")
        return
    schemas = _schemas(pkg, rep)
    seen: set[Path] = {root_mets.resolve()}
    root = _check_mets(root_mets, pkg, pkg, rep, seen, "METS.xml")
    rep.objid = root.get("OBJID", "")
    if not OBJID_RE.match(rep.objid):
        rep.problems.append(f"METS.xml: OBJID {rep.objid!r} is not uuid-{{UUID}}")
    if pkg.name != rep.objid:
        rep.problems.append(f"the package folder is {pkg.name!r}, not its OBJID {rep.objid!r}")
    if root.get("TYPE") != "Mixed":
        rep.problems.append("METS.xml: TYPE is not Mixed (SIP_hoso)")
    _validate(schemas.get("mets"), root_mets, rep, "METS.xml")
    for mptr in root.iter(f"{{{METS_NS}}}mptr"):
        href = mptr.get(f"{{{XLINK_NS}}}href") or ""
        rep_path = pkg / href
        if not rep_path.is_file():
            rep.problems.append(f"METS.xml: representation METS {href} is missing")
            continue
        where = href
        _check_mets(rep_path, rep_path.parent, pkg, rep, seen, where)
        _validate(schemas.get("mets"), rep_path, rep, where)
        for ead in (rep_path.parent / "metadata/descriptive").glob("EAD_DOC_*.xml"):
            _validate(schemas.get("ead_doc.xsd"), ead, rep, ead.name)
    for prem in sorted(pkg.glob("**/metadata/preservation/*.xml")):
        _validate(schemas.get(PREMIS_XSD), prem, rep, str(prem.relative_to(pkg)))
    ead_path = pkg / "metadata/descriptive/EAD.xml"
    if ead_path.is_file():
        _validate(schemas.get("ead.xsd"), ead_path, rep, "EAD.xml")
        try:
            _rules(pkg, rep)
        except etree.XMLSyntaxError as exc:
            rep.problems.append(f"metadata is not well-formed XML: {exc}")
    all_files = {p.resolve() for p in pkg.rglob("*") if p.is_file()}
    rep.files = len(all_files)
    for orphan in sorted(all_files - seen):
        rep.problems.append(f"{orphan.relative_to(pkg.resolve())} is in the package but no METS "
                            "references it (orphan)")
