"""The centre's signature upgrade (sync/central/ltv.py) against a real TSA, OCSP responder and
CRLs on loopback: levels as pyHanko's validator confirms them, ten years later offline with the
signer's certificate expired, pdfsig, and a flipped byte."""

from __future__ import annotations

import asyncio
import io
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import x509 as asn1_x509

from appliance.pdfsign import sign_pdf
from appliance.signature_upgrade import check_upgrade
from sync.central import ltv
from tests.pki import sample_pdf
from tests.pki_services import TSA_SHORT, PkiServices, der, pki_services

__all__ = ["pki_services"]


def _roots(pki: PkiServices) -> tuple[Any, ...]:
    return (asn1_x509.Certificate.load(der(pki.root)),)


def _ctx(pki: PkiServices, tsa: str = "tsa", moment: datetime | None = None) -> ltv.LtvContext:
    settings = ltv.LtvSettings(tsa_url=pki.tsa_url(tsa), trust_roots=("root.pem",))
    return ltv.LtvContext(settings, _roots(pki), moment)


class _Key:
    def __init__(self, pki: PkiServices, label: str = "signer") -> None:
        self.identity = pki.identity(label)

    def pdf_signer(self) -> Any:
        return self.identity.pdf_signer()


def _signed(pki: PkiServices, label: str = "signer") -> bytes:
    return sign_pdf(sample_pdf(), _Key(pki, label), agency_name="Ủy ban nhân dân xã Thử Nghiệm")


def _future_lta(pdf: bytes, pki: PkiServices, when: datetime) -> Any:
    """pyHanko's LTA validation at ``when`` with fetching off (what is in the file only)."""
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation.ades import simulate_future_ades_lta_validation
    from pyhanko.sign.validation.policy_decl import (
        PdfSignatureValidationSpec,
        RevinfoOnlineFetchingRule,
        RevocationInfoGatheringSpec,
        SignatureValidationSpec,
    )
    from pyhanko_certvalidator.context import CertValidationPolicySpec
    from pyhanko_certvalidator.policy_decl import (
        CertRevTrustPolicy,
        RevocationCheckingPolicy,
        RevocationCheckingRule,
    )
    from pyhanko_certvalidator.registry import SimpleTrustManager

    rule = RevocationCheckingRule.CRL_OR_OCSP_REQUIRED
    spec = PdfSignatureValidationSpec(
        SignatureValidationSpec(
            cert_validation_policy=CertValidationPolicySpec(
                trust_manager=SimpleTrustManager.build(trust_roots=list(_roots(pki))),
                revinfo_policy=CertRevTrustPolicy(
                    RevocationCheckingPolicy(
                        ee_certificate_rule=rule, intermediate_ca_cert_rule=rule
                    )
                ),
            ),
            revinfo_gathering_policy=RevocationInfoGatheringSpec(
                online_fetching_rule=RevinfoOnlineFetchingRule.LOCAL_ONLY
            ),
        )
    )
    sig = PdfFileReader(io.BytesIO(pdf), strict=False).embedded_regular_signatures[0]
    return asyncio.run(simulate_future_ades_lta_validation(sig, spec, when))


def _pdfsig(pdf: bytes, tmp_path: Path) -> str:
    if shutil.which("pdfsig") is None:
        pytest.skip("pdfsig is not installed (apt-get install poppler-utils)")
    path = tmp_path / "check.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdfsig", str(path)], capture_output=True, text=True).stdout


def test_upgrade_reaches_b_lta_and_keeps_every_signed_byte(pki_services: PkiServices) -> None:
    """B-B in, B-LTA out (pyHanko, offline), an incremental update the box accepts."""
    pdf = _signed(pki_services)
    assert ltv.level(pdf, _roots(pki_services)) == "B-B"
    up = ltv.upgrade(pdf, _ctx(pki_services))
    assert up.level == "B-LTA"
    report = ltv.level_report(up.pdf, _roots(pki_services))
    assert report.intact and report.level == "B-LTA", report.messages
    check_upgrade(pdf, up.pdf)  # the box's own check: raises if a signed byte moved
    assert len(up.pdf) > len(pdf)
    assert abs((up.timestamp_at - datetime.now(UTC)).total_seconds()) < 120
    # the TSA certificate lasts 30 years: renew a year before
    assert up.renew_by > datetime.now(UTC) + timedelta(days=365 * 28)


def test_ten_years_later_offline_with_the_signer_expired(
    pki_services: PkiServices, tmp_path: Path
) -> None:
    """The upgraded file validates in 2036 with no network; the B-B original does not."""
    pdf = _signed(pki_services)
    up = ltv.upgrade(pdf, _ctx(pki_services))
    signer = pki_services.identity("signer").cert
    later = datetime.now(UTC) + timedelta(days=3653)
    assert signer.not_valid_after_utc < later  # the signer's certificate has expired by then
    from pyhanko.sign.ades.report import AdESPassed

    with pki_services.offline():
        result = _future_lta(up.pdf, pki_services, later)
        assert result.ades_subindic is AdESPassed.OK, result.failure_msg
        assert result.oldest_evidence_record_timestamp is not None
        before = _future_lta(pdf, pki_services, later)
        assert before.ades_subindic is not AdESPassed.OK
    out = _pdfsig(up.pdf, tmp_path)
    assert out.count("Signature Validation: Signature is Valid.") == 1
    assert "ETSI.CAdES.detached" in out
    assert "Digest Mismatch" not in out


def test_one_flipped_byte_fails_pyhanko_and_pdfsig(
    pki_services: PkiServices, tmp_path: Path
) -> None:
    up = ltv.upgrade(_signed(pki_services), _ctx(pki_services)).pdf
    at = up.index(b"Hello commune")
    bad = up[:at] + b"J" + up[at + 1 :]
    report = ltv.level_report(bad, _roots(pki_services))
    assert not report.intact
    assert "Digest Mismatch" in _pdfsig(bad, tmp_path)
    with pytest.raises(ValueError):
        check_upgrade(_signed(pki_services), bad)


def test_revoked_signer_is_refused(pki_services: PkiServices) -> None:
    with pytest.raises(ltv.SignerRevoked):
        ltv.upgrade(_signed(pki_services, "revoked"), _ctx(pki_services))


def test_unreachable_services_are_retryable(pki_services: PkiServices) -> None:
    pdf = _signed(pki_services)
    with pki_services.offline(), pytest.raises(ltv.LtvUnavailable) as info:
        ltv.upgrade(pdf, _ctx(pki_services))
    assert info.value.retryable


def test_renew_before_the_tsa_certificate_ages_out(pki_services: PkiServices) -> None:
    """A 3-year TSA certificate: renewal due after 2 years; a new document time-stamp from the
    long-lived TSA keeps the file valid beyond the first one's end."""
    up = ltv.upgrade(_signed(pki_services), _ctx(pki_services, TSA_SHORT))
    short_end = pki_services.identity(TSA_SHORT).cert.not_valid_after_utc
    assert up.renew_by == short_end - timedelta(days=365)
    later = up.renew_by + timedelta(days=30)
    with pki_services.at(later):
        renewed = ltv.renew(up.pdf, _ctx(pki_services, "tsa", moment=later))
    check_upgrade(up.pdf, renewed.pdf)
    assert renewed.renew_by > short_end + timedelta(days=365 * 20)
    from pyhanko.sign.ades.report import AdESPassed

    beyond = short_end + timedelta(days=365 * 5)
    with pki_services.offline():
        assert _future_lta(renewed.pdf, pki_services, beyond).ades_subindic is AdESPassed.OK
