"""Every signature of a received package checked before registration (Decree 30 Điều 21.2).

For the envelope's XML-DSig (signxml) and each signed PDF attachment (pyHanko's validator):
is it intact, does it cover the whole file, who signed it (the certificate's subject and the
agency identifier when the certificate carries one), does its chain end at a trusted root
(``trust``), and was the certificate valid and unrevoked at the time of the check
(pyhanko-certvalidator, OCSP and CRLs in hard-fail mode: no revocation data, no trust).

The time of the check is the time the package was received. Without a time-stamp nothing
proves a signature older than that, and the envelope's XML-DSig carries no signing time at
all; a certificate that had expired, or was revoked, when the package reached us is refused.
A check repeated later (``moment`` = that same time, ``online=False``) uses the revocation
data fetched then, kept in the trust store's cache and named by the report, so a box that
has been offline for years reaches the same verdict.

Verdicts, from the signatures (ETSI EN 319 102-1 in spirit: TOTAL-FAILED → invalid,
INDETERMINATE → cannot be checked):

- ``invalid`` ("chữ ký không hợp lệ — không tiếp nhận"): a signature whose bytes do not match,
  a certificate revoked, expired or not yet valid at that time, a PDF changed after signing;
- ``valid`` ("chữ ký hợp lệ"): nothing invalid, and every attachment is covered by a valid
  signature (its own PAdES signature over the whole file, or the envelope's over the whole
  package);
- ``unverified`` ("không kiểm tra được chữ ký"): anything else — no signature, a chain to a CA
  that is not in the trust store, revocation data that could not be had.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import io
import logging
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cryptography import x509

from .dsig import DsigCheck, check_signature
from .model import Package
from .trust import TrustStore, asn1_certs

log = logging.getLogger(__name__)
_ORGAN_ID = re.compile(r"\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2}")
ENVELOPE = "Phong bì edXML (chữ ký XML)"


class Verdict(StrEnum):
    VALID = "valid"
    UNVERIFIED = "unverified"
    INVALID = "invalid"


LABELS = {
    Verdict.VALID: "Chữ ký hợp lệ",
    Verdict.UNVERIFIED: "Không kiểm tra được chữ ký",
    Verdict.INVALID: "Chữ ký không hợp lệ — không tiếp nhận",
}


@dataclass(frozen=True)
class SignatureCheck:
    """One signature's findings."""

    target: str  # ENVELOPE or an attachment's name
    kind: str  # "xml-dsig" or "pades"
    status: Verdict
    intact: bool
    trusted: bool
    revoked: bool = False
    whole: bool = False  # covers the whole package (XML) or the whole file (PDF)
    signer: str = ""  # the certificate's subject (RFC 4514)
    signer_name: str = ""  # its common name and organisation, as people read it
    issuer_name: str = ""
    organ_id: str = ""  # an agency identifier found in the subject
    issuer: str = ""
    serial: str = ""
    not_before: str = ""
    not_after: str = ""
    signing_time: str = ""  # as the signature claims it (PDF; XAdES SigningTime), ISO
    algorithm: str = ""
    reasons: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target, "kind": self.kind, "status": self.status.value,
            "intact": self.intact, "trusted": self.trusted, "revoked": self.revoked,
            "whole": self.whole, "signer": self.signer, "signer_name": self.signer_name,
            "issuer_name": self.issuer_name, "organ_id": self.organ_id,
            "issuer": self.issuer, "serial": self.serial, "not_before": self.not_before,
            "not_after": self.not_after, "signing_time": self.signing_time,
            "algorithm": self.algorithm, "reasons": list(self.reasons),
        }


@dataclass(frozen=True)
class Revocation:
    """OCSP responses and CRLs (DER) a check used or fetched."""

    ocsps: tuple[bytes, ...] = ()
    crls: tuple[bytes, ...] = ()


