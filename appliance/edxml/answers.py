"""Answers: the status messages our addressees send back about the packages we delivered.

An addressee's e-office system answers each of our edXML packages (QCVN 102 ``Status``, the
codes of ``status.CODES``): 01 đã đến, 03 đã tiếp nhận (vào sổ), 02 từ chối with a reason.
``take_status`` reads one such message (hardened, as packages are), checks its XML-DSig as
a package's envelope is checked (``verify.verify_envelope``: intact, over the whole message,
a chain to the trust store, unrevoked), matches it to a delivery and logs
``edxml.status_received`` with what became of it (``outcome``):

- ``applied``: signed, valid and trusted, by the addressee of an electronic delivery of one
  of our issued documents (``ResponseFor/DocumentId`` as our export writes it,
  ``ORGAN,YYYY/MM/DD,NUMBER/NOTATION``, or ``ResponseFor/Code`` + ``PromulgationDate``; its
  ``From/OrganId`` the delivery's): the delivery moves (01 → received, 03-06 → accepted,
  02 → returned, the reason kept) in the same transaction (``document.delivery``);
- ``unverified`` / ``invalid``: unsigned, or a chain the trust store does not know, or a
  signature that does not hold (or a certificate naming another agency): kept and shown
  beside the delivery, never applied;
- ``unknown``: no delivery of ours matches: kept and shown in the electronic inbox;
- ``stale``: the delivery is already further on (an 01 arriving after the 03), or the code
  is one that moves no delivery (13 thu hồi …): kept, shown, the delivery left as it is.

The same message twice is one entry (its id comes from the message's SHA-256). A message
that cannot be read at all (no ``Status``, no sender, no code) is refused by the exchange
like a malformed package, set aside with its reason, unanswered.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import writes
from ..errors import ValidationError
from ..identifiers import validate_organ_id
from ..kinds import Kind
from ..writer import Txn
from . import inbox
from .errors import PackageRefused
from .model import Organ, StatusMessage
from .parse import DEFAULT_MAX_BYTES, child, envelope_parts, namespace_of, parse_xml, text
from .status import CODES, VN
from .verify import LABELS, SignatureCheck, Verdict, verify_envelope

if TYPE_CHECKING:
    from ..store import Store

_NAMESPACE = uuid.UUID("0b7d1c52-8f0e-4d9b-a5a8-6564786d6c03")  # answer ids, per message
# What each code makes of a delivery (the others move none).
DELIVERY_STATUS = {"01": "received", "02": "returned", "03": "accepted", "04": "accepted",
                   "05": "accepted", "06": "accepted"}
OUTCOMES = {
    "applied": "Đã cập nhật trạng thái gửi",
    "unverified": "Chưa áp dụng: không kiểm tra được chữ ký",
    "invalid": "Không áp dụng: chữ ký không hợp lệ",
    "unknown": "Không khớp văn bản đi nào đã gửi",
    "stale": "Đã ghi nhận, không đổi trạng thái gửi",
}


def answer_id(raw: bytes) -> str:
    return str(uuid.uuid5(_NAMESPACE, hashlib.sha256(raw).hexdigest()))


def _status_el(raw: bytes, max_bytes: int) -> tuple[Any, Any]:
    root, _ = parse_xml(raw, max_bytes)
    namespace_of(root)
    _, header, _ = envelope_parts(root)
    return root, child(header, "Status")


def is_status(raw: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> bool:
    """Is ``raw`` a status message (a ``Status`` where a package has its ``MessageHeader``)?
    False also when it cannot be read: the package intake then refuses it with its reason."""
    if raw.find(b"StatusCode", 0, 1 << 20) < 0:
        return False  # a document package (its header comes first): not parsed twice
    try:
        _, st = _status_el(raw, max_bytes)
    except PackageRefused:
        return False
    return st is not None


def read_status(raw: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[StatusMessage, Any]:
    """The status message and its parsed root (for the signature check); PackageRefused with
    the reason when it cannot be used at all."""
    root, st = _status_el(raw, max_bytes)
    if st is None:
        raise PackageRefused("Gói tin không phải thông điệp trạng thái (thiếu Status).")
    organ_id = text(st, "From", "OrganId")
    try:
        validate_organ_id(organ_id, "From/OrganId", strict=False)
    except ValidationError as exc:
        raise PackageRefused(
            f"Thông điệp trạng thái không cho biết cơ quan gửi (From/OrganId): {exc}") from exc
    code = text(st, "StatusCode")
    if not code:
        raise PackageRefused("Thông điệp trạng thái thiếu mã trạng thái (StatusCode).")
    msg = StatusMessage(
        namespace=namespace_of(root), sender=Organ(organ_id, text(st, "From", "OrganName")),
        response_for_organ=text(st, "ResponseFor", "OrganId"),
        response_for_code=text(st, "ResponseFor", "Code"),
        response_for_date=text(st, "ResponseFor", "PromulgationDate"),
        response_for_document=text(st, "ResponseFor", "DocumentId"),
        status_code=code, description=text(st, "Description")[:2000],
        timestamp=text(st, "Timestamp"), staff=text(st, "StaffInfo", "Staff"),
        department=text(st, "StaffInfo", "Department"))
    return msg, root


def reported_at(stamp: str) -> str:
    """The addressee's ``Timestamp`` (YYYY/MM/DD hh:mm:ss, Vietnam time) as ISO, or ''."""
    for fmt in ("%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y/%m/%d"):
        try:
            return dt.datetime.strptime(stamp.strip(), fmt).replace(tzinfo=VN).isoformat()
        except ValueError:
            continue
    return ""


