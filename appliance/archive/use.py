"""Use of the archive (khai thác, sử dụng tài liệu lưu trữ): requests, approval, delivery.

A request (phiếu yêu cầu khai thác, sử dụng tài liệu lưu trữ) names its reader (the agency's
own staff, or an outside person the desk records), the purpose, the documents asked for and
the form of use of each: reading on screen, a copy, or a certified copy (chứng thực lưu
trữ). The head of the agency, or whoever the office names (``appliance.json`` → ``use``),
approves it with conditions or refuses it. Nothing is delivered without an approved item.

Access levels follow the chế độ sử dụng (``classified.py`` is the one rule for mật):
01 public; 02 restricted (sử dụng có điều kiện: the document's Mode, or the Rights of a
hồ sơ it is filed in); 03 classified. A restricted or classified document is offered only
to an actor with clearance (as if absent otherwise), an outside reader needs the written
permission that grants it, its approver must be cleared too, and classified documents are
only read on the spot, never copied here (the state-secrets procedure governs their copies).

Every step is one log entry carrying the request's full new state (``use.request``,
``use.decide``, ``use.deliver``), projected into ``use_requests`` in the same transaction;
``rebuild.py`` replays them the same way. An entry naming a mật document is withheld from
sync like any other (``classified.py``).
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from .. import classified, writes
from ..clock import iso
from ..errors import ConflictError, NotFoundError, ValidationError
from ..identifiers import doc_code
from ..kinds import Kind
from ..ledger import Entry
from ..text import nfc, nfc_multiline
from ..writer import Txn
from .errors import ArchiveError

if TYPE_CHECKING:
    from ..pdfsign import PdfSigningKey
    from ..store import Store

DDL = """
CREATE TABLE IF NOT EXISTS use_requests (
  id TEXT PRIMARY KEY, year INTEGER NOT NULL, number INTEGER NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'refused')),
  created_by TEXT NOT NULL, created_at TEXT NOT NULL,
  data TEXT NOT NULL CHECK (json_valid(data)), log_index INTEGER NOT NULL,
  UNIQUE (year, number));
CREATE INDEX IF NOT EXISTS use_requests_status ON use_requests (status, year);
"""
KINDS = (Kind.USE_REQUEST, Kind.USE_DECIDE, Kind.USE_DELIVER)


class Form(StrEnum):
    """The form of use asked for an item."""

    READ = "read"  # đọc tại chỗ / trên màn hình
    COPY = "copy"  # bản sao (marked "BẢN SAO")
    CERTIFIED = "certified"  # bản sao có chứng thực lưu trữ (signed by the agency key)


class Medium(StrEnum):
    SCREEN = "screen"
    DIGITAL = "digital"  # a PDF handed over as a file
    PAPER = "paper"  # the same PDF, printed


class Level(StrEnum):
    PUBLIC = "01"
    RESTRICTED = "02"
    CLASSIFIED = "03"


# Mục đích khai thác, sử dụng, for the yearly statistics [inference: the usual categories of
# agency archives' reports; code 05 takes anything else].
PURPOSES = {
    "01": "Công tác",
    "02": "Nghiên cứu, học tập",
    "03": "Giải quyết chế độ, quyền lợi, thủ tục hành chính",
    "04": "Tuyên truyền, giáo dục, báo chí",
    "05": "Khác",
}
FORM_LABELS = {Form.READ: "Đọc", Form.COPY: "Bản sao", Form.CERTIFIED: "Bản sao chứng thực"}
STATUS_LABELS = {"pending": "Chờ duyệt", "approved": "Đã duyệt", "refused": "Từ chối"}
READER_FIELDS = ("name", "organisation", "identity", "address", "clearance_ref")


class UseError(ConflictError, ArchiveError):
    """A use request cannot go on this way (wrong step, nothing to copy, no signing key)."""


class UseForbidden(UseError):
    """The actor may not take this step (not the desk, not an approver)."""


@dataclass(frozen=True)
class Actor:
    """Who acts, as the web UI knows them: clearance, approval right, reading-room desk."""

    username: str
    cleared: bool = False  # may see restricted and classified records
    approver: bool = False  # the head of the agency, or a role the office named
    desk: bool = False  # records outside readers' requests and hands over copies


@dataclass(frozen=True)
class Delivered:
    """What a delivery hands over: the request's new state, and the copy's bytes if any."""

    request: dict[str, Any]
    pdf: bytes | None = None
    filename: str | None = None


def ensure_schema(conn: sqlite3.Connection) -> None:
    for stmt in DDL.split(";"):
        if stmt.strip():
            conn.execute(stmt)


def project(conn: sqlite3.Connection, entry: Entry) -> None:
    """Write a use.* entry's request state into ``use_requests`` (live path and rebuild)."""
    ensure_schema(conn)
    req = (entry.data or {})["request"]
    conn.execute(
        "INSERT INTO use_requests (id, year, number, status, created_by, created_at, data, "
        "log_index) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
        "status = excluded.status, data = excluded.data, log_index = excluded.log_index",
        (req["id"], req["year"], req["number"], req["status"], req["created_by"],
         req["created_at"], json.dumps(req, ensure_ascii=False, sort_keys=True), entry.index),
    )


