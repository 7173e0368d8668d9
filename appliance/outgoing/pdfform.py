"""The prepared PDF and what is done to it: fields for the number and date, the two signature
fields, filling the fields at issue, and PAdES signatures whose appearance is an image.

The signer signs the prepared PDF; the number and date are then written as form-field values
in an incremental update (PDF form filling, which the signer's signature permits: pyHanko
reports the change as FORM_FILLING and poppler shows it), and the agency signs the whole
file last. The page content the signer signed never changes.
"""

from __future__ import annotations

import asyncio
import functools
import io
import logging
from collections.abc import Mapping
from typing import Any

from ..pdfsign import TIMESTAMP_ROOM_HEX, PdfSignError, _font_bytes_1000_upem
from .placement import Field, Placement

SIGNER_FIELD = "ChuKyNguoiKy"  # box 7c
AGENCY_FIELD = "ChuKyCoQuan"  # box 8: the seal over the left third of the signer's image
FONT_DIR = "/usr/share/fonts/truetype/liberation2"


@functools.lru_cache(maxsize=8)
def _font(size: int, italic: bool) -> Any:
    from pyhanko.pdf_utils.font.api import FontEngineFactory
    from pyhanko.pdf_utils.font.opentype import GlyphAccumulator

    data = _font_bytes_1000_upem(
        f"{FONT_DIR}/LiberationSerif-{'Italic' if italic else 'Regular'}.ttf")

    class Factory(FontEngineFactory):
        def create_font_engine(self, writer: Any, obj_stream: Any = None) -> Any:
            return GlyphAccumulator(writer=writer, font_handle=io.BytesIO(data),
                                    font_size=size, bcp47_lang_code="vi",
                                    obj_stream=obj_stream)

    return Factory()


def _appearance(writer: Any, f: Field, text: str) -> Any:
    """A form XObject showing ``text`` centred in the field's rectangle."""
    from pyhanko.pdf_utils.layout import (
        AxisAlignment,
        BoxConstraints,
        InnerScaling,
        Margins,
        SimpleBoxLayoutRule,
    )
    from pyhanko.pdf_utils.text import TextBoxStyle
    from pyhanko.stamp import TextStamp, TextStampStyle

    logging.getLogger("fontTools.subset").setLevel(logging.ERROR)
    logging.getLogger("pyhanko.pdf_utils.layout").setLevel(logging.ERROR)  # a tall line box
    x1, y1, x2, y2 = f.rect
    style = TextStampStyle(
        stamp_text=text.replace("%", "%%"),
        text_box_style=TextBoxStyle(font=_font(round(f.size), f.italic), font_size=round(f.size),
                                    border_width=0, box_layout_rule=None),
        border_width=0, background=None, inner_content_layout=SimpleBoxLayoutRule(
            x_align=AxisAlignment.ALIGN_MID, y_align=AxisAlignment.ALIGN_MID,
            margins=Margins(0, 0, 0, 0), inner_content_scaling=InnerScaling.NO_SCALING),
    )
    box = BoxConstraints(round(x2 - x1), round(y2 - y1))  # ints: pyHanko's ratio
    return TextStamp(writer, style, box=box).register()


def _reader_writer(pdf: bytes) -> Any:
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    try:
        return IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    except Exception as exc:
        raise PdfSignError(f"the PDF cannot be read ({exc})") from exc


def _add_text_field(writer: Any, name: str, f: Field) -> None:
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.generic import pdf_name, pdf_string

    page_ref, _ = writer.find_page_for_modification(f.page)
    ap = _appearance(writer, f, f.placeholder or " ")  # an empty text embeds no glyph
    field = generic.DictionaryObject({  # type: ignore[no-untyped-call]
        pdf_name("/FT"): pdf_name("/Tx"), pdf_name("/T"): pdf_string(name),
        pdf_name("/V"): pdf_string(""), pdf_name("/Type"): pdf_name("/Annot"),
        pdf_name("/Subtype"): pdf_name("/Widget"),
        pdf_name("/Rect"): generic.ArrayObject(
            generic.FloatObject(v) for v in f.rect),  # type: ignore[no-untyped-call]
        pdf_name("/F"): generic.NumberObject(4),  # type: ignore[no-untyped-call]  # printed
        pdf_name("/Ff"): generic.NumberObject(1),  # type: ignore[no-untyped-call]  # read-only
        pdf_name("/P"): page_ref,
        pdf_name("/DA"): pdf_string(f"/TNR {f.size:g} Tf 0 g"),
        pdf_name("/AP"): generic.DictionaryObject(  # type: ignore[no-untyped-call]
            {pdf_name("/N"): ap}),
    })
    ref = writer.add_object(field)
    form = writer.root["/AcroForm"]
    _append(writer, form, "/Fields", ref)
    _append(writer, page_ref.get_object(), "/Annots", ref, owner=page_ref)