def reference_label(reference: str) -> str:
    """``ORGAN,YYYY/MM/DD,NUMBER/NOTATION`` as people read it: 'số 99/UBND-VP ngày
    05/01/2025 của 000.21.08.H49' (anything else as written)."""
    parts = [p.strip() for p in reference.split(",")]
    if len(parts) != 3:
        return reference
    try:
        day = dt.datetime.strptime(parts[1], "%Y/%m/%d").strftime("%d/%m/%Y")
    except ValueError:
        return reference
    return f"số {parts[2]} ngày {day} của {parts[0]}"


def _reference(msg: StatusMessage) -> tuple[str, str, str, str] | None:
    """(our organ id, issued date ISO, number, notation) the message answers, if readable."""
    organ, date, code = msg.response_for_organ, msg.response_for_date, msg.response_for_code
    parts = msg.response_for_document.split(",")
    if len(parts) == 3:
        organ, date, code = (organ or parts[0]).strip(), parts[1].strip(), parts[2].strip()
    number, _, notation = code.partition("/")
    if not (organ and number):
        return None
    return organ, date.replace("/", "-"), number.strip(), notation.strip()


def match(conn: sqlite3.Connection, ours: tuple[str, ...],
          msg: StatusMessage) -> tuple[str, dict[str, Any]] | None:
    """(document id, delivery) of ours that ``msg`` answers: an electronic delivery of an
    issued văn bản đi to the message's sender; None when there is none."""
    ref = _reference(msg)
    if ref is None or ref[0] not in ours:
        return None
    _, date, number, notation = ref
    rows = conn.execute(
        'SELECT id, "Deliveries", "IssuedDate" FROM documents WHERE "Direction" = \'outgoing\' '
        'AND "Status" = \'issued\' AND "CodeNumber" = ? AND "CodeNotation" = ? '
        'AND "Deliveries" IS NOT NULL', (number, notation)).fetchall()
    for doc_id, raw, issued in rows:
        if date and issued and str(issued) != date:
            continue
        for d in json.loads(raw):
            if d.get("channel") == "electronic" and \
                    d.get("to", {}).get("OrganId") == msg.sender.organ_id:
                return str(doc_id), d
    return None


def _verdict(check: SignatureCheck | None, sender: str) -> tuple[Verdict, list[str]]:
    if check is None:
        return Verdict.UNVERIFIED, ["Thông điệp trạng thái không có chữ ký số (XML-DSig)."]
    reasons = list(check.reasons)
    if check.status is Verdict.VALID and check.organ_id and check.organ_id != sender:
        return Verdict.INVALID, [*reasons, f"Chứng thư số cấp cho cơ quan {check.organ_id}, "
                                           f"không phải cơ quan báo trạng thái {sender}."]
    return check.status, reasons


def _outcome(verdict: Verdict, found: tuple[str, dict[str, Any]] | None,
             code: str) -> tuple[str, str | None]:
    """What becomes of the delivery: (outcome, the delivery's new status or None)."""
    from ..outgoing.deliveries import allowed

    if found is None:
        return "unknown", None
    if verdict is not Verdict.VALID:
        return verdict.value, None
    target = DELIVERY_STATUS.get(code)
    if target is None or not allowed(str(found[1].get("status")), target, answered=True):
        return "stale", None
    return "applied", target


def _note(msg: StatusMessage) -> str:
    label = CODES.get(msg.status_code, msg.status_code)
    if msg.status_code == "02":
        return f"Bị trả lại: {msg.description or label}"[:500]
    return f"{label} (mã {msg.status_code}) — {msg.sender.organ_name or msg.sender.organ_id}"[:500]