def _append(txn: Txn, kind: Kind, actor: str, req: dict[str, Any]) -> dict[str, Any]:
    entry = writes.append_event(txn, kind, actor, {"request": req}, "use_request", req["id"])
    project(txn.conn, entry)
    return req


# -- reading -------------------------------------------------------------------------------


def level_of(conn: sqlite3.Connection, doc_id: str) -> Level:
    """The access level of a document: its own Mode, and that of every hồ sơ it is in."""
    if classified.document_is_classified(conn, {}, doc_id, projected=True):
        return Level.CLASSIFIED
    row = conn.execute(
        'SELECT 1 FROM documents d WHERE d.id = ? AND (coalesce(d."Mode", \'01\') = \'02\' '
        'OR d."FileCode" IN (SELECT "FileCode" FROM files WHERE "Rights" = \'02\') '
        'OR d.id IN (SELECT m."DocumentId" FROM memberships m JOIN files f '
        'ON f."FileCode" = m."FileCode" WHERE f."Rights" = \'02\'))',
        (doc_id,),
    ).fetchone()
    return Level.RESTRICTED if row else Level.PUBLIC


def archival_code(data: Mapping[str, Any]) -> str:
    """The mã lưu trữ a copy carries: TT 05 docCode when the document is in a hồ sơ, else its
    số, ký hiệu (a loose document has no archival code yet)."""
    code, ordinal = data.get("FileCode"), data.get("DocOrdinal")
    if code and isinstance(ordinal, int) and ordinal > 0:
        return doc_code(str(code), ordinal)
    number = "/".join(str(data[k]) for k in ("CodeNumber", "CodeNotation") if data.get(k))
    return number or "—"


def get_request(conn: sqlite3.Connection, request_id: str) -> dict[str, Any]:
    try:
        row = conn.execute("SELECT data FROM use_requests WHERE id = ?", (request_id,)).fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" not in str(exc):
            raise
        row = None
    if row is None:
        raise NotFoundError(f"không có phiếu yêu cầu {request_id}")
    out: dict[str, Any] = json.loads(row[0])
    return out


def visible(req: Mapping[str, Any], actor: Actor) -> bool:
    """Whether ``actor`` may see the request: their own; the desk and approvers see every one
    whose documents their clearance covers."""
    if not actor.cleared and any(i["level"] != Level.PUBLIC for i in req["items"]):
        return False
    return req["created_by"] == actor.username or actor.desk or actor.approver


