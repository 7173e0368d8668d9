"""PREMIS 3 preservation metadata of documents, mapped from the log that already holds it.

Each content file of a document is a PREMIS object (SHA-256 fixity, size, format, the file it
was derived from); the log entries that name the document, or cover all holdings, are its
events; the people and software that wrote them are its agents:

| Log entry | PREMIS event |
|---|---|
| document.register / draft / import (first version) | capture |
| document.digitise | digitization |
| document.content: a file uploaded or scanned | ingestion |
| document.content: an OCR rendition (capture) | optical character recognition |
| document.content: a signed rendition (capture) | digital signature generation |
| document.migrate | migration |
| document.ltv (the centre's B-LT/B-LTA upgrade) | digital signature generation |
| document.issue / update | metadata modification |
| archive.fixity_audit (every file present then) | fixity check |
| sync.receipt (first covering a file) | replication (copy confirmed at the centre) |
| archive.package of the document's hồ sơ / the package being built | information package creation |
| archive.transfer of its hồ sơ | transfer |

Event types are the Library of Congress preservation event type terms where one fits, plain
words where none does (OCR). Validated against the PREMIS 3.0 schema shipped in
``schemas/premis-v3-0.xsd``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

import cbor2
from lxml import etree

from .. import renditions
from ..kinds import Kind
from ..ledger import Entry
from .eadfields import SCHEMA_DIR
from .mets import software_version

if TYPE_CHECKING:
    from ..store import Store

PREMIS_NS = "http://www.loc.gov/premis/v3"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
SCHEMA_FILE = "premis-v3-0.xsd"
ID_TYPE = "luutru"  # identifier type of events and agents (the log index, the actor name)
SHA_TYPE = "SHA-256"  # objects are named by their content's SHA-256 in the content store
SOFTWARE_ACTORS = frozenset({"system", "capture", "fixity", "scheduler", "sync"})
_IDS = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_GLOBAL_KINDS = (Kind.ARCHIVE_FIXITY_AUDIT.encode(), Kind.SYNC_RECEIPT.encode())
_FIRST_KINDS: dict[str, str] = {Kind.DOCUMENT_REGISTER: "capture", Kind.DOCUMENT_DRAFT: "capture",
                Kind.DOCUMENT_IMPORT: "capture", Kind.DOCUMENT_DIGITISE: "digitization"}
DETAILS = {
    "capture": "Đăng ký, tiếp nhận tài liệu vào Hệ thống",
    "digitization": "Số hóa tài liệu giấy (quét), lập hồ sơ số hóa",
    "ingestion": "Tệp nội dung được đưa vào kho nội dung (SHA-256)",
    "optical character recognition": "Nhận dạng ký tự (OCR), chuyển sang PDF/A-2b hai lớp",
    "digital signature generation": "Ký số của cơ quan (PAdES)",
    "migration": "Chuyển đổi định dạng; bản gốc được giữ nguyên",
    "metadata modification": "Cập nhật thông tin mô tả",
    "fixity check": "Kiểm tra tính toàn vẹn (SHA-256) toàn bộ tài liệu và nhật ký",
    "replication": "Bản sao được Trung tâm dữ liệu tỉnh xác nhận (biên nhận có chữ ký)",
    "information package creation": "Lập gói SIP_hoso (Thông tư 05/2025/TT-BNV)",
    "transfer": "Giao nộp vào lưu trữ lịch sử",
}


def _p(tag: str) -> str:
    return f"{{{PREMIS_NS}}}{tag}"


@dataclass(frozen=True)
class Agent:
    id: str
    name: str
    type: str  # person · software · organization


@dataclass
class Event:
    id: str
    type: str
    at: str
    detail: str
    outcome: str = "success"
    objects: list[tuple[str, str]] = field(default_factory=list)  # (sha256, role)
    agents: list[str] = field(default_factory=list)
    note: str = ""


@dataclass
class History:
    """What the log says about some documents: their entries and the global ones."""

    by_doc: dict[str, list[Entry]] = field(default_factory=dict)
    by_file: dict[str, list[Entry]] = field(default_factory=dict)
    global_: list[Entry] = field(default_factory=list)
    first_index: dict[str, int] = field(default_factory=dict)  # sha256 -> first log index


def history(store: Store, doc_ids: Iterable[str], file_ids: Iterable[str] = ()) -> History:
    """One pass over the log; only entries whose bytes name a wanted id are decoded."""
    wanted = {i.encode() for i in (*doc_ids, *file_ids)}
    out = History({d: [] for d in doc_ids}, {f: [] for f in file_ids})
    for _idx, raw in store.entries():
        is_global = any(k in raw for k in _GLOBAL_KINDS)
        if not is_global and wanted.isdisjoint(_IDS.findall(raw)):
            continue
        m = cbor2.loads(raw)  # plain decode: Entry.decode's canonical checks cost 5x here
        e = Entry(int(m["i"]), str(m["kind"]), str(m["at"]), str(m["actor"]), m.get("type"),
                  m.get("id"), m.get("ver"), m.get("data"))
        if e.type == "document" and e.id in out.by_doc:
            out.by_doc[e.id].append(e)
        elif e.type == "file" and e.id in out.by_file:
            out.by_file[e.id].append(e)
        elif is_global and e.kind in (Kind.ARCHIVE_FIXITY_AUDIT, Kind.SYNC_RECEIPT):
            out.global_.append(e)
    conn = store.reader()
    for entries in out.by_doc.values():
        for e in entries:
            for c in (e.data or {}).get("Content") or ():
                out.first_index.setdefault(str(c["sha256"]), e.index)
    shas = list(out.first_index)
    for sha in shas:
        row = conn.execute("SELECT first_log_index FROM content WHERE sha256 = ?",
                           (sha,)).fetchone()
        if row is not None:
            out.first_index[sha] = min(out.first_index[sha], int(row[0]))
    return out


def _agent_of(actor: str, agents: dict[str, Agent], software: str) -> str:
    if actor not in agents:
        if actor in SOFTWARE_ACTORS:
            agents[actor] = Agent(actor, f"{software} ({actor})", "software")
        else:
            agents[actor] = Agent(actor, actor, "person")
    return actor


def _content_event(e: Entry, known: set[str], agents: dict[str, Agent],
                   software: str) -> Event | None:
    content = list((e.data or {}).get("Content") or [])
    new = [c for c in content if c["sha256"] not in known]
    if not new:
        return None
    src = renditions.sources(content)
    c = new[-1]
    what = renditions.rendition_of(content, c["sha256"]) if c["sha256"] in src else "original"
    kind = {"ocr": "optical character recognition", "signed": "digital signature generation",
            "migration": "migration", "ltv": "digital signature generation"}.get(what,
                                                                              "ingestion")
    if e.kind == Kind.DOCUMENT_MIGRATE:
        kind = "migration"
    ev = Event(f"log-{e.index}", kind, e.at, DETAILS[kind],
               agents=[_agent_of(e.actor, agents, software)])
    for item in new:
        if item["sha256"] in src:
            ev.objects.append((src[item["sha256"]], "source"))
        ev.objects.append((item["sha256"], "outcome"))
    if c.get("tool"):
        ev.note = str(c["tool"])
    if c.get("ltv"):
        ev.note = (f"Trung tâm dữ liệu tỉnh nâng cấp chữ ký lên PAdES {c['ltv']} (dấu thời gian, "
                   "OCSP/CRL)")
    return ev


def document_events(
    entries: Sequence[Entry], agents: dict[str, Agent], software: str
) -> list[Event]:
    """The events of one document from its own log entries (oldest first)."""
    out: list[Event] = []
    known: set[str] = set()
    for n, e in enumerate(entries):
        content = [str(c["sha256"]) for c in (e.data or {}).get("Content") or ()]
        if n == 0 and e.kind in _FIRST_KINDS:
            kind = _FIRST_KINDS[e.kind]
            ev = Event(f"log-{e.index}", kind, e.at, DETAILS[kind],
                       agents=[_agent_of(e.actor, agents, software)])
            ev.objects = [(sha, "outcome") for sha in content]
            out.append(ev)
        elif e.kind in (Kind.DOCUMENT_CONTENT, Kind.DOCUMENT_MIGRATE, Kind.DOCUMENT_LTV):
            found = _content_event(e, known, agents, software)
            if found is not None:
                out.append(found)
        elif e.kind in (Kind.DOCUMENT_ISSUE, Kind.DOCUMENT_UPDATE, Kind.DOCUMENT_REGISTER):
            out.append(Event(f"log-{e.index}", "metadata modification", e.at,
                             DETAILS["metadata modification"],
                             agents=[_agent_of(e.actor, agents, software)]))
        known.update(content)
    return out


def global_events(
    hist: History, shas: Sequence[str], agents: dict[str, Agent], software: str
) -> list[Event]:
    """Fixity audits over the files present then, and the first receipt covering each."""
    out: list[Event] = []
    covered: set[str] = set()
    for e in hist.global_:
        present = [s for s in shas if hist.first_index.get(s, 1 << 62) < e.index]
        if not present:
            continue
        data = e.data or {}
        if e.kind == Kind.ARCHIVE_FIXITY_AUDIT:
            failed = {str(f.get("sha256")) for f in data.get("failures") or ()}
            ev = Event(f"log-{e.index}", "fixity check", e.at, DETAILS["fixity check"],
                       "fail" if failed.intersection(present) else "success",
                       [(s, "source") for s in present],
                       [_agent_of(e.actor, agents, software)])
            out.append(ev)
        else:
            size = int(data.get("tree_size", 0))
            fresh = [s for s in present if s not in covered and hist.first_index[s] < size]
            if fresh:
                agents.setdefault("centre", Agent("centre", "Trung tâm dữ liệu tỉnh",
                                                  "organization"))
                out.append(Event(f"log-{e.index}", "replication", e.at, DETAILS["replication"],
                                 objects=[(s, "source") for s in fresh], agents=["centre"]))
                covered.update(fresh)
    return out


def file_events(entries: Sequence[Entry], shas: Sequence[str], agents: dict[str, Agent],
                software: str) -> list[Event]:
    """Packages built of, and transfers of, the hồ sơ the documents are in."""
    out: list[Event] = []
    for e in entries:
        kind = {Kind.ARCHIVE_PACKAGE.value: "information package creation",
                Kind.ARCHIVE_TRANSFER.value: "transfer"}.get(e.kind)
        if kind is None:
            continue
        data = e.data or {}
        note = str(data.get("objid") or data.get("package") or "")
        out.append(Event(f"log-{e.index}", kind, e.at, DETAILS[kind],
                         objects=[(s, "source") for s in shas],
                         agents=[_agent_of(e.actor, agents, software)], note=note))
    return out


# -- XML ------------------------------------------------------------------------------------


def _sub(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
    el = etree.SubElement(parent, _p(tag))
    if text is not None:
        el.text = text
    return el


def _object(root: etree._Element, c: Mapping[str, Any], source: str | None,
            location: str | None, events: Sequence[str]) -> None:
    obj = _sub(root, "object")
    obj.set(f"{{{XSI_NS}}}type", "file")
    ident = _sub(obj, "objectIdentifier")
    _sub(ident, "objectIdentifierType", SHA_TYPE)
    _sub(ident, "objectIdentifierValue", str(c["sha256"]))
    chars = _sub(obj, "objectCharacteristics")
    _sub(chars, "compositionLevel", "0")
    fix = _sub(chars, "fixity")
    _sub(fix, "messageDigestAlgorithm", "SHA-256")
    _sub(fix, "messageDigest", str(c["sha256"]))
    _sub(chars, "size", str(int(c["size"])))
    fmt = _sub(chars, "format")
    _sub(_sub(fmt, "formatDesignation"), "formatName", str(c.get("mime") or "unknown"))
    if c.get("name"):
        _sub(obj, "originalName", str(c["name"]))
    if location:
        loc = _sub(_sub(obj, "storage"), "contentLocation")
        _sub(loc, "contentLocationType", "URL")
        _sub(loc, "contentLocationValue", location)
    if source:
        rel = _sub(obj, "relationship")
        _sub(rel, "relationshipType", "derivation")
        _sub(rel, "relationshipSubType", "is derived from")
        rid = _sub(rel, "relatedObjectIdentifier")
        _sub(rid, "relatedObjectIdentifierType", SHA_TYPE)
        _sub(rid, "relatedObjectIdentifierValue", source)
    for ev in events:
        link = _sub(obj, "linkingEventIdentifier")
        _sub(link, "linkingEventIdentifierType", ID_TYPE)
        _sub(link, "linkingEventIdentifierValue", ev)


def _event(root: etree._Element, ev: Event) -> None:
    el = _sub(root, "event")
    ident = _sub(el, "eventIdentifier")
    _sub(ident, "eventIdentifierType", ID_TYPE)
    _sub(ident, "eventIdentifierValue", ev.id)
    _sub(el, "eventType", ev.type)
    _sub(el, "eventDateTime", ev.at)
    _sub(_sub(el, "eventDetailInformation"), "eventDetail", ev.detail)
    out = _sub(el, "eventOutcomeInformation")
    _sub(out, "eventOutcome", ev.outcome)
    if ev.note:
        _sub(_sub(out, "eventOutcomeDetail"), "eventOutcomeDetailNote", ev.note)
    for a in ev.agents:
        link = _sub(el, "linkingAgentIdentifier")
        _sub(link, "linkingAgentIdentifierType", ID_TYPE)
        _sub(link, "linkingAgentIdentifierValue", a)
        _sub(link, "linkingAgentRole", "executing program" if a in SOFTWARE_ACTORS
             else "implementer")
    for sha, role in dict.fromkeys(ev.objects):
        link = _sub(el, "linkingObjectIdentifier")
        _sub(link, "linkingObjectIdentifierType", SHA_TYPE)
        _sub(link, "linkingObjectIdentifierValue", sha)
        _sub(link, "linkingObjectRole", role)


def _agent(root: etree._Element, a: Agent, version: str) -> None:
    el = _sub(root, "agent")
    ident = _sub(el, "agentIdentifier")
    _sub(ident, "agentIdentifierType", ID_TYPE)
    _sub(ident, "agentIdentifierValue", a.id)
    _sub(el, "agentName", a.name)
    _sub(el, "agentType", a.type)
    if a.type == "software":
        _sub(el, "agentVersion", version)


@dataclass
class PremisDoc:
    """Objects, events and agents to write as one <premis> document."""

    entities: list[tuple[str, str, str]] = field(default_factory=list)  # (type, value, title)
    objects: list[tuple[dict[str, Any], str | None, str | None]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    agents: dict[str, Agent] = field(default_factory=dict)

    def to_xml(self, version: str, schema_location: str = SCHEMA_FILE) -> bytes:
        root = etree.Element(_p("premis"), nsmap={None: PREMIS_NS, "xsi": XSI_NS})
        root.set("version", "3.0")
        root.set(f"{{{XSI_NS}}}schemaLocation", f"{PREMIS_NS} {schema_location}")
        links: dict[str, list[str]] = {}
        for ev in self.events:
            for sha, _role in ev.objects:
                links.setdefault(sha, []).append(ev.id)
        for id_type, value, title in self.entities:
            ent = _sub(root, "object")
            ent.set(f"{{{XSI_NS}}}type", "intellectualEntity")
            ident = _sub(ent, "objectIdentifier")
            _sub(ident, "objectIdentifierType", id_type)
            _sub(ident, "objectIdentifierValue", value)
            if title:
                _sub(ent, "originalName", title)
        seen: set[str] = set()
        for c, source, location in self.objects:
            if c["sha256"] in seen:
                continue
            seen.add(str(c["sha256"]))
            _object(root, c, source, location, list(dict.fromkeys(links.get(c["sha256"], []))))
        for ev in self.events:
            _event(root, ev)
        for a in self.agents.values():
            _agent(root, a, version)
        return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8",
                                    pretty_print=True))


def describe(
    doc: PremisDoc, content: Sequence[Mapping[str, Any]], entries: Sequence[Entry],
    hist: History, software: str, locations: Mapping[str, str] | None = None,
) -> None:
    """Add one document's files, events and agents to ``doc``."""
    src = renditions.sources(content)
    for c in content:
        where = (locations or {}).get(str(c["sha256"]))
        doc.objects.append((dict(c), src.get(str(c["sha256"])), where))
    doc.events.extend(document_events(entries, doc.agents, software))
    shas = [str(c["sha256"]) for c in content]
    doc.events.extend(global_events(hist, shas, doc.agents, software))


def record_premis(store: Store, doc_id: str) -> bytes:
    """PREMIS 3 of one document as the box holds it: every content version and its history."""
    rec = store.get("document", doc_id)
    hist = history(store, [doc_id])
    doc = PremisDoc()
    content = list(rec.data.get("Content") or [])
    doc.entities.append(("luutru document", doc_id, str(rec.data.get("Subject") or "")[:200]))
    describe(doc, content, hist.by_doc[doc_id], hist, software_version())
    doc.events.sort(key=lambda e: (e.at, e.id))
    return doc.to_xml(software_version())


@cache
def schema() -> etree.XMLSchema:
    """The PREMIS 3.0 schema (Library of Congress), shipped with luutru (offline)."""
    return etree.XMLSchema(etree.parse(str(SCHEMA_DIR / SCHEMA_FILE)))


def validate(body: bytes) -> list[str]:
    """Problems of a PREMIS document against the PREMIS 3.0 schema (empty when valid)."""
    s = schema()
    doc = etree.fromstring(body)
    if s.validate(doc):
        return []
    return [f"line {e.line}: {e.message}" for e in s.error_log]
