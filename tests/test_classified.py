"""Classified (mật) records never leave the box: every entry kind, whatever names them."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cbor2
import pytest

from appliance import classified, copyuse, postal, writes
from appliance.archive import holds, publication, use
from appliance.archive.backup import backup
from appliance.archive.export import export_file
from appliance.archive.fixity import audit as fixity_audit
from appliance.archive.fixity import heal
from appliance.archive.fonds import export_fonds
from appliance.archive.restore import BackupDirSource, restore_data_dir
from appliance.archive.sip import PackageOptions, build_package
from appliance.classified import ClassifiedSet, carries_classified, named_ids
from appliance.clock import ManualClock
from appliance.kinds import KNOWN, Kind
from appliance.ledger import Entry
from appliance.store import Store
from sync import wire
from sync.agent.outbox import build_batch
from tests.archive.conftest import attach_pdf, pdf_bytes
from tests.conftest import incoming, outgoing
from tests.edxml_field import edxml_everything
from tests.test_rebuild import build_everything

# Kinds the scenario below cannot emit, each with the test that does and why it names no
# record: their data is built from the device, its keys and its software, never from records.
EMITTED_ELSEWHERE = {
    Kind.SYNC_RECEIPT: "tests/sync/test_classified_leak.py: a centre's cosignature (size, root)",
    Kind.DEVICE_HANDOVER: "tests/sync/test_replacement.py: the old and new device keys",
    Kind.LOG_TAIL_RESTORED: "tests/sync/test_tail.py: sizes, roots and anchors, no record",
    Kind.PROVISION_IDENTITY: "tests/provision/test_provision.py: the agency's identity",
    Kind.PROVISION_BOOT_EVIDENCE: "tests/provision/test_attest.py: TPM boot measurements",
    Kind.SYSTEM_UPDATE_PREPARE: "tests/hooks/test_update.py: software versions",
    Kind.SYSTEM_UPDATE_DONE: "tests/hooks/test_update.py: software versions",
    Kind.ARCHIVE_RESTORE: "emitted in the restored folder, checked below on its own log",
}


# -- the rule, on shapes ----------------------------------------------------------------


def _doc_id() -> str:
    return writes.new_id()


def test_an_entry_names_its_target_and_every_id_inside_its_text() -> None:
    """Ids are found in keys, values, lists and inside sentences, without knowing the kind."""
    a, b, c = _doc_id(), _doc_id(), _doc_id()
    m = {"kind": "anything.new", "id": a,
         "data": {"items": [{"document_id": b}], "note": f"trùng với văn bản {c} (số 12)"}}
    assert named_ids(m) == {a, b, c}


def test_fields_of_a_classified_record_are_found_at_any_depth() -> None:
    """Mode or Rights 03, or a `classified: true` item, anywhere in an entry's data."""
    assert carries_classified({"Mode": "03"})
    assert carries_classified({"x": [{"y": {"Rights": "03"}}]})
    assert carries_classified({"contents": [{"classified": True}]})
    assert not carries_classified({"contents": [{"classified": False, "Mode": "01"}]})
    assert not carries_classified({"Mode": "03 "}) and not carries_classified(None)


def test_withheld_when_naming_a_classified_id_code_or_content() -> None:
    """By id anywhere, by a mã hồ sơ inside any text (a document code built on it too), by
    a content hash in refs or text; an entry naming only other records travels."""
    secret_doc, public_doc = _doc_id(), _doc_id()
    code = "000.21.08.H49.2025.09.MAT"
    sha = "ab" * 32
    cs = ClassifiedSet.of({secret_doc}, {code}, {sha})
    assert cs.withholds({"id": secret_doc})
    assert cs.withholds({"id": public_doc, "data": {"ReplyTo": secret_doc}})
    assert cs.withholds({"data": {"FileCode": code}})
    assert cs.withholds({"data": {"doc_code": f"{code}.0000012"}})
    assert cs.withholds({"data": {"note": f"xem hồ sơ {code} trang 3"}})
    assert cs.withholds({"refs": [bytes.fromhex(sha)]})
    assert cs.withholds({"data": {"missing": [sha.upper()]}})
    assert not cs.withholds({"id": public_doc, "data": {"FileCode": "000.21.08.H49.2025.01.VP"}})
    assert not ClassifiedSet().withholds({"id": secret_doc, "data": {"Subject": "x"}})


