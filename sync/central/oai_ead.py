"""A published record as EAD 2002 (Encoded Archival Description), the ``ead`` format of OAI-PMH.

Archives' portals harvest finding aids as EAD; each catalogue item becomes one small EAD
document: the hồ sơ at ``level="file"``, a document at ``level="item"``, with the fields a
reader needs (mã hồ sơ or mã lưu trữ, title, dates, the fonds as origination, extent,
language, the issuing agency and the type for a document, keywords, the access condition).
It is built from the same public fields as the Dublin Core (``catalogue_store.CatalogueRow``'s
``meta_json``, which only the publishing rule writes), so it can show nothing that the
catalogue does not publish. The records validate against the EAD 2002 schema of SAA and the
Library of Congress (the tests hold a copy: tests/vectors/ead2002).
"""

from __future__ import annotations

import json
from typing import Any

from lxml import etree

from appliance.clock import parse_date, vn_date
from appliance.errors import ValidationError

from .catalogue_store import CatalogueRow

EAD = "urn:isbn:1-931666-22-9"
EAD_XSD = "http://www.loc.gov/ead/ead.xsd"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
LANGUAGES = {"01": "vie", "02": "eng", "03": "fra", "04": "rus", "05": "zho"}
LANGUAGE_NAMES = {"vie": "Tiếng Việt", "eng": "Tiếng Anh", "fra": "Tiếng Pháp",
                  "rus": "Tiếng Nga", "zho": "Tiếng Trung"}
PUBLIC_ACCESS = "Công khai (chế độ sử dụng 01)"


def _el(parent: Any, tag: str, text: str | None = None, **attrs: str) -> Any:
    el = etree.SubElement(parent, f"{{{EAD}}}{tag}", **attrs)
    if text is not None:
        el.text = text
    return el


def _iso(value: Any) -> str | None:
    """A date of the metadata (YYYY-MM-DD or dd/mm/yyyy) as ISO 8601, if it is one."""
    if not value:
        return None
    try:
        return parse_date(str(value)).isoformat()
    except (ValidationError, ValueError):
        return None


def _unitdate(did: Any, start: Any, end: Any = None) -> None:
    a, b = _iso(start), _iso(end)
    if a is None:
        return
    if b is None or b == a:
        _el(did, "unitdate", vn_date(a), normal=a, era="ce", calendar="gregorian")
        return
    _el(did, "unitdate", f"{vn_date(a)} – {vn_date(b)}", normal=f"{a}/{b}", era="ce",
        calendar="gregorian", type="inclusive")


def language(meta: dict[str, Any]) -> str | None:
    """The ISO 639-2/B code of the record's first language (code list 01–05), if known."""
    first = str(meta.get("Language") or "01").split(",")[0]
    return LANGUAGES.get(first)


def ead_record(parent: Any, row: CatalogueRow, repository: str, identifier: str) -> Any:
    """Append ``row`` as an <ead> element under ``parent`` (an OAI-PMH <metadata>)."""
    m: dict[str, Any] = json.loads(row.meta_json)
    fonds = m.get("_fonds", {})
    lang = language(m)
    ead = etree.SubElement(parent, f"{{{EAD}}}ead", nsmap={None: EAD, "xsi": XSI})
    ead.set(f"{{{XSI}}}schemaLocation", f"{EAD} {EAD_XSD}")
    ead.set("audience", "external")
    header = _el(ead, "eadheader", langencoding="iso639-2b", dateencoding="iso8601",
                 countryencoding="iso3166-1", scriptencoding="iso15924")
    _el(header, "eadid", identifier, countrycode="VN", identifier=identifier)
    filedesc = _el(header, "filedesc")
    _el(_el(filedesc, "titlestmt"), "titleproper", row.title)
    _el(_el(filedesc, "publicationstmt"), "publisher", repository)
    usage = _el(_el(header, "profiledesc"), "langusage")
    _el(usage, "language", "Tiếng Việt", langcode="vie", scriptcode="Latn")
    desc = _el(ead, "archdesc", level="file" if row.kind == "file" else "item")
    did = _el(desc, "did")
    if row.kind == "file":
        _el(did, "unitid", row.file_code, type="ma-ho-so")
    elif m.get("DocCode"):
        _el(did, "unitid", str(m["DocCode"]), type="ma-luu-tru")
    _el(did, "unittitle", row.title)
    if row.kind == "file":
        _unitdate(did, m.get("StartDate"), m.get("EndDate"))
    else:
        _unitdate(did, m.get("IssuedDate"))
    if fonds.get("FondName"):
        _el(_el(did, "origination", label="Phông"), "corpname",
            f"{fonds['FondName']} ({row.fond_code})")
    extents = [f"{m[k]} {unit}" for k, unit in (("DocTotal", "văn bản"), ("PageTotal", "trang"),
                                                 ("PageAmount", "trang")) if m.get(k)]
    if extents:
        physdesc = _el(did, "physdesc")
        for text in extents:
            _el(physdesc, "extent", text)
    if lang:
        _el(_el(did, "langmaterial"), "language", LANGUAGE_NAMES[lang], langcode=lang)
    _el(_el(did, "repository"), "corpname", repository)
    _access(desc, row, m)
    return ead


def _access(desc: Any, row: CatalogueRow, m: dict[str, Any]) -> None:
    """The access points, the relation to the hồ sơ, and the access condition."""
    points = []
    if row.kind == "document":
        if m.get("OrganName"):
            points.append(("corpname", str(m["OrganName"]), {"role": "Cơ quan ban hành"}))
        points.append(("genreform", str(m.get("TypeName") or "Văn bản"), {}))
    if m.get("Keyword"):
        points.append(("subject", str(m["Keyword"]), {}))
    if points:
        access = _el(desc, "controlaccess")
        for tag, text, attrs in points:
            _el(access, tag, text, **attrs)
    if row.kind == "document":
        number = "/".join(str(m[k]) for k in ("CodeNumber", "CodeNotation") if m.get(k))
        if number:
            _el(_el(desc, "odd"), "p", f"Số, ký hiệu: {number}")
        _el(_el(desc, "relatedmaterial"), "p", f"Thuộc hồ sơ {row.file_code}")
    _el(_el(desc, "accessrestrict"), "p", PUBLIC_ACCESS)
