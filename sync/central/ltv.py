"""Signatures that last: the centre turns a box's PAdES B-B signature into B-LTA (pyHanko).

The box signs offline, so its signatures carry no time-stamp and no validation data. When the
signed PDF reaches the centre, ``upgrade`` adds, in this order:

1. a signature time-stamp from the configured RFC 3161 TSA over each signature's value, as the
   unsigned CMS attribute CAdES calls ``signature-time-stamp`` (B-T). It goes into the room
   the box left in the signature's /Contents (``appliance.pdfsign.TIMESTAMP_ROOM_HEX``);
   /Contents is outside the signed byte range, so every signed byte stays as it was, and
   the box checks exactly that (``appliance.signature_upgrade``). A document time-stamp alone
   would do for ETSI EN 319 142-1, but pyHanko's AdES validator (0.38) insists on a
   signature time-stamp, and it is the judge the project uses;
2. the certificates, OCSP responses and CRLs of every signature and time-stamp, fetched now,
   in the document security store (DSS) of an incremental update (B-LT);
3. a document time-stamp over all of it, with its own validation data (B-LTA).

``renew`` extends the chain later (validation data of the last document time-stamp, then a
new one) before that time-stamp's certificate or digest algorithm ages out (``renew_by``).
``level`` says which PAdES baseline level pyHanko's validator confirms offline.

pyHanko is imported lazily: only this path needs it.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from appliance.errors import ConfigError

from ..errors import SyncError

PDF_MAGIC = b"%PDF-"
LEVELS = ("B-B", "B-T", "B-LT", "B-LTA")


class LtvError(SyncError):
    """A PDF cannot be upgraded: not signed, no room for the time-stamp, or refused."""

    code = "ltv"


class NotSigned(LtvError):
    """The content is not a PDF with a signature."""

    code = "not_signed"


class LtvUnavailable(LtvError):
    """The TSA or the revocation services cannot be reached now; the job tries again."""

    code = "ltv_unavailable"
    retryable = True


class SignerRevoked(LtvError):
    """A signer's certificate is revoked: validation data would only prove it."""

    code = "revoked"


@dataclass(frozen=True)
class LtvSettings:
    """``ltv`` in centre.json: where the TSA is, which roots to trust, when to renew."""

    tsa_url: str | None = None
    tsa_timeout_s: float = 30.0
    trust_roots: tuple[str, ...] = ()  # PEM files, relative to the centre folder
    revocation: str = "require"  # pyHanko's revocation mode: require, hard-fail, soft-fail
    renew_margin_days: int = 365  # re-time-stamp this long before the last one ages out
    # A digest algorithm's last safe day (ETSI TS 119 312 gives the dates to configure).
    digest_sunset: tuple[tuple[str, str], ...] = (("sha1", "2012-12-31"), ("md5", "2000-01-01"))
    interval_s: int = 3600  # how often `central serve` runs the job
    retry_base_s: int = 300
    retry_cap_s: int = 6 * 3600
    batch: int = 50  # documents per run

    @property
    def enabled(self) -> bool:
        return bool(self.tsa_url) and bool(self.trust_roots)

    def to_json(self) -> dict[str, Any]:
        return {
            "tsa_url": self.tsa_url,
            "tsa_timeout_s": self.tsa_timeout_s,
            "trust_roots": list(self.trust_roots),
            "revocation": self.revocation,
            "renew_margin_days": self.renew_margin_days,
            "digest_sunset": dict(self.digest_sunset),
            "interval_s": self.interval_s,
            "retry_base_s": self.retry_base_s,
            "retry_cap_s": self.retry_cap_s,
            "batch": self.batch,
        }

    @classmethod
    def from_json(cls, v: Any) -> LtvSettings:
        if v is None:
            return cls()
        if not isinstance(v, dict):
            raise ConfigError("centre.json: ltv must be an object")
        try:
            s = cls(
                tsa_url=str(v["tsa_url"]) if v.get("tsa_url") else None,
                tsa_timeout_s=float(v.get("tsa_timeout_s", 30.0)),
                trust_roots=tuple(str(p) for p in v.get("trust_roots", ())),
                revocation=str(v.get("revocation", "require")),
                renew_margin_days=int(v.get("renew_margin_days", 365)),
                digest_sunset=tuple(
                    sorted(
                        (str(k).lower(), str(d))
                        for k, d in (v.get("digest_sunset") or dict(cls.digest_sunset)).items()
                    )
                ),
                interval_s=int(v.get("interval_s", 3600)),
                retry_base_s=int(v.get("retry_base_s", 300)),
                retry_cap_s=int(v.get("retry_cap_s", 6 * 3600)),
                batch=int(v.get("batch", 50)),
            )
            for _, day in s.digest_sunset:
                date.fromisoformat(day)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"centre.json: ltv is malformed: {exc}") from exc
        if s.revocation not in ("require", "hard-fail", "soft-fail"):
            raise ConfigError("centre.json: ltv.revocation is require, hard-fail or soft-fail")
        return s