# -- every kind the code emits, with classified records mixed in --------------------------


def _secret_scenario(store: Store, clock: ManualClock, work: Path) -> dict[str, Any]:
    """Classified records in every position an entry can name them from."""
    # A mật hồ sơ (Rights 03) with its own documents, one scanned, then closed.
    mat = store.open_file({"FileCatalog": 2025, "FileNotation": "09.MAT", "Rights": "03",
                           "Title": "Hồ sơ bảo vệ bí mật nhà nước năm 2025",
                           "Description": "Tài liệu về phương án phòng thủ dân sự",
                           "Maintenance": "01"})
    mcode = mat.data["FileCode"]
    in_mat = store.register_incoming(incoming(
        FileCode=mcode, CodeNumber="31",
        Subject="V/v phương án di dời kho vũ khí tự vệ xã")).record
    in_mat = attach_pdf(store, in_mat, "Phương án di dời kho vũ khí")
    # An ordinary hồ sơ holding a mật document (with content and a draft mật one).
    plain = store.open_file({"FileCatalog": 2025, "FileNotation": "30.VP",
                             "Title": "Hồ sơ hành chính chung 2025", "Maintenance": "01"})
    pcode = plain.data["FileCode"]
    public = attach_pdf(store, store.register_incoming(incoming(
        FileCode=pcode, CodeNumber="700", Subject="V/v lịch tiếp công dân tháng 10")).record,
        "Lịch tiếp công dân")
    mat_doc = store.register_incoming(incoming(
        FileCode=pcode, CodeNumber="701", Mode="03",
        Subject="V/v danh sách cán bộ được tiếp cận bí mật nhà nước")).record
    mat_doc = attach_pdf(store, mat_doc, "Danh sách cán bộ tiếp cận bí mật")
    draft = store.draft_outgoing(outgoing(
        FileCode=pcode, Mode="03", Subject="Dự thảo kế hoạch bảo vệ bí mật năm 2026")).record
    store.update_document(mat_doc.id, {"Keyword": "bí mật; tiếp cận"})
    # A format migration of a mật document's content (document.migrate).
    from appliance import renditions
    from tests.test_rebuild import png_bytes

    photo = store.content.put_bytes(png_bytes())
    store.attach_content(mat_doc.id, [{"sha256": photo.sha256, "size": photo.size,
                                       "name": "so-do.png", "mime": "image/png"}])
    renditions.migrate(store, mat_doc.id, photo.sha256, renditions.image_to_pdf, "lưu trữ")
    # A mật văn bản đi issued, sent by post (its addressees name it), its kept copy lent to a
    # named reader and returned: every entry names the document.
    sent = store.issue_outgoing(store.draft_outgoing(outgoing(
        Mode="03", Subject="Kế hoạch bảo vệ bí mật nhà nước năm 2026")).record.id).record
    postal.send(store, sent.id, {"sent_on": sent.data["IssuedDate"], "note": "Gửi hỏa tốc mật",
                                 "addressees": ["Ban Chỉ huy Quân sự xã (bí mật)"]})
    lent = copyuse.lend(store, sent.id, {"used_on": sent.data["IssuedDate"],
                                         "user_name": "Đặng Văn Kín", "approved_by": "Chủ tịch",
                                         "note": "Đọc tại chỗ, không sao chụp"})
    copyuse.give_back(store, sent.id, lent.id, {"returned_on": sent.data["IssuedDate"],
                                                "note": "Trả đủ 3 tờ mật"})
    # A public document filed into the mật hồ sơ as well (a membership), a second one filed
    # and taken out again (file.remove_document names the mật hồ sơ).
    store.add_to_file(public.id, mcode)
    other = store.register_incoming(incoming(CodeNumber="702", Subject="V/v nhầm hồ sơ")).record
    store.add_to_file(other.id, mcode)
    store.remove_from_file(other.id, mcode, "Đưa nhầm vào hồ sơ mật")
    from appliance.capture import filing

    filing.add_text(store, mat_doc.id, mat_doc.data["Content"][0]["sha256"],
                    "Danh sách gồm ông Nguyễn Văn Mật, bà Lê Thị Kín", "ocr")
    # A signature upgraded at the centre, recorded as a new content version (document.ltv).
    from appliance.signature_upgrade import record_upgrade

    for doc in (mat_doc, public):
        up = store.content.put_bytes(pdf_bytes(f"Bản nâng cấp {doc.id}", 1))
        record_upgrade(store, doc.id, doc.data["Content"][0]["sha256"],
                       {"sha256": up.sha256, "size": up.size}, "B-LTA")
    # An electronic document registered as mật: its package, attachments, report and status
    # messages are its content, so every edxml.* entry about it is withheld.
    edxml_everything(store, secret_mode="03")
    store.close_file(pcode)
    store.close_file(mcode)
    # Reads: a view, a print, a download, a bulk read naming a mật document among others.
    for action in ("view", "print", "download"):
        store.audit(action, "vanthu", "document", mat_doc.id, {"via": "web"})
    store.audit("view", "vanthu", "file", mat.id, {"via": "web"})
    store.audit("list", "vanthu", None, None, {"what": "search", "ids": [public.id, mat_doc.id]})
    # Archive: freeze a mật document, package and export the ordinary hồ sơ (mật left out),
    # a fixity audit that finds a mật content file damaged, then heals it from a backup.
    holds.freeze(store, "document", mat_doc.id, "Thanh tra bảo mật", "QĐ 8/QĐ-TTr")
    holds.unfreeze(store, "document", mat_doc.id, "Xong")
    build_package(store, pcode, work / "sip.zip", PackageOptions())
    export_file(store, pcode, work / "export")
    backup(store, work / "usb-mat", label="USB-02")
    sha = mat_doc.data["Content"][0]["sha256"]
    victim = store.content.path(sha)
    victim.chmod(0o644)
    victim.write_bytes(b"damaged")
    res = fixity_audit(store, [work / "usb-mat"])
    assert not res.ok
    heal(store, [work / "usb-mat"], actor="lưu trữ")
    export_fonds(store, store.config.fond_code, work / "fonds")
    # Use of the archive: a cleared reader reads the mật document on the spot; the ordinary
    # hồ sơ (with its mật member) is opened for the province's catalogue, then withdrawn.
    leader = use.Actor("lanhdao", cleared=True, approver=True, desk=True)
    req = use.create_request(store, leader, {
        "purpose": "Kiểm tra công tác bảo mật", "purpose_code": "01",
        "reader": {"kind": "outside", "name": "Thanh tra tỉnh", "clearance_ref": "GGT 4/TTr"},
        "items": [{"document": mat_doc.id, "form": "read"}, {"document": public.id,
                                                             "form": "read"}]})
    use.decide(store, leader, req["id"], True, "Đọc tại chỗ, không ghi chép")
    use.deliver(store, leader, req["id"], 0, "screen")
    publication.publish(store, pcode, "QĐ 9/QĐ-UBND")
    publication.unpublish(store, pcode, "Rà soát")
    store.wait_sealed()
    return {"files": [mat.id], "docs": [in_mat.id, mat_doc.id, draft.id, sent.id],
            "draft": draft.id}


