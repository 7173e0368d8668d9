"""The XML-DSig of an edXML envelope, made and checked with signxml (no hand-made crypto).

Real packages carry an enveloped ``Signature`` in ``edXMLHeader`` whose reference is the
whole document (``URI=""``, enveloped-signature transform, exclusive C14N), with the signer's
X.509 certificate in ``KeyInfo``; older ones sign with RSA-SHA1, which is still checked but
reported as weak. Ours sign with the agency key (ECDSA P-256 in the TPM, or the token's key)
and SHA-256, the signature in the same place, so one check reads both.

Ours also say when they were made, the standard way: XAdES (ETSI EN 319 132) signed
properties, made by signxml's ``XAdESSigner``: ``SigningTime`` (ISO 8601 in Vietnam time,
+07:00) and ``SigningCertificateV2`` in a ``ds:Object``, covered by their own reference in
``SignedInfo``; changing the time breaks the signature. Packages from elsewhere carry plain
XML-DSig (no time) or XAdES: both are checked, the time read only from signed properties.

``check_signature`` answers only "is it intact, what does it cover, which certificate made
it": whether that certificate is trusted and was unrevoked is the validator's question
(``verify``), asked of pyhanko-certvalidator with the managed trust roots.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from lxml import etree

from .model import DSIG_NS

PLACEHOLDER_ID = "placeholder"  # signxml's marker for where an enveloped signature goes
XADES_NS = "http://uri.etsi.org/01903/v1.3.2#"
VN = ZoneInfo("Asia/Ho_Chi_Minh")


class XmlSigningKey(Protocol):
    """What signing an envelope needs: a private-key object (its operations may run in a
    TPM or on a token) and the certificate chain, leaf first."""

    chain: list[x509.Certificate]

    def xml_signing_key(self) -> Any: ...


@dataclass(frozen=True)
class DsigCheck:
    """What the envelope's signature says about itself."""

    present: bool
    intact: bool = False
    whole_document: bool = False  # a reference covers the whole package (URI="")
    certificate: x509.Certificate | None = None
    others: tuple[x509.Certificate, ...] = ()  # the other certificates in KeyInfo
    algorithm: str = ""
    weak: bool = False  # SHA-1
    problem: str = ""  # why it is not intact (Vietnamese)
    references: tuple[str, ...] = field(default=())
    signing_time: str = ""  # XAdES SigningTime, ISO 8601, only when the signature covers it


def add_placeholder(header: Any) -> None:
    """Mark where the signature goes (the end of ``edXMLHeader``, as real packages have it)."""
    etree.SubElement(header, f"{{{DSIG_NS}}}Signature", Id=PLACEHOLDER_ID)


def signing_time_text(when: dt.datetime) -> str:
    """ISO 8601 to the second, in Vietnam time (+07:00)."""
    return when.astimezone(VN).isoformat(timespec="seconds")


def _xades_signer(when: dt.datetime, **kwargs: Any) -> Any:
    """signxml's XAdES signer, with the signing time ours (signxml writes its own UTC now)."""
    from signxml.xades.xades import XAdESDataObjectFormat, XAdESSigner

    class _Signer(XAdESSigner):
        def add_signing_time(self, props: Any, sig_root: Any, signing_settings: Any) -> None:
            el = etree.SubElement(props, f"{{{XADES_NS}}}SigningTime", nsmap=self.namespaces)
            el.text = signing_time_text(when)

        def _add_reference_to_signed_info(self, sig_root: Any, node_to_reference: Any,
                                          **attrs: Any) -> None:
            # signxml digests these references with the signature's C14N but names no
            # transform, so a verifier applies the default (inclusive C14N 1.0) and, with the
            # exclusive C14N real packages use, the digests differ; name it explicitly.
            import base64

            node = node_to_reference
            signed_info = sig_root.find(f"{{{DSIG_NS}}}SignedInfo")
            ref = etree.SubElement(signed_info, f"{{{DSIG_NS}}}Reference",
                                   nsmap=self.namespaces, URI=f"#{node.get('Id')}", **attrs)
            transforms = etree.SubElement(ref, f"{{{DSIG_NS}}}Transforms",
                                          nsmap=self.namespaces)
            etree.SubElement(transforms, f"{{{DSIG_NS}}}Transform", nsmap=self.namespaces,
                             Algorithm=self.c14n_alg.value)
            etree.SubElement(ref, f"{{{DSIG_NS}}}DigestMethod", nsmap=self.namespaces,
                             Algorithm=self.digest_alg.value)
            digest = self._get_digest(self._c14n(node, algorithm=self.c14n_alg),
                                      algorithm=self.digest_alg)
            etree.SubElement(ref, f"{{{DSIG_NS}}}DigestValue",
                             nsmap=self.namespaces).text = base64.b64encode(digest).decode()

    return _Signer(
        data_object_format=XAdESDataObjectFormat(Description="edXML (QCVN 102:2016)",
                                                 MimeType="text/xml"),
        **kwargs,
    )


