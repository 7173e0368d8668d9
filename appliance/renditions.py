"""Content versions of a document: the archival rendition, the earlier ones, format migration.

A document's ``Content`` lists every file it ever had. Capture adds the scan, then its OCR'd
PDF/A, then the signed PDF/A, each naming the file it was made from (``from``); a
format migration adds a new rendition the same way and keeps the original, and so does the
centre's upgrade of a signature to B-LTA (``ltv``, appliance/signature_upgrade.py). The archival
version of a file is the last rendition in its chain: what a package carries, while the
earlier ones stay in the box with their provenance (PREMIS, archive/premis.py).

Content filed before renditions named their source (no ``from``) is read the way
capture wrote it: a ``*.ocr.pdf`` was made from the PDF before it, and the ``*.pdf`` the
capture worker added after an OCR'd file is its signed version.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import records, writes
from .errors import NotFoundError, ValidationError
from .kinds import Kind
from .results import Record
from .writer import Txn

if TYPE_CHECKING:
    from .store import Store

OCR = "ocr"
SIGNED = "signed"
MIGRATION = "migration"
LTV = "ltv"  # the centre's upgrade of the signature to B-LT/B-LTA


def sources(content: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Each derived file's source: {sha256 of the rendition: sha256 it was made from}."""
    out: dict[str, str] = {}
    prev_pdf: str | None = None
    prev_ocr: str | None = None
    for c in content:
        sha = str(c["sha256"])
        name = str(c.get("name") or "")
        if c.get("from"):
            out[sha] = str(c["from"])
        elif name.endswith(".ocr.pdf") and prev_pdf is not None:
            out[sha] = prev_pdf  # legacy capture: the OCR of the scan filed before it
        elif prev_ocr is not None and name.endswith(".pdf") and prev_ocr not in out.values():
            out[sha] = prev_ocr  # legacy capture: the signed copy of the OCR'd file
        if str(c.get("mime")) == "application/pdf":
            prev_pdf = sha
            if name.endswith(".ocr.pdf") or c.get("rendition") == OCR:
                prev_ocr = sha
    return out


def rendition_of(content: Sequence[Mapping[str, Any]], sha256: str) -> str:
    """What a file is: "original", or the rendition that made it (ocr, signed, migration)."""
    src = sources(content)
    for c in content:
        if c["sha256"] == sha256:
            if sha256 not in src:
                return "original"
            if c.get("ltv"):
                return LTV
            if c.get("rendition"):
                return str(c["rendition"])
            return OCR if str(c.get("name") or "").endswith(".ocr.pdf") else SIGNED
    raise NotFoundError(f"content {sha256} is not a file of this document")


def archival(content: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The files a package carries: every chain's last rendition, in the document's order."""
    superseded = set(sources(content).values())
    return [dict(c) for c in content if c["sha256"] not in superseded]


def chain(content: Sequence[Mapping[str, Any]], sha256: str) -> list[str]:
    """``sha256`` and the files it was made from, newest first."""
    src = sources(content)
    out = [sha256]
    while out[-1] in src and src[out[-1]] not in out:
        out.append(src[out[-1]])
    return out


@dataclass(frozen=True)
class Migrated:
    """What a format migration produced: the new file and the tool that made it."""

    data: bytes
    name: str
    mime: str
    tool: str


Converter = Callable[[bytes, Mapping[str, Any]], Migrated]


def migrate(
    store: Store,
    doc_id: str,
    sha256: str,
    convert: Converter,
    actor: str = "system",
) -> Record:
    """Format migration: add ``convert``'s rendition of one content file as a new version of
    the document, the original kept; the version's log entry (document.migrate) is the
    migration event, naming the source, the new file and the tool."""
    rec = store.get("document", doc_id)
    content = list(rec.data.get("Content") or [])
    item = next((c for c in content if c["sha256"] == sha256), None)
    if item is None:
        raise NotFoundError(f"content {sha256} is not a file of document {doc_id}")
    with store.content.open(sha256) as fh:
        body = fh.read()
    out = convert(body, item)
    if not out.data:
        raise ValidationError("the migration produced an empty file", "Content")
    stored = store.content.put_bytes(out.data)
    if stored.sha256 == sha256:
        raise ValidationError("the migration produced the same bytes", "Content")
    new = {"sha256": stored.sha256, "size": stored.size, "name": out.name, "mime": out.mime,
           "from": sha256, "rendition": MIGRATION, "tool": out.tool}

    def job(txn: Txn) -> Record:
        cur = writes.current(txn, "document", id=doc_id)
        writes.check_writable(txn.conn, cur)
        files = list(cur.data.get("Content") or [])
        if any(c["sha256"] == stored.sha256 for c in files):
            raise ValidationError("that rendition is already a file of the document", "Content")
        d = dict(cur.data, Content=[*files, new])
        d = records.normalise("document", d, store.codes)
        return writes.put(txn, "document", Kind.DOCUMENT_MIGRATE, actor, d, cur.id, cur.version)

    return store.writer_or_fail().call(job)


def image_to_pdf(body: bytes, item: Mapping[str, Any]) -> Migrated:
    """A built-in migration: a scanned image (JPEG, PNG, TIFF) to PDF, pixels unchanged
    (img2pdf embeds them losslessly) — PDF being the format Circular 05 keeps documents in."""
    import img2pdf

    mime = str(item.get("mime") or "")
    if not mime.startswith("image/"):
        raise ValidationError(f"{item.get('name')} is not an image ({mime})", "Content")
    try:
        pdf = bytes(img2pdf.convert(body, engine=img2pdf.Engine.internal))
    except Exception as exc:  # img2pdf raises its own classes and ValueError
        raise ValidationError(f"the image cannot be converted to PDF ({exc})", "Content") from exc
    stem = str(item.get("name") or "tep").rsplit(".", 1)[0]
    return Migrated(pdf, f"{stem}.pdf", "application/pdf", f"img2pdf {img2pdf.__version__}")
