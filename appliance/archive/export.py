"""Decree 30 export of a whole hồ sơ: one PDF and one XML, documents in chronological order.

Phụ lục VI (functional requirements): "export a whole file's documents + metadata to .pdf and
.xml in chronological order". The PDF opens with a cover and the mục lục văn bản, then each
document's content (PDF pages, or images converted); the XML carries every Phụ lục VI field.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lxml import etree

from .. import writes
from ..classified import is_classified
from ..clock import iso, vn_date
from ..fsutil import write_atomic
from ..kinds import Kind
from .closing import ContentsItem, chronological, contents_list
from .errors import ClassifiedError, PackageError
from .pdf import Doc

if TYPE_CHECKING:
    from ..store import Record, Store

FILE_XML_FIELDS = (
    "Title", "Maintenance", "Rights", "Creator", "Language", "StartDate", "EndDate",
    "DocTotal", "PageTotal", "Description",
)
DOC_XML_FIELDS = (
    "DocOrdinal", "TypeName", "CodeNumber", "CodeNotation", "IssuedDate", "OrganName",
    "Subject", "Language", "PageAmount", "Description", "Priority", "IssuedAmount", "DueDate",
    "ArrivalDate", "ArrivalNumber", "ToPlaces", "TraceHeaderList",
)


@dataclass
class ExportResult:
    pdf: Path
    xml: Path
    documents: int
    pages: int
    excluded_classified: int = 0
    warnings: list[str] = field(default_factory=list)
    originals: Path | None = None  # the signed archival files, unchanged

    def to_json(self) -> dict[str, Any]:
        return {
            "pdf": str(self.pdf),
            "xml": str(self.xml),
            "originals": str(self.originals) if self.originals else None,
            "documents": self.documents,
            "pages": self.pages,
            "excluded_classified": self.excluded_classified,
            "warnings": self.warnings,
        }


def contents_pdf(store: Store, file: dict[str, Any], items: list[ContentsItem]) -> bytes:
    """The cover of a hồ sơ and its mục lục văn bản, as a PDF."""
    maint = store.codes["maintenance"].by_code(str(file.get("Maintenance", "07"))).label
    doc = Doc(f"Hồ sơ {file['FileCode']}")
    doc.header([store.config.org_name.upper()], ["CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
                                                 "Độc lập - Tự do - Hạnh phúc"])
    doc.space(30)
    doc.heading("HỒ SƠ")
    doc.heading(str(file["Title"]))
    doc.space(10)
    rows = [
        ("Mã hồ sơ", str(file["FileCode"])),
        ("Thời gian", f"{vn_date(file['StartDate']) if file.get('StartDate') else '…'} – "
                      f"{vn_date(file['EndDate']) if file.get('EndDate') else '…'}"),
        ("Thời hạn bảo quản", maint),
        ("Người lập hồ sơ", str(file.get("Creator") or "")),
        ("Số lượng văn bản", str(len(items))),
        ("Số lượng trang", str(sum(i.pages for i in items))),
    ]
    doc.table(["Mục", "Nội dung"], rows, [150, 330])
    doc.page_break()
    doc.heading("MỤC LỤC VĂN BẢN")
    doc.table(
        ["STT", "Số, ký hiệu", "Ngày tháng", "Tác giả", "Trích yếu nội dung", "Số trang"],
        [
            (
                str(n),
                f"{i.code_number}/{i.code_notation}" if i.code_number else i.code_notation,
                vn_date(i.date) if i.date else "",
                i.organ_name,
                f"{i.type_name}: {i.subject}",
                str(i.pages),
            )
            for n, i in enumerate(items, start=1)
        ],
        [28, 80, 60, 100, 190, 40],
    )
    return doc.render()


def _placeholder(i: ContentsItem, reason: str) -> bytes:
    doc = Doc(i.subject)
    doc.heading(f"{i.type_name} {i.code_number}/{i.code_notation}".strip())
    doc.para(i.subject)
    doc.space()
    doc.para(f"({reason})", small=True)
    return doc.render()


def _content_pdf(store: Store, c: dict[str, Any]) -> bytes | None:
    """The content file as PDF bytes: PDFs as they are, images through img2pdf."""
    mime = str(c.get("mime") or "")
    with store.content.open(c["sha256"]) as fh:
        body = fh.read()
    if hashlib.sha256(body).hexdigest() != c["sha256"]:
        raise PackageError(f"content file {c['sha256']} is corrupt; heal it before exporting")
    if mime == "application/pdf" or body[:5] == b"%PDF-":
        return body
    if mime.startswith("image/"):
        import img2pdf

        return bytes(img2pdf.convert(body))
    return None


def _xml(store: Store, file: dict[str, Any], docs: list[tuple[ContentsItem, dict[str, Any],
         tuple[int, int]]], created: str) -> bytes:
    root = etree.Element("HoSo")
    root.set("created", created)
    fc = etree.SubElement(root, "FileCode")
    etree.SubElement(fc, "OrganId").text = str(file.get("OrganId", ""))
    etree.SubElement(fc, "FileCatalog").text = str(file.get("FileCatalog", ""))
    etree.SubElement(fc, "FileNotation").text = str(file.get("FileNotation", ""))
    etree.SubElement(fc, "Code").text = str(file["FileCode"])
    for name in FILE_XML_FIELDS:
        if file.get(name) is not None:
            etree.SubElement(root, name).text = str(file[name])
    vb = etree.SubElement(root, "VanBanList")
    for n, (item, d, (first, last)) in enumerate(docs, start=1):
        el = etree.SubElement(vb, "VanBan")
        el.set("order", str(n))
        el.set("direction", item.direction)
        el.set("id", item.document_id)
        for name in DOC_XML_FIELDS:
            if d.get(name) is not None:
                etree.SubElement(el, name).text = str(d[name])
        if d.get("SignerFullName") or d.get("SignerPosition"):
            s = etree.SubElement(el, "SignerInfo")
            etree.SubElement(s, "Position").text = str(d.get("SignerPosition") or "")
            etree.SubElement(s, "FullName").text = str(d.get("SignerFullName") or "")
        for r in d.get("To") or []:
            t = etree.SubElement(el, "To")
            etree.SubElement(t, "OrganId").text = str(r.get("OrganId") or "")
            etree.SubElement(t, "OrganName").text = str(r.get("OrganName") or "")
        pages = etree.SubElement(el, "PdfPages")
        pages.set("first", str(first))
        pages.set("last", str(last))
        for c in d.get("Content") or []:
            f = etree.SubElement(el, "ContentFile")
            f.set("sha256", c["sha256"])
            f.set("size", str(c["size"]))
            f.set("mime", str(c.get("mime") or ""))
            f.text = str(c.get("name") or "")
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


def _print_pdf(store: Store, file_code: str, item: ContentsItem, body: bytes,
               at: Any) -> bytes:
    """A document's pages for the export: signatures flattened to what they show (the
    signed originals go beside the export), the conversion and copy marks added."""
    from ..identifiers import doc_code
    from ..printmark import Mark, print_copy

    code = doc_code(file_code, item.ordinal) if item.ordinal else item.document_id
    return print_copy(body, Mark(code, store.config.org_name, at, copy=True))


def _original_name(file_code: str, item: ContentsItem, n: int, c: dict[str, Any]) -> str:
    """{mã lưu trữ}.pdf (a second file of the document: _2, …), as the package names them."""
    from ..identifiers import doc_code
    from .sip import _content_name

    stem = doc_code(file_code, item.ordinal) if item.ordinal else item.document_id
    return _content_name(stem, n, c)


def export_file(
    store: Store,
    file_code: str,
    out_dir: Path,
    *,
    include_classified: bool = False,
    actor: str = "system",
) -> ExportResult:
    """Write ``{FileCode}.pdf`` (PDF/A-2b, fonts embedded, no signature inside: a marked print
    copy) and ``{FileCode}.xml`` of a whole hồ sơ into ``out_dir``, and the documents'
    signed archival files unchanged in ``{FileCode}.goc/`` beside them."""
    import pikepdf
    import pikepdf.pdfa

    from .. import renditions

    rec: Record | None = store.find_one("file", FileCode=file_code)
    if rec is None:
        raise PackageError(f"no hồ sơ {file_code}")
    file = rec.data
    if is_classified(file) and not include_classified:
        raise ClassifiedError(f"hồ sơ {file_code} is classified (mật): not exported")
    items = [i for i in contents_list(store.reader(), file_code) if i.status != "draft"]
    excluded = 0 if include_classified else sum(1 for i in items if i.classified)
    if not include_classified:
        items = [i for i in items if not i.classified]
    items = chronological(items)
    warnings = [f"{excluded} văn bản mật không được xuất"] if excluded else []
    now = store.clock.now()
    pdf = pikepdf.Pdf.new()
    originals_dir = out_dir / f"{file_code}.goc"
    originals: list[tuple[Path, bytes]] = []

    def append(body: bytes) -> int:
        src = pikepdf.Pdf.open(io.BytesIO(body))
        pdf.pages.extend(src.pages)
        return len(src.pages)

    append(contents_pdf(store, file, items))
    placed: list[tuple[ContentsItem, dict[str, Any], tuple[int, int]]] = []
    for i in items:
        d = store.get("document", i.document_id).data
        first = len(pdf.pages) + 1
        added = 0
        for n, c in enumerate(renditions.archival(d.get("Content") or [])):
            body = _content_pdf(store, c)
            with store.content.open(c["sha256"]) as fh:
                originals.append((originals_dir / _original_name(file_code, i, n, c), fh.read()))
            if body is None:
                warnings.append(f"{c.get('name')} ({c.get('mime')}) is not PDF or an image")
                continue
            added += append(_print_pdf(store, file_code, i, body, now))
        if not added:
            added = append(_placeholder(i, "văn bản không có bản điện tử"))
        placed.append((i, d, (first, first + added - 1)))
    pdf.docinfo["/Title"] = f"{file_code} — {file['Title']}"
    pdf.docinfo["/Producer"] = "luutru"
    for page in pdf.pages:
        if "/Trans" in page.obj:
            del page.obj["/Trans"]  # reportlab's empty page transition: nothing to present
    buf = io.BytesIO()
    try:  # writes, re-reads and validates what it wrote; refuses anything but a pass
        pikepdf.pdfa.save(pdf, buf, "2b", deterministic_id=True)
    except pikepdf.pdfa.PdfaError as exc:
        raise PackageError(f"the export is not PDF/A-2b: {exc}") from exc
    out_dir.mkdir(parents=True, exist_ok=True)
    pdf_path = out_dir / f"{file_code}.pdf"
    xml_path = out_dir / f"{file_code}.xml"
    created = iso(now)
    xml_body = _xml(store, file, placed, created)
    write_atomic(pdf_path, buf.getvalue())
    write_atomic(xml_path, xml_body)
    if originals:
        originals_dir.mkdir(exist_ok=True)
        for path, body in originals:
            write_atomic(path, body)
    res = ExportResult(pdf_path, xml_path, len(items), len(pdf.pages), excluded, warnings,
                       originals_dir if originals else None)
    _log_export(store, rec, res, buf.getvalue(), xml_body, actor)
    return res


def _log_export(store: Store, rec: Record, res: ExportResult, pdf_body: bytes,
                xml_body: bytes, actor: str) -> None:
    def job(txn: Any) -> None:
        writes.append_event(
            txn,
            Kind.ARCHIVE_EXPORT,
            actor,
            {
                "FileCode": rec.data["FileCode"],
                "documents": res.documents,
                "pages": res.pages,
                "excluded_classified": res.excluded_classified,
                "pdf_sha256": hashlib.sha256(pdf_body).hexdigest(),
                "xml_sha256": hashlib.sha256(xml_body).hexdigest(),
                "pdfa": "2b",
            },
            "file",
            rec.id,
        )

    store.writer_or_fail().call(job)
