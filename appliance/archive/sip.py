"""Circular 05/2025 SIP_hoso packages: an E-ARK CSIP 2.0.4 tree, METS, EAD, ZIP.

One permanent (maintenance 01), closed hồ sơ becomes one package; classified items stay
out unless asked for. Content files are copied into the ZIP while their SHA-256 is checked
against the content store's name, so a rotted file stops the package instead of travelling.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lxml import etree

from .. import renditions, writes
from ..classified import is_classified
from ..clock import iso, vn_date
from ..errors import ConflictError, ValidationError
from ..fsutil import durable_dirs, fsync_dir
from ..identifiers import doc_code, doc_id
from ..kinds import Kind
from . import premis
from .closing import ContentsItem, contents_list
from .eadfields import EAD_DOC, EAD_HOSO, SCHEMA_DIR, EadField
from .errors import ClassifiedError, NotPermanentError, PackageError
from .mets import Header, Ref, new_id, rep_mets, root_mets, software_version

if TYPE_CHECKING:
    from ..store import Record, Store

SCHEMA_FILES = (
    "mets1_12.xsd",
    "xlink.xsd",
    "DILCISExtensionMETS.xsd",
    "DILCISExtensionSIPMETS.xsd",
    "ead.xsd",
    "ead_doc.xsd",
    "ead_pic.xsd",
    "ead_media.xsd",
    premis.SCHEMA_FILE,
)
CHUNK = 1 << 20
EXTENSIONS = {
    "application/pdf": "pdf",
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/tiff": "tif",
    "text/plain": "txt",
    "application/xml": "xml",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/msword": "doc",
}
ROOT_PREMIS = "metadata/preservation/PREMIS.xml"
REP_PREMIS = "metadata/preservation/PREMIS_rep1.xml"


@dataclass(frozen=True)
class PackageOptions:
    include_classified: bool = False
    record_status: str = "NEW"  # NEW · SUPPLEMENT · REPLACEMENT · TEST · OTHER
    submission_agreement: str | None = None  # default: the fileCode, as the sample does
    actor: str = "system"


@dataclass
class PackageResult:
    path: Path
    objid: str
    file_code: str
    documents: int
    content_files: int
    content_bytes: int
    zip_sha256: str = ""
    zip_size: int = 0
    excluded_classified: int = 0
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "objid": self.objid,
            "file_code": self.file_code,
            "documents": self.documents,
            "content_files": self.content_files,
            "content_bytes": self.content_bytes,
            "zip_sha256": self.zip_sha256,
            "zip_size": self.zip_size,
            "excluded_classified": self.excluded_classified,
            "warnings": self.warnings,
        }


# -- EAD ------------------------------------------------------------------------------------


def _code(store: Store, list_name: str, value: Any, default: str) -> str:
    if value in (None, ""):
        return default
    try:
        return store.codes[list_name].lookup(str(value)).code
    except ValidationError:
        return default


def _date(value: Any) -> str:
    return vn_date(str(value)) if value else ""


def simpledc(fields: tuple[EadField, ...], values: dict[str, Any]) -> bytes:
    """An EAD ``<simpledc>`` document with every field of the list, in order (empty if unknown)."""
    root = etree.Element("simpledc")
    for f in fields:
        v = values.get(f.name)
        el = etree.SubElement(root, f.name)
        el.text = "" if v is None else str(v)
        if f.kind == "str" and len(el.text) > f.length:
            raise PackageError(f"{f.name} ({f.label_vi}) is longer than {f.length} characters")
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


def file_ead(
    store: Store, file: dict[str, Any], items: list[ContentsItem], docs: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    confidence = _code(store, "confidenceLevel", file.get("ConfidenceLevel"), "01")
    paper = file.get("PaperFileCode") or ""
    if confidence == "02" and not paper:
        raise PackageError(
            f"hồ sơ {file['FileCode']} is digitised (confidenceLevel 02): PaperFileCode "
            "(mã hồ sơ gốc giấy) is required"
        )
    risk = "1" if file.get("RiskRecovery") else "0"
    dates = sorted(i.date for i in items if i.date)
    creator = f"Người lập hồ sơ: {file['Creator']}." if file.get("Creator") else ""
    note = " ".join(x for x in (str(file.get("Description") or ""), creator) if x)
    return {
        "fileCode": file["FileCode"],
        "title": file["Title"],
        "maintenance": file["Maintenance"],
        "mode": _code(store, "mode", file.get("Rights"), "01"),
        "language": _code(store, "language", file.get("Language"), "01"),
        "startDate": _date(file.get("StartDate") or (dates[0] if dates else None)),
        "endDate": _date(file.get("EndDate") or (dates[-1] if dates else None)),
        "keyword": file.get("Keyword") or "",
        "totalDoc": len(items),
        "numberOfPaper": file.get("NumberOfPaper") if file.get("NumberOfPaper") else "",
        "numberOfPage": sum(int(docs[i.document_id].get("PageAmount") or 0) for i in items),
        "format": _code(store, "format", file.get("Format"), ""),
        "inforSign": file.get("InforSign") or "",
        "confidenceLevel": confidence,
        "paperFileCode": paper,
        "riskRecovery": risk,
        "riskRecoveryStatus": file.get("RiskRecoveryStatus") or ("02" if risk == "1" else ""),
        "description": note,
    }


def doc_ead(
    store: Store, file: dict[str, Any], ordinal: int, d: dict[str, Any]
) -> dict[str, Any]:
    code = str(file["FileCode"])
    risk = "1" if d.get("RiskRecovery") else "0"
    return {
        "docId": doc_id(code, ordinal),
        "docCode": doc_code(code, ordinal),
        "maintenance": d.get("Maintenance") or file["Maintenance"],
        "typeName": d.get("TypeCode") or "32",
        "codeNumber": d.get("CodeNumber") or "",
        "codeNotation": d.get("CodeNotation") or "",
        "issuedDate": _date(d.get("IssuedDate") or d.get("ArrivalDate")),
        "organName": d.get("OrganName") or store.config.org_name,
        "subject": d.get("Subject") or "",
        "language": _code(store, "language", d.get("Language"), "01"),
        "numberOfPage": int(d.get("PageAmount") or 0),
        "inforSign": d.get("InforSign") or "",
        "keyword": d.get("Keyword") or "",
        "mode": d.get("Mode") or "01",
        "confidenceLevel": d.get("ConfidenceLevel") or file.get("ConfidenceLevel") or "01",
        "autograph": d.get("Autograph") or "",
        "format": d.get("Format") or "",
        "riskRecovery": risk,
        "riskRecoveryStatus": d.get("RiskRecoveryStatus") or ("02" if risk == "1" else ""),
        "process": "1" if d.get("Process") else "0",
        "description": d.get("Description") or "",
    }


# -- building -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What goes into a package, decided before anything is written."""

    file: Record
    items: list[ContentsItem]
    docs: dict[str, dict[str, Any]]
    excluded_classified: int
    warnings: list[str]


