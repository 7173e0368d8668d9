"""Every signature of a received package is checked before registration, against a real OCSP
responder, CRLs and trust roots served on loopback (tests/pki_services.py); the verdict holds
when checked again offline ten years later from the revocation data kept then."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from appliance.clock import TZ, ManualClock
from appliance.edxml import intake
from appliance.edxml.trust import TrustStore
from appliance.store import Store
from tests.edxml_field import (
    FieldAttachment,
    FieldDoc,
    field_package,
    flip_signed_byte,
    package_xml,
    sign_xml,
    signed_pdf,
)
from tests.pki_services import Identity, PkiServices, pki_factory, pki_services

__all__ = ["pki_factory", "pki_services"]


@pytest.fixture
def clock() -> ManualClock:
    """The test PKI's certificates are valid around the real time, not the suite's 2025."""
    return ManualClock(dt.datetime.now(TZ))


@pytest.fixture
def trusting(store: Store, pki_services: PkiServices) -> Store:
    TrustStore(store.data_dir).add(pki_services.trust_roots_pem())
    return store


def _sig(report: dict[str, object], kind: str) -> dict[str, object]:
    found = [s for s in report["signatures"] if s["kind"] == kind]  # type: ignore[union-attr,index]
    assert len(found) == 1, report
    return found[0]  # type: ignore[no-any-return]


def test_valid_package_every_signature_checked(trusting: Store, pki_services: PkiServices,
                                               tmp_path: Path) -> None:
    """The envelope's XML-DSig and the PDF's PAdES signature: intact, whole, trusted, the
    signer named; pdfsig agrees on the PDF."""
    signer = pki_services.identity("signer")
    pdf = signed_pdf(signer, "Công văn số 1234/UBND-VX")
    raw = field_package(signer, attachments=[FieldAttachment("cv.pdf", pdf)])
    res = intake.import_package(trusting, raw, source="test")
    r = res.report
    assert r["verdict"] == "valid" and r["label"] == "Chữ ký hợp lệ" and not r["misaddressed"]
    for kind in ("xml-dsig", "pades"):
        s = _sig(r, kind)
        assert s["intact"] and s["trusted"] and s["whole"] and not s["revoked"], s
        assert "Ủy ban nhân dân xã Thử Nghiệm" in str(s["signer"])
    assert r["revocation"], "the OCSP/CRL data used is named by the report"
    assert r["attachments"][0]["covered_by"] == ["pades", "xml-dsig"]  # type: ignore[index]
    (tmp_path / "cv.pdf").write_bytes(pdf)
    out = subprocess.run(["pdfsig", str(tmp_path / "cv.pdf")], capture_output=True, text=True)
    assert "Signature is Valid." in out.stdout


def test_pdf_with_one_byte_changed_is_invalid(trusting: Store, pki_services: PkiServices,
                                              tmp_path: Path) -> None:
    """One byte of the signed PDF changed: "chữ ký không hợp lệ — không tiếp nhận"; pdfsig,
    an independent judge, says Digest Mismatch for the same file."""
    signer = pki_services.identity("signer")
    bad = flip_signed_byte(signed_pdf(signer, "Quyết định số 15/QĐ-UBND"))
    (tmp_path / "bad.pdf").write_bytes(bad)
    out = subprocess.run(["pdfsig", str(tmp_path / "bad.pdf")], capture_output=True, text=True)
    assert "Digest Mismatch" in out.stdout
    raw = field_package(signer, attachments=[FieldAttachment("qd.pdf", bad)])
    r = intake.import_package(trusting, raw).report
    assert r["verdict"] == "invalid" and r["label"] == "Chữ ký không hợp lệ — không tiếp nhận"
    s = _sig(r, "pades")
    assert not s["intact"] and "thay đổi sau khi ký" in " ".join(s["reasons"])  # type: ignore[arg-type]
    assert _sig(r, "xml-dsig")["status"] == "valid"  # the envelope itself is intact


def test_envelope_changed_after_signing_is_invalid(trusting: Store,
                                                   pki_services: PkiServices) -> None:
    raw = field_package(pki_services.identity("signer"))
    tampered = raw.replace("chuyển đổi số năm 2026".encode(), "chuyển đổi số năm 2027".encode())
    r = intake.import_package(trusting, tampered).report
    s = _sig(r, "xml-dsig")
    assert r["verdict"] == "invalid" and not s["intact"]


@pytest.mark.parametrize(("label", "verdict", "words"), [
    ("untrusted", "unverified", "kho tin cậy"),
    ("revoked", "invalid", "thu hồi"),
    ("expired", "invalid", "hết hạn"),
])
def test_untrusted_revoked_and_expired_signers(trusting: Store, pki_services: PkiServices,
                                               label: str, verdict: str, words: str) -> None:
    """A CA outside the trust store cannot be checked; a certificate revoked (the loopback
    OCSP responder says so) or expired is invalid — for the envelope and the PDF alike."""
    raw = field_package(pki_services.identity(label))
    r = intake.import_package(trusting, raw).report
    assert r["verdict"] == verdict, r
    for kind in ("xml-dsig", "pades"):
        s = _sig(r, kind)
        assert s["status"] == verdict and s["intact"] and not s["trusted"]
        assert words in " ".join(s["reasons"]), s  # type: ignore[arg-type]
        assert s["revoked"] == (label == "revoked")


def test_revocation_from_the_crl_when_no_ocsp_is_reachable(
    trusting: Store, pki_services: PkiServices, monkeypatch: pytest.MonkeyPatch,
    clock: ManualClock,
) -> None:
    """With the OCSP responder unreachable, the CRL (also on loopback) still says revoked.
    The test CA publishes a CRL every 7 days: a week on, the CRL lists the revocation."""
    from pyhanko_certvalidator.errors import OCSPFetchError
    from pyhanko_certvalidator.fetchers.aiohttp_fetchers.ocsp_client import AIOHttpOCSPFetcher

    async def no_ocsp(self: object, cert: object, issuer: object) -> object:
        raise OCSPFetchError("OCSP responder unreachable")

    monkeypatch.setattr(AIOHttpOCSPFetcher, "fetch", no_ocsp)
    later = clock.now() + dt.timedelta(days=8)
    clock.set(later)
    with pki_services.at(later):
        raw = field_package(pki_services.identity("revoked"))
        r = intake.import_package(trusting, raw).report
    assert r["verdict"] == "invalid" and _sig(r, "pades")["revoked"]
    assert {x["kind"] for x in r["revocation"]} == {"crl"}  # type: ignore[union-attr]


def test_no_trust_root_cannot_be_checked(store: Store, pki_services: PkiServices) -> None:
    """The trust store ships empty: every signature is "không kiểm tra được chữ ký"."""
    r = intake.import_package(store, field_package(pki_services.identity("signer"))).report
    assert r["verdict"] == "unverified" and r["label"] == "Không kiểm tra được chữ ký"


def test_unsigned_package_cannot_be_checked(trusting: Store) -> None:
    from tests.archive.conftest import pdf_bytes

    raw = field_package(None, attachments=[FieldAttachment("cv.pdf", pdf_bytes("không ký"))])
    r = intake.import_package(trusting, raw).report
    assert r["verdict"] == "unverified" and r["signatures"] == []
    assert any("không có chữ ký" in w for w in r["warnings"])  # type: ignore[union-attr]


def test_misaddressed_package_is_flagged(trusting: Store, pki_services: PkiServices) -> None:
    doc = FieldDoc(to=(("000.21.99.H49", "Ủy ban nhân dân xã Khác"),))
    res = intake.import_package(trusting, field_package(pki_services.identity("signer"), doc))
    assert res.report["misaddressed"] and res.report["verdict"] == "valid"
    assert res.item.misaddressed


def test_agency_identifier_in_the_certificate_is_reported(
    trusting: Store, pki_factory: Callable[..., PkiServices], pki_services: PkiServices
) -> None:
    """A certificate carrying the agency's mã định danh (in its user id) names it."""
    key = ec.generate_private_key(ec.SECP256R1())
    pki = pki_factory(extra={"agency": key.public_key()}, subjects={"agency": {
        "common-name": "Ủy ban nhân dân tỉnh Quảng Ninh", "user-id": "000.00.00.H49"}})
    TrustStore(trusting.data_dir).add(pki.trust_roots_pem())
    ident = pki.identity("agency")
    ident = Identity(ident.label, ident.cert, ident.chain, key)
    r = intake.import_package(trusting, field_package(ident)).report
    assert r["verdict"] == "valid"
    assert {s["organ_id"] for s in r["signatures"]} == {"000.00.00.H49"}  # type: ignore[union-attr]