def _append(writer: Any, container: Any, key: str, ref: Any, owner: Any = None) -> None:
    from pyhanko.pdf_utils import generic

    raw = container.raw_get(key) if key in container else None
    if raw is None:
        container[key] = generic.ArrayObject([ref])
        writer.update_container(owner.get_object() if owner is not None else container)
        return
    arr = container[key]
    arr.append(ref)
    if isinstance(raw, generic.IndirectObject):
        writer.update_container(arr)
    else:
        writer.update_container(owner.get_object() if owner is not None else container)


def prepare(pdf: bytes, placement: Placement) -> bytes:
    """The PDF to sign: the draft with its number and date fields (showing their
    placeholders) and the signer's and agency's empty signature fields."""
    from pyhanko.sign import fields

    writer = _reader_writer(pdf)
    try:
        fields.append_signature_field(writer, fields.SigFieldSpec(
            SIGNER_FIELD, on_page=placement.signer_page,
            box=tuple(round(v) for v in placement.signer)))  # type: ignore[arg-type]
        fields.append_signature_field(writer, fields.SigFieldSpec(
            AGENCY_FIELD, on_page=placement.signer_page,
            box=tuple(round(v) for v in placement.seal)))  # type: ignore[arg-type]
        for name, f in placement.fields.items():
            _add_text_field(writer, field_name(name), f)
        out = io.BytesIO()
        writer.write(out)
    except PdfSignError:
        raise
    except Exception as exc:
        raise PdfSignError(f"the fields cannot be added to the PDF ({exc})") from exc
    return out.getvalue()


def field_name(name: str) -> str:
    """The text field's name: SoKyHieu, or Ngay_day, Ngay_month … (no dots: PDF partial
    names)."""
    return "SoKyHieu" if name == "number" else f"Ngay_{name}"


def fill(pdf: bytes, placement: Placement, values: Mapping[str, str]) -> bytes:
    """Write the number and date into their fields (an incremental update: form filling)."""
    from pyhanko.pdf_utils.generic import DictionaryObject, pdf_name, pdf_string

    writer = _reader_writer(pdf)
    by_name = {field_name(k): f for k, f in placement.fields.items()}
    done = set()
    for ref in writer.root["/AcroForm"]["/Fields"]:
        obj = ref.get_object()
        name = str(obj.get("/T", ""))
        f = by_name.get(name)
        if f is None:
            continue
        text = f.text.format(**values)
        obj["/V"] = pdf_string(text)
        obj["/AP"] = DictionaryObject(  # type: ignore[no-untyped-call]
            {pdf_name("/N"): _appearance(writer, f, text)})
        writer.update_container(obj)
        done.add(name)
    if done != set(by_name):
        raise PdfSignError(f"the prepared PDF lacks the fields {sorted(set(by_name) - done)}")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


async def _sign(pdf_signer: Any, writer: Any, out: io.BytesIO) -> None:
    test = await pdf_signer.signer.async_sign(bytes(32), "sha256", dry_run=True, use_pades=True)
    estimate = len(test.dump()) * 2
    await pdf_signer.async_sign_pdf(
        writer, output=out, bytes_reserved=estimate + 2 * (estimate // 4) + TIMESTAMP_ROOM_HEX)


def sign_field(pdf: bytes, signer: Any, field: str, image: bytes | None, name: str) -> bytes:
    """A PAdES B-B signature into the existing ``field``, its appearance the PNG ``image``
    (transparent background) stretched to the field, or nothing."""
    from PIL import Image
    from pyhanko.pdf_utils.images import PdfImage
    from pyhanko.pdf_utils.layout import SimpleBoxLayoutRule
    from pyhanko.sign import fields, signers
    from pyhanko.stamp import TextStampStyle

    writer = _reader_writer(pdf)
    style = None
    if image is not None:
        try:
            img = Image.open(io.BytesIO(image))
            img.load()
        except Exception as exc:
            raise PdfSignError(f"the signature image cannot be read ({exc})") from exc
        from pyhanko.pdf_utils.layout import AxisAlignment, InnerScaling

        style = TextStampStyle(
            stamp_text="", background=PdfImage(img), background_opacity=1.0, border_width=0,
            background_layout=SimpleBoxLayoutRule(
                x_align=AxisAlignment.ALIGN_MID, y_align=AxisAlignment.ALIGN_MID,
                inner_content_scaling=InnerScaling.SHRINK_TO_FIT),
        )
    meta = signers.PdfSignatureMetadata(field_name=field, md_algorithm="sha256",
                                        subfilter=fields.SigSeedSubFilter.PADES, name=name)
    pdf_signer = signers.PdfSigner(meta, signer=signer, stamp_style=style)
    out = io.BytesIO()
    try:
        asyncio.run(_sign(pdf_signer, writer, out))
    except Exception as exc:
        raise PdfSignError(f"signing the PDF failed ({exc})") from exc
    return out.getvalue()