def _outgoing_workflow(store: Store) -> None:
    """A mật văn bản đi through its whole workflow (issue 19): drafted from the template,
    submitted, returned, revised, approved, signed, issued, a delivery sent. Keys are software
    ones here (tests/test_outgoing.py signs in swtpm and SoftHSM2)."""
    from contextlib import contextmanager

    from appliance.accounts import Accounts, HashParams, ensure_schema
    from appliance.outgoing import deliveries, drafting, issuing, signers, signing
    from tests import outgoing_kit as kit
    from tests.pki import SoftwareAgencyKey, pem

    ensure_schema(store)
    acc = Accounts(store, b"s" * 32, HashParams(opslimit=1, memlimit=8192))
    acc.add_user("vanthu", "clerk", "mật khẩu đủ dài 2025!", "admin")
    acc.add_user("lanhdao", "leader", "mật khẩu đủ dài 2025!", "admin")
    person, agency = SoftwareAgencyKey.make(kit.SIGNER_NAME), SoftwareAgencyKey.make()
    signers.configure_external(store.data_dir, "lanhdao")
    signers.import_cert(store.data_dir, "lanhdao", pem(person.cert) + pem(person.ca.cert))
    signers.set_seal(store.data_dir, kit.seal_png())

    class Key:
        def __init__(self, k: SoftwareAgencyKey) -> None:
            self.k, self.certificate = k, k.cert

        def pdf_signer(self) -> Any:
            return self.k.pdf_signer()

    def opener(k: SoftwareAgencyKey) -> Any:
        @contextmanager
        def open_() -> Iterator[Key]:
            yield Key(k)

        return open_

    meta = kit.meta(Mode="03", Subject="Quyết định về phương án bảo vệ kho vũ khí tự vệ",
                    To=[{"OrganName": "Ban chỉ huy quân sự huyện"}])
    fields = {"body": "Điều 1. Phê duyệt phương án bảo vệ kho vũ khí tự vệ của xã."}
    doc = drafting.create(store, meta, drafting.from_template(store, fields, meta),
                          "vanthu").record.id
    drafting.submit(store, doc, "lanhdao", "vanthu")
    drafting.return_draft(store, doc, "lanhdao", "Bổ sung căn cứ")
    fields["body"] = "Căn cứ Luật Dân quân tự vệ;\n\n" + fields["body"]
    drafting.new_version(store, doc, drafting.from_template(store, fields, meta), "vanthu",
                         "Đã bổ sung")
    drafting.submit(store, doc, "lanhdao", "vanthu")
    drafting.approve(store, doc, "lanhdao")
    signing.sign_on_box(store, doc, "lanhdao", "", open_key=opener(person))
    issuing.issue(store, doc, "vanthu", agency_key=opener(agency))
    deliveries.set_status(store, doc, 1, "sent", "vanthu", None, None, None)