def plan(store: Store, file_code: str, opts: PackageOptions) -> Plan:
    """Check that the hồ sơ may be transferred and pick its documents."""
    file = store.find_one("file", FileCode=file_code)
    if file is None:
        raise PackageError(f"no hồ sơ {file_code}")
    data = file.data
    if data.get("Maintenance") != "01":
        raise NotPermanentError(
            f"hồ sơ {file_code} has retention {data.get('Maintenance')}: only permanent files "
            "(01 Vĩnh viễn) are transferred to the historical archive (TT 05/2025)",
            "Maintenance",
        )
    if data.get("Status") != "closed":
        raise ConflictError(f"hồ sơ {file_code} is still open: close it before packaging")
    if is_classified(data) and not opts.include_classified:
        raise ClassifiedError(
            f"hồ sơ {file_code} is classified (mật): it is kept off packages unless explicitly "
            "included through the state-secrets procedure"
        )
    conn = store.reader()
    held = writes.holds_on(conn, [("file", str(file.id)), ("file", file_code)])
    if any(h[2] == "destroyed" for h in held):
        raise ConflictError(f"hồ sơ {file_code} has been destroyed")
    items = [i for i in contents_list(conn, file_code) if i.status != "draft"]
    docs = {i.document_id: store.get("document", i.document_id).data for i in items}
    excluded = 0
    if not opts.include_classified:
        excluded = sum(1 for i in items if i.classified)
        items = [i for i in items if not i.classified]
    warnings = []
    if excluded:
        warnings.append(f"{excluded} văn bản mật không đưa vào gói")
    if not items:
        raise PackageError(f"hồ sơ {file_code} has no document to transfer")
    for i in items:
        if not i.content:
            warnings.append(f"văn bản {i.ordinal} ({i.subject[:50]}) không có tệp nội dung")
    return Plan(file, items, docs, excluded, warnings)


