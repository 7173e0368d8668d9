"""PAdES signatures on PDFs with the agency key, laid out as Decree 30 (Phụ lục I) requires.

The visible signature sits at the top right of page 1 with no seal image: a text block of
[copy type,] agency name and signing time (ISO 8601, +07:00) in a Times New Roman-compatible
10 pt font that has every Vietnamese letter (Liberation Serif). pyHanko is imported lazily:
it costs ~300 ms and only this path needs it.
"""

from __future__ import annotations

import asyncio
import functools
import io
import logging
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from .errors import LuutruError

VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
FONT_SIZE = 10
FIELD_NAME = "ChuKySoCoQuan"
# Metric-compatible with Times New Roman, full Vietnamese coverage (Debian fonts-liberation2).
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/liberation2/LiberationSerif-Regular.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSerif-Regular.ttf",
    "/usr/share/fonts/truetype/msttcorefonts/Times_New_Roman.ttf",
)
_MARGIN = 28.0  # points from the page's top and right edges (about 1 cm)
# Room left in the signature's /Contents for the signature time-stamp the provincial centre adds
# later (an unsigned CMS attribute, CAdES-T; sync/central/ltv.py): the box signs offline, so
# the time-stamp cannot be there at signing. In hex digits: 12 KiB of DER, enough for a token
# with a TSA's certificate chain.
TIMESTAMP_ROOM_HEX = 2 * 12 * 1024
_BOX_WIDTH = 220.0


class PdfSignError(LuutruError):
    """A PDF cannot be signed (bad input, no font, no certificate)."""


class PdfSigningKey(Protocol):
    """What sign_pdf needs from a key: a pyHanko signer (see keys.agency.AgencyKey)."""

    def pdf_signer(self) -> Any: ...


def find_font(candidates: Sequence[str] = FONT_CANDIDATES) -> Path:
    for name in candidates:
        if Path(name).is_file():
            return Path(name)
    raise PdfSignError(
        "no Times New Roman-compatible font with Vietnamese letters is installed; "
        "install the Debian package fonts-liberation2"
    )


def vn_time(moment: datetime | None = None) -> str:
    """ISO 8601 in Vietnam's time zone, to the second: 2025-07-01T09:30:15+07:00."""
    when = moment or datetime.now(VN_TZ)
    if when.tzinfo is None:
        raise PdfSignError("signing time must carry a time zone")
    return when.astimezone(VN_TZ).isoformat(timespec="seconds")


@functools.lru_cache(maxsize=4)
def _font_bytes_1000_upem(path: str) -> bytes:
    """The font rescaled to 1000 units per em (~0.5 s, once per process).

    pyHanko 0.38 writes TrueType glyph widths (/W) and kerning (TJ) in the font's own units,
    but PDF reads them in thousandths of an em: a 2048-unit font such as Liberation Serif
    comes out with letters twice as far apart. Rescaling the font makes the two agree.
    """
    from fontTools.ttLib import TTFont
    from fontTools.ttLib.scaleUpem import scale_upem

    font = TTFont(path)
    if font["head"].unitsPerEm != 1000:
        scale_upem(font, 1000)
    out = io.BytesIO()
    font.save(out)
    return out.getvalue()


def _font_factory(path: Path) -> Any:
    from pyhanko.pdf_utils.font.api import FontEngineFactory
    from pyhanko.pdf_utils.font.opentype import GlyphAccumulator

    data = _font_bytes_1000_upem(str(path))

    class Factory(FontEngineFactory):
        def create_font_engine(self, writer: Any, obj_stream: Any = None) -> Any:
            if obj_stream is None and writer.stream_xrefs:
                obj_stream = writer.prepare_object_stream()
            return GlyphAccumulator(
                writer=writer,
                font_handle=io.BytesIO(data),
                font_size=FONT_SIZE,
                bcp47_lang_code="vi",
                obj_stream=obj_stream,
            )

    return Factory()


@functools.cache
def _signer_class() -> Any:
    from pyhanko.sign import signers
    from pyhanko.sign.general import SigningError  # noqa: F401  (pyHanko's import order)
    from pyhanko.sign.signers import constants

    class PdfA2Signer(signers.PdfSigner):
        """pyHanko's signer, but the file stays PDF 1.7 (PDF/A-2 allows no later version).

        For an ECDSA key on a named curve (the TPM's P-256 agency key) pyHanko 0.38 declares
        ISO 32002 and so moves the catalogue's /Version to 2.0, which PDF/A-2 forbids
        (ISO 19005-2 §6.1.2); PAdES in PDF 1.7 needs only the ESIC extension (ETSI EN 319 142-1
        §5.1), which is all this declares. Readers check ECDSA signatures either way.
        """

        def register_extensions(self, pdf_out: Any, *, md_algorithm: str) -> None:
            pdf_out.ensure_output_version(version=(1, 7))
            pdf_out.register_extension(constants.ESIC_EXTENSION_1)

    return PdfA2Signer