def _users(store: Store) -> None:
    """Every user.* kind (the web UI's accounts write them through the same ledger)."""
    from appliance.accounts import Accounts, HashParams, ensure_schema

    ensure_schema(store)
    acc = Accounts(store, b"s" * 32, HashParams(opslimit=1, memlimit=8192))
    acc.add_user("chuyenvien", "clerk", "mật khẩu đủ dài 2025!", "admin")
    acc.set_role("chuyenvien", "leader", "admin")
    acc.set_disabled("chuyenvien", True, "admin")
    acc.set_disabled("chuyenvien", False, "admin")
    acc.set_password("chuyenvien", "một mật khẩu mới dài hơn!", "admin")
    token_id, _ = acc.create_token("chuyenvien", "máy quét", "admin")
    acc.revoke_token(token_id, None, "admin")


def _sent(store: Store) -> list[bytes | wire.Withheld]:
    """Everything the outbox would send, from the first entry to the last signed one."""
    out: list[bytes | wire.Withheld] = []
    start = 0
    while True:
        o = build_batch(store, store.key, start, "2026-01-01T00:00:00+07:00",  # type: ignore[arg-type]
                        max_entries=500, max_bytes=2**30)
        if o is None:
            return out
        out.extend(o.batch.items)
        start = o.batch.end


def _secrets(store: Store) -> tuple[ClassifiedSet, list[str]]:
    """The classified set, and every text of a classified record that must not travel."""
    conn = store.reader()
    cs = classified.load(conn)
    texts: list[str] = []
    for table, cols in (("files", ("Title", "Description")),
                        ("documents", ("Subject", "Keyword"))):
        for row in conn.execute(f"SELECT id, {', '.join(chr(34) + c + chr(34) for c in cols)} "
                                f"FROM {table}"):
            if row[0] in cs.ids:
                texts += [str(v) for v in row[1:] if v]
    for (doc_id, text) in conn.execute("SELECT document_id, text FROM document_text"):
        if doc_id in cs.ids:
            texts.append(str(text))
    # What the registers beside the documents hold of a classified document.
    for doc_id, *values in conn.execute("SELECT document_id, addressees, note FROM "
                                        "postal_sendings"):
        if doc_id in cs.ids:
            texts += [json.loads(values[0])[0]["OrganName"], *(v for v in values[1:] if v)]
    for doc_id, *values in conn.execute("SELECT document_id, user_name, note, return_note "
                                        "FROM copy_uses"):
        if doc_id in cs.ids:
            texts += [str(v) for v in values if v]
    return cs, texts


