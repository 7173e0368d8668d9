"""An issued văn bản đi packaged as edXML and signed with the agency key in the TPM: signxml
validates the XML-DSig to the CA, an independent lxml reading and our own import read the
same fields, and the PDF comes out byte for byte."""

from __future__ import annotations

import base64
import datetime as dt
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from lxml import etree

from appliance.clock import TZ, ManualClock
from appliance.datadir import init_data_dir
from appliance.edxml import export, intake
from appliance.edxml.trust import TrustStore
from appliance.keys import agency
from appliance.store import Store
from tests.conftest import ORG_ID, ORG_NAME, outgoing
from tests.edxml_field import NS_2016, signed_pdf
from tests.pki import SoftHsmToken, make_ca, pem, softhsm_token
from tests.pki_services import PkiServices, pki_factory
from tests.swtpm import Swtpm, swtpm, swtpm_factory

__all__ = ["pki_factory", "softhsm_token", "swtpm", "swtpm_factory"]
PROVINCE = "000.00.00.H49"
XADES = "http://uri.etsi.org/01903/v1.3.2#"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(dt.datetime.now(TZ))


@pytest.fixture
def agency_pki(store: Store, swtpm: Swtpm,
               pki_factory: Callable[..., PkiServices]) -> PkiServices:
    """The commune's agency key made in the TPM, certified by the test CA with its mã định
    danh in the certificate, and imported."""
    agency.create_agency_tpm_key(store.data_dir, swtpm.tcti)
    with agency.open_agency_key(store.data_dir) as key:
        public = key.public_key()
    pki = pki_factory(extra={"agency": public},
                      subjects={"agency": {"common-name": ORG_NAME, "user-id": ORG_ID}})
    ident = pki.identity("agency")
    agency.import_agency_cert(store.data_dir, ident.chain_pem())
    return pki


def _issued(store: Store, pdf: bytes) -> str:
    rec = store.issue_outgoing(store.draft_outgoing(outgoing(
        TypeName="Báo cáo", Subject="Báo cáo kết quả thực hiện chuyển đổi số năm 2026",
        SignerInfo={"Position": "Chủ tịch", "FullName": "Trần Văn Hùng"},
        To=[{"OrganId": PROVINCE, "OrganName": "Ủy ban nhân dân tỉnh Quảng Ninh"},
            {"OrganName": "Lưu: VT"}], PageAmount=2, Priority="1",
    )).record.id).record
    stored = store.content.put_bytes(pdf)
    store.attach_content(rec.id, [{"sha256": stored.sha256, "size": stored.size,
                                   "name": "bao-cao.pdf", "mime": "application/pdf"}])
    return rec.id


def _lxml_fields(raw: bytes) -> dict[str, object]:
    """The package read with lxml and XPath alone, nothing of ours."""
    root = etree.fromstring(raw)
    ns = {"e": NS_2016}
    m = "e:edXMLEnvelope/e:edXMLHeader/e:MessageHeader/"

    def t(path: str) -> str:
        return root.findtext(m + path, namespaces=ns) or ""

    atts = root.findall("e:AttachmentEncoded/e:Attachment", ns)
    return {
        "from": t("e:From/e:OrganId"), "to": t("e:To/e:OrganId"),
        "number": t("e:Code/e:CodeNumber"), "notation": t("e:Code/e:CodeNotation"),
        "date": t("e:PromulgationInfo/e:PromulgationDate"), "type": t("e:DocumentType/e:TypeName"),
        "subject": t("e:Subject"), "signer": t("e:SignerInfo/e:FullName"),
        "priority": t("e:OtherInfo/e:Priority"), "pages": t("e:OtherInfo/e:PageAmount"),
        "files": [(a.findtext("e:AttachmentName", namespaces=ns),
                   base64.b64decode(a.findtext("e:ContentTransferEncoded", namespaces=ns) or ""))
                  for a in atts],
        "trace": root.findtext("e:edXMLEnvelope/e:edXMLHeader/e:TraceHeaderList/e:TraceHeader"
                               "/e:OrganId", namespaces=ns),
    }


