"""An addressee's status messages about our delivered packages, through the real exchange
folder: a trusted 01 moves the delivery to "đã nhận", 03 to "đã tiếp nhận", 02 to "bị trả
lại" with the reason; unsigned, untrusted, forged and foreign-signed ones are kept with their
verdict and never applied; one about no delivery of ours is kept and listed; a rebuild gives
the same tables."""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from appliance.clock import TZ, ManualClock
from appliance.edxml import answers, inbox
from appliance.edxml.intake_trust import add_root
from appliance.edxml.model import NS_2016
from appliance.store import Store
from sync.edxml.exchange import ExchangeConfig, run_once
from sync.edxml.folder import FolderConnector
from tests.conftest import ORG_ID
from tests.edxml_field import AgencyXmlKey, answer_status
from tests.pki import CA, make_ca, pem

PROVINCE = "000.00.00.H49"
PROVINCE_NAME = "Ủy ban nhân dân tỉnh Quảng Ninh"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(dt.datetime.now(TZ))


def Addressee(ca: CA, organ_id: str = PROVINCE, name: str = PROVINCE_NAME) -> AgencyXmlKey:
    """The addressee's agency key (XML-DSig), issued by ``ca`` for ``organ_id``."""
    return AgencyXmlKey(ca, organ_id, name)


def _config(folder: Path) -> ExchangeConfig:
    return ExchangeConfig("folder", folder=folder, online=False, settle_s=0.0)


def _drop(folder: Path, name: str, data: bytes) -> None:
    (folder / "den").mkdir(parents=True, exist_ok=True)
    path = folder / "den" / name
    path.write_bytes(data)
    old = time.time() - 10
    os.utime(path, (old, old))


def _sent_document_id(folder: Path) -> tuple[str, str, str]:
    """(DocumentId, Code, PromulgationDate) of the package we put in di/, read with lxml."""
    (path,) = [p for p in (folder / "di").iterdir() if p.name.startswith("van-ban-")]
    root = etree.fromstring(path.read_bytes())
    ns = {"e": NS_2016}
    msg = root.find("e:edXMLEnvelope/e:edXMLHeader/e:MessageHeader", ns)
    assert msg is not None
    code = f"{msg.findtext('e:Code/e:CodeNumber', namespaces=ns)}/" \
           f"{msg.findtext('e:Code/e:CodeNotation', namespaces=ns)}"
    return (msg.findtext("e:DocumentId", namespaces=ns) or "", code,
            msg.findtext("e:PromulgationInfo/e:PromulgationDate", namespaces=ns) or "")


def _status(ref: tuple[str, str, str], code: str, key: Any, description: str = "",
            stamp: str = "2026/12/03 09:41:00") -> bytes:
    return answer_status(ref, code, key, description or {"01": "Đã đến", "03": "Đã vào sổ"}
                         .get(code, ""), (PROVINCE, PROVINCE_NAME), stamp, ORG_ID)


def _delivery(store: Store, doc_id: str, n: int) -> dict[str, Any]:
    items = store.get("document", doc_id).data["Deliveries"]
    found: dict[str, Any] = next(d for d in items if d["n"] == n)
    return found


def _sent(store: Store, ex: Path) -> tuple[str, int, tuple[str, str, str]]:
    from tests.sync.test_edxml_exchange import _packaged

    doc_id, n = _packaged(store)
    res = run_once(store, FolderConnector(ex, settle_s=0), _config(ex))
    assert not res.errors and _delivery(store, doc_id, n)["status"] == "sent"
    return doc_id, n, _sent_document_id(ex)