def test_reverified_ten_years_later_offline_gives_the_same_verdict(
    trusting: Store, pki_services: PkiServices, clock: ManualClock
) -> None:
    """Checked at receipt with the link up; ten years later (the signer's certificate long
    expired), the box offline and the PKI's services down, the check from the kept OCSP
    responses and CRLs gives the same verdict for the same reasons."""
    raw = field_package(pki_services.identity("signer"))
    first = intake.import_package(trusting, raw)
    assert first.report["verdict"] == "valid"
    clock.set(clock.now() + dt.timedelta(days=3653))
    with pki_services.offline():
        again = intake.reverify(trusting, first.item.id, online=False)
    assert again["verdict"] == "valid"
    assert again["checked_at"] == first.report["checked_at"]
    assert [s["status"] for s in again["signatures"]] == [
        s["status"] for s in first.report["signatures"]]  # type: ignore[union-attr]
    item = intake.inbox.get_item(trusting.reader(), first.item.id)
    assert item is not None and item.report_json != first.item.report_json  # a new report


def test_without_the_kept_revocation_data_it_cannot_be_checked(
    trusting: Store, pki_services: PkiServices, clock: ManualClock
) -> None:
    """The control: the same package checked offline with no revocation data at all."""
    raw = field_package(pki_services.identity("signer"))
    first = intake.import_package(trusting, raw)
    shutil.rmtree(TrustStore(trusting.data_dir).revocation_dir)
    with pki_services.offline():
        other = package_xml(FieldDoc(subject="V/v khác"), [FieldAttachment(
            "b.pdf", signed_pdf(pki_services.identity("signer"), "khác"))])
        r = intake.import_package(trusting, sign_xml(other, pki_services.identity("signer")),
                                  online=False).report
    assert first.report["verdict"] == "valid" and r["verdict"] == "unverified"
    assert "OCSP/CRL" in " ".join(_sig(r, "pades")["reasons"])  # type: ignore[arg-type]
