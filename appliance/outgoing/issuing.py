"""Issue (ban hành): the number and date after the signer's signature, then the agency's over
the whole file, in one writer transaction (``document.issue``).

Inside the transaction the next number of the series is taken, written with today's date
into the prepared fields, the agency key signs the whole file (its seal image over the left
third of the signer's), and separate attachments are signed by the agency at the top right
of their first page. Any failure (the agency key absent, the token's PIN wrong, a damaged
file) raises inside the transaction, so the counter is never advanced: numbers stay without
gaps or duplicates. Two issues at the same moment are serialised by the one writer.

A paper document (the office marked it so) is numbered without any signature: the scan of
the signed paper is attached afterwards and signed as a digitised copy, as before.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from .. import clock as clockmod
from .. import numbering, writes
from ..identifiers import format_number
from ..kinds import Kind
from ..pdfsign import sign_pdf
from ..results import Record, WriteResult
from ..writer import Txn
from . import deliveries as deliv
from . import pdfform, signers
from .drafting import _draft, _step
from .errors import SigningError, WorkflowError
from .placement import Placement, vn_date_parts

if TYPE_CHECKING:
    from ..store import Store

KeyOpener = Callable[[], AbstractContextManager[Any]]


def _why_not(d: dict[str, Any]) -> WorkflowError | None:
    """Why a draft cannot be issued yet (None: it can)."""
    if d.get("paper"):
        return None
    state = d.get("state")
    if state in ("draft", "returned", "submitted"):
        return WorkflowError("Dự thảo chưa được duyệt: không ban hành được văn bản chưa duyệt.",
                             "The draft is not approved: an unapproved document cannot be "
                             "issued.")
    if state == "approved":
        return WorkflowError("Dự thảo đã duyệt nhưng người có thẩm quyền chưa ký: không ban "
                             "hành được văn bản chưa ký.",
                             "The draft is approved but not signed: an unsigned document "
                             "cannot be issued.")
    return None


def check_issuable(rec: Record) -> None:
    d = rec.data.get("Drafting")
    if not d:
        raise WorkflowError("Văn bản này chưa qua dự thảo, duyệt và ký: không ban hành được.",
                            "This document was not drafted, approved and signed: it cannot "
                            "be issued.")
    why = _why_not(d)
    if why is not None:
        raise why


def issue(store: Store, doc_id: str, actor: str, *, agency_key: KeyOpener | None = None,
          agency_pin: str | None = None, file_code: str | None = None,
          internal: tuple[str, ...] = ()) -> WriteResult:
    """Number, date and seal a signed draft (or number a paper one); see the module."""
    rec = store.get("document", doc_id)
    if rec.data.get("Direction") != "outgoing" or rec.data.get("Status") != "draft":
        raise WorkflowError("Văn bản này đã ban hành hoặc không phải văn bản đi.",
                            "This document is already issued or is not a văn bản đi.")
    check_issuable(rec)
    d = rec.data["Drafting"]
    paper = bool(d.get("paper"))
    signed = seal = None
    placement = None
    if not paper:
        with store.content.open(d["signature"]["sha256"]) as fh:
            signed = fh.read()
        placement = Placement.from_json(d["versions"][-1]["placement"])
        seal = signers.seal_image(store.data_dir)
        if seal is None:
            raise WorkflowError("Chưa có hình ảnh con dấu của cơ quan (PNG màu đỏ, nền trong "
                                "suốt): tải lên ở trang Người ký.",
                                "The agency's seal image is missing: upload it on the "
                                "Signers page.")
    attachments = [_read(store, c) for c in list(rec.data.get("Content") or [])[1:]]
    opener = agency_key or (lambda: _open_agency(store, agency_pin))

    def job(txn: Txn) -> WriteResult:
        cur, dd = _draft(txn, doc_id)
        if cur.version != rec.version:
            raise WorkflowError("Dự thảo vừa thay đổi; hãy ban hành lại.",
                                "The draft changed meanwhile; issue it again.")
        now = txn.clock.now()
        data = dict(cur.data)
        if file_code:
            data["FileCode"] = file_code
            data.pop("DocOrdinal", None)
            writes.place_in_file(txn, data)
        series = numbering.series_for("outgoing", data, store.codes,
                                      store.config.numbering.own_series_types)
        n = numbering.next_number(txn.conn, data["FondCode"], series, now.year)
        number = format_number(n)
        data.update(Status="issued", Series=series, Year=now.year, CodeNumber=number,
                    IssuedDate=now.date().isoformat())
        if not paper:
            assert signed is not None and placement is not None
            data["Content"] = _sealed(store, data, signed, placement, seal, attachments,
                                      opener, now)
        dd["steps"] = [*dd.get("steps", []), _step(txn, actor, "issue")]
        data["Drafting"] = dd
        data["Deliveries"] = deliv.plan(data, internal, clockmod.iso(now))
        warnings = writes.duplicate_warnings(txn.conn, data, cur.id)
        out = writes.put(txn, "document", Kind.DOCUMENT_ISSUE, actor, data, cur.id, cur.version)
        _relation_effect(txn, data, actor)
        return WriteResult(out, tuple(warnings))

    return store.writer_or_fail().call(job)


def _read(store: Store, c: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    if c.get("mime") != "application/pdf":
        raise WorkflowError(f"Tệp kèm theo {c.get('name')} không phải PDF: cơ quan chỉ ký số "
                            "được tệp PDF.",
                            f"The attachment {c.get('name')} is not a PDF; only PDFs are signed.")
    with store.content.open(c["sha256"]) as fh:
        return c, fh.read()


def _open_agency(store: Store, pin: str | None) -> AbstractContextManager[Any]:
    from ..keys.agency import open_agency_key

    return open_agency_key(store.data_dir, pin)


def _sealed(store: Store, data: dict[str, Any], signed: bytes, placement: Placement,
            seal: bytes | None, attachments: list[tuple[dict[str, Any], bytes]],
            opener: KeyOpener, now: Any) -> list[dict[str, Any]]:
    """Fill the number and date, sign the whole with the agency key, sign attachments."""
    ref = f"{data['CodeNumber']}/{data['CodeNotation']}"
    values = {"number": str(data["CodeNumber"]),
              **vn_date_parts(now.day, now.month, now.year)}
    filled = pdfform.fill(signed, placement, values)
    try:
        with opener() as key:
            final = pdfform.sign_field(filled, key.pdf_signer(), pdfform.AGENCY_FIELD, seal,
                                       str(data.get("OrganName") or store.config.org_name))
            signed_attachments = [
                (c, sign_pdf(body, key, agency_name=store.config.org_name,
                             doc_ref=f"Số: {ref}", signed_at=now))
                for c, body in attachments]
    except SigningError:
        raise
    except Exception as exc:
        raise SigningError(
            f"Không ký được bằng khóa của cơ quan, văn bản chưa được cấp số ({exc}).",
            f"The agency key could not sign; no number was given ({exc}).") from exc
    stem = f"{data['CodeNumber']}-{str(data['CodeNotation']).replace('/', '-')}"
    main = store.content.put_bytes(final)
    content = [{"sha256": main.sha256, "size": main.size, "name": f"{stem}.pdf",
                "mime": "application/pdf", "from": data["Drafting"]["signature"]["sha256"],
                "rendition": "issued", "tool": "luutru outgoing.issuing"}]
    for i, (c, body) in enumerate(signed_attachments, 1):
        got = store.content.put_bytes(body)
        content.append({"sha256": got.sha256, "size": got.size,
                        "name": f"{stem}-phu-luc-{i}.pdf", "mime": "application/pdf",
                        "from": c["sha256"], "rendition": "signed",
                        "tool": "luutru outgoing.issuing"})
    return content


def _relation_effect(txn: Txn, data: dict[str, Any], actor: str) -> None:
    """Issuing a recall notice recalls the old document (frozen, marked; never altered in
    content). A correction leaves the old one as it is: it is marked by being named here."""
    rel = data.get("Relation") or {}
    if rel.get("type") != "recall":
        return
    from ..archive.holds import recall_in_txn

    ref = f"{data['CodeNumber']}/{data['CodeNotation']} ngày " \
          f"{clockmod.vn_date(str(data['IssuedDate']))}"
    recall_in_txn(txn, str(rel["document"]), str(data.get("Subject") or "Thu hồi"), ref, actor)