def sign_document(root: Any, key: XmlSigningKey, when: dt.datetime | None = None) -> bytes:
    """Sign ``root`` (which holds a placeholder) enveloped over the whole document, with the
    XAdES signing time ``when`` (now when not given)."""
    from signxml import methods
    from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureMethod

    private = key.xml_signing_key()
    if isinstance(private, ec.EllipticCurvePrivateKey):
        method = SignatureMethod.ECDSA_SHA256
    elif isinstance(private, rsa.RSAPrivateKey):
        method = SignatureMethod.RSA_SHA256
    else:
        raise TypeError(f"cannot sign XML with a {type(private).__name__}")
    signer = _xades_signer(
        when or dt.datetime.now(dt.UTC),
        method=methods.enveloped,
        signature_algorithm=method,
        digest_algorithm=DigestAlgorithm.SHA256,
        c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
    )
    pems = [c.public_bytes(serialization.Encoding.PEM).decode() for c in key.chain]
    signed = signer.sign(root, key=private, cert=pems)
    out: bytes = etree.tostring(signed, xml_declaration=True, encoding="UTF-8")
    return out


def _certificates(sig: Any) -> list[x509.Certificate]:
    out = []
    for el in sig.iter(f"{{{DSIG_NS}}}X509Certificate"):
        body = "".join((el.text or "").split())
        if not body:
            continue
        import base64

        try:
            out.append(x509.load_der_x509_certificate(base64.b64decode(body)))
        except ValueError:
            continue
    return out


def find_signature(root: Any) -> Any:
    for el in root.iter(f"{{{DSIG_NS}}}Signature"):
        return el
    return None


def check_signature(raw: bytes, root: Any) -> DsigCheck:
    """Check the envelope's XML-DSig (``raw`` is the package as received, ``root`` its parse)."""
    from signxml.algorithms import DigestAlgorithm, SignatureMethod
    from signxml.exceptions import InvalidInput, InvalidSignature
    from signxml.verifier import SignatureConfiguration

    sig = find_signature(root)
    if sig is None:
        return DsigCheck(present=False)
    certs = _certificates(sig)
    method_el = sig.find(f"{{{DSIG_NS}}}SignedInfo/{{{DSIG_NS}}}SignatureMethod")
    algorithm = method_el.get("Algorithm", "") if method_el is not None else ""
    refs = tuple(
        r.get("URI", "") or ""
        for r in sig.iterfind(f"{{{DSIG_NS}}}SignedInfo/{{{DSIG_NS}}}Reference")
    )
    weak = "sha1" in algorithm.lower() or any(
        "sha1" in (d.get("Algorithm") or "").lower()
        for d in sig.iter(f"{{{DSIG_NS}}}DigestMethod")
    )
    if not certs:
        return DsigCheck(True, algorithm=algorithm, weak=weak, references=refs,
                         problem="Chữ ký XML không kèm chứng thư số (X509Certificate).")
    leaf = _leaf(certs)
    # signxml also checks the certificate's validity period, at the time it is asked: that is
    # the validator's question, asked at the time the package was received (``verify``), so
    # here the crypto alone is checked, at a time the certificate is valid by definition.
    config = SignatureConfiguration(
        verification_time=leaf.not_valid_before_utc,
        require_x509=True,
        location=".//",
        expect_references=True,
        signature_methods=frozenset(SignatureMethod),
        digest_algorithms=frozenset(DigestAlgorithm),
    )
    others = tuple(c for c in certs if c is not leaf)
    xades = sig.find(f"{{{DSIG_NS}}}Object/{{{XADES_NS}}}QualifyingProperties") is not None
    try:
        signing_time = _verify(raw[raw.find(b"<"):], leaf, config, xades, len(refs))
    except (InvalidSignature, InvalidInput) as exc:
        return DsigCheck(True, False, "" in refs, leaf, others, algorithm, weak,
                         f"Chữ ký XML không khớp với nội dung gói tin ({exc}).", refs)
    return DsigCheck(True, True, "" in refs, leaf, others, algorithm, weak, "", refs,
                     signing_time)


def _verify(data: bytes, leaf: x509.Certificate, config: Any, xades: bool, refs: int) -> str:
    """signxml's verdict (raises when not intact); the XAdES signing time when signed."""
    import dataclasses

    from signxml.verifier import XMLVerifier
    from signxml.xades.xades import XAdESVerifier, XAdESVerifyResult

    if not xades:
        XMLVerifier().verify(data, x509_cert=leaf, expect_config=config)
        return ""
    results = XAdESVerifier().verify(
        data, x509_cert=leaf, expect_config=dataclasses.replace(config, expect_references=refs))
    for r in results:
        if isinstance(r, XAdESVerifyResult):
            when = r.signed_properties.findtext(f"{{{XADES_NS}}}SigningTime") or ""
            return _iso(when.strip())
    return ""


def _iso(text: str) -> str:
    """A signed xsd:dateTime as ISO 8601 ('' when it is not one)."""
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).isoformat()
    except ValueError:
        return ""


def _leaf(certs: list[x509.Certificate]) -> x509.Certificate:
    """The end-entity certificate among those in KeyInfo: the one that issued none of the
    others (a chain may come in any order)."""
    subjects_issuing = {c.issuer for c in certs if c.issuer != c.subject}
    for c in certs:
        if c.subject not in subjects_issuing:
            return c
    return certs[0]