def _leaks(sent: list[bytes | wire.Withheld], cs: ClassifiedSet, texts: list[str]) -> list[str]:
    found = []
    needles = [*cs.ids, *cs.file_codes, *cs.content, *texts]
    for item in sent:
        if isinstance(item, wire.Withheld):
            continue
        m = cbor2.loads(item)
        blob = json.dumps(m, ensure_ascii=False, default=lambda b: bytes(b).hex())
        hits = [n for n in needles if n and n in blob]
        hits += [r.hex() for r in m.get("refs", []) if r.hex() in cs.content]
        if hits:
            found.append(f"{m['kind']} #{m['i']}: {hits[:3]}")
    return found


def test_every_kind_with_classified_records_leaks_nothing(
    open_store: Callable[..., Store], clock: ManualClock, tmp_path: Path
) -> None:
    """Walks every entry kind the code emits, with mật documents and hồ sơ in every position
    (own entries, contents lists, memberships, audits, bulk reads, fixity findings, packages,
    exports): no text, id, mã hồ sơ or content hash of a classified record is in any entry
    that would be sent in full; and the kinds list in appliance.kinds is exactly covered."""
    store = open_store()
    build_everything(store, clock, tmp_path / "everything")
    clock.set(clock.now() + dt.timedelta(days=1))
    _secret_scenario(store, clock, tmp_path)
    _users(store)
    _outgoing_workflow(store)
    # The registry's daily work on mật documents: directed to a cleared handler, handled,
    # corrected with a reason, and a mật draft cancelled.
    from appliance import handling

    m2 = store.register_incoming(incoming(CodeNumber="990", Mode="03",
                                          Subject="V/v tuần tra khu vực biên giới ban đêm")).record
    handling.direct(store, m2.id, "Giao chuyên viên xử lý ngay", "chuyenvien", actor="lanhdao")
    handling.report_progress(store, m2.id, "Đã báo cáo tuần tra", "chuyenvien", done=True)
    store.update_document(m2.id, {"Keyword": "tuần tra đêm"}, "vanthu", reason="Bổ sung từ khóa")
    mat_draft = store.draft_outgoing(outgoing(Mode="03", Subject="Dự thảo lệnh tuần tra")).record
    store.cancel_document(mat_draft.id, "Soạn lại", "vanthu")
    store.wait_sealed()
    # The restore's own entry lives in the restored folder (archive.restore): walk it too.
    restored = tmp_path / "restored"
    restore_data_dir(restored, BackupDirSource(tmp_path / "usb-mat"), actor="kỹ thuật")

    kinds = {Entry.decode(raw, strict=False).kind for _, raw in store.entries()}
    with Store.open(restored) as again:
        kinds |= {Entry.decode(raw, strict=False).kind for _, raw in again.entries()}
        again.wait_sealed()
        cs2, texts2 = _secrets(again)
        assert _leaks(_sent(again), cs2, texts2) == []
    missing = KNOWN - kinds - set(EMITTED_ELSEWHERE)
    assert not missing, f"kinds the scenario does not emit: {sorted(missing)}"

    cs, texts = _secrets(store)
    assert len(cs.ids) >= 5 and cs.file_codes and cs.content and len(texts) >= 6
    sent = _sent(store)
    assert _leaks(sent, cs, texts) == []
    withheld = sum(isinstance(i, wire.Withheld) for i in sent)
    assert withheld >= 20  # the scenario really named classified records in many entries
    # Withholding is not over-eager: the public documents' registrations still travel.
    full = [cbor2.loads(i) for i in sent if not isinstance(i, wire.Withheld)]
    assert sum(m["kind"] == "document.register" for m in full) >= 5