@dataclass(frozen=True)
class LtvContext:
    """Settings plus what they point at, loaded once: the trust roots, the moment to act at."""

    settings: LtvSettings
    roots: tuple[Any, ...]  # asn1crypto certificates
    moment: datetime | None = None  # None: now (tests move the clock)

    def validation_context(self, fetch: bool = True) -> Any:
        from pyhanko_certvalidator import ValidationContext

        return ValidationContext(
            trust_roots=list(self.roots),
            allow_fetching=fetch,
            revocation_mode=self.settings.revocation,
            moment=self.moment,
        )

    def timestamper(self) -> Any:
        from pyhanko.sign.timestamps import HTTPTimeStamper

        if not self.settings.tsa_url:
            raise LtvError("no TSA is configured (centre.json ltv.tsa_url)")
        return HTTPTimeStamper(self.settings.tsa_url, timeout=int(self.settings.tsa_timeout_s))


def load_roots(centre_dir: Path, settings: LtvSettings) -> tuple[Any, ...]:
    """The trust anchors named in the settings (PEM or DER files)."""
    from asn1crypto import pem
    from asn1crypto import x509 as asn1_x509

    roots: list[Any] = []
    for name in settings.trust_roots:
        path = centre_dir / name
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"centre.json: ltv trust root {path} cannot be read: {exc}") from exc
        blobs = [der for _, _, der in pem.unarmor(raw, multiple=True)] if pem.detect(raw) else [raw]
        roots.extend(asn1_x509.Certificate.load(b) for b in blobs)
    return tuple(roots)


@dataclass(frozen=True)
class Upgraded:
    pdf: bytes
    level: str
    timestamp_at: datetime  # genTime of the newest document time-stamp
    renew_by: datetime

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.pdf).hexdigest()


def looks_signed(pdf: bytes) -> bool:
    """Cheap test before parsing: a PDF with a signature's byte range."""
    return pdf.startswith(PDF_MAGIC) and b"/ByteRange" in pdf


def _reader(pdf: bytes) -> Any:
    from pyhanko.pdf_utils.reader import PdfFileReader

    try:
        return PdfFileReader(io.BytesIO(pdf), strict=False)
    except Exception as exc:
        raise NotSigned(f"the content is not a readable PDF ({exc})") from exc


def _has_signature_ts(signer_info: Any) -> bool:
    attrs = signer_info["unsigned_attrs"]
    if not attrs.native:
        return False
    return any(a["type"].native == "signature_time_stamp_token" for a in attrs)


def _contents_span(sig: Any) -> tuple[int, int]:
    """[start, end) of the hex digits of a signature's /Contents (inside < >)."""
    a, b, c, _ = (int(x) for x in sig.sig_object["/ByteRange"])
    return a + b + 1, c - 1


