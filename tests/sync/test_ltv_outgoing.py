"""An issued văn bản đi (the signer's signature, then the agency's over the whole file) goes
through the centre's B-LTA upgrade: the agency's signature stays intact, both are judged."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives.asymmetric import ec

from appliance.outgoing import layout, pdfform
from appliance.outgoing.placement import vn_date_parts
from appliance.signature_upgrade import check_upgrade
from sync.central import ltv
from tests import outgoing_kit as kit
from tests.pki_services import PkiServices, der, pki_factory

__all__ = ["pki_factory"]


def _issued(pki: PkiServices, agency_key: Any) -> bytes:
    t = layout.template_from({"body": kit.TEMPLATE_BODY}, kit.meta(CodeNotation="QĐ-UBND"),
                             "Ủy ban nhân dân xã Đông Hải")
    pdf, placement = layout.compose(t)
    prepared = pdfform.prepare(pdf, placement)
    signed = pdfform.sign_field(prepared, pki.identity("signer").pdf_signer(),
                                pdfform.SIGNER_FIELD, kit.signature_png(), kit.SIGNER_NAME)
    filled = pdfform.fill(signed, placement, {"number": "07", **vn_date_parts(3, 10, 2025)})
    agency = dataclasses.replace(pki.identity("agency"), key=agency_key)
    return pdfform.sign_field(filled, agency.pdf_signer(), pdfform.AGENCY_FIELD,
                              kit.seal_png(), "UBND")


def test_two_signatures_reach_b_lta_with_the_agency_signature_intact(
    pki_factory: Callable[..., PkiServices],
) -> None:
    """B-B in; out: every signature intact (the signer's /Contents, inside the agency's
    signed range, is left alone: time-stamping it would break the agency's signature), the
    agency's signature at B-LTA by pyHanko's AdES validator, every byte the box signed kept
    (the box's own check), pdfsig still finds both valid. pyHanko 0.38 rates the signer's
    signature B-B: its AdES validation requires a signature time-stamp attribute on each
    signature and does not take the document time-stamp that covers it (a TODO in
    pyhanko/sign/validation/ades.py), so the whole file is reported at B-B, honestly."""
    key = ec.generate_private_key(ec.SECP256R1())
    pki = pki_factory(extra={"agency": key.public_key()})
    pdf = _issued(pki, key)
    roots = (asn1_x509.Certificate.load(der(pki.root)),)
    assert ltv.level(pdf, roots) == "B-B"
    settings = ltv.LtvSettings(tsa_url=pki.tsa_url("tsa"), trust_roots=("root.pem",))
    up = ltv.upgrade(pdf, ltv.LtvContext(settings, roots))
    report = ltv.level_report(up.pdf, roots)
    assert report.intact, report.messages
    levels = ltv.signature_levels(up.pdf, roots)
    assert levels == [("ChuKyNguoiKy", "B-B"), ("ChuKyCoQuan", "B-LTA")]
    assert up.level == report.level == "B-B"
    check_upgrade(pdf, up.pdf)
    assert kit.pdfsig(up.pdf).count("Signature is Valid.") == 2