def _PdfA2Signer(*args: Any, **kwargs: Any) -> Any:
    return _signer_class()(*args, **kwargs)


def _same_producer(writer: Any) -> None:
    """Keep the information dictionary and the XMP saying the same (PDF/A, ISO 19005-2
    §6.6.3): pyHanko writes its own name as the XMP Producer but appends it to the Info
    Producer ("pikepdf …; pyHanko …"). Naming pyHanko alone in both (the signing revision's
    producer), in the new revision's Info dictionary, keeps them equal."""
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.metadata.model import VENDOR

    old = writer.trailer["/Info"].get_object() if "/Info" in writer.trailer else {}
    info = generic.DictionaryObject(  # type: ignore[no-untyped-call]
        {generic.NameObject(k): v for k, v in old.items()}
    )
    info[generic.NameObject("/Producer")] = generic.TextStringObject(VENDOR)
    writer.set_info(info)


def stamp_lines(
    agency_name: str, signed_at: str, copy_type: str | None = None, doc_ref: str | None = None
) -> list[str]:
    """The visible text block: [copy type,] [document number,] agency name, time."""
    lines = []
    if copy_type:
        lines.append(copy_type)
    if doc_ref:
        lines.append(doc_ref)
    lines.append(agency_name)
    lines.append(signed_at)
    return lines


async def _sign(pdf_signer: Any, key: PdfSigningKey, writer: Any, out: io.BytesIO) -> None:
    """Sign with pyHanko's size estimate for the CMS plus room for a later time-stamp."""
    test = await pdf_signer.signer.async_sign(bytes(32), "sha256", dry_run=True, use_pades=True)
    estimate = len(test.dump()) * 2
    reserved = estimate + 2 * (estimate // 4) + TIMESTAMP_ROOM_HEX
    await pdf_signer.async_sign_pdf(writer, output=out, bytes_reserved=reserved)


def sign_pdf(
    pdf: bytes,
    key: PdfSigningKey,
    *,
    agency_name: str,
    copy_type: str | None = None,
    doc_ref: str | None = None,
    signed_at: datetime | None = None,
    font_path: Path | None = None,
    field_name: str = FIELD_NAME,
) -> bytes:
    """Return ``pdf`` with a PAdES B-B signature by ``key`` and its visible text block."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.pdf_utils.rw_common import find_inherited_value_in_tree
    from pyhanko.pdf_utils.text import TextBoxStyle
    from pyhanko.sign import fields, signers
    from pyhanko.stamp import TextStampStyle

    lines = stamp_lines(agency_name, vn_time(signed_at), copy_type, doc_ref)
    # fontTools warns about tables it drops from the embedded subset; that is expected.
    logging.getLogger("fontTools.subset").setLevel(logging.ERROR)
    font = _font_factory(font_path or find_font())
    try:
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
        _same_producer(writer)
        page_ref, _ = writer.find_page_for_modification(0)  # type: ignore[no-untyped-call]
        box = find_inherited_value_in_tree(  # type: ignore[no-untyped-call]
            page_ref.get_object(), "/MediaBox", "/Parent"
        )
        _, _, x2, y2 = (float(v) for v in box)
    except Exception as exc:
        raise PdfSignError(f"the PDF cannot be read for signing ({exc})") from exc
    height = FONT_SIZE * 1.25 * len(lines) + 8
    right, top = x2 - _MARGIN, y2 - _MARGIN
    field_box = (int(right - _BOX_WIDTH), int(top - height), int(right), int(top))
    style = TextStampStyle(
        # '%' would be read as a template parameter by pyHanko.
        stamp_text="\n".join(line.replace("%", "%%") for line in lines),
        text_box_style=TextBoxStyle(font=font, font_size=FONT_SIZE),
        border_width=0,
        background=None,
    )
    meta = signers.PdfSignatureMetadata(
        field_name=field_name,
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
        name=agency_name,
    )
    pdf_signer = _PdfA2Signer(
        meta,
        signer=key.pdf_signer(),
        stamp_style=style,
        new_field_spec=fields.SigFieldSpec(sig_field_name=field_name, on_page=0, box=field_box),
    )
    out = io.BytesIO()
    try:
        asyncio.run(_sign(pdf_signer, key, writer, out))
    except LuutruError:
        raise
    except Exception as exc:
        raise PdfSignError(f"signing the PDF failed ({exc})") from exc
    return out.getvalue()
