"""A signature upgrade from the provincial centre: checked, then kept as a new content version.

The box signs offline (PAdES B-B). The centre (``sync/central/ltv.py``) sends back the same PDF
with what long-term validation needs: a time-stamp in the room each signature's /Contents left
for one, then validation data and a document time-stamp as incremental updates (B-LTA).
``check_upgrade`` accepts it only if every byte of the original outside those /Contents hex
digits is unchanged and the new file goes on after the original, so each signature covers
exactly the bytes it covered before; pyHanko then confirms each signature intact and the
later revisions limited to validation data and time-stamps. ``record_upgrade`` stores it
as the document's newest content version in a ``document.ltv`` entry (the document's full new
version): ``from`` names the version it upgrades, ``ltv`` the level the centre reported. The
original bytes stay in the content store and in every earlier version of the record.

Allowed even when the fonds is closed or the record frozen: adding validation data is a
preservation action, not an edit of the record.
"""

from __future__ import annotations

import io
import re
from typing import Any

from . import writes
from .errors import NotFoundError, UpgradeRefused
from .kinds import Kind
from .results import Record
from .writer import Txn
from .writes import WriteContext

_BYTE_RANGE = re.compile(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]")
_HEX = frozenset(b"0123456789abcdefABCDEF")
ALLOWED_CHANGES = ("NONE", "LTA_UPDATES")  # pyHanko's modification levels an upgrade may add


def contents_spans(pdf: bytes) -> list[tuple[int, int]]:
    """[start, end) of the hex digits of every signature's /Contents in ``pdf``."""
    spans = []
    for m in _BYTE_RANGE.finditer(pdf):
        a, b, c, _ = (int(x) for x in m.groups())
        start, end = a + b, c
        if not (0 < start < end <= len(pdf)) or pdf[start] != 0x3C or pdf[end - 1] != 0x3E:
            raise UpgradeRefused("a signature's byte range does not frame its /Contents")
        spans.append((start + 1, end - 1))
    return sorted(set(spans))


def check_upgrade(original: bytes, upgraded: bytes) -> None:
    """Raise UpgradeRefused unless ``upgraded`` keeps every signed byte of ``original``."""
    spans = contents_spans(original)
    if not spans:
        raise UpgradeRefused("the original is not a signed PDF")
    if len(upgraded) <= len(original):
        raise UpgradeRefused("the upgrade does not extend the original file")
    pos = 0
    for start, end in spans:
        if upgraded[pos:start] != original[pos:start]:
            raise UpgradeRefused(f"the upgrade changes signed bytes between {pos} and {start}")
        if any(c not in _HEX for c in upgraded[start:end]):
            raise UpgradeRefused("a signature's /Contents holds more than hex digits")
        pos = end
    if upgraded[pos : len(original)] != original[pos:]:
        raise UpgradeRefused(f"the upgrade changes signed bytes after {pos}")
    _check_with_pyhanko(upgraded, _levels(original))


def _levels(pdf: bytes) -> dict[str, Any]:
    """The modification level each signature of the box's file already had: an issued văn
    bản đi's signer signed before the number and date were filled in (form filling)."""
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=False)
        vc = ValidationContext(trust_roots=[], allow_fetching=False)
        return {str(s.field_name): validate_pdf_signature(s, vc).modification_level
                for s in reader.embedded_regular_signatures}
    except Exception as exc:
        raise UpgradeRefused(f"the original PDF cannot be checked ({exc})") from exc


def _check_with_pyhanko(pdf: bytes, before: dict[str, Any] | None = None) -> None:
    """Each signature intact and valid; later revisions only add validation data (a
    signature may keep the changes the box's own file already had after it)."""
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=False)
        sigs = list(reader.embedded_regular_signatures)
        vc = ValidationContext(trust_roots=[], allow_fetching=False)
        statuses: list[Any] = [validate_pdf_signature(s, vc) for s in sigs]
    except Exception as exc:
        raise UpgradeRefused(f"the upgraded PDF cannot be checked ({exc})") from exc
    for sig, status in zip(sigs, statuses, strict=True):
        if not (status.intact and status.valid):
            raise UpgradeRefused("a signature of the upgraded PDF does not verify")
        level = status.modification_level
        had = (before or {}).get(str(sig.field_name))
        if level is not None and level.name not in ALLOWED_CHANGES and not (
                had is not None and level <= had):
            raise UpgradeRefused(f"the upgrade changes the document ({level.name})")


def record_upgrade(
    store: WriteContext,
    doc_id: str,
    source_sha256: str,
    content: dict[str, Any],
    level: str,
    actor: str = "centre",
) -> Record:
    """Add ``content`` (already stored and checked) as the upgrade of ``source_sha256``."""

    def job(txn: Txn) -> Record:
        rec = writes.current(txn, "document", id=doc_id)
        versions = list(rec.data.get("Content") or [])
        if any(c["sha256"] == content["sha256"] for c in versions):
            return rec  # recorded before (a repeated fetch)
        source = next((c for c in versions if c["sha256"] == source_sha256), None)
        if source is None:
            raise NotFoundError(f"document {doc_id} holds no content {source_sha256}")
        item = {
            "sha256": content["sha256"],
            "size": content["size"],
            "name": source.get("name") or content.get("name") or "",
            "mime": source.get("mime") or "application/pdf",
            "from": source_sha256,
            "ltv": level,
        }
        data = dict(rec.data, Content=[*versions, item])
        return writes.put(txn, "document", Kind.DOCUMENT_LTV, actor, data, rec.id, rec.version)

    return store.writer_or_fail().call(job)