def test_trusted_status_messages_move_the_delivery(store: Store, tmp_path: Path) -> None:
    """01 then 03 signed by the addressee under a trusted root: "đã nhận" then "đã tiếp
    nhận", each with the addressee's time; the same message again is taken once; a late 01
    after the 03 is kept but moves nothing."""
    ex = tmp_path / "lienthong"
    doc_id, n, ref = _sent(store, ex)
    ca = make_ca()
    add_root(store, pem(ca.cert), "kỹ thuật")
    key = Addressee(ca)
    received = _status(ref, "01", key)
    _drop(ex, "trang-thai-01.edxml", received)
    res = run_once(store, FolderConnector(ex, settle_s=0), _config(ex))
    assert len(res.answers) == 1 and not res.refused and not res.imported
    d = _delivery(store, doc_id, n)
    assert d["status"] == "received"
    step = d["history"][-1]
    assert step["status"] == "received" and step["code"] == "01"
    assert step["reported_at"] == "2026-12-03T09:41:00+07:00"
    assert step["answer"] == res.answers[0]
    assert (ex / "da-nhan" / "trang-thai-01.edxml").exists()
    row = answers.get_answer(store.reader(), res.answers[0])
    assert row is not None and (row.verdict, row.outcome) == ("valid", "applied")
    assert (row.document_id, row.delivery, row.code) == (doc_id, n, "01")

    _drop(ex, "lai-01.edxml", received)  # the same message twice
    again = run_once(store, FolderConnector(ex, settle_s=0), _config(ex))
    assert again.answers == res.answers
    assert len(answers.list_answers(store.reader())) == 1

    _drop(ex, "trang-thai-03.edxml", _status(ref, "03", key, stamp="2026/12/03 10:05:00"))
    run_once(store, FolderConnector(ex, settle_s=0), _config(ex))
    d = _delivery(store, doc_id, n)
    assert d["status"] == "accepted"
    assert d["history"][-1]["reported_at"] == "2026-12-03T10:05:00+07:00"

    _drop(ex, "muon-01.edxml", _status(ref, "01", key, stamp="2026/12/03 11:00:00"))
    late = run_once(store, FolderConnector(ex, settle_s=0), _config(ex))
    assert _delivery(store, doc_id, n)["status"] == "accepted"
    stale = answers.get_answer(store.reader(), late.answers[0])
    assert stale is not None and stale.outcome == "stale" and stale.document_id == doc_id


def test_returned_with_a_reason(store: Store, tmp_path: Path) -> None:
    ex = tmp_path / "lienthong"
    doc_id, n, ref = _sent(store, ex)
    ca = make_ca()
    add_root(store, pem(ca.cert), "kỹ thuật")
    _drop(ex, "tra-lai.edxml", _status(ref, "02", Addressee(ca),
                                       "Sai thể thức: thiếu chữ ký của người có thẩm quyền"))
    run_once(store, FolderConnector(ex, settle_s=0), _config(ex))
    d = _delivery(store, doc_id, n)
    assert d["status"] == "returned"
    assert d["history"][-1]["note"] == \
        "Bị trả lại: Sai thể thức: thiếu chữ ký của người có thẩm quyền"


def test_unsigned_untrusted_forged_and_foreign_statuses_are_kept_not_applied(
    store: Store, tmp_path: Path
) -> None:
    ex = tmp_path / "lienthong"
    doc_id, n, ref = _sent(store, ex)
    trusted = make_ca()
    add_root(store, pem(trusted.cert), "kỹ thuật")
    forged = _status(ref, "02", Addressee(trusted), "Đã đến").replace(
        b"<StatusCode>02</StatusCode>", b"<StatusCode>03</StatusCode>")
    assert b"<StatusCode>03</StatusCode>" in forged
    messages = {
        "khong-ky.edxml": _status(ref, "03", None),
        "ca-la.edxml": _status(ref, "03", Addressee(make_ca("CA công cộng chưa được tin cậy"))),
        # A CA named as the trusted one, with another key: the chain does not verify.
        "ca-gia.edxml": _status(ref, "03", Addressee(make_ca())),
        "sua-doi.edxml": forged,
        "co-quan-khac.edxml": _status(ref, "03", Addressee(trusted, "000.00.00.H50",
                                                           "Ủy ban nhân dân tỉnh khác")),
    }
    for name, raw in messages.items():
        _drop(ex, name, raw)
    res = run_once(store, FolderConnector(ex, settle_s=0), _config(ex))
    assert len(res.answers) == 5 and not res.refused
    d = _delivery(store, doc_id, n)
    assert d["status"] == "sent" and d["history"][-1]["status"] == "sent"
    got = {a.source.rsplit("/", 1)[-1]: a for a in answers.list_answers(store.reader())
           if a.source}
    assert {k: (a.verdict, a.outcome) for k, a in got.items()} == {
        "khong-ky.edxml": ("unverified", "unverified"),
        "ca-la.edxml": ("unverified", "unverified"),
        "ca-gia.edxml": ("invalid", "invalid"),
        "sua-doi.edxml": ("invalid", "invalid"),
        "co-quan-khac.edxml": ("invalid", "invalid"),
    }
    assert all(a.document_id == doc_id and a.delivery == n for a in got.values())
    assert any("000.00.00.H50" in r for r in got["co-quan-khac.edxml"].reasons)
    assert any("kho tin cậy" in r for r in got["ca-la.edxml"].reasons)
    assert any("không khớp" in r for r in got["sua-doi.edxml"].reasons)
    assert {a.id for a in answers.answers_for(store.reader(), doc_id)} == \
        {a.id for a in got.values()}