@dataclass(frozen=True)
class Report:
    """The validation report kept with the document (``to_json`` is its machine form)."""

    verdict: Verdict
    signatures: tuple[SignatureCheck, ...]
    attachments: tuple[dict[str, Any], ...]  # name, sha256, size, mime, covered_by
    misaddressed: bool
    our_org: str
    recipients: tuple[str, ...]
    checked_at: str  # the moment the certificates were checked at (ISO, +07:00)
    online: bool
    trust_roots: tuple[str, ...]  # fingerprints of the roots in the store at the time
    revocation: tuple[dict[str, str], ...] = ()  # {"kind", "sha256"} of the data used
    warnings: tuple[str, ...] = ()
    package_sha256: str = ""

    @property
    def label(self) -> str:
        return LABELS[self.verdict]

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value, "label": self.label,
            "signatures": [s.to_json() for s in self.signatures],
            "attachments": [dict(a) for a in self.attachments],
            "misaddressed": self.misaddressed, "our_org": self.our_org,
            "recipients": list(self.recipients), "checked_at": self.checked_at,
            "online": self.online, "trust_roots": list(self.trust_roots),
            "revocation": [dict(r) for r in self.revocation],
            "warnings": list(self.warnings), "package_sha256": self.package_sha256,
        }


def _name(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()


def organ_id_of(cert: x509.Certificate) -> str:
    """An agency identifier (QĐ 20/2020) written anywhere in the subject, or ''."""
    for attr in cert.subject:
        value = attr.value if isinstance(attr.value, str) else attr.value.decode("latin-1")
        m = _ORGAN_ID.search(value)
        if m:
            return m.group(0)
    return ""


def readable(name: x509.Name) -> str:
    """'Common name (organisation)' of a distinguished name."""
    from cryptography.x509.oid import NameOID

    def first(oid: x509.ObjectIdentifier) -> str:
        found = name.get_attributes_for_oid(oid)
        value = found[0].value if found else ""
        return value if isinstance(value, str) else value.decode("latin-1")

    cn, org = first(NameOID.COMMON_NAME), first(NameOID.ORGANIZATION_NAME)
    if cn and org and org != cn:
        return f"{cn} ({org})"
    return cn or org or name.rfc4514_string()


def _cert_fields(cert: x509.Certificate | None) -> dict[str, str]:
    if cert is None:
        return {}
    return {
        "signer": _name(cert), "signer_name": readable(cert.subject),
        "issuer_name": readable(cert.issuer), "organ_id": organ_id_of(cert),
        "issuer": cert.issuer.rfc4514_string(),
        "serial": format(cert.serial_number, "x"),
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
    }


def _out_of_bounds(cert: x509.Certificate, moment: dt.datetime) -> str:
    if moment > cert.not_valid_after_utc:
        return (f"Chứng thư số đã hết hạn ngày {cert.not_valid_after_utc:%d/%m/%Y}, trước thời "
                "điểm kiểm tra (thời điểm nhận văn bản).")
    if moment < cert.not_valid_before_utc:
        return f"Chứng thư số chỉ có hiệu lực từ ngày {cert.not_valid_before_utc:%d/%m/%Y}."
    return ""


FETCH_TIMEOUT_S = 10  # per OCSP/CRL request; a link that is down should not hold a clerk long


def _context(
    roots: list[Any], moment: dt.datetime, online: bool, rev: Revocation, backend: Any
) -> Any:
    from asn1crypto import crl, ocsp
    from pyhanko_certvalidator import ValidationContext

    return ValidationContext(
        fetcher_backend=backend,
        trust_roots=roots,
        moment=moment,
        allow_fetching=online,
        revocation_mode="hard-fail",
        ocsps=[ocsp.OCSPResponse.load(b) for b in rev.ocsps],
        crls=[crl.CertificateList.load(b) for b in rev.crls],
    )


# -- the envelope's XML-DSig -----------------------------------------------------------------


async def _check_xml(found: DsigCheck, vc: Any, moment: dt.datetime) -> SignatureCheck:
    fields = _cert_fields(found.certificate)
    base = dict(target=ENVELOPE, kind="xml-dsig", whole=found.whole_document,
                algorithm=found.algorithm, signing_time=found.signing_time, **fields)
    weak = ("Thuật toán SHA-1 đã yếu (gói tin cũ).",) if found.weak else ()
    if not found.intact or found.certificate is None:
        return SignatureCheck(status=Verdict.INVALID, intact=False, trusted=False,
                              reasons=(found.problem, *weak), **base)  # type: ignore[arg-type]
    partial = () if found.whole_document else (
        "Chữ ký XML không bao toàn bộ gói tin (chỉ một phần được ký).",)
    bounds = _out_of_bounds(found.certificate, moment)
    if bounds:
        return SignatureCheck(status=Verdict.INVALID, intact=True, trusted=False,
                              reasons=(bounds, *weak), **base)  # type: ignore[arg-type]
    verdict, revoked, why = await _chain_check(found.certificate, list(found.others), vc)
    if verdict is not None:
        extra = (*partial, *weak) if verdict is Verdict.UNVERIFIED else weak
        return SignatureCheck(status=verdict, intact=True, trusted=False, revoked=revoked,
                              reasons=(why, *extra), **base)  # type: ignore[arg-type]
    status = Verdict.VALID if found.whole_document else Verdict.UNVERIFIED
    return SignatureCheck(status=status, intact=True, trusted=True, reasons=(*partial, *weak),
                          **base)  # type: ignore[arg-type]


async def _chain_check(
    cert: x509.Certificate, others: list[x509.Certificate], vc: Any
) -> tuple[Verdict | None, bool, str]:
    """The certificate's chain and revocation at the context's moment: (None, False, '')
    when trusted, else the verdict, whether it is revoked, and why (Vietnamese)."""
    from pyhanko_certvalidator import CertificateValidator
    from pyhanko_certvalidator.errors import (
        ExpiredError,
        InsufficientRevinfoError,
        NotYetValidError,
        PathBuildingError,
        PathValidationError,
        RevokedError,
    )

    leaf, *rest = asn1_certs([cert, *others])
    validator = CertificateValidator(leaf, intermediate_certs=rest, validation_context=vc)
    try:
        await validator.async_validate_usage(set())  # type: ignore[no-untyped-call]
    except RevokedError as exc:
        return Verdict.INVALID, True, f"Chứng thư số đã bị thu hồi ({exc})."
    except (ExpiredError, NotYetValidError) as exc:
        return Verdict.INVALID, False, f"Chứng thư số không có hiệu lực ({exc})."
    except PathBuildingError:
        return Verdict.UNVERIFIED, False, _NO_ROOT
    except InsufficientRevinfoError:
        return Verdict.UNVERIFIED, False, _NO_REVINFO
    except PathValidationError as exc:
        return Verdict.INVALID, False, f"Chuỗi chứng thư không hợp lệ ({exc})."
    return None, False, ""


_NO_ROOT = ("Chứng thư số không do tổ chức chứng thực nào trong kho tin cậy cấp (chưa có chứng "
            "thư gốc: luutru trust add).")
_NO_REVINFO = ("Không lấy được thông tin thu hồi chứng thư (OCSP/CRL): kiểm tra lại khi có "
               "mạng.")


# -- PAdES signatures of PDF attachments -----------------------------------------------------


async def _check_pdf(name: str, data: bytes, vc: Any, moment: dt.datetime) -> list[SignatureCheck]:
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import async_validate_pdf_signature

    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        sigs = [s for s in reader.embedded_signatures if str(s.sig_object_type) != "/DocTimeStamp"]
    except Exception as exc:
        return [SignatureCheck(target=name, kind="pades", status=Verdict.INVALID, intact=False,
                               trusted=False,
                               reasons=(f"Không đọc được chữ ký trong tệp ({exc}).",))]
    out = []
    for sig in sigs:
        try:
            st = await async_validate_pdf_signature(sig, vc)
        except Exception as exc:
            out.append(SignatureCheck(target=name, kind="pades", status=Verdict.INVALID,
                                      intact=False, trusted=False,
                                      reasons=(f"Chữ ký không kiểm tra được ({exc}).",)))
            continue
        result = _pdf_result(name, st, moment)
        if result.status is Verdict.UNVERIFIED and result.intact:
            verdict, revoked, why = await _chain_check(
                x509.load_der_x509_certificate(st.signing_cert.dump()),
                [x509.load_der_x509_certificate(c.dump()) for c in sig.other_embedded_certs],
                vc)
            if verdict is not None:
                result = dataclasses.replace(result, status=verdict, revoked=revoked,
                                             reasons=(why,))
        out.append(result)
    return out


def _pdf_result(name: str, st: Any, moment: dt.datetime) -> SignatureCheck:
    from pyhanko.sign.diff_analysis import ModificationLevel
    from pyhanko.sign.validation.status import SignatureCoverageLevel

    cert = x509.load_der_x509_certificate(st.signing_cert.dump())
    changed = st.modification_level not in (None, ModificationLevel.NONE,
                                             ModificationLevel.LTA_UPDATES)
    whole = st.coverage == SignatureCoverageLevel.ENTIRE_FILE or (
        st.coverage == SignatureCoverageLevel.ENTIRE_REVISION and not changed)
    reported = st.signer_reported_dt.isoformat() if st.signer_reported_dt else ""
    base = dict(target=name, kind="pades", whole=whole, signing_time=reported,
                algorithm=str(st.md_algorithm), **_cert_fields(cert))
    indic = str(getattr(st, "trust_problem_indic", "") or "")
    if not (st.intact and st.valid):
        why = ("Nội dung tệp đã bị thay đổi sau khi ký (mã băm không khớp)." if not st.intact
               else "Giá trị chữ ký không đúng với chứng thư số.")
        return SignatureCheck(status=Verdict.INVALID, intact=bool(st.intact), trusted=False,
                              reasons=(why,), **base)  # type: ignore[arg-type]
    if st.revoked:
        return SignatureCheck(status=Verdict.INVALID, intact=True, trusted=False, revoked=True,
                              reasons=("Chứng thư số đã bị thu hồi.",),
                              **base)  # type: ignore[arg-type]
    bounds = _out_of_bounds(cert, moment)
    if bounds:
        return SignatureCheck(status=Verdict.INVALID, intact=True, trusted=False,
                              reasons=(bounds,), **base)  # type: ignore[arg-type]
    if not whole:
        return SignatureCheck(status=Verdict.INVALID, intact=True, trusted=bool(st.trusted),
                              reasons=("Tệp đã bị thêm nội dung sau khi ký.",),
                              **base)  # type: ignore[arg-type]
    if not st.trusted:
        why = _NO_ROOT if "NO_CERTIFICATE_CHAIN" in indic else (
            _NO_REVINFO if ("TRY_LATER" in indic or "REVOCATION" in indic or not indic)
            else f"Chứng thư số không được tin cậy ({indic}).")
        return SignatureCheck(status=Verdict.UNVERIFIED, intact=True, trusted=False,
                              reasons=(why,), **base)  # type: ignore[arg-type]
    return SignatureCheck(status=Verdict.VALID, intact=True, trusted=True,
                          **base)  # type: ignore[arg-type]


# -- the package -----------------------------------------------------------------------------


def verify_package(
    raw: bytes,
    root: Any,
    package: Package,
    trust: TrustStore,
    our_org: str | tuple[str, ...],
    moment: dt.datetime,
    online: bool = True,
    revocation: Revocation | None = None,
) -> tuple[Report, Revocation]:
    """Check every signature of ``package``; returns the report and the revocation data used
    (to be kept: the cache, and the report's references). ``our_org``: the agency's mã định
    danh, or its current and former ones (a package addressed to a former code after a
    re-keying is still ours)."""
    ours = (our_org,) if isinstance(our_org, str) else tuple(our_org)
    if revocation is None:
        ocsps, crls = trust.cached_revocation()
        revocation = Revocation(tuple(ocsps), tuple(crls))
    roots = trust.roots()
    found = check_signature(raw, root)
    with _quiet():
        checks, used = _run(lambda: _check_all(package, found, trust, moment, online,
                                               revocation))
    attachments: list[dict[str, Any]] = []
    envelope_ok = any(c.kind == "xml-dsig" and c.status is Verdict.VALID and c.whole
                      for c in checks)
    for att in package.attachments:
        own = [c for c in checks if c.kind == "pades" and c.target == att.name]
        covered = [c.kind for c in own if c.status is Verdict.VALID and c.whole]
        if envelope_ok:
            covered.append("xml-dsig")
        attachments.append({
            "name": att.name, "sha256": hashlib.sha256(att.data).hexdigest(),
            "size": len(att.data), "mime": att.content_type, "signed": bool(own),
            "covered_by": covered,
        })
    if any(c.status is Verdict.INVALID for c in checks):
        verdict = Verdict.INVALID
    elif attachments and all(a["covered_by"] for a in attachments):
        verdict = Verdict.VALID
    else:
        verdict = Verdict.UNVERIFIED
    warnings = list(package.warnings)
    if not found.present:
        warnings.append("Phong bì edXML không có chữ ký số (XML-DSig).")
    for a in attachments:
        if not a["signed"] and a["mime"] == "application/pdf":
            warnings.append(f"Tệp '{a['name']}' không có chữ ký số.")
    recipients = tuple(r.organ_id for r in package.header.recipients)
    report = Report(
        verdict=verdict, signatures=tuple(checks), attachments=tuple(attachments),
        misaddressed=not set(ours) & set(recipients), our_org=ours[0], recipients=recipients,
        checked_at=moment.isoformat(), online=online,
        trust_roots=tuple(r.fingerprint for r in roots),
        revocation=tuple(
            [{"kind": "ocsp", "sha256": hashlib.sha256(b).hexdigest()} for b in used.ocsps]
            + [{"kind": "crl", "sha256": hashlib.sha256(b).hexdigest()} for b in used.crls]
        ),
        warnings=tuple(warnings), package_sha256=hashlib.sha256(raw).hexdigest(),
    )
    return report, used


async def _check_all(
    package: Package, found: DsigCheck, trust: TrustStore, moment: dt.datetime, online: bool,
    revocation: Revocation,
) -> tuple[list[SignatureCheck], Revocation]:
    from pyhanko_certvalidator.fetchers.aiohttp_fetchers import AIOHttpFetcherBackend

    roots = asn1_certs(trust.certificates())
    backend = AIOHttpFetcherBackend(per_request_timeout=FETCH_TIMEOUT_S)
    try:
        vc = _context(roots, moment, online, revocation, backend)
        checks: list[SignatureCheck] = []
        if found.present:
            checks.append(await _check_xml(found, vc, moment))
        for a in package.attachments:
            if a.data.startswith(b"%PDF") or a.content_type == "application/pdf":
                checks.extend(await _check_pdf(a.name, a.data, vc, moment))
        used = Revocation(tuple(o.dump() for o in vc.ocsps), tuple(c.dump() for c in vc.crls))
    finally:
        await backend.close()  # type: ignore[no-untyped-call]
    return checks, used


def _run(make: Any) -> Any:
    """Run the coroutine ``make()`` to its end from synchronous code, also when this thread
    already runs an event loop (then in a thread of its own, which it blocks on)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


class _quiet:
    """pyHanko logs a traceback for every expected refusal (untrusted, revoked): the report
    says it better, so its loggers are muted while a package is checked."""

    def __enter__(self) -> None:
        self._levels = {}
        for name in ("pyhanko", "pyhanko_certvalidator"):
            lg = logging.getLogger(name)
            self._levels[name] = lg.level
            lg.setLevel(logging.CRITICAL)

    def __exit__(self, *exc: object) -> None:
        for name, level in self._levels.items():
            logging.getLogger(name).setLevel(level)



def verify_envelope(raw: bytes, root: Any, trust: TrustStore, moment: dt.datetime,
                    online: bool = True) -> tuple[SignatureCheck | None, Revocation]:
    """The envelope's XML-DSig alone, checked as a package's is (a status message has no
    attachments): None when it carries none. ``VALID`` only when intact, over the whole
    message, trusted and unrevoked at ``moment``."""
    found = check_signature(raw, root)
    if not found.present:
        return None, Revocation()
    ocsps, crls = trust.cached_revocation()
    revocation = Revocation(tuple(ocsps), tuple(crls))

    async def check() -> tuple[SignatureCheck, Revocation]:
        from pyhanko_certvalidator.fetchers.aiohttp_fetchers import AIOHttpFetcherBackend

        backend = AIOHttpFetcherBackend(per_request_timeout=FETCH_TIMEOUT_S)
        try:
            vc = _context(asn1_certs(trust.certificates()), moment, online, revocation,
                          backend)
            result = await _check_xml(found, vc, moment)
            used = Revocation(tuple(o.dump() for o in vc.ocsps),
                              tuple(c.dump() for c in vc.crls))
        finally:
            await backend.close()  # type: ignore[no-untyped-call]
        return result, used

    with _quiet():
        out: tuple[SignatureCheck, Revocation] = _run(check)
    return out
