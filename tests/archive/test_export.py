"""Decree 30 export: one PDF and one XML of a whole hồ sơ, chronological, classified kept off."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pikepdf
import pytest
from lxml import etree

from appliance.archive.errors import ClassifiedError, PackageError
from appliance.archive.export import export_file
from appliance.store import Store
from tests.archive.conftest import Hoso, attach_pdf
from tests.conftest import incoming


def test_export_is_chronological_with_all_pages(
    store: Store, make_hoso: Callable[..., Hoso], tmp_path: Path
) -> None:
    """Documents filed out of date order come out by date; every content page is in the PDF."""
    h = make_hoso(n=0, close=False)
    late = store.register_incoming(incoming(FileCode=h.code, CodeNumber="3",
                                            IssuedDate="2025-09-20")).record
    early = store.register_incoming(incoming(FileCode=h.code, CodeNumber="4",
                                             IssuedDate="2025-08-02")).record
    attach_pdf(store, late, "muộn", pages=3)
    attach_pdf(store, early, "sớm", pages=2)
    no_scan = store.register_incoming(incoming(FileCode=h.code, CodeNumber="5",
                                               IssuedDate="2025-09-01")).record
    res = export_file(store, h.code, tmp_path / "out")
    assert res.documents == 3
    pdf = pikepdf.Pdf.open(res.pdf)
    assert len(pdf.pages) == res.pages
    x = etree.parse(str(res.xml)).getroot()
    order = [v.get("id") for v in x.iter("VanBan")]
    assert order == [early.id, no_scan.id, late.id]
    dates = [v.findtext("IssuedDate") for v in x.iter("VanBan")]
    assert dates == sorted(dates)  # type: ignore[type-var]
    ranges = [(int(v.find("PdfPages").get("first")), int(v.find("PdfPages").get("last")))  # type: ignore[union-attr]
              for v in x.iter("VanBan")]
    assert [b - a + 1 for a, b in ranges] == [2, 1, 3]
    assert ranges[-1][1] == len(pdf.pages)
    text = pdf.pages[ranges[0][0] - 1].Contents.read_bytes()
    assert text  # the early scan's own page is where the XML says
    assert x.findtext("FileCode/Code") == h.code


def test_export_keeps_classified_off_and_refuses_rot(
    store: Store, make_hoso: Callable[..., Hoso], tmp_path: Path
) -> None:
    """Mật items are left out by default; a corrupt scan stops the export."""
    h = make_hoso(n=2, close=False)
    store.register_incoming(incoming(FileCode=h.code, CodeNumber="77", Mode="03"))
    res = export_file(store, h.code, tmp_path / "a")
    assert res.documents == 2 and res.excluded_classified == 1
    assert "77" not in [v.findtext("CodeNumber")
                        for v in etree.parse(str(res.xml)).getroot().iter("VanBan")]
    m = make_hoso(n=1, Rights="03")
    with pytest.raises(ClassifiedError):
        export_file(store, m.code, tmp_path / "b")
    p = store.content.path(h.docs[0].data["Content"][0]["sha256"])
    p.chmod(0o644)
    p.write_bytes(p.read_bytes()[:-1] + b"X")
    with pytest.raises(PackageError):
        export_file(store, h.code, tmp_path / "c")


def _signed_hoso(store: Store, make_hoso: Callable[..., Hoso]) -> tuple[Hoso, bytes]:
    """A hồ sơ whose first document's archival version is a signed PAdES PDF (as capture
    makes it: the signed rendition derived from the scan), the second plain."""
    from appliance.pdfsign import sign_pdf
    from tests.pki import SoftwareAgencyKey

    h = make_hoso(n=2, close=False)
    doc = h.docs[0]
    raw = doc.data["Content"][0]
    with store.content.open(raw["sha256"]) as fh:
        body = fh.read()
    signed = sign_pdf(body, SoftwareAgencyKey.make(), agency_name="Ủy ban nhân dân xã Đông Hải")
    stored = store.content.put_bytes(signed)
    store.attach_content(doc.id, [{"sha256": stored.sha256, "size": stored.size,
                                   "name": f"{h.code}.1.pdf", "mime": "application/pdf",
                                   "from": raw["sha256"], "rendition": "signed"}])
    store.close_file(h.code)
    return h, signed


def test_export_is_pdfa_with_fonts_embedded_and_no_signature_inside(
    store: Store, make_hoso: Callable[..., Hoso], tmp_path: Path
) -> None:
    """PDF/A-2b (pikepdf's validator, XMP part/conformance, an OutputIntent), every font
    embedded (pdffonts), no signature field or /Sig widget left (pikepdf, pyHanko, pdfsig);
    the signed original beside it, byte for byte, still valid (pdfsig)."""
    import pikepdf.pdfa
    from pyhanko.pdf_utils.reader import PdfFileReader

    h, signed = _signed_hoso(store, make_hoso)
    res = export_file(store, h.code, tmp_path / "out")
    report = pikepdf.pdfa.validate_written(res.pdf, "2b")
    assert report.passed, report.findings
    with pikepdf.open(res.pdf) as pdf:
        meta = pdf.open_metadata()
        assert (meta.get("pdfaid:part"), meta.get("pdfaid:conformance")) == ("2", "B")
        assert len(pdf.Root.OutputIntents) == 1
        assert "/AcroForm" not in pdf.Root
        for page in pdf.pages:
            for a in page.get("/Annots") or []:
                assert a.get("/FT") != "/Sig" and a.get("/Subtype") != "/Widget"
    with res.pdf.open("rb") as fh:
        assert PdfFileReader(fh, strict=False).embedded_signatures == []
    if shutil.which("pdffonts"):
        fonts = subprocess.run(["pdffonts", str(res.pdf)], capture_output=True, text=True,
                               check=True).stdout.splitlines()[2:]
        assert fonts and all(" yes " in f.split("TrueType")[-1] or " yes " in f for f in fonts)
        assert not any("Helvetica" in f for f in fonts), fonts
    if shutil.which("pdfsig"):
        out = subprocess.run(["pdfsig", str(res.pdf)], capture_output=True, text=True)
        text = out.stdout + out.stderr
        assert "does not contain any signatures" in text, text
        assert "Digest Mismatch" not in text and "Not total document signed" not in text
    assert res.originals is not None
    original = res.originals / f"{h.code}.0000001.pdf"
    assert original.read_bytes() == signed
    if shutil.which("pdfsig"):
        ok = subprocess.run(["pdfsig", str(original)], capture_output=True, text=True).stdout
        assert "Total document signed" in ok and "Digest Mismatch" not in ok


def test_export_pages_carry_the_print_marks(
    store: Store, make_hoso: Callable[..., Hoso], tmp_path: Path
) -> None:
    """Each document's last page ends with "TÀI LIỆU LƯU TRỮ CHUYỂN ĐỔI", its mã lưu trữ and
    the converting agency; every content page is marked "BẢN SAO"."""
    h, _ = _signed_hoso(store, make_hoso)
    res = export_file(store, h.code, tmp_path / "out")
    text = subprocess.run(["pdftotext", "-layout", str(res.pdf), "-"], capture_output=True,
                          text=True, check=True).stdout
    pages = text.split("\f")
    assert text.count("TÀI LIỆU LƯU TRỮ CHUYỂN ĐỔI") == 2
    assert f"Mã lưu trữ: {h.code}.0000001" in text and f"Mã lưu trữ: {h.code}.0000002" in text
    assert "Cơ quan, tổ chức chuyển đổi: Ủy ban nhân dân xã Đông Hải" in text
    assert sum("BẢN SAO" in p for p in pages) == res.pages - 2  # not the cover and mục lục
