"""The active-content check of every PDF that enters the box (appliance/pdfcheck.py)."""

from __future__ import annotations

import io

import pikepdf
import pytest

from appliance.errors import UnsafeContentError
from appliance.pdfcheck import find_active, refuse_active

from . import active_pdfs


def _open(data: bytes) -> pikepdf.Pdf:
    return pikepdf.open(io.BytesIO(data))


@pytest.mark.parametrize("case", sorted(active_pdfs.ACTIVE))
def test_each_kind_of_active_content_is_found(case: str) -> None:
    """One crafted PDF per kind; the finding names it."""
    maker, word = active_pdfs.ACTIVE[case]
    with _open(maker()) as pdf:
        found = find_active(pdf)
        assert any(word in f for f in found), found
        with pytest.raises(UnsafeContentError) as err:
            refuse_active(pdf)
    assert word in err.value.message("vi") and word in err.value.message("en")
    assert err.value.message("vi").startswith("Tệp PDF chứa nội dung tự chạy")


def test_an_action_nested_directly_inside_an_annotation_inside_a_page_is_seen() -> None:
    """The link annotation and its action are direct dictionaries: no object of their own."""
    with _open(active_pdfs.link_javascript()) as pdf:
        annot = pdf.pages[0].obj.Annots[0]
        assert not annot.is_indirect and not annot.A.is_indirect
        assert find_active(pdf) == ["/JS", "/JavaScript"]


@pytest.mark.parametrize("case", sorted(active_pdfs.HARMLESS))
def test_links_inside_the_document_and_web_links_pass(case: str) -> None:
    with _open(active_pdfs.HARMLESS[case]()) as pdf:
        assert find_active(pdf) == []
        refuse_active(pdf)


@pytest.mark.parametrize(
    ("uri", "ok"),
    [("https://vanban.chinhphu.vn/", True), ("mailto:vanthu@example.vn", True),
     ("javascript:alert(1)", False), ("file:///etc/passwd", False), ("\\\\srv\\x", False)],
)
def test_web_links_pass_only_with_a_web_or_mail_address(uri: str, ok: bool) -> None:
    pdf = _open(active_pdfs.scan())
    action = pikepdf.Dictionary(S=pikepdf.Name.URI, URI=pikepdf.String(uri))
    pdf.pages[0].obj.Annots = pikepdf.Array([pikepdf.Dictionary(
        Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Link, A=action)])
    assert (find_active(pdf) == []) is ok


def test_attributes_of_a_structure_element_are_not_taken_for_an_action() -> None:
    """Tagged PDFs from word processors put /A (attributes, no /S) on structure elements."""
    pdf = _open(active_pdfs.scan())
    pdf.Root.StructTreeRoot = pdf.make_indirect(pikepdf.Dictionary(
        Type=pikepdf.Name.StructTreeRoot, K=pikepdf.Dictionary(
            Type=pikepdf.Name.StructElem, S=pikepdf.Name.P,
            A=pikepdf.Dictionary(O=pikepdf.Name.Layout, Placement=pikepdf.Name.Block))))
    assert find_active(pdf) == []
