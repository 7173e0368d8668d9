"""The edXML exchange: an exchange folder (each package taken exactly once, never lost) and a
provincial LGSP over HTTP (a local test server; retries with the project's backoff); status
messages leave the same way."""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from appliance.clock import TZ, ManualClock
from appliance.edxml import inbox
from appliance.edxml.errors import TransportError
from appliance.store import Store
from sync.edxml.exchange import ExchangeConfig, run_once
from sync.edxml.folder import FolderConnector
from sync.edxml.http import HttpConnector, HttpSettings
from tests.archive.conftest import pdf_bytes
from tests.edxml_field import FieldAttachment, FieldDoc, field_package


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(dt.datetime.now(TZ))


def _pkg(n: int) -> bytes:
    doc = FieldDoc(subject=f"V/v công việc số {n} của tháng", code_number=str(100 + n))
    return field_package(None, doc, [FieldAttachment(f"{n}.pdf", pdf_bytes(f"Số {n}"))])


def _config(folder: Path | None = None) -> ExchangeConfig:
    return ExchangeConfig("folder", folder=folder, online=False, settle_s=0.0)


def _drop(folder: Path, name: str, data: bytes) -> Path:
    (folder / "den").mkdir(parents=True, exist_ok=True)
    path = folder / "den" / name
    path.write_bytes(data)
    old = time.time() - 10
    os.utime(path, (old, old))
    return path


def test_folder_takes_each_package_once_and_sends_the_acknowledgements(
    store: Store, tmp_path: Path
) -> None:
    ex = tmp_path / "lienthong"
    for n in range(3):
        _drop(ex, f"goi-{n}.edxml", _pkg(n))
    res = run_once(store, FolderConnector(ex, settle_s=0), _config(ex))
    assert len(res.imported) == 3 and not res.refused
    assert sorted(p.name for p in (ex / "da-nhan").iterdir()) == [
        "goi-0.edxml", "goi-1.edxml", "goi-2.edxml"]
    assert not list((ex / "den").iterdir())
    sent = sorted(p.name for p in (ex / "di").iterdir())
    assert len(sent) == 3 and all(n.startswith("trang-thai-01-") for n in sent)
    assert inbox.unsent(store.reader()) == []
    again = run_once(store, FolderConnector(ex, settle_s=0), _config(ex))
    assert again.imported == [] and again.sent == []
    assert len(inbox.list_items(store.reader())) == 3