def _content_name(docid: str, n: int, item: dict[str, Any]) -> str:
    ext = EXTENSIONS.get(str(item.get("mime")), "")
    if not ext:
        name = str(item.get("name") or "")
        ext = name.rsplit(".", 1)[-1].lower() if "." in name else "bin"
    return f"{docid}.{ext}" if n == 0 else f"{docid}_{n + 1}.{ext}"


def _created_times(store: Store, shas: list[str]) -> dict[str, str]:
    """When each content file first entered the log (its CREATED), from the content table."""
    conn = store.reader()
    out: dict[str, str] = {}
    from ..ledger import Entry

    for sha in shas:
        row = conn.execute(
            "SELECT first_log_index FROM content WHERE sha256 = ?", (sha,)
        ).fetchone()
        if row is None:
            continue
        raw = conn.execute("SELECT entry FROM log WHERE idx = ?", (row[0],)).fetchone()
        if raw is not None:
            out[sha] = Entry.decode(bytes(raw[0]), strict=False).at
    return out


class _ZipWriter:
    """Adds members under the package folder and remembers what it wrote."""

    def __init__(self, zf: zipfile.ZipFile, objid: str) -> None:
        self.zf = zf
        self.objid = objid

    def add_bytes(self, rel: str, body: bytes, compress: bool = True) -> tuple[int, str]:
        info = zipfile.ZipInfo(f"{self.objid}/{rel}", date_time=_zip_time())
        info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        info.external_attr = 0o644 << 16
        self.zf.writestr(info, body)
        return len(body), hashlib.sha256(body).hexdigest()

    def add_stream(self, rel: str, src: Path, size: int, want_sha: str) -> None:
        info = zipfile.ZipInfo(f"{self.objid}/{rel}", date_time=_zip_time())
        info.compress_type = zipfile.ZIP_STORED  # scans are compressed already
        info.external_attr = 0o644 << 16
        digest = hashlib.sha256()
        n = 0
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        with src.open("rb") as fh, self.zf.open(info, "w", force_zip64=size > 2**31) as out:
            while True:
                k = fh.readinto(buf)
                if not k:
                    break
                digest.update(view[:k])
                out.write(view[:k])
                n += k
        if digest.hexdigest() != want_sha or n != size:
            raise PackageError(
                f"content file {want_sha} ({src}) does not match its SHA-256/size: it is "
                "corrupt. Run `luutru fixity` and heal it from a backup before packaging."
            )


def _zip_time() -> tuple[int, int, int, int, int, int]:
    import time

    t = time.localtime()
    return (max(t.tm_year, 1980), t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec)


def _header(store: Store, file: dict[str, Any], created: str, opts: PackageOptions) -> Header:
    """The METS header's agents: the fonds' agency and mã phông (the archival creator), the
    box's agency (the submitter), the software."""
    fond = str(file.get("FondCode") or store.config.fond_code)
    fonds = store.find_one("fonds", FondCode=fond)
    name = str((fonds.data.get("FondName") if fonds else None) or store.config.org_name)
    creator = name.removeprefix("Phông ").strip() or store.config.org_name
    return Header(created, opts.record_status, software_version(), creator, fond,
                  store.config.org_name, store.config.org_id, opts.actor)