@dataclass(frozen=True)
class Answer:
    """One status message received (a row of ``edxml_answers``)."""

    id: str
    received_at: str
    source: str | None
    package_sha256: str
    organ_id: str
    organ_name: str
    code: str
    description: str
    reported_at: str
    reference: str  # ResponseFor/DocumentId (or Code) as written
    verdict: str
    reasons: list[str]
    document_id: str | None
    delivery: int | None
    outcome: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "received_at": self.received_at, "source": self.source,
            "package_sha256": self.package_sha256, "organ_id": self.organ_id,
            "organ_name": self.organ_name, "code": self.code,
            "code_label": CODES.get(self.code, self.code), "description": self.description,
            "reported_at": self.reported_at or None, "reference": self.reference,
            "reference_label": reference_label(self.reference),
            "verdict": self.verdict, "verdict_label": LABELS[Verdict(self.verdict)],
            "reasons": self.reasons, "document_id": self.document_id,
            "delivery": self.delivery, "outcome": self.outcome,
            "outcome_label": OUTCOMES[self.outcome],
        }


def take_status(store: Store, raw: bytes, *, source: str = "", online: bool = True,
                max_bytes: int = DEFAULT_MAX_BYTES, actor: str = "edxml") -> Answer:
    """Check a status message, log it and apply it where it may be (module docstring);
    raises PackageRefused when it cannot be read."""
    from ..outgoing.deliveries import move
    from .intake import keep_revocation
    from .trust import TrustStore

    aid = answer_id(raw)
    known = get_answer(store.reader(), aid)
    if known is not None:
        return known
    msg, root = read_status(raw, max_bytes)
    trust = TrustStore(store.data_dir)
    check, used = verify_envelope(raw, root, trust, store.clock.now(), online)
    verdict, reasons = _verdict(check, msg.sender.organ_id)
    stored = store.content.put_bytes(raw)
    refs = [bytes.fromhex(stored.sha256), *keep_revocation(store, trust, used)]
    when = reported_at(msg.timestamp)

    def job(txn: Txn) -> None:
        inbox.ensure_schema(txn.conn)
        if txn.conn.execute("SELECT 1 FROM edxml_answers WHERE id = ?", (aid,)).fetchone():
            return
        found = match(txn.conn, store.config.all_ids, msg)
        outcome, target = _outcome(verdict, found, msg.status_code)
        if found is not None and target is not None:
            move(txn, found[0], int(found[1]["n"]), target, actor, _note(msg),
                 extra={"answer": aid, "code": msg.status_code, "reported_at": when},
                 answered=True)
        data = {
            "source": source, "package": {"sha256": stored.sha256, "size": stored.size},
            "status": {"From": msg.sender.to_json(), "ResponseFor": {
                "OrganId": msg.response_for_organ, "Code": msg.response_for_code,
                "PromulgationDate": msg.response_for_date,
                "DocumentId": msg.response_for_document},
                "StatusCode": msg.status_code, "Description": msg.description,
                "Timestamp": msg.timestamp, "Staff": msg.staff, "Department": msg.department},
            "reported_at": when, "verdict": verdict.value, "reasons": reasons,
            "signature": check.to_json() if check is not None else None,
            "document_id": found[0] if found else None,
            "delivery": int(found[1]["n"]) if found else None, "outcome": outcome,
        }
        e = writes.append_event(txn, Kind.EDXML_STATUS_RECEIVED, actor, data, "edxml", aid,
                                refs=list(dict.fromkeys(refs)))
        inbox.apply(txn.conn, e)

    store.writer_or_fail().call(job)
    answer = get_answer(store.reader(), aid)
    assert answer is not None
    return answer


# -- reading -------------------------------------------------------------------------------

_COLS = ("id, received_at, source, package_sha256, organ_id, organ_name, code, description, "
         "reported_at, reference, verdict, reasons, document_id, delivery, outcome")


def _answer(row: Any) -> Answer:
    r = list(tuple(row))
    r[11] = json.loads(r[11] or "[]")
    return Answer(*r)


def _ready(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' "
                        "AND name = 'edxml_answers'").fetchone() is not None


def get_answer(conn: sqlite3.Connection, aid: str) -> Answer | None:
    if not _ready(conn):
        return None
    row = conn.execute(f"SELECT {_COLS} FROM edxml_answers WHERE id = ?", (aid,)).fetchone()
    return _answer(row) if row else None


def list_answers(conn: sqlite3.Connection, unmatched_only: bool = False,
                 limit: int = 100) -> list[Answer]:
    """Newest first; ``unmatched_only``: those about no delivery of ours."""
    if not _ready(conn):
        return []
    where = "WHERE document_id IS NULL " if unmatched_only else ""
    rows = conn.execute(f"SELECT {_COLS} FROM edxml_answers {where}"
                        "ORDER BY log_index DESC LIMIT ?", (limit,)).fetchall()
    return [_answer(r) for r in rows]


def answers_for(conn: sqlite3.Connection, doc_id: str) -> list[Answer]:
    """The status messages about ``doc_id``'s deliveries, oldest first."""
    if not _ready(conn):
        return []
    rows = conn.execute(f"SELECT {_COLS} FROM edxml_answers WHERE document_id = ? "
                        "ORDER BY log_index", (doc_id,)).fetchall()
    return [_answer(r) for r in rows]