def test_a_crash_after_the_commit_offers_the_package_again_without_a_second_item(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Power cut between the inbox commit and the move: the file is still in den/; the next
    pass knows it by its SHA-256 and only moves it."""
    ex = tmp_path / "lienthong"
    _drop(ex, "a.edxml", _pkg(1))
    conn = FolderConnector(ex, settle_s=0)

    def cut(item: Any) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(conn, "done", cut)
    with pytest.raises(OSError):
        run_once(store, conn, _config(ex))
    assert (ex / "den" / "a.edxml").exists() and len(inbox.list_items(store.reader())) == 1
    res = run_once(store, FolderConnector(ex, settle_s=0), _config(ex))
    assert res.duplicates == 1 and res.imported == []
    assert (ex / "da-nhan" / "a.edxml").exists()
    assert len(inbox.list_items(store.reader())) == 1


def test_refused_packages_are_set_aside_with_their_reason(store: Store, tmp_path: Path) -> None:
    ex = tmp_path / "lienthong"
    _drop(ex, "bom.edxml", b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "a">]><edXML/>')
    _drop(ex, "thieu.xml", field_package(None, FieldDoc(manifest_extra=("Phụ lục.pdf",)),
                                         [FieldAttachment("cv.pdf", pdf_bytes("cv"))]))
    big = _drop(ex, "lon.edxml", b"<")
    with big.open("r+b") as fh:
        fh.truncate(3 * 1024 * 1024)
    os.utime(big, (time.time() - 10, time.time() - 10))
    cfg = ExchangeConfig("folder", folder=ex, online=False, settle_s=0, max_bytes=1024 * 1024)
    res = run_once(store, FolderConnector(ex, settle_s=0), cfg)
    assert sorted(n for n, _ in res.refused) == ["bom.edxml", "thieu.xml"]
    kept = sorted(p.name for p in (ex / "tu-choi").iterdir())
    assert kept == ["bom.edxml", "bom.edxml.ly-do.txt", "lon.edxml", "lon.edxml.ly-do.txt",
                    "thieu.xml", "thieu.xml.ly-do.txt"]
    assert "quá lớn" in (ex / "tu-choi" / "lon.edxml.ly-do.txt").read_text("utf-8")
    assert "Phụ lục.pdf" in (ex / "tu-choi" / "thieu.xml.ly-do.txt").read_text("utf-8")
    assert inbox.list_items(store.reader()) == []


def test_a_file_still_being_written_waits(store: Store, tmp_path: Path) -> None:
    ex = tmp_path / "lienthong"
    (ex / "den").mkdir(parents=True)
    (ex / "den" / "dang-ghi.edxml").write_bytes(_pkg(1)[:500])
    res = run_once(store, FolderConnector(ex, settle_s=30), _config(ex))
    assert res.imported == [] and res.refused == []
    assert (ex / "den" / "dang-ghi.edxml").exists()


# -- the LGSP over HTTP, against a local test server ---------------------------------------


class Lgsp:
    """A minimal LGSP: packages to hand out, acknowledgements and messages received, and a
    number of 503 answers to give before it works."""

    def __init__(self) -> None:
        self.packages: dict[str, bytes] = {}
        self.acks: list[tuple[str, dict[str, Any]]] = []
        self.messages: list[tuple[str, bytes]] = []
        self.fail_next = 0
        self.requests = 0
        self.auth: list[str | None] = []

    def app(self) -> web.Application:
        async def gate(request: web.Request) -> web.Response | None:
            self.requests += 1
            self.auth.append(request.headers.get("Authorization"))
            if self.fail_next > 0:
                self.fail_next -= 1
                return web.Response(status=503)
            return None

        async def listing(request: web.Request) -> web.Response:
            return await gate(request) or web.json_response({"packages": [
                {"id": k, "name": f"{k}.edxml", "size": len(v)}
                for k, v in self.packages.items()]})

        async def one(request: web.Request) -> web.Response:
            return await gate(request) or web.Response(
                body=self.packages[request.match_info["id"]], content_type="application/xml")

        async def ack(request: web.Request) -> web.Response:
            if (r := await gate(request)) is not None:
                return r
            pid = request.match_info["id"]
            self.acks.append((pid, await request.json()))
            self.packages.pop(pid, None)
            return web.Response(status=204)

        async def message(request: web.Request) -> web.Response:
            if (r := await gate(request)) is not None:
                return r
            self.messages.append((request.query["name"], await request.read()))
            return web.Response(status=201)

        app = web.Application()
        app.add_routes([web.get("/edxml/packages", listing),
                        web.get("/edxml/packages/{id}", one),
                        web.post("/edxml/packages/{id}/ack", ack),
                        web.post("/edxml/messages", message)])
        return app


@pytest.fixture
def lgsp() -> Iterator[tuple[Lgsp, str]]:
    import asyncio

    server = Lgsp()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(server.app())
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield server, f"http://127.0.0.1:{port}/edxml"
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.run_until_complete(runner.cleanup())
    loop.close()


def test_lgsp_packages_in_status_messages_out(store: Store, lgsp: tuple[Lgsp, str]) -> None:
    server, url = lgsp
    server.packages = {"p1": _pkg(1), "p2": _pkg(2),
                       "bad": b'<?xml version="1.0"?><!DOCTYPE x []><edXML/>'}
    waits: list[float] = []
    conn = HttpConnector(HttpSettings(url, token="lgsp-token-123"), sleep=waits.append)
    res = run_once(store, conn, ExchangeConfig("http", online=False))
    assert len(res.imported) == 2 and [n for n, _ in res.refused] == ["bad.edxml"]
    assert sorted(a[0] for a in server.acks) == ["bad", "p1", "p2"]
    assert dict(server.acks)["bad"]["result"] == "refused"
    assert "DOCTYPE" in dict(server.acks)["bad"]["reason"]
    assert len(server.messages) == 2 and all(m[0].startswith("trang-thai-01-")
                                             for m in server.messages)
    assert set(server.auth) == {"Bearer lgsp-token-123"}
    assert waits == [] and inbox.unsent(store.reader()) == []


def test_lgsp_unavailable_is_retried_with_backoff(store: Store, lgsp: tuple[Lgsp, str]) -> None:
    server, url = lgsp
    server.packages = {"p1": _pkg(1)}
    server.fail_next = 2
    waits: list[float] = []
    conn = HttpConnector(HttpSettings(url, attempts=4, retry_base_s=2, retry_cap_s=60),
                         sleep=waits.append)
    res = run_once(store, conn, ExchangeConfig("http", online=False))
    assert len(res.imported) == 1 and len(waits) == 2
    assert 1.0 <= waits[0] < 2.0 and 2.0 <= waits[1] < 4.0  # capped, jittered, growing
    server.fail_next = 10
    with pytest.raises(TransportError):
        list(HttpConnector(HttpSettings(url, attempts=3), sleep=lambda _: None).fetch(10**8))


def test_http_errors_that_no_retry_mends_are_not_retried(lgsp: tuple[Lgsp, str]) -> None:
    _, url = lgsp
    waits: list[float] = []
    conn = HttpConnector(HttpSettings(url + "/khong-co"), sleep=waits.append)
    with pytest.raises(TransportError) as info:
        list(conn.fetch(10**8))
    assert getattr(info.value, "status", None) == 404 and waits == []
    assert not info.value.retryable


def test_config_file_is_parsed_once(tmp_path: Path) -> None:
    from sync.edxml.exchange import load_config

    assert load_config(tmp_path) is None
    (tmp_path / "edxml.json").write_text(json.dumps(
        {"connector": "folder", "folder": "lienthong", "interval_s": 30, "max_package_mb": 50}))
    cfg = load_config(tmp_path)
    assert cfg is not None and cfg.folder == tmp_path / "lienthong"
    assert cfg.interval_s == 30 and cfg.max_bytes == 50 * 1024 * 1024


class _SoftKey:
    """An agency key in memory with its chain (the TPM and token paths are tested elsewhere)."""

    def __init__(self) -> None:
        from cryptography.hazmat.primitives.asymmetric import ec

        from appliance.keys import agency
        from tests.conftest import ORG_ID, ORG_NAME
        from tests.pki import make_ca

        self.ca = make_ca()
        self.private = ec.generate_private_key(ec.SECP256R1())
        self.chain = [self.ca.issue(self.private.public_key(),
                                    agency.agency_subject(ORG_NAME, None, ORG_ID)), self.ca.cert]

    def xml_signing_key(self) -> Any:
        return self.private


def _status_of(raw: bytes, ca_pem: Path) -> dict[str, str]:
    """A status message checked by signxml in its strict XAdES mode, and its fields."""
    from lxml import etree
    from signxml.xades import XAdESVerifier

    results = XAdESVerifier().verify(raw, ca_pem_file=str(ca_pem))
    signed = results[0].signed_xml
    assert signed is not None and etree.QName(signed).localname == "edXML"
    ns = "{http://www.mic.gov.vn/TBT/QCVN_102_2016}"
    st = signed.find(f".//{ns}Status")
    assert st is not None
    return {"code": st.findtext(f"{ns}StatusCode") or "",
            "organ": st.findtext(f"{ns}ResponseFor/{ns}OrganId") or "",
            "document": st.findtext(f"{ns}ResponseFor/{ns}DocumentId") or "",
            "number": st.findtext(f"{ns}ResponseFor/{ns}Code") or "",
            "why": st.findtext(f"{ns}Description") or ""}


def _malformed() -> dict[str, bytes]:
    """Refused for their structure, each with a readable sender and document id; and a bomb
    and a package without a sender, which get no answer."""
    whole = _pkg(7)
    return {
        "cut.edxml": whole[: whole.index(b"<ContentTransferEncoded>") + 200],  # not XML
        "no-subject.edxml": field_package(None, FieldDoc(
            subject="", code_number="318", document_id="000.00.00.H49,2026/11/28,318/UBND-VX"),
            [FieldAttachment("318.pdf", pdf_bytes("Công văn 318"))]),
        "bomb.edxml": b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "a">]><edXML/>',
        "nobody.edxml": b"<edXML><edXMLEnvelope><edXMLHeader><MessageHeader><DocumentId>9"
                        b"</DocumentId></MessageHeader>",
    }


def test_a_malformed_package_from_a_known_sender_is_answered_with_a_signed_02(
    store: Store, tmp_path: Path
) -> None:
    """Through the exchange folder: each malformed package is set aside with its reason, and
    one whose sender and document can be read gets status 02 (signed, XAdES, strict
    signxml) in di/, sent once; the bomb and the anonymous one get nothing."""
    ex = tmp_path / "lienthong"
    packages = _malformed()
    for name, data in packages.items():
        _drop(ex, name, data)
    key = _SoftKey()
    ca_pem = tmp_path / "ca.pem"
    from tests.pki import pem

    ca_pem.write_bytes(pem(key.ca.cert))
    res = run_once(store, FolderConnector(ex, settle_s=0), _config(ex), key)
    assert sorted(n for n, _ in res.refused) == sorted(_malformed())
    assert inbox.list_items(store.reader()) == []
    sent = sorted((ex / "di").iterdir())
    assert len(sent) == 2 and all(p.name.startswith("trang-thai-02-") for p in sent)
    answers = sorted((_status_of(p.read_bytes(), ca_pem) for p in sent),
                     key=lambda a: a["document"])
    assert [a["code"] for a in answers] == ["02", "02"]
    assert {a["organ"] for a in answers} == {"000.00.00.H49"}
    assert [a["document"] for a in answers] == [
        "000.00.00.H49,2026/11/28,1234/UBND-VX", "000.00.00.H49,2026/11/28,318/UBND-VX"]
    why = {a["number"]: a["why"] for a in answers}
    assert "Subject" in why["318/UBND-VX"]
    assert "XML" in why["107/UBND-VX"]
    assert inbox.unsent(store.reader()) == []
    # The same package dropped again is refused again but answered only once.
    _drop(ex, "no-subject-2.edxml", packages["no-subject.edxml"])
    again = run_once(store, FolderConnector(ex, settle_s=0), _config(ex), key)
    assert [n for n, _ in again.refused] == ["no-subject-2.edxml"] and again.sent == []
    assert len(list((ex / "di").iterdir())) == 2


def test_lgsp_malformed_package_is_refused_and_answered(
    store: Store, lgsp: tuple[Lgsp, str]
) -> None:
    """Through the LGSP connector: the refusal is acknowledged to the LGSP and the 02 goes
    out as a message the same pass."""
    server, url = lgsp
    server.packages = {"cut": _malformed()["cut.edxml"]}
    conn = HttpConnector(HttpSettings(url), sleep=lambda _: None)
    res = run_once(store, conn, ExchangeConfig("http", online=False), _SoftKey())
    assert [n for n, _ in res.refused] == ["cut.edxml"]
    assert dict(server.acks)["cut"]["result"] == "refused"
    assert [m[0][:14] for m in server.messages] == ["trang-thai-02-"]
    assert b"<StatusCode>02</StatusCode>" in server.messages[0][1]
    assert inbox.unsent(store.reader()) == []


def _packaged(store: Store) -> tuple[str, int]:
    """An issued văn bản đi with an electronic delivery packaged from its page: (id, n)."""
    from appliance import writes
    from appliance.kinds import Kind
    from appliance.outgoing import deliveries
    from tests.archive.conftest import attach_pdf
    from tests.conftest import outgoing

    rec = store.issue_outgoing(store.draft_outgoing(outgoing(
        Subject="Về việc báo cáo kết quả chuyển đổi số quý IV",
        To=[{"OrganId": "000.00.00.H49", "OrganName": "Ủy ban nhân dân tỉnh Quảng Ninh"},
            {"OrganName": "Lưu: VT"}])).record.id).record
    attach_pdf(store, rec, "Báo cáo kết quả chuyển đổi số")

    def plan(txn: Any) -> Any:  # what issuing.issue does when the box signs and numbers it
        cur = writes.current(txn, "document", id=rec.id)
        data = dict(cur.data, Deliveries=deliveries.plan(cur.data, [], cur.data["IssuedDate"]))
        return writes.put(txn, "document", Kind.DOCUMENT_DELIVERY, "vanthu", data, cur.id,
                          cur.version)

    store.writer_or_fail().call(plan)
    items = store.get("document", rec.id).data["Deliveries"]
    n = next(d["n"] for d in items if d["channel"] == "electronic")
    deliveries.package_electronic(store, rec.id, n, "vanthu", None)
    return rec.id, n


def test_a_packaged_delivery_leaves_through_the_exchange_once(store: Store,
                                                             tmp_path: Path) -> None:
    """An issued văn bản đi's electronic delivery, packaged from its page, is handed to the
    exchange folder by the next pass and becomes "sent"; a link that is down keeps it
    packaged for the pass after."""
    doc_id, n = _packaged(store)
    rec = store.get("document", doc_id)
    ex = tmp_path / "lienthong"

    class Down(FolderConnector):
        def send(self, name: str, data: bytes) -> None:
            raise TransportError("mất kết nối")

    res = run_once(store, Down(ex, settle_s=0), _config(ex))
    assert res.sent == [] and res.errors
    state = {d["n"]: d["status"] for d in store.get("document", rec.id).data["Deliveries"]}
    assert state[n] == "packaged"
    res = run_once(store, FolderConnector(ex, settle_s=0), _config(ex))
    assert len(res.sent) == 1 and res.sent[0].startswith("van-ban-")
    sent = list((ex / "di").iterdir())
    assert [p.name for p in sent] == res.sent
    assert b"<OrganId>000.00.00.H49</OrganId>" in sent[0].read_bytes()
    state = {d["n"]: d["status"] for d in store.get("document", rec.id).data["Deliveries"]}
    assert state[n] == "sent"
    assert run_once(store, FolderConnector(ex, settle_s=0), _config(ex)).sent == []


def test_a_packaged_delivery_made_secret_since_never_leaves(store: Store,
                                                            tmp_path: Path) -> None:
    """A document made mật after its package was made is not handed to the exchange."""
    from appliance import writes
    from appliance.kinds import Kind

    doc_id, n = _packaged(store)

    def secret(txn: Any) -> Any:
        cur = writes.current(txn, "document", id=doc_id)
        return writes.put(txn, "document", Kind.DOCUMENT_UPDATE, "vanthu",
                          dict(cur.data, Mode="03"), cur.id, cur.version)

    store.writer_or_fail().call(secret)
    ex = tmp_path / "lienthong"
    res = run_once(store, FolderConnector(ex, settle_s=0), _config(ex))
    assert res.sent == [] and not list((ex / "di").iterdir())
    state = {d["n"]: d["status"] for d in store.get("document", doc_id).data["Deliveries"]}
    assert state[n] == "packaged"