def _data_files(
    store: Store, zw: _ZipWriter, p: Plan, result: PackageResult, created: str
) -> tuple[list[Ref], list[list[Ref]], dict[str, dict[str, str]]]:
    """Each document's archival rendition into rep1/data, its EAD_doc into rep1/metadata;
    returns the EAD refs, the data refs per document and where each file went."""
    file = p.file.data
    times = _created_times(store, [s for i in p.items for s in i.content])
    eads: list[Ref] = []
    data: list[list[Ref]] = []
    where: dict[str, dict[str, str]] = {}
    for ordinal, item in enumerate(p.items, start=1):
        d = p.docs[item.document_id]
        values = doc_ead(store, file, item.ordinal or ordinal, d)
        docid = values["docId"]
        refs: list[Ref] = []
        where[item.document_id] = {}
        for n, c in enumerate(renditions.archival(d.get("Content") or [])):
            rel = f"data/{_content_name(docid, n, c)}"
            zw.add_stream(f"representations/rep1/{rel}", store.content.readable_path(c["sha256"]),
                          int(c["size"]), c["sha256"])
            refs.append(Ref(new_id("ID-"), rel, int(c["size"]), c["sha256"],
                            times.get(c["sha256"], created),
                            str(c.get("mime") or "application/octet-stream")))
            where[item.document_id][c["sha256"]] = rel
            result.content_files += 1
            result.content_bytes += int(c["size"])
        rel = f"metadata/descriptive/EAD_DOC_{docid}.xml"
        size, sha = zw.add_bytes(f"representations/rep1/{rel}", simpledc(EAD_DOC, values))
        eads.append(Ref(new_id(), rel, size, sha, created, "application/xml"))
        data.append(refs)
    return eads, data, where


def _premis_docs(
    store: Store, p: Plan, where: dict[str, dict[str, str]], created: str, objid: str
) -> tuple[bytes, bytes]:
    """PREMIS of the package (the hồ sơ, this package's creation) and of rep1 (every file of
    every document, the archival ones located in data/, and their history from the log)."""
    version = software_version()
    hist = premis.history(store, [i.document_id for i in p.items], [p.file.id])
    rep = premis.PremisDoc()
    archival: list[str] = []
    for i in p.items:
        d = p.docs[i.document_id]
        content = list(d.get("Content") or [])
        rep.entities.append(("luutru document", i.document_id, str(d.get("Subject") or "")[:200]))
        premis.describe(rep, content, hist.by_doc[i.document_id], hist, version,
                        where[i.document_id])
        archival.extend(where[i.document_id])
    rep.events.extend(premis.file_events(hist.by_file[p.file.id], archival, rep.agents, version))
    packaging = premis.Event(f"package-{objid}", "information package creation", created,
                             premis.DETAILS["information package creation"],
                             objects=[(s, "source") for s in archival], agents=["system"],
                             note=objid)
    rep.agents.setdefault("system", premis.Agent("system", f"luutru ({version})", "software"))
    rep.events.append(packaging)
    rep.events.sort(key=lambda e: (e.at, e.id))
    top = premis.PremisDoc(agents={"system": rep.agents["system"]})
    top.entities.append(("Mã hồ sơ", str(p.file.data["FileCode"]),
                         str(p.file.data.get("Title") or "")[:200]))
    top.events.append(premis.Event(packaging.id, packaging.type, created, packaging.detail,
                                   agents=["system"], note=objid))
    return (top.to_xml(version, "../../schemas/" + premis.SCHEMA_FILE),
            rep.to_xml(version, "../../../../schemas/" + premis.SCHEMA_FILE))


