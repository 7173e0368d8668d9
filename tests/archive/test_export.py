"""Decree 30 export: one PDF and one XML of a whole hồ sơ, chronological, classified kept off."""

from __future__ import annotations

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