def test_export_round_trip_signed_in_the_tpm(
    store: Store, agency_pki: PkiServices, tmp_path: Path, clock: ManualClock
) -> None:
    pdf = signed_pdf(agency_pki.identity("signer"), "Báo cáo số 05/BC-UBND")
    doc_id = _issued(store, pdf)
    data = store.get("document", doc_id).data
    with agency.open_agency_key(store.data_dir) as key:
        raw = export.export_document(store, doc_id, PROVINCE, key)
    # signxml, on its own and in its strictest mode (XAdES: exactly the three references, the
    # signing certificate's digest): the signature over the whole package checks out, the
    # certificate chains to the CA's root, and the signed SigningTime is the box's clock.
    from signxml.xades import XAdESVerifier, XAdESVerifyResult

    root_pem = tmp_path / "root.pem"
    root_pem.write_bytes(agency_pki.trust_roots_pem())
    results = XAdESVerifier().verify(raw, ca_pem_file=str(root_pem))
    assert etree.QName(results[0].signed_xml).localname == "edXML"  # the whole document
    props = next(r for r in results if isinstance(r, XAdESVerifyResult)).signed_properties
    signed_at = props.findtext(f"{{{XADES}}}SigningTime")
    assert signed_at == clock.now().astimezone(TZ).isoformat(timespec="seconds")
    assert signed_at.endswith("+07:00")
    certs = [x509.load_der_x509_certificate(base64.b64decode(c.text)) for c in etree.fromstring(
        raw).iter("{http://www.w3.org/2000/09/xmldsig#}X509Certificate")]
    ids = {a.value for c in certs for a in c.subject.get_attributes_for_oid(NameOID.USER_ID)}
    assert ids == {ORG_ID}  # the agency's certificate, with its mã định danh
    # An independent lxml reading gives the document's fields and its PDF byte for byte.
    f = _lxml_fields(raw)
    assert f["from"] == ORG_ID and f["to"] == PROVINCE and f["trace"] == ORG_ID
    assert (f["number"], f["notation"]) == (data["CodeNumber"], data["CodeNotation"])
    assert f["date"] == data["IssuedDate"].replace("-", "/")
    assert (f["type"], f["subject"], f["signer"]) == (
        "Báo cáo", data["Subject"], "Trần Văn Hùng")
    assert (f["priority"], f["pages"]) == ("1", "2")
    assert f["files"] == [("bao-cao.pdf", pdf)]
    # Our own import, at the province's box (the addressee, trusting the test CA).
    province = tmp_path / "province"
    init_data_dir(province, PROVINCE, "Ủy ban nhân dân tỉnh Quảng Ninh", "software")
    TrustStore(province).add(agency_pki.trust_roots_pem())
    with Store.open(province, clock=clock) as other:
        res = intake.import_package(other, raw)
    s = res.item.summary
    assert res.report["verdict"] == "valid" and not res.report["misaddressed"]
    assert (s["CodeNumber"], s["CodeNotation"], s["Subject"], s["TypeName"]) == (
        data["CodeNumber"], data["CodeNotation"], data["Subject"], "Báo cáo")
    assert s["From"]["OrganId"] == ORG_ID and s["PromulgationDate"] == data["IssuedDate"]
    xml_sig = next(x for x in res.report["signatures"] if x["kind"] == "xml-dsig")
    assert xml_sig["organ_id"] == ORG_ID and xml_sig["trusted"]
    assert dt.datetime.fromisoformat(xml_sig["signing_time"]) == dt.datetime.fromisoformat(
        signed_at)  # read back from the signed properties, shown beside the verdict