def contents_csv(file: dict[str, Any], items: list[ContentsItem]) -> bytes:
    """The package's documentation: the hồ sơ's mục lục văn bản as CSV (UTF-8 with BOM, so
    office software reads the diacritics), one row per document in the package."""
    import csv
    import io

    from ..cells import safe_row

    out = io.StringIO()
    w = csv.writer(out)
    # Every cell through safe_row: subjects and authors come from clerks and other agencies.
    w.writerow(safe_row(["Mã hồ sơ", file["FileCode"], "Tiêu đề hồ sơ", file["Title"]]))
    w.writerow(["STT", "Số, ký hiệu", "Ngày tháng", "Tác giả", "Tên loại và trích yếu nội dung",
                "Số trang", "Mã lưu trữ tài liệu"])
    for n, i in enumerate(items, start=1):
        number = f"{i.code_number}/{i.code_notation}" if i.code_number else i.code_notation
        w.writerow(safe_row([i.ordinal or n, number, vn_date(i.date) if i.date else "",
                             i.organ_name, f"{i.type_name}: {i.subject}", i.pages,
                             doc_code(str(file["FileCode"]), i.ordinal or n)]))
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _write(store: Store, zw: _ZipWriter, p: Plan, objid: str, created: str,
           opts: PackageOptions, result: PackageResult) -> None:
    file = p.file.data
    hdr = _header(store, file, created, opts)
    eads, data, where = _data_files(store, zw, p, result, created)
    top_premis, rep_premis = _premis_docs(store, p, where, created, objid)
    size, sha = zw.add_bytes(f"representations/rep1/{REP_PREMIS}", rep_premis)
    rep_premis_ref = Ref(new_id(), REP_PREMIS, size, sha, created, "application/xml")
    size, sha = zw.add_bytes("representations/rep1/METS.xml",
                             rep_mets(hdr, eads, data, rep_premis_ref))
    rep_ref = Ref(new_id("ID-"), "representations/rep1/METS.xml", size, sha, created,
                  "application/xml")
    schemas = []
    for name in SCHEMA_FILES:
        size, sha = zw.add_bytes(f"schemas/{name}", (SCHEMA_DIR / name).read_bytes())
        schemas.append(Ref(new_id("ID-"), f"schemas/{name}", size, sha, created,
                           "application/xml"))
    size, sha = zw.add_bytes("metadata/descriptive/EAD.xml",
                             simpledc(EAD_HOSO, file_ead(store, file, p.items, p.docs)))
    ead_ref = Ref(new_id(), "metadata/descriptive/EAD.xml", size, sha, created,
                  "application/xml")
    size, sha = zw.add_bytes(ROOT_PREMIS, top_premis)
    premis_ref = Ref(new_id(), ROOT_PREMIS, size, sha, created, "application/xml")
    rel = f"documentation/{file['FileCode']}.MucLucVanBan.csv"
    size, sha = zw.add_bytes(rel, contents_csv(file, p.items))
    docs = [Ref(new_id("ID-"), rel, size, sha, created, "text/csv")]
    zw.add_bytes("METS.xml", root_mets(
        objid, str(file["Title"]), hdr, opts.submission_agreement or str(file["FileCode"]),
        ead_ref, premis_ref, docs, schemas, rep_ref))


def build_package(
    store: Store, file_code: str, out: Path, opts: PackageOptions | None = None
) -> PackageResult:
    """Write the SIP_hoso of ``file_code`` to ``out`` (a .zip), atomically, and log it."""
    opts = opts or PackageOptions()
    p = plan(store, file_code, opts)
    objid = new_id()
    created = iso(store.clock.now())
    out = Path(out)
    durable_dirs(out.parent)
    result = PackageResult(out, objid, file_code, len(p.items), 0, 0,
                           excluded_classified=p.excluded_classified, warnings=list(p.warnings))
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=".sip-", suffix=".zip")
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", allowZip64=True) as zf:
            _write(store, _ZipWriter(zf, objid), p, objid, created, opts, result)
        with open(tmp, "rb") as fh:
            digest = hashlib.file_digest(fh, "sha256")
            os.fsync(fh.fileno())
        result.zip_sha256 = digest.hexdigest()
        result.zip_size = os.path.getsize(tmp)
        os.replace(tmp, out)
        fsync_dir(out.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        store.content.drop_copies()  # versions rebuilt from the file they are kept in
    _log_package(store, p.file, result, opts.actor)
    return result


def _log_package(store: Store, file: Record, res: PackageResult, actor: str) -> None:
    data = {k: v for k, v in res.to_json().items() if k != "path"}
    data["name"] = res.path.name

    def job(txn: Any) -> None:
        writes.append_event(txn, Kind.ARCHIVE_PACKAGE, actor, data, "file", file.id)

    store.writer_or_fail().call(job)


def iter_members(path: Path) -> Iterator[str]:
    with zipfile.ZipFile(path) as zf:
        yield from zf.namelist()
