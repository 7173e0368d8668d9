"""Active content in a PDF: scripts, actions that run or fetch things, attached files.

Every way a PDF enters the box (web and API upload, scan-to-folder, capture uploads) asks
``find_active`` before anything is stored, because a record is kept for decades, synced to
the province and opened on many office PCs.

The walk visits every object of the file (referenced or not), and inside each one every
dictionary and array nested directly in it, so an action written as a direct dictionary
inside an annotation inside a page is seen as well as one that is an object of its own.

What is allowed: links inside the document (``/GoTo``), the four page-turning named actions
(``/Named`` with ``/NextPage``, ``/PrevPage``, ``/FirstPage``, ``/LastPage``), and web links
(``/URI``) whose address is ``http:``, ``https:`` or ``mailto:``. A web link cannot run code
or read a file; the viewer shows the address and asks before opening it, and official
documents cite web pages (vanban.chinhphu.vn) that clerks need to follow. Any other action
in an action's place (``/OpenAction``, ``/A``, ``/Next``, the triggers of ``/AA``) is
refused, as is JavaScript anywhere (``/JS``, ``/JavaScript``), XFA forms, attached files
(``/EmbeddedFiles``, ``/EF``, ``/FileAttachment`` annotations) and media annotations that
carry their own players or scripts (``/RichMedia``, ``/Screen``, ``/Movie``, ``/Sound``,
``/3D``).
"""

from __future__ import annotations

from typing import Any

from .errors import UnsafeContentError

ALLOWED_ACTIONS = frozenset({"/GoTo", "/URI", "/Named"})
NAVIGATION = frozenset({"/NextPage", "/PrevPage", "/FirstPage", "/LastPage"})
URI_SCHEMES = ("http:", "https:", "mailto:")
# Keys whose value is an action (a dictionary) or, for /Next, an action or an array of them.
ACTION_KEYS = ("/A", "/OpenAction", "/Next")
# Keys that mean active content or an attachment wherever they appear.
ACTIVE_KEYS = frozenset({
    "/JS", "/JavaScript", "/EmbeddedFiles", "/EF", "/XFA", "/RichMediaContent",
    "/RichMediaSettings",
})
# Action types that are refused wherever they appear, even outside an action's place.
ACTIVE_ACTIONS = frozenset({
    "/JavaScript", "/Launch", "/SubmitForm", "/ImportData", "/GoToR", "/GoToE",
    "/RichMediaExecute", "/Rendition",
})
ACTIVE_ANNOTS = frozenset({"/FileAttachment", "/RichMedia", "/Screen", "/Movie", "/Sound", "/3D"})
_ATTACHMENT = frozenset({"/EmbeddedFiles", "/EF", "/EmbeddedFile", "/FileAttachment"})


def find_active(pdf: Any) -> list[str]:
    """The kinds of active content in an open ``pikepdf.Pdf``, sorted; empty when it is clean."""
    import pikepdf

    found: set[str] = set()
    containers = (pikepdf.Dictionary, pikepdf.Stream, pikepdf.Array)
    # Each indirect object is a root of its own; inside it, only direct children are walked
    # (an indirect child is a root too), so every object is seen once and cycles cannot loop.
    stack: list[Any] = [pdf.trailer]
    stack.extend(o for o in pdf.objects if isinstance(o, containers))
    while stack:
        obj = stack.pop()
        if isinstance(obj, pikepdf.Array):
            children: Any = obj
        else:
            d = obj.stream_dict if isinstance(obj, pikepdf.Stream) else obj
            _check_dict(d, found)
            children = d.values()
        for child in children:
            if isinstance(child, containers) and not child.is_indirect:
                stack.append(child)
    return sorted(found)


def refuse_active(pdf: Any) -> None:
    """Raise UnsafeContentError when ``find_active`` finds anything."""
    found = find_active(pdf)
    if found:
        raise UnsafeContentError(found, attachment=any(f in _ATTACHMENT for f in found))


def _check_dict(d: Any, found: set[str]) -> None:
    import pikepdf

    found.update(key for key in ACTIVE_KEYS if key in d)
    kind = str(d.get("/S", ""))
    if kind in ACTIVE_ACTIONS:
        found.add(kind)
    if d.get("/Type") == "/EmbeddedFile":
        found.add("/EmbeddedFile")
    subtype = str(d.get("/Subtype", ""))
    if subtype in ACTIVE_ANNOTS:
        found.add(subtype)
    if d.get("/Type") == "/Action":
        _check_action(d, found)
    for key in ACTION_KEYS:
        value = d.get(key)
        if isinstance(value, pikepdf.Dictionary):
            _check_action(value, found)
        elif key == "/Next" and isinstance(value, pikepdf.Array):
            for item in value:
                if isinstance(item, pikepdf.Dictionary):
                    _check_action(item, found)
    triggers = d.get("/AA")
    if isinstance(triggers, pikepdf.Dictionary):
        for action in triggers.values():
            if isinstance(action, pikepdf.Dictionary):
                _check_action(action, found)


def _check_action(action: Any, found: set[str]) -> None:
    """An action dictionary in an action's place: only the allowed kinds pass."""
    if "/S" not in action:
        # /A of a structure element is its attributes, and /OpenAction may be a destination
        # array: a dictionary without /S is not an action, and a viewer would not run it.
        return
    kind = str(action.get("/S"))
    if kind not in ALLOWED_ACTIONS:
        found.add(kind)
    elif kind == "/Named" and str(action.get("/N", "")) not in NAVIGATION:
        found.add(f"/Named {action.get('/N', '')}")
    elif kind == "/URI":
        import pikepdf

        uri = action.get("/URI")
        text = bytes(uri).decode("latin-1").strip().lower() if isinstance(
            uri, pikepdf.String) else ""
        if not text.startswith(URI_SCHEMES):
            found.add("/URI " + (text.split(":", 1)[0] + ":" if ":" in text else "(no scheme)"))
