"""The project's PDF/A-2b checks of a stored PDF, signed or not (Circular 05/2025 Điều 8).

What it confirms, each as a finding when it fails: the XMP identifies PDF/A part 2,
conformance B; the catalogue has a PDF/A OutputIntent with its ICC profile embedded; every
font any page or annotation appearance uses is embedded; the document information dictionary
and the XMP say the same (Producer, CreatorTool, Title, Author, Subject, Keywords, and the
creation and modification instants) — ISO 19005-2 §6.6.3, which a signature written by
pyHanko used to break; the catalogue's /Version is 1.x (§6.1.2); and pikepdf's PDF/A
validator (an allow-list, ``pikepdf.pdfa``) passes the file. That validator does not look
into interactive forms at all (it reports /AcroForm as unsupported); a signed file's form is
checked here instead: only signature fields, each with a printable widget that has a normal
appearance, and no /NeedAppearances (§6.4.1). It is not veraPDF, which is neither in Debian
nor on PyPI.
"""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timezone
from typing import Any

# Info key → XMP property (ISO 19005-2 §6.6.3 table 3).
INFO_XMP = {
    "/Producer": "pdf:Producer",
    "/Creator": "xmp:CreatorTool",
    "/Title": "dc:title",
    "/Author": "dc:creator",
    "/Subject": "dc:description",
    "/Keywords": "pdf:Keywords",
}
DATES = {"/CreationDate": "xmp:CreateDate", "/ModDate": "xmp:ModifyDate"}
_PDF_DATE = re.compile(
    r"D:(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?([Zz+\-])?(\d{2})?'?(\d{2})?'?"
)


def pdf_date(text: str) -> datetime | None:
    """A PDF date string as an aware datetime (UTC when it names no zone)."""
    m = _PDF_DATE.match(text.strip())
    if not m:
        return None
    y, mo, d, h, mi, s, sign, oh, om = m.groups()
    tz = UTC
    if sign in ("+", "-"):
        from datetime import timedelta

        off = timedelta(hours=int(oh or 0), minutes=int(om or 0))
        tz = timezone(off if sign == "+" else -off)
    return datetime(int(y), int(mo or 1), int(d or 1), int(h or 0), int(mi or 0), int(s or 0),
                    tzinfo=tz)


def _xmp_date(text: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _text(value: Any) -> str:
    if isinstance(value, list | tuple | set):
        return ", ".join(str(v) for v in value)
    return str(value)


def _fonts(pdf: Any) -> list[str]:
    """Names of fonts that are used but not embedded, anywhere in ``pdf``."""
    import pikepdf

    missing: list[str] = []
    for obj in pdf.objects:
        if not isinstance(obj, pikepdf.Dictionary) or obj.get("/Type") != "/Font":
            continue
        if obj.get("/Subtype") == "/Type0":
            continue  # its descendant font is checked in its own right
        if obj.get("/Subtype") == "/Type3":
            continue  # glyphs are content streams
        desc = obj.get("/FontDescriptor")
        if desc is None or not any(k in desc for k in ("/FontFile", "/FontFile2", "/FontFile3")):
            missing.append(str(obj.get("/BaseFont", "?")))
    return missing


def check(pdf_bytes: bytes) -> list[str]:
    """Findings (empty: the file passes every check listed in the module docstring)."""
    import pikepdf
    import pikepdf.pdfa

    findings: list[str] = []
    with pikepdf.open(io.BytesIO(pdf_bytes)) as pdf:
        meta = pdf.open_metadata()
        part, conf = str(meta.get("pdfaid:part") or ""), str(meta.get("pdfaid:conformance") or "")
        if (part, conf.upper()) != ("2", "B"):
            findings.append(f"XMP says PDF/A part {part or '-'} conformance {conf or '-'}, not 2B")
        intents: Any = pdf.Root.get("/OutputIntents") or []
        if not any(
            i.get("/S") == "/GTS_PDFA1" and i.get("/DestOutputProfile") is not None
            for i in intents
        ):
            findings.append("no PDF/A OutputIntent with an embedded ICC profile")
        for name in _fonts(pdf):
            findings.append(f"font {name} is not embedded")
        info = pdf.docinfo
        for key, prop in INFO_XMP.items():
            a = str(info[key]) if key in info else None
            b = _text(meta[prop]) if prop in meta else None
            if a != b:
                findings.append(f"Info {key} {a!r} differs from XMP {prop} {b!r}")
        for key, prop in DATES.items():
            a_d = pdf_date(str(info[key])) if key in info else None
            b_d = _xmp_date(str(meta[prop])) if prop in meta else None
            if (a_d is None) != (b_d is None) or (a_d and b_d and a_d != b_d):
                findings.append(f"Info {key} and XMP {prop} name different instants")
        version = str(pdf.Root.get("/Version", "/1.7"))
        if not re.fullmatch(r"/1\.[0-7]", version):
            findings.append(f"the catalogue says PDF version {version[1:]}; PDF/A-2 is 1.x")
        findings.extend(_form(pdf))
    result = pikepdf.pdfa.validate_written(io.BytesIO(pdf_bytes), "2b")
    for f in list(result.findings)[:20]:
        if f.kind == "unsupported" and "/AcroForm" in f.message:
            continue  # checked by _form
        findings.append(f"pikepdf: {f}")
    return findings


def _form(pdf: Any) -> list[str]:
    """A signed file's interactive form: signature fields only, each visible when printed."""
    form = pdf.Root.get("/AcroForm")
    if form is None:
        return []
    out = []
    if bool(form.get("/NeedAppearances", False)):
        out.append("the form asks readers to make appearances (/NeedAppearances)")
    for field in form.get("/Fields") or []:
        if field.get("/FT") != "/Sig":
            out.append(f"form field {field.get('/T')} is not a signature field")
            continue
        flags = int(field.get("/F", 0))
        if not flags & 4 or flags & 0b100011:  # Print set; Invisible, Hidden, NoView clear
            out.append(f"signature field {field.get('/T')} is not printed as it is shown")
        ap = field.get("/AP")
        if ap is None or "/N" not in ap:
            out.append(f"signature field {field.get('/T')} has no normal appearance")
    return out