async def _with_signature_timestamps(pdf: bytes, ctx: LtvContext) -> bytes:
    """Add a signature time-stamp to each signature lacking one, inside its /Contents."""
    from asn1crypto import cms

    reader = _reader(pdf)
    sigs = list(reader.embedded_regular_signatures)
    if not sigs:
        raise NotSigned("the PDF has no signature")
    out = bytearray(pdf)
    tsa = ctx.timestamper()
    for sig in sigs:
        start, end = _contents_span(sig)
        if _covered_by_another(start, sigs, sig):
            # A later signature (the agency's over an issued văn bản đi) signed these bytes:
            # changing them would break it. The document time-stamp covers this one instead.
            continue
        old = cms.ContentInfo.load(bytes.fromhex(pdf[start:end].decode("ascii")))  # padding ignored
        info = old["content"]["signer_infos"][0]
        if _has_signature_ts(info):
            continue
        digest = hashlib.sha256(info["signature"].native).digest()
        try:
            token = await tsa.async_timestamp(digest, "sha256")
        except Exception as exc:
            raise LtvUnavailable(f"the TSA {ctx.settings.tsa_url} did not answer: {exc}") from exc
        new = cms.ContentInfo.load(old.dump())
        new_info = new["content"]["signer_infos"][0]
        attrs = list(new_info["unsigned_attrs"]) if new_info["unsigned_attrs"].native else []
        attrs.append(cms.CMSAttribute({"type": "signature_time_stamp_token", "values": [token]}))
        new_info["unsigned_attrs"] = cms.CMSAttributes(attrs)
        encoded = new.dump(force=True)
        check = cms.ContentInfo.load(encoded)
        check_info = check["content"]["signer_infos"][0]
        check_info["unsigned_attrs"] = list(check_info["unsigned_attrs"])[:-1] or None
        if check.dump(force=True) != old.dump():
            raise LtvError("re-encoding the signature would change a signed byte; not upgraded")
        digits = encoded.hex().encode("ascii")
        if len(digits) > end - start:
            raise LtvError(
                "the signature has no room for a time-stamp (signed before the box reserved it)"
            )
        out[start:end] = digits + b"0" * (end - start - len(digits))
    return bytes(out)


def _covered_by_another(start: int, sigs: Sequence[Any], own: Any) -> bool:
    """Whether the byte at ``start`` is inside the signed ranges of another signature."""
    for other in sigs:
        if other is own:
            continue
        a, b, c, d = (int(x) for x in other.sig_object["/ByteRange"])
        if a <= start < a + b or c <= start < c + d:
            return True
    return False


def _classify(exc: Exception) -> LtvError:
    from pyhanko_certvalidator.errors import InsufficientRevinfoError, RevokedError

    if isinstance(exc, LtvError):
        return exc
    if isinstance(exc, RevokedError):
        return SignerRevoked(f"a certificate is revoked: {exc}")
    if isinstance(exc, (InsufficientRevinfoError, OSError, asyncio.TimeoutError)):
        return LtvUnavailable(f"validation data cannot be fetched now: {exc}")
    cause = exc.__cause__ or exc.__context__
    if cause is not None and isinstance(cause, Exception) and cause is not exc:
        inner = _classify(cause)
        if isinstance(inner, (LtvUnavailable, SignerRevoked)):
            return inner
    return LtvError(f"the signature cannot be upgraded: {exc}")


async def _upgrade(pdf: bytes, ctx: LtvContext) -> bytes:
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign.signers import PdfTimeStamper
    from pyhanko.sign.validation.dss import async_add_validation_info

    stamped = await _with_signature_timestamps(pdf, ctx)
    vc = ctx.validation_context()
    current = stamped
    for k in range(len(_reader(stamped).embedded_regular_signatures)):
        sig = _reader(current).embedded_regular_signatures[k]
        buf = io.BytesIO()
        await async_add_validation_info(sig, vc, output=buf)
        current = buf.getvalue()
    out = io.BytesIO()
    writer = IncrementalPdfFileWriter(io.BytesIO(current))
    try:
        await PdfTimeStamper(ctx.timestamper()).async_timestamp_pdf(
            writer, "sha256", validation_context=vc, output=out
        )
    except Exception as exc:
        if "TimestampRequestError" in type(exc).__name__:
            raise LtvUnavailable(f"the TSA did not answer: {exc}") from exc
        raise
    return out.getvalue()


def _run(coro: Any) -> bytes:
    try:
        result: bytes = asyncio.run(coro)
    except Exception as exc:
        raise _classify(exc) from exc
    return result


def upgrade(pdf: bytes, ctx: LtvContext) -> Upgraded:
    """B-B (or B-T) → B-LTA: signature time-stamps, validation data, a document time-stamp."""
    if not looks_signed(pdf):
        raise NotSigned("the content is not a signed PDF")
    new = _run(_upgrade(pdf, ctx))
    return _describe(new, ctx)