def test_a_status_for_no_delivery_of_ours_is_kept(store: Store, tmp_path: Path) -> None:
    ex = tmp_path / "lienthong"
    _sent(store, ex)
    ca = make_ca()
    add_root(store, pem(ca.cert), "kỹ thuật")
    other = (f"{ORG_ID},2026/01/05,999/UBND-VP", "999/UBND-VP", "2026/01/05")
    _drop(ex, "la.edxml", _status(other, "01", Addressee(ca)))
    res = run_once(store, FolderConnector(ex, settle_s=0), _config(ex))
    (aid,) = res.answers
    row = answers.get_answer(store.reader(), aid)
    assert row is not None
    assert (row.outcome, row.document_id, row.verdict) == ("unknown", None, "valid")
    assert row.reference == f"{ORG_ID},2026/01/05,999/UBND-VP"
    assert row.to_json()["reference_label"] == f"số 999/UBND-VP ngày 05/01/2026 của {ORG_ID}"
    assert [a.id for a in answers.list_answers(store.reader(), unmatched_only=True)] == [aid]


def test_an_unreadable_status_is_set_aside(store: Store, tmp_path: Path) -> None:
    ex = tmp_path / "lienthong"
    raw = _status(("x", "1/A", "2026/01/01"), "01", None).replace(
        f"<OrganId>{PROVINCE}</OrganId>".encode(), b"<OrganId></OrganId>")
    _drop(ex, "hong.edxml", raw)
    res = run_once(store, FolderConnector(ex, settle_s=0), _config(ex))
    assert [n for n, _ in res.refused] == ["hong.edxml"] and not res.answers
    assert (ex / "tu-choi" / "hong.edxml.ly-do.txt").read_text("utf-8").startswith(
        "Thông điệp trạng thái không cho biết cơ quan gửi")
    assert inbox.list_refused(store.reader()) == []  # no sender to answer, nothing logged


def test_rebuild_gives_the_same_tables(store: Store, tmp_path: Path) -> None:
    from tests.test_rebuild import _db, run_rebuild, snapshot, strip_projections

    ex = tmp_path / "lienthong"
    _, _, ref = _sent(store, ex)
    ca = make_ca()
    add_root(store, pem(ca.cert), "kỹ thuật")
    _drop(ex, "a.edxml", _status(ref, "01", Addressee(ca)))
    _drop(ex, "b.edxml", _status(ref, "03", None))
    _drop(ex, "c.edxml", _status((f"{ORG_ID},2026/01/05,9/X", "9/X", "2026/01/05"), "01",
                                 Addressee(ca)))
    run_once(store, FolderConnector(ex, settle_s=0), _config(ex))
    data_dir = store.data_dir
    store.close()
    conn = _db(data_dir)
    before = snapshot(conn)
    assert len(before["edxml_answers"]) == 3
    strip_projections(conn)
    run_rebuild(conn)
    assert snapshot(conn) == before
    conn.close()
