"""Taking an edXML package in, and what the clerk decides: the library the CLI, the web UI and
the connectors call (each a thin adapter over one of these functions).

``import_package``: parse (hardened), refuse active PDFs (``pdfcheck``, as for every PDF that
enters the box), check every signature (``verify``), store the package, its attachments as
received, the report and the revocation data as content, prepare the acknowledgement (status
01) for the sender, and log ``edxml.received`` + ``edxml.verified`` in one transaction. The
same package twice is one inbox item (its SHA-256 is the key).

``register``: a văn bản đến through the public registration function
(``Store.register_incoming``), every field prefilled from the envelope, the attachments
attached exactly as received (the original bytes, never re-encoded), with the package and
the report; then ``edxml.registered`` and status 03. ``return_package``: status 02 with the
clerk's reason. ``reverify``: the same check again, at the time of the first one, with the
revocation data it kept (offline, years later).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import writes
from ..errors import NotFoundError, UnsafeContentError
from ..kinds import Kind
from ..results import WriteResult
from ..writer import Txn
from . import inbox, status
from .doctypes import map_type
from .dsig import XmlSigningKey
from .errors import DecisionError, PackageRefused
from .model import Package
from .parse import DEFAULT_MAX_BYTES, read_package
from .report import render_html, report_json
from .trust import TrustStore
from .verify import Report, Revocation, Verdict, verify_package

if TYPE_CHECKING:
    from ..store import Store

PACKAGE_NAME = "goi-tin-edxml.xml"
REPORT_JSON = "ket-qua-kiem-tra-chu-ky.json"
REPORT_HTML = "ket-qua-kiem-tra-chu-ky.html"


@dataclass(frozen=True)
class ImportResult:
    item: inbox.InboxItem
    report: dict[str, Any]
    duplicate: bool = False

    def to_json(self) -> dict[str, Any]:
        """What ``luutru edxml import --json`` prints."""
        s = self.item.summary
        return {
            "id": self.item.id,
            "subject": s.get("Subject"),
            "code_number": s.get("CodeNumber"),
            "code_notation": s.get("CodeNotation"),
            "organ_id": s["From"].get("OrganId"),
            "organ_name": s["From"].get("OrganName"),
            "type_name": s.get("TypeName"),
            "verdict": self.report["verdict"],
            "verdict_label": self.report["label"],
            "misaddressed": self.report["misaddressed"],
            "signatures": [
                {"target": x["target"], "kind": x["kind"], "intact": x["intact"],
                 "trusted": x["trusted"], "signer": x["signer"], "organ_id": x["organ_id"],
                 "status": x["status"], "reasons": x["reasons"]}
                for x in self.report["signatures"]
            ],
            "warnings": self.report["warnings"],
            "duplicate": self.duplicate,
        }


def _check_pdfs(package: Package) -> None:
    """Every PDF entering the box passes pdfcheck (no scripts, launch actions, attachments)."""
    import io

    import pikepdf

    from ..pdfcheck import refuse_active

    for a in package.attachments:
        if not (a.data.startswith(b"%PDF") or a.content_type == "application/pdf"):
            continue
        try:
            with pikepdf.open(io.BytesIO(a.data)) as pdf:
                refuse_active(pdf)
        except UnsafeContentError as exc:
            raise PackageRefused(
                f"Tệp '{a.name}' có nội dung chủ động (mã chạy, hành động, tệp nhúng): "
                f"{', '.join(exc.found)}. Không tiếp nhận."
            ) from exc
        except pikepdf.PasswordError as exc:
            raise PackageRefused(f"Tệp '{a.name}' được mã hóa bằng mật khẩu.") from exc
        except pikepdf.PdfError as exc:
            raise PackageRefused(f"Tệp '{a.name}' không phải PDF đọc được ({exc}).") from exc


def _store_report(store: Store, report: Report, summary: dict[str, Any]) -> dict[str, str]:
    body = report.to_json()
    return {
        "json": store.content.put_bytes(report_json(body)).sha256,
        "html": store.content.put_bytes(render_html(body, summary)).sha256,
    }


def keep_revocation(store: Store, trust: TrustStore, used: Revocation) -> list[bytes]:
    refs = []
    for kind, blobs in (("ocsp", used.ocsps), ("crl", used.crls)):
        for der in blobs:
            trust.keep_revocation(kind, der)
            refs.append(bytes.fromhex(store.content.put_bytes(der).sha256))
    return refs


def _verified_data(report: Report, stored: Mapping[str, str]) -> dict[str, Any]:
    return {
        "verdict": report.verdict.value,
        "misaddressed": report.misaddressed,
        "checked_at": report.checked_at,
        "online": report.online,
        "report": dict(stored),
        "revocation": [dict(r) for r in report.revocation],
        "signatures": [
            {"target": s.target, "kind": s.kind, "status": s.status.value, "intact": s.intact,
             "trusted": s.trusted, "signer": s.signer}
            for s in report.signatures
        ],
    }


def import_package(
    store: Store,
    raw: bytes,
    *,
    source: str = "",
    online: bool = True,
    max_bytes: int = DEFAULT_MAX_BYTES,
    key: XmlSigningKey | None = None,
    actor: str = "edxml",
) -> ImportResult:
    """Verify a package and put it into the electronic inbox (raises PackageRefused)."""
    sha = hashlib.sha256(raw).hexdigest()
    known = inbox.by_package(store.reader(), sha)
    if known is not None:
        return ImportResult(known, load_report(store, known), duplicate=True)
    try:
        package, root = read_package(raw, max_bytes)
        _check_pdfs(package)
    except PackageRefused as exc:
        # Returned to the sender (status 02) when it can be told; the caller sets it aside.
        from .refusal import record_refusal

        record_refusal(store, raw, exc.reason, source=source, max_bytes=max_bytes, key=key,
                       actor=actor)
        raise
    trust = TrustStore(store.data_dir)
    report, used = verify_package(raw, root, package, trust, store.config.all_ids,
                                  store.clock.now(), online=online)
    summary = package.summary()
    stored_package = store.content.put_bytes(raw)
    attachments: list[dict[str, Any]] = []
    for a in package.attachments:
        s = store.content.put_bytes(a.data)
        attachments.append({"name": a.name, "sha256": s.sha256, "size": s.size,
                            "mime": a.content_type, "content_id": a.content_id})
    stored_report = _store_report(store, report, summary)
    revocation_refs = keep_revocation(store, trust, used)
    item_id = writes.new_id()
    ack = status.stored_status(store, item_id, summary, status.RECEIVED, "Đã nhận văn bản",
                               "văn thư", key)

    def job(txn: Txn) -> None:
        inbox.ensure_schema(txn.conn)
        if txn.conn.execute("SELECT 1 FROM edxml_inbox WHERE package_sha256 = ?",
                            (sha,)).fetchone():
            return  # the same package taken in by another path meanwhile
        received = {
            "source": source,
            "package": {"sha256": stored_package.sha256, "size": stored_package.size,
                        "name": PACKAGE_NAME},
            "summary": summary,
            "attachments": attachments,
            "status": ack,
        }
        refs = [bytes.fromhex(stored_package.sha256), bytes.fromhex(ack["sha256"])]
        refs += [bytes.fromhex(a["sha256"]) for a in attachments]
        e = writes.append_event(txn, Kind.EDXML_RECEIVED, actor, received, "edxml", item_id,
                                refs=_unique(refs))
        inbox.apply(txn.conn, e)
        _append_verified(txn, actor, item_id, report, stored_report, revocation_refs)

    store.writer_or_fail().call(job)
    item = inbox.by_package(store.reader(), sha)
    assert item is not None
    return ImportResult(item, report.to_json(), duplicate=item.id != item_id)


def _append_verified(txn: Txn, actor: str, item_id: str, report: Report,
                     stored: Mapping[str, str], revocation_refs: list[bytes]) -> None:
    refs = [bytes.fromhex(stored["json"]), bytes.fromhex(stored["html"]), *revocation_refs]
    e = writes.append_event(txn, Kind.EDXML_VERIFIED, actor, _verified_data(report, stored),
                            "edxml", item_id, refs=_unique(refs))
    inbox.apply(txn.conn, e)


def _unique(refs: list[bytes]) -> list[bytes]:
    return list(dict.fromkeys(refs))


def load_report(store: Store, item: inbox.InboxItem) -> dict[str, Any]:
    if not item.report_json:
        return {}
    with store.content.open(item.report_json) as fh:
        loaded: dict[str, Any] = json.loads(fh.read())
    return loaded


def _item(store: Store, item_id: str) -> inbox.InboxItem:
    item = inbox.get_item(store.reader(), item_id)
    if item is None:
        raise NotFoundError(f"no electronic inbox item {item_id}")
    return item


def reverify(store: Store, item_id: str, online: bool = False,
             actor: str = "edxml") -> dict[str, Any]:
    """Check the package again at the time of its first check, with the revocation data kept
    then (and whatever the cache holds); logs another ``edxml.verified``."""
    item = _item(store, item_id)
    first = load_report(store, item)
    with store.content.open(item.package_sha256) as fh:
        raw = fh.read()
    package, root = read_package(raw, max(len(raw), DEFAULT_MAX_BYTES))
    ocsps: list[bytes] = []
    crls: list[bytes] = []
    for r in first.get("revocation", []):
        with store.content.open(r["sha256"]) as fh:
            (ocsps if r["kind"] == "ocsp" else crls).append(fh.read())
    trust = TrustStore(store.data_dir)
    cached_ocsps, cached_crls = trust.cached_revocation()
    revocation = Revocation(tuple(dict.fromkeys([*ocsps, *cached_ocsps])),
                            tuple(dict.fromkeys([*crls, *cached_crls])))
    moment = dt.datetime.fromisoformat(first["checked_at"])
    report, used = verify_package(raw, root, package, trust, store.config.all_ids, moment,
                                  online=online, revocation=revocation)
    stored = _store_report(store, report, package.summary())
    refs = keep_revocation(store, trust, used)
    store.writer_or_fail().call(
        lambda txn: _append_verified(txn, actor, item_id, report, stored, refs))
    return report.to_json()


# -- the clerk's decisions ---------------------------------------------------------------------


def document_fields(store: Store, item: inbox.InboxItem) -> dict[str, Any]:
    """The văn bản đến as the envelope describes it (the clerk may change any field)."""
    s = item.summary
    type_name, type_code = map_type(store.codes, s.get("TypeName", ""), s.get("Type", ""),
                                    s.get("TypeDetail", ""))
    raw: dict[str, Any] = {
        "TypeName": type_name,
        "TypeCode": type_code,
        "CodeNumber": s.get("CodeNumber") or None,
        "CodeNotation": s.get("CodeNotation") or None,
        "IssuedDate": s.get("PromulgationDate") or None,
        "OrganName": s["From"].get("OrganName") or s["From"].get("OrganId"),
        "Subject": s.get("Subject"),
        "SignerPosition": s.get("SignerPosition") or None,
        "SignerFullName": s.get("SignerFullName") or None,
        "DueDate": s.get("DueDate") or None,
        "ToPlaces": "; ".join(s.get("ToPlaces") or []) or None,
        "To": [{"OrganId": t["OrganId"], "OrganName": t.get("OrganName") or t["OrganId"]}
               for t in s.get("To", [])],
        "ConfidenceLevel": "01",  # gốc điện tử
        "Description": (f"Nhận qua trục liên thông văn bản (edXML) ngày "
                        f"{item.received_at[8:10]}/{item.received_at[5:7]}/"
                        f"{item.received_at[:4]}" + (f"; mã văn bản {s['DocumentId']}"
                                                      if s.get("DocumentId") else ""))[:500],
    }
    if str(s.get("PageAmount", "")).isdigit():
        raw["PageAmount"] = int(s["PageAmount"])
    if s.get("Priority") in {i.code for i in store.codes["priority"].items}:
        raw["Priority"] = s["Priority"]
    traces = [f"{t['OrganId']} {t['Timestamp']}" for t in s.get("TraceHeaderList", [])]
    if traces:
        raw["TraceHeaderList"] = "\n".join(traces)
    return {k: v for k, v in raw.items() if v is not None}


def _content_list(item: inbox.InboxItem) -> list[dict[str, Any]]:
    """The attachments as received, then the package and the report."""
    out = [{"sha256": a["sha256"], "size": a["size"], "name": a["name"], "mime": a["mime"]}
           for a in item.attachments]
    out.append({"sha256": item.package_sha256, "size": item.package_size,
                "name": PACKAGE_NAME, "mime": "application/xml"})
    return out


def _report_content(store: Store, item: inbox.InboxItem) -> list[dict[str, Any]]:
    out = []
    for sha, name, mime in ((item.report_json, REPORT_JSON, "application/json"),
                            (item.report_html, REPORT_HTML, "text/html")):
        if sha:
            out.append({"sha256": sha, "size": store.content.path(sha).stat().st_size,
                        "name": name, "mime": mime})
    return out


def _decidable(item: inbox.InboxItem) -> None:
    if item.status != "received":
        done = "đã được vào sổ" if item.status == "registered" else "đã được trả lại"
        raise DecisionError(f"Văn bản này {done}.")


def _already_registered(store: Store, item: inbox.InboxItem) -> str | None:
    """A document that already holds this package (a registration whose inbox entry was
    not written before a crash): registering again would give a second số đến."""
    row = store.reader().execute(
        "SELECT d.id FROM documents d, json_each(d.\"Content\") c "
        "WHERE json_extract(c.value, '$.sha256') = ? LIMIT 1", (item.package_sha256,),
    ).fetchone()
    return None if row is None else str(row[0])


def register(
    store: Store,
    item_id: str,
    actor: str,
    changes: Mapping[str, Any] | None = None,
    *,
    accept_unverified: bool = False,
    key: XmlSigningKey | None = None,
) -> WriteResult:
    """Register an inbox item as a văn bản đến; the sender is told (status 03)."""
    item = _item(store, item_id)
    _decidable(item)
    if item.verdict == Verdict.INVALID:
        raise DecisionError("Chữ ký không hợp lệ: không tiếp nhận văn bản này, chỉ trả lại.")
    if item.misaddressed:
        raise DecisionError("Văn bản gửi nhầm nơi nhận: trả lại cho nơi gửi.")
    if item.verdict != Verdict.VALID and not accept_unverified:
        raise DecisionError(
            "Chưa kiểm tra được chữ ký số: xác nhận tiếp nhận khi đã xác minh bằng cách khác."
        )
    existing = _already_registered(store, item)
    if existing is not None:
        result = WriteResult(store.get("document", existing))
    else:
        raw = document_fields(store, item)
        raw.update(dict(changes or {}))
        raw["Content"] = _content_list(item) + _report_content(store, item)
        result = store.register_incoming(raw, actor)
    ack = status.stored_status(store, item_id, item.summary, status.ACCEPTED,
                               "Đã tiếp nhận, vào sổ văn bản đến", actor, key)

    def job(txn: Txn) -> None:
        data = {"document_id": result.record.id, "status": ack}
        e = writes.append_event(txn, Kind.EDXML_REGISTERED, actor, data, "edxml", item_id,
                                refs=[bytes.fromhex(ack["sha256"])])
        inbox.apply(txn.conn, e)

    store.writer_or_fail().call(job)
    return result


def return_package(store: Store, item_id: str, reason: str, actor: str,
                   key: XmlSigningKey | None = None) -> inbox.InboxItem:
    """Return an inbox item to its sender with the clerk's reason (status 02)."""
    reason = " ".join(reason.split())
    if not reason:
        raise DecisionError("Cần ghi lý do trả lại.")
    if len(reason) > 500:
        raise DecisionError("Lý do trả lại dài quá 500 ký tự.")
    item = _item(store, item_id)
    _decidable(item)
    ack = status.stored_status(store, item_id, item.summary, status.RETURNED, reason, actor, key)

    def job(txn: Txn) -> None:
        data = {"reason": reason, "status": ack}
        e = writes.append_event(txn, Kind.EDXML_RETURNED, actor, data, "edxml", item_id,
                                refs=[bytes.fromhex(ack["sha256"])])
        inbox.apply(txn.conn, e)

    store.writer_or_fail().call(job)
    return _item(store, item_id)


def mark_sent(store: Store, item_id: str, code: str, via: str, actor: str = "edxml") -> None:
    """Record that the status message ``code`` of an inbox item has been handed over."""

    def job(txn: Txn) -> None:
        row = txn.conn.execute("SELECT sha256, sent_at FROM edxml_outbox "
                               "WHERE item_id = ? AND code = ?", (item_id, code)).fetchone()
        if row is None or row[1] is not None:
            return
        e = writes.append_event(txn, Kind.EDXML_STATUS_SENT, actor,
                                {"sha256": row[0], "code": code, "via": via}, "edxml", item_id,
                                refs=[bytes.fromhex(row[0])])
        inbox.apply(txn.conn, e)

    store.writer_or_fail().call(job)