def renew(pdf: bytes, ctx: LtvContext) -> Upgraded:
    """Validation data for the last document time-stamp, then a new one (B-LTA kept)."""
    from pyhanko.sign.signers import PdfTimeStamper

    async def go() -> bytes:
        out = io.BytesIO()
        await PdfTimeStamper(ctx.timestamper()).async_update_archival_timestamp_chain(
            _reader(pdf), ctx.validation_context(), in_place=False, output=out
        )
        return out.getvalue()

    return _describe(_run(go()), ctx)


def _describe(pdf: bytes, ctx: LtvContext) -> Upgraded:
    at, by = timestamp_horizon(pdf, ctx.settings)
    return Upgraded(pdf, level(pdf, ctx.roots, ctx.moment), at, by)


def timestamp_horizon(pdf: bytes, settings: LtvSettings) -> tuple[datetime, datetime]:
    """(genTime of the last document time-stamp, when it must be renewed)."""
    reader = _reader(pdf)
    stamps = list(reader.embedded_timestamp_signatures)
    if not stamps:
        raise LtvError("the PDF has no document time-stamp")
    last = stamps[-1]
    sd = last.signed_data
    gen = sd["encap_content_info"]["content"].parsed["gen_time"].native
    ends = [c.chosen["tbs_certificate"]["validity"]["not_after"].native for c in sd["certificates"]]
    ends.append(last.signer_cert["tbs_certificate"]["validity"]["not_after"].native)
    sunset = dict(settings.digest_sunset).get(str(last.md_algorithm).lower())
    if sunset:
        ends.append(datetime.combine(date.fromisoformat(sunset), datetime.min.time(), UTC))
    return gen, min(ends) - timedelta(days=settings.renew_margin_days)


@dataclass(frozen=True)
class LevelReport:
    level: str  # B-B, B-T, B-LT, B-LTA (the lowest over the file's signatures)
    intact: bool
    messages: tuple[str, ...] = field(default_factory=tuple)
    per_signature: tuple[tuple[str, str], ...] = field(default_factory=tuple)


def level_report(
    pdf: bytes, roots: Sequence[Any], moment: datetime | None = None
) -> LevelReport:
    """The PAdES baseline level pyHanko's AdES validator confirms, offline, at ``moment``."""
    from pyhanko.sign.ades.report import AdESPassed
    from pyhanko.sign.validation.ades import ades_lta_validation
    from pyhanko.sign.validation.policy_decl import (
        PdfSignatureValidationSpec,
        RevinfoOnlineFetchingRule,
        RevocationInfoGatheringSpec,
        SignatureValidationSpec,
    )
    from pyhanko_certvalidator.context import CertValidationPolicySpec
    from pyhanko_certvalidator.ltv.types import ValidationTimingInfo
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
                trust_manager=SimpleTrustManager.build(trust_roots=list(roots)),
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
    when = moment or datetime.now(UTC)
    reader = _reader(pdf)
    sigs = list(reader.embedded_regular_signatures)
    if not sigs:
        raise NotSigned("the PDF has no signature")
    found: list[str] = []
    messages: list[str] = []
    intact = True
    for sig in sigs:
        res = asyncio.run(
            ades_lta_validation(sig, spec, ValidationTimingInfo(when, when, False))
        )
        status = res.api_status
        intact = intact and bool(status is not None and status.intact and status.valid)
        if not _has_signature_ts(sig.signer_info):
            found.append("B-B")
        elif res.ades_subindic is AdESPassed.OK:
            found.append("B-LTA" if res.oldest_evidence_record_timestamp else "B-LT")
        else:
            found.append("B-T")
        if res.failure_msg:
            messages.append(str(res.failure_msg))
    return LevelReport(min(found, key=LEVELS.index), intact, tuple(messages),
                       tuple(zip((str(s.field_name) for s in sigs), found, strict=True)))


def signature_levels(
    pdf: bytes, roots: Sequence[Any], moment: datetime | None = None
) -> list[tuple[str, str]]:
    """(field name, PAdES level pyHanko confirms) of each signature, in signing order."""
    return list(level_report(pdf, roots, moment).per_signature)




def level(pdf: bytes, roots: Sequence[Any], moment: datetime | None = None) -> str:
    return level_report(pdf, roots, moment).level