def _xmlsec1(raw: bytes, root_pem: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """xmlsec1's verdict, trusting ``root_pem``; the XAdES and KeyInfo ids declared."""
    path = tmp_path / "goi-tin.xml"
    path.write_bytes(raw)
    return subprocess.run(
        ["xmlsec1", "--verify", "--trusted-pem", str(root_pem),
         "--id-attr:Id", f"{XADES}:SignedProperties",
         "--id-attr:Id", "http://www.w3.org/2000/09/xmldsig#:KeyInfo", str(path)],
        capture_output=True, text=True, check=False)


def test_changing_the_signing_time_breaks_the_signature(
    store: Store, agency_pki: PkiServices, tmp_path: Path, clock: ManualClock
) -> None:
    """The SigningTime is signed: a time moved one day back fails signxml, xmlsec1 and our
    check."""
    from signxml.exceptions import InvalidSignature
    from signxml.xades import XAdESVerifier

    from appliance.edxml.dsig import check_signature

    doc_id = _issued(store, signed_pdf(agency_pki.identity("signer"), "Báo cáo"))
    with agency.open_agency_key(store.data_dir) as key:
        raw = export.export_document(store, doc_id, PROVINCE, key)
    root_pem = tmp_path / "root.pem"
    root_pem.write_bytes(agency_pki.trust_roots_pem())
    XAdESVerifier().verify(raw, ca_pem_file=str(root_pem))  # as made: valid
    stamp = clock.now().astimezone(TZ).isoformat(timespec="seconds").encode()
    earlier = (clock.now() - dt.timedelta(days=1)).astimezone(TZ).isoformat(
        timespec="seconds").encode()
    assert raw.count(stamp) >= 1
    at = raw.index(b"SigningTime>")
    bad = raw[:at] + raw[at:].replace(stamp, earlier, 1)
    assert bad != raw
    with pytest.raises(InvalidSignature):
        XAdESVerifier().verify(bad, ca_pem_file=str(root_pem))
    found = check_signature(bad, etree.fromstring(bad))
    assert found.present and not found.intact and found.signing_time == ""
    # xmlsec1 (libxmlsec1), a judge that is not signxml, agrees both ways.
    assert _xmlsec1(raw, root_pem, tmp_path).returncode == 0
    tampered = _xmlsec1(bad, root_pem, tmp_path)
    assert tampered.returncode != 0 and "failed to verify" in tampered.stderr
    good = check_signature(raw, etree.fromstring(raw))
    assert good.intact and good.signing_time == stamp.decode()


def test_one_flipped_bit_fails_signxml(store: Store, agency_pki: PkiServices,
                                       tmp_path: Path) -> None:
    from signxml.exceptions import InvalidSignature
    from signxml.xades import XAdESVerifier

    doc_id = _issued(store, signed_pdf(agency_pki.identity("signer"), "Báo cáo"))
    with agency.open_agency_key(store.data_dir) as key:
        raw = export.export_document(store, doc_id, PROVINCE, key)
    at = raw.index(b"<ContentTransferEncoded>") + 40
    bad = raw[:at] + (b"B" if raw[at:at + 1] != b"B" else b"C") + raw[at + 1:]
    root_pem = tmp_path / "root.pem"
    root_pem.write_bytes(agency_pki.trust_roots_pem())
    with pytest.raises(InvalidSignature):
        XAdESVerifier().verify(bad, ca_pem_file=str(root_pem))


def test_only_issued_public_documents_to_their_addressees(store: Store) -> None:
    from appliance.errors import ConflictError, ValidationError

    draft = store.draft_outgoing(outgoing(To=[{"OrganId": PROVINCE, "OrganName": "UBND tỉnh"}]))
    with pytest.raises(ConflictError):
        export.export_document(store, draft.record.id, PROVINCE, None)
    secret = store.issue_outgoing(store.draft_outgoing(outgoing(
        Mode="03", To=[{"OrganId": PROVINCE, "OrganName": "UBND tỉnh"}])).record.id).record
    with pytest.raises(ConflictError, match="mật"):
        export.export_document(store, secret.id, PROVINCE, None)
    pub = _issued(store, b"%PDF-1.4\n%%EOF\n")
    with pytest.raises(ValidationError):
        export.export_document(store, pub, "000.21.99.H49", None)


def test_status_message_signed_on_a_pkcs11_token(tmp_path: Path,
                                                 softhsm_token: SoftHsmToken) -> None:
    """The office's token (SoftHSM2 here) signs edXML too: signxml validates the status
    message against the CA, and reads its StatusCode and signing time."""
    from signxml.xades import XAdESVerifier, XAdESVerifyResult

    from appliance.edxml.build import status_package
    from appliance.edxml.model import Organ
    from appliance.edxml.status import make_status

    agency.configure_agency_pkcs11(tmp_path, softhsm_token.module, softhsm_token.token_label,
                                   softhsm_token.key_label)
    with agency.open_agency_key(tmp_path, softhsm_token.pin) as key:
        ca = make_ca()
        cert = ca.issue(key.public_key(), agency.agency_subject(ORG_NAME, None, ORG_ID))
    agency.import_agency_cert(tmp_path, pem(cert) + pem(ca.cert), pin=softhsm_token.pin)
    summary = {"From": {"OrganId": PROVINCE}, "CodeNumber": "12", "CodeNotation": "UBND-VP",
               "PromulgationDate": "2026-11-28", "DocumentId": "x"}
    now = dt.datetime(2026, 11, 28, 2, 30, 5, tzinfo=dt.UTC)
    msg = make_status(summary, Organ(ORG_ID, ORG_NAME), "03", "Đã tiếp nhận", now)
    with agency.open_agency_key(tmp_path, softhsm_token.pin) as key:
        raw = status_package(msg, key, now)
    (tmp_path / "ca.pem").write_bytes(pem(ca.cert))
    results = XAdESVerifier().verify(raw, ca_pem_file=str(tmp_path / "ca.pem"))
    code = results[0].signed_xml.findtext(f".//{{{NS_2016}}}StatusCode")  # type: ignore[union-attr]
    assert code == "03"
    props = next(r for r in results if isinstance(r, XAdESVerifyResult)).signed_properties
    assert props.findtext(f"{{{XADES}}}SigningTime") == "2026-11-28T09:30:05+07:00"
