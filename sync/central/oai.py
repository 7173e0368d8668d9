"""OAI-PMH 2.0 over the published catalogue (the province's records, for any harvester).

Verbs: Identify, ListMetadataFormats, ListSets, ListIdentifiers, ListRecords, GetRecord, with
every error code the protocol defines. Metadata: ``oai_dc`` (unqualified Dublin Core) and
``ead`` (EAD 2002, one small finding aid per item: ``oai_ead.py``). Sets:
one per fonds (setSpec = mã phông). Items: each published hồ sơ (``hoso/<mã hồ sơ>``) and
document (``tailieu/<id>``), identified as ``oai:<namespace>:<item>``. Withdrawn records stay
as ``deleted`` headers (deletedRecord ``persistent``: the catalogue keeps their tombstones).
Lists are cut into pages; a resumption token carries the filters and the position (datestamp,
row id) of the last item sent, so a page costs one indexed read however deep the harvest is.

Everything read here is the ``catalogue`` table, which holds only what ``catalogue.publishable``
passed: no route of this module can reach anything else.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from lxml import etree

from .catalogue_store import CatalogueRow, CatalogueView
from .oai_ead import EAD, EAD_XSD, LANGUAGES, ead_record

OAI = "http://www.openarchives.org/OAI/2.0/"
OAI_DC = "http://www.openarchives.org/OAI/2.0/oai_dc/"
DC = "http://purl.org/dc/elements/1.1/"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
FORMATS = {"oai_dc": ("http://www.openarchives.org/OAI/2.0/oai_dc.xsd", OAI_DC),
           "ead": (EAD_XSD, EAD)}
VERBS = {
    "Identify": (set(), set()),
    "ListMetadataFormats": (set(), {"identifier"}),
    "ListSets": (set(), {"resumptionToken"}),
    "GetRecord": ({"identifier", "metadataPrefix"}, set()),
    "ListIdentifiers": ({"metadataPrefix"}, {"from", "until", "set", "resumptionToken"}),
    "ListRecords": ({"metadataPrefix"}, {"from", "until", "set", "resumptionToken"}),
}
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SECOND = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


@dataclass(frozen=True)
class Repository:
    name: str
    base_url: str
    admin_email: str
    namespace: str  # the oai-identifier's repository part, a domain name
    page_size: int = 100


class OaiError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


Views = Callable[[], AbstractContextManager[CatalogueView]]


def respond(repo: Repository, views: Views, args: Mapping[str, Sequence[str]],
            now: dt.datetime) -> bytes:
    """The XML answer to one OAI-PMH request (``args``: every query argument's values)."""
    root = etree.Element(f"{{{OAI}}}OAI-PMH", nsmap={None: OAI, "xsi": XSI})
    root.set(f"{{{XSI}}}schemaLocation", f"{OAI} http://www.openarchives.org/OAI/2.0/OAI-PMH.xsd")
    etree.SubElement(root, f"{{{OAI}}}responseDate").text = _stamp(now)
    request = etree.SubElement(root, f"{{{OAI}}}request")
    request.text = repo.base_url
    try:
        verb, one = _check(args)
        for k, v in one.items():
            request.set(k, v)
        _VERB_HANDLERS[verb](repo, views, one, root)
    except OaiError as exc:
        if exc.code in ("badVerb", "badArgument"):
            request.attrib.clear()  # the protocol: no attributes echo a malformed request
        err = etree.SubElement(root, f"{{{OAI}}}error", code=exc.code)
        err.text = str(exc)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def _check(args: Mapping[str, Sequence[str]]) -> tuple[str, dict[str, str]]:
    verbs = list(args.get("verb", ()))
    if len(verbs) != 1 or verbs[0] not in VERBS:
        raise OaiError("badVerb", "Thiếu hoặc sai verb (illegal or missing verb)")
    verb = verbs[0]
    required, optional = VERBS[verb]
    one: dict[str, str] = {"verb": verb}
    for k, values in args.items():
        if k == "verb":
            continue
        if k not in required | optional:
            raise OaiError("badArgument", f"đối số không hợp lệ: {k}")
        if len(values) != 1:
            raise OaiError("badArgument", f"đối số lặp lại: {k}")
        one[k] = values[0]
    if "resumptionToken" in one:
        if set(one) - {"verb", "resumptionToken"}:
            raise OaiError("badArgument", "resumptionToken là đối số duy nhất được phép")
        return verb, one
    missing = required - set(one)
    if missing:
        raise OaiError("badArgument", f"thiếu đối số: {', '.join(sorted(missing))}")
    return verb, one


def _stamp(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _oai_id(repo: Repository, row: CatalogueRow) -> str:
    return f"oai:{repo.namespace}:{row.oai_id}"


def _local_id(repo: Repository, identifier: str) -> str:
    prefix = f"oai:{repo.namespace}:"
    if not identifier.startswith(prefix):
        raise OaiError("idDoesNotExist", f"không có bản ghi {identifier}")
    return identifier[len(prefix):]


# -- the verbs ----------------------------------------------------------------------------------


def _identify(repo: Repository, views: Views, args: dict[str, str], root: Any) -> None:
    with views() as v:
        earliest = v.oai_earliest() or "2025-01-01T00:00:00Z"
    el = etree.SubElement(root, f"{{{OAI}}}Identify")
    for tag, text in (("repositoryName", repo.name), ("baseURL", repo.base_url),
                      ("protocolVersion", "2.0"), ("adminEmail", repo.admin_email),
                      ("earliestDatestamp", earliest), ("deletedRecord", "persistent"),
                      ("granularity", "YYYY-MM-DDThh:mm:ssZ")):
        etree.SubElement(el, f"{{{OAI}}}{tag}").text = text


def _formats(repo: Repository, views: Views, args: dict[str, str], root: Any) -> None:
    if "identifier" in args:
        with views() as v:
            if v.catalogue_item(_local_id(repo, args["identifier"])) is None:
                raise OaiError("idDoesNotExist", f"không có bản ghi {args['identifier']}")
    el = etree.SubElement(root, f"{{{OAI}}}ListMetadataFormats")
    for prefix, (schema, ns) in FORMATS.items():
        f = etree.SubElement(el, f"{{{OAI}}}metadataFormat")
        etree.SubElement(f, f"{{{OAI}}}metadataPrefix").text = prefix
        etree.SubElement(f, f"{{{OAI}}}schema").text = schema
        etree.SubElement(f, f"{{{OAI}}}metadataNamespace").text = ns


def _sets(repo: Repository, views: Views, args: dict[str, str], root: Any) -> None:
    if "resumptionToken" in args:  # every set fits one answer: no token was ever given
        raise OaiError("badResumptionToken", "mã tiếp tục không hợp lệ")
    with views() as v:
        sets = v.catalogue_sets()
    if not sets:
        raise OaiError("noSetHierarchy", "chưa có phông nào được công bố")
    el = etree.SubElement(root, f"{{{OAI}}}ListSets")
    for code, name, _n in sets:
        s = etree.SubElement(el, f"{{{OAI}}}set")
        etree.SubElement(s, f"{{{OAI}}}setSpec").text = code
        etree.SubElement(s, f"{{{OAI}}}setName").text = name


def _get_record(repo: Repository, views: Views, args: dict[str, str], root: Any) -> None:
    local = _local_id(repo, args["identifier"])
    _prefix(args["metadataPrefix"])
    with views() as v:
        row = v.catalogue_item(local)
    if row is None:
        raise OaiError("idDoesNotExist", f"không có bản ghi {args['identifier']}")
    el = etree.SubElement(root, f"{{{OAI}}}GetRecord")
    _record(repo, el, row, args["metadataPrefix"])


def _prefix(prefix: str) -> str:
    if prefix not in FORMATS:
        raise OaiError("cannotDisseminateFormat", f"không hỗ trợ định dạng {prefix}")
    return prefix


@dataclass(frozen=True)
class _Cursor:
    prefix: str
    fonds: str | None
    start: str | None
    until: str | None
    after: tuple[str, int] | None
    done: int

    def token(self) -> str:
        raw = json.dumps([self.prefix, self.fonds, self.start, self.until,
                          list(self.after) if self.after else None, self.done],
                         separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def parse(cls, token: str) -> _Cursor:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            p, f, s, u, a, n = json.loads(raw)
            after = (str(a[0]), int(a[1])) if a is not None else None
            cur = cls(str(p), f, s, u, after, int(n))
        except (ValueError, TypeError, KeyError, IndexError):
            raise OaiError("badResumptionToken", "mã tiếp tục không hợp lệ") from None
        if cur.prefix not in FORMATS or cur.done < 0:
            raise OaiError("badResumptionToken", "mã tiếp tục không hợp lệ")
        return cur


def _dates(args: dict[str, str]) -> tuple[str | None, str | None]:
    start, until = args.get("from"), args.get("until")
    for v in (start, until):
        if v is not None and not (_DAY.match(v) or _SECOND.match(v)):
            raise OaiError("badArgument", f"ngày không đúng định dạng: {v}")
        if v is not None:
            try:
                dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
            except ValueError:
                raise OaiError("badArgument", f"ngày không có thật: {v}") from None
    if start and until and len(start) != len(until):
        raise OaiError("badArgument", "from và until phải cùng độ chi tiết")
    if start and until and start > until:
        raise OaiError("badArgument", "from sau until")
    if start and len(start) == 10:
        start += "T00:00:00Z"
    if until and len(until) == 10:
        until += "T23:59:59Z"
    return start, until


def _list(repo: Repository, views: Views, args: dict[str, str], root: Any,
          records: bool) -> None:
    token = args.get("resumptionToken")
    if token is not None:
        cur = _Cursor.parse(token)
    else:
        start, until = _dates(args)
        cur = _Cursor(_prefix(args["metadataPrefix"]), args.get("set"), start, until, None, 0)
    with views() as v:  # a set that does not exist simply matches nothing
        rows = v.oai_page(cur.fonds, cur.start, cur.until, cur.after, repo.page_size + 1)
    if not rows:
        if token is not None:
            raise OaiError("badResumptionToken", "mã tiếp tục đã hết hiệu lực")
        raise OaiError("noRecordsMatch", "không có bản ghi nào khớp")
    more = len(rows) > repo.page_size
    rows = rows[: repo.page_size]
    el = etree.SubElement(root, f"{{{OAI}}}{'ListRecords' if records else 'ListIdentifiers'}")
    for row in rows:
        if records:
            _record(repo, el, row, cur.prefix)
        else:
            _header(repo, el, row)
    if more or token is not None:
        nxt = _Cursor(cur.prefix, cur.fonds, cur.start, cur.until,
                      (rows[-1].datestamp, rows[-1].rid), cur.done + len(rows))
        t = etree.SubElement(el, f"{{{OAI}}}resumptionToken", cursor=str(cur.done))
        t.text = nxt.token() if more else None


def _header(repo: Repository, parent: Any, row: CatalogueRow) -> None:
    h = etree.SubElement(parent, f"{{{OAI}}}header")
    if row.deleted:
        h.set("status", "deleted")
    etree.SubElement(h, f"{{{OAI}}}identifier").text = _oai_id(repo, row)
    etree.SubElement(h, f"{{{OAI}}}datestamp").text = row.datestamp
    etree.SubElement(h, f"{{{OAI}}}setSpec").text = row.fond_code


def _record(repo: Repository, parent: Any, row: CatalogueRow, prefix: str) -> None:
    rec = etree.SubElement(parent, f"{{{OAI}}}record")
    _header(repo, rec, row)
    if row.deleted:
        return
    md = etree.SubElement(rec, f"{{{OAI}}}metadata")
    if prefix == "ead":
        ead_record(md, row, repo.name, _oai_id(repo, row))
        return
    dc = etree.SubElement(md, f"{{{OAI_DC}}}dc", nsmap={"oai_dc": OAI_DC, "dc": DC})
    dc.set(f"{{{XSI}}}schemaLocation", f"{OAI_DC} {FORMATS['oai_dc'][0]}")
    for tag, value in dublin_core(row, repo.name):
        etree.SubElement(dc, f"{{{DC}}}{tag}").text = value


def dublin_core(row: CatalogueRow, publisher: str) -> list[tuple[str, str]]:
    """The published fields of ``row`` as (Dublin Core element, value), in order."""
    m: dict[str, Any] = json.loads(row.meta_json)
    fonds = m.get("_fonds", {})
    out = [("title", row.title)]
    if row.kind == "document":
        if m.get("OrganName"):
            out.append(("creator", str(m["OrganName"])))
        number = "/".join(str(m[k]) for k in ("CodeNumber", "CodeNotation") if m.get(k))
        if m.get("DocCode"):
            out.append(("identifier", str(m["DocCode"])))
        if number:
            out.append(("identifier", f"Số, ký hiệu: {number}"))
        if m.get("IssuedDate"):
            out.append(("date", str(m["IssuedDate"])))
        out.append(("type", str(m.get("TypeName") or "Văn bản")))
        out.append(("relation", f"Hồ sơ {row.file_code}"))
    else:
        out.append(("identifier", row.file_code))
        span = "/".join(str(m[k]) for k in ("StartDate", "EndDate") if m.get(k))
        if span:
            out.append(("date", span))
        out.append(("type", "Hồ sơ lưu trữ"))
        if m.get("DocTotal"):
            out.append(("description", f"Tổng số văn bản: {m['DocTotal']}"))
    if m.get("Keyword"):
        out.append(("subject", str(m["Keyword"])))
    lang = LANGUAGES.get(str(m.get("Language") or "01"))
    if lang:
        out.append(("language", lang))
    out.append(("publisher", publisher))
    if fonds.get("FondName"):
        out.append(("source", f"Phông {fonds['FondName']} ({row.fond_code})"))
    out.append(("rights", "Công khai (chế độ sử dụng 01)"))
    return out


_VERB_HANDLERS: dict[str, Callable[[Repository, Views, dict[str, str], Any], None]] = {
    "Identify": _identify,
    "ListMetadataFormats": _formats,
    "ListSets": _sets,
    "GetRecord": _get_record,
    "ListIdentifiers": lambda r, v, a, root: _list(r, v, a, root, records=False),
    "ListRecords": lambda r, v, a, root: _list(r, v, a, root, records=True),
}