def list_requests(conn: sqlite3.Connection, actor: Actor, year: int | None = None,
                  status: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    where: list[str] = []
    args: list[Any] = []
    if year is not None:
        where.append("year = ?")
        args.append(year)
    if status:
        where.append("status = ?")
        args.append(status)
    sql = "SELECT data FROM use_requests"
    if where:
        sql += " WHERE " + " AND ".join(where)
    try:
        rows = conn.execute(sql + " ORDER BY year DESC, number DESC", args).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise
    out = [json.loads(r[0]) for r in rows]
    return [r for r in out if visible(r, actor)][:limit]


# -- the steps ------------------------------------------------------------------------------


def _reader(raw: Mapping[str, Any], actor: Actor) -> dict[str, Any]:
    kind = str(raw.get("kind") or "staff")
    if kind not in ("staff", "outside"):
        raise ValidationError("reader.kind is staff or outside", "reader_kind")
    out: dict[str, Any] = {"kind": kind}
    for k in READER_FIELDS:
        v = raw.get(k)
        if isinstance(v, str) and v.strip():
            out[k] = nfc(v)[:300]
    if kind == "outside":
        if not actor.desk:
            raise UseForbidden("chỉ văn thư, lưu trữ ghi phiếu cho người ngoài cơ quan")
        if not out.get("name"):
            raise ValidationError("Cần họ và tên người khai thác", "reader_name")
    else:
        out.setdefault("name", actor.username)
    return out


def _items(conn: sqlite3.Connection, raw: Sequence[Any], actor: Actor,
           reader: Mapping[str, Any]) -> list[dict[str, Any]]:
    if not raw:
        raise ValidationError("Cần ít nhất một tài liệu", "items")
    out, seen = [], set()
    for item in raw:
        if not isinstance(item, Mapping):
            raise ValidationError("Mỗi tài liệu yêu cầu là {document, form}", "items")
        doc_id = str(item.get("document", ""))
        try:
            form = Form(str(item.get("form", "read")))
        except ValueError:
            raise ValidationError("Hình thức khai thác là đọc, sao hoặc sao chứng thực",
                                  "form") from None
        row = conn.execute('SELECT "Subject", "FileCode", "DocOrdinal", "CodeNumber", '
                           '"CodeNotation", "Status" FROM documents WHERE id = ?',
                           (doc_id,)).fetchone()
        if row is None or doc_id in seen:
            raise NotFoundError(f"không có tài liệu {doc_id}")
        level = level_of(conn, doc_id)
        if level is not Level.PUBLIC and not actor.cleared:
            raise NotFoundError(f"không có tài liệu {doc_id}")  # never offered: as if absent
        if level is not Level.PUBLIC and reader["kind"] == "outside" and not reader.get(
                "clearance_ref"):
            raise ValidationError("Tài liệu hạn chế sử dụng: cần số văn bản cho phép của "
                                  "người khai thác", "reader_clearance_ref")
        if level is Level.CLASSIFIED and form is not Form.READ:
            raise ValidationError("Tài liệu mật chỉ được đọc tại chỗ, không sao tại đây", "form")
        data = dict(zip(("Subject", "FileCode", "DocOrdinal", "CodeNumber", "CodeNotation"),
                        row[:5], strict=True))
        seen.add(doc_id)
        out.append({"document": doc_id, "form": form.value, "level": level.value,
                    "code": archival_code(data), "title": str(row[0] or "")[:500]})
    return out


def create_request(store: Store, actor: Actor, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Record a request for use; it waits for the approver's decision."""
    purpose = nfc_multiline(str(raw.get("purpose") or ""))
    if not purpose:
        raise ValidationError("Cần ghi mục đích khai thác, sử dụng", "purpose")
    code = str(raw.get("purpose_code") or "05")
    if code not in PURPOSES:
        raise ValidationError("Mục đích không có trong danh mục", "purpose_code")
    reader_raw = raw.get("reader") or {}
    if not isinstance(reader_raw, Mapping) or not isinstance(raw.get("items") or [], list):
        raise ValidationError("reader là một đối tượng, items là một danh sách", "reader")
    reader = _reader(reader_raw, actor)

    def job(txn: Txn) -> dict[str, Any]:
        ensure_schema(txn.conn)
        items = _items(txn.conn, list(raw.get("items") or ()), actor, reader)
        now = txn.clock.now()
        (last,) = txn.conn.execute("SELECT max(number) FROM use_requests WHERE year = ?",
                                   (now.year,)).fetchone()
        req = {"id": writes.new_id(), "year": now.year, "number": int(last or 0) + 1,
               "created_at": iso(now), "created_by": actor.username, "reader": reader,
               "purpose": purpose[:1000], "purpose_code": code, "items": items,
               "status": "pending", "decision": None, "deliveries": []}
        return _append(txn, Kind.USE_REQUEST, actor.username, req)

    return store.writer_or_fail().call(job)


def decide(store: Store, actor: Actor, request_id: str, approve: bool, note: str = "",
           items: Sequence[int] | None = None) -> dict[str, Any]:
    """Approve (all items, or those listed, with ``note`` as its conditions) or refuse."""
    if not actor.approver:
        raise UseForbidden("chỉ lãnh đạo cơ quan (hoặc người được giao) duyệt phiếu yêu cầu")
    note = nfc_multiline(note)[:1000]
    if not approve and not note:
        raise ValidationError("Cần ghi lý do từ chối", "note")

    def job(txn: Txn) -> dict[str, Any]:
        req = get_request(txn.conn, request_id)
        if not visible(req, actor):
            raise NotFoundError(f"không có phiếu yêu cầu {request_id}")
        if req["status"] != "pending":
            raise ConflictError(f"phiếu {req['number']}/{req['year']} đã được quyết định")
        chosen = sorted(set(range(len(req["items"])) if items is None else items))
        if approve and (not chosen or not all(0 <= i < len(req["items"]) for i in chosen)):
            raise ValidationError("Chọn các tài liệu được duyệt", "items")
        req["status"] = "approved" if approve else "refused"
        req["decision"] = {"by": actor.username, "at": iso(txn.clock.now()), "note": note,
                           "items": chosen if approve else []}
        return _append(txn, Kind.USE_DECIDE, actor.username, req)

    return store.writer_or_fail().call(job)


@dataclass
class CopyMaker:
    """Makes a copy's PDF: the record's first PDF, stamped, and signed when certified."""

    store: Store
    signer: PdfSigningKey | None = None
    agency_name: str = ""
    pages: dict[str, int] = field(default_factory=dict)

    def make(self, doc: Mapping[str, Any], code: str, form: Form, on: dt.date) -> bytes:
        from ..copymark import stamp_copy

        pdfs = [c for c in doc.get("Content") or () if c.get("mime") == "application/pdf"]
        if not pdfs:
            raise UseError("tài liệu chưa có bản số hóa (PDF) để sao")
        with self.store.content.open(pdfs[0]["sha256"]) as fh:
            original = fh.read()
        if form is Form.COPY:
            return stamp_copy(original, code, on)
        if self.signer is None:
            raise UseError("chưa có khóa ký số của cơ quan để chứng thực bản sao")
        from ..pdfsign import sign_pdf

        # The signature block (bản sao, mã lưu trữ, agency, time) takes the top right of page 1.
        marked = stamp_copy(original, code, on, below=72.0)
        return sign_pdf(marked, self.signer, agency_name=self.agency_name or
                        self.store.config.org_name, copy_type="BẢN SAO", doc_ref=code)


def deliver(store: Store, actor: Actor, request_id: str, item: int, medium: str,
            maker: CopyMaker | None = None) -> Delivered:
    """Hand over one approved item (logged): reading on screen, or the copy's PDF."""
    try:
        med = Medium(medium)
    except ValueError:
        raise ValidationError("Cách giao là màn hình, tệp hoặc bản in", "medium") from None
    req = get_request(store.reader(), request_id)
    if not (actor.desk or (req["created_by"] == actor.username and med is Medium.SCREEN)):
        raise UseForbidden("văn thư, lưu trữ giao tài liệu cho người khai thác")
    if not visible(req, actor):
        raise NotFoundError(f"không có phiếu yêu cầu {request_id}")
    if req["status"] != "approved" or item not in (req["decision"] or {}).get("items", ()):
        raise UseError("tài liệu này chưa được duyệt cho khai thác (no approved request)")
    it = req["items"][item]
    form = Form(it["form"])
    if (form is Form.READ) != (med is Medium.SCREEN):
        raise ValidationError("Đọc thì giao trên màn hình; bản sao thì giao tệp hoặc bản in",
                              "medium")
    pdf = None
    if form is not Form.READ:
        doc = store.get("document", it["document"])
        pdf = (maker or CopyMaker(store)).make(doc.data, it["code"], form, store.clock.now().date())

    def job(txn: Txn) -> dict[str, Any]:
        now = get_request(txn.conn, request_id)
        if now["status"] != "approved":
            raise UseError("phiếu không còn được duyệt")
        record: dict[str, Any] = {"item": item, "form": form.value, "medium": med.value,
                                  "at": iso(txn.clock.now()), "by": actor.username}
        if pdf is not None:
            import hashlib

            record["sha256"] = hashlib.sha256(pdf).hexdigest()
            record["pages"] = _pages(pdf)
        now["deliveries"].append(record)
        return _append(txn, Kind.USE_DELIVER, actor.username, now)

    new = store.writer_or_fail().call(job)
    name = None
    if pdf is not None:
        name = f"ban-sao-{req['number']:03d}-{req['year']}-{item + 1}.pdf"
    return Delivered(new, pdf, name)


def _pages(pdf: bytes) -> int:
    import io

    import pikepdf

    with pikepdf.open(io.BytesIO(pdf)) as p:
        return len(p.pages)


# -- the register of use and the year's statistics ------------------------------------------

REGISTER_COLUMNS = (
    "Số phiếu",
    "Ngày",
    "Họ và tên người khai thác",
    "Cơ quan, tổ chức, địa chỉ",
    "Mục đích khai thác, sử dụng",
    "Tài liệu khai thác (mã lưu trữ, trích yếu)",
    "Hình thức khai thác",
    "Số trang sao",
    "Người duyệt",
    "Ngày giao",
    "Ghi chú",
)


def register_rows(conn: sqlite3.Connection, year: int, actor: Actor) -> list[list[str]]:
    """Sổ đăng ký khai thác, sử dụng tài liệu lưu trữ: one row per decided request."""
    from ..clock import vn_date

    rows = []
    for req in reversed(list_requests(conn, actor, year, limit=1_000_000)):
        if req["status"] == "pending":
            continue
        dec = req["decision"] or {}
        reader = req["reader"]
        docs = "; ".join(f"{i['code']} — {i['title']}" for i in req["items"])
        forms = "; ".join(FORM_LABELS[Form(i["form"])] for i in req["items"])
        pages = sum(int(d.get("pages", 0)) for d in req["deliveries"])
        given = sorted({vn_date(d["at"][:10]) for d in req["deliveries"]})
        note = dec.get("note", "") if req["status"] == "approved" else (
            "Từ chối: " + dec.get("note", ""))
        rows.append([
            f"{req['number']:02d}/{req['year']}", vn_date(req["created_at"][:10]),
            reader.get("name", ""), ", ".join(reader.get(k, "") for k in ("organisation",
                                                                            "address")
                                              if reader.get(k)),
            f"{PURPOSES[req['purpose_code']]}: {req['purpose']}", docs, forms,
            str(pages) if pages else "", dec.get("by", ""), ", ".join(given), note,
        ])
    return rows


def statistics(conn: sqlite3.Connection, year: int, actor: Actor) -> dict[str, Any]:
    """What an agency archive reports for the year: requests, readers, records used, copies
    made, by purpose."""
    reqs = list_requests(conn, actor, year, limit=1_000_000)
    status = Counter(r["status"] for r in reqs)
    used: set[str] = set()
    copies = certified = pages = reads = 0
    purposes: Counter[str] = Counter()
    readers: set[tuple[str, str]] = set()
    for r in reqs:
        purposes[r["purpose_code"]] += 1
        readers.add((r["reader"].get("name", ""), r["reader"].get("identity", "")))
        for d in r["deliveries"]:
            used.add(r["items"][d["item"]]["document"])
            form = Form(d["form"])
            reads += form is Form.READ
            copies += form is Form.COPY
            certified += form is Form.CERTIFIED
            pages += int(d.get("pages", 0))
    return {
        "year": year,
        "requests": len(reqs),
        "approved": status["approved"],
        "refused": status["refused"],
        "pending": status["pending"],
        "readers": len(readers),
        "records_used": len(used),
        "reads": reads,
        "copies": copies,
        "certified_copies": certified,
        "pages_copied": pages,
        "by_purpose": {code: {"label": PURPOSES[code], "requests": purposes[code]}
                       for code in PURPOSES},
    }