def test_closing_an_ordinary_hoso_with_a_classified_member_withholds_its_contents_list(
    store: Store,
) -> None:
    """The mục lục of a closed ordinary hồ sơ lists a mật member: the whole entry is
    withheld, while the hồ sơ's own record (no member data) travels."""
    f = store.open_file({"FileCatalog": 2025, "FileNotation": "40.VP", "Title": "Hồ sơ chung",
                         "Maintenance": "05"})
    store.register_incoming(incoming(FileCode=f.data["FileCode"], CodeNumber="2"))
    store.register_incoming(incoming(FileCode=f.data["FileCode"], CodeNumber="3", Mode="03",
                                     Subject="V/v bảo vệ bí mật khu vực biên giới"))
    store.close_file(f.data["FileCode"])
    store.wait_sealed()
    sent = {cbor2.loads(i)["kind"] if not isinstance(i, wire.Withheld) else None
            for i in _sent(store)}
    assert "file.contents" not in sent and "file.close" in sent
    blob = b"".join(i for i in _sent(store) if isinstance(i, bytes))
    assert "biên giới".encode() not in blob


def test_a_classified_hoso_travels_as_leaf_hashes_only(store: Store) -> None:
    """A hồ sơ with Rights 03: its open and close entries and its documents' entries are
    withheld; their numbers are still logged publicly (numbering.used), so a box rebuilt
    from the centre never gives them again."""
    f = store.open_file({"FileCatalog": 2025, "FileNotation": "41.MAT", "Rights": "03",
                         "Title": "Hồ sơ quốc phòng tuyệt mật", "Maintenance": "01"})
    d = store.register_incoming(incoming(FileCode=f.data["FileCode"], CodeNumber="9",
                                         Subject="V/v diễn tập khu vực phòng thủ")).record
    store.close_file(f.data["FileCode"])
    store.wait_sealed()
    items = _sent(store)
    full = [cbor2.loads(i) for i in items if isinstance(i, bytes)]
    blob = b"".join(i for i in items if isinstance(i, bytes))
    assert "tuyệt mật".encode() not in blob and "diễn tập".encode() not in blob
    assert f.data["FileCode"].encode() not in blob and d.id.encode() not in blob
    used = [m["data"] for m in full if m["kind"] == "numbering.used"]
    assert used == [{"FondCode": d.data["FondCode"], "Series": "den", "Year": 2025,
                     "Number": d.data["ArrivalNumber"]}]


def test_filing_a_numbered_document_into_a_classified_hoso_logs_its_number(
    store: Store,
) -> None:
    """A registered public document filed into a mật hồ sơ (as member) becomes withheld from
    then on; its number is logged publicly once, so it is never handed out again."""
    f = store.open_file({"FileCatalog": 2025, "FileNotation": "42.MAT", "Rights": "03",
                         "Title": "Hồ sơ mật", "Maintenance": "01"})
    d = store.register_incoming(incoming(CodeNumber="17")).record
    store.add_to_file(d.id, f.data["FileCode"])
    store.wait_sealed()
    full = [cbor2.loads(i) for i in _sent(store) if isinstance(i, bytes)]
    used = [m["data"]["Number"] for m in full if m["kind"] == "numbering.used"]
    assert used == [d.data["ArrivalNumber"]]
    assert not any(m.get("id") == d.id and m["kind"] == "file.add_document" for m in full)


def test_kinds_are_named_from_the_declared_list_only(store: Store) -> None:
    """No code writes a kind as a bare string: every kind is a member of appliance.kinds.Kind
    (so the walks above see every kind); the ledger refuses an undeclared kind, writing
    nothing."""
    import re

    from appliance.errors import EncodingError

    root = Path(__file__).resolve().parents[1]
    alternatives = "|".join(re.escape(k) for k in KNOWN)
    bare = re.compile(f'"({alternatives})"')
    found = []
    for pkg in ("appliance", "sync", "web_ui", "firmware_hooks"):
        for py in (root / pkg).rglob("*.py"):
            if py.name != "kinds.py":
                found += [f"{py.relative_to(root)}: {m}" for m in bare.findall(py.read_text())]
    assert found == []

    size = store.tree_head()[0]
    with pytest.raises(EncodingError, match="not declared"):
        store.writer_or_fail().call(
            lambda txn: writes.append_event(txn, "document.teleport", "x", {"to": "Huế"}))
    assert store.tree_head()[0] == size
