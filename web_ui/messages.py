"""Errors said to people: in the page's language, naming the field as the form labels it, never
by its code name (CodeNotation, audit.view) — and which field to highlight."""

from __future__ import annotations

import re
from collections.abc import Callable

from appliance.capture.errors import (
    DecompressionBomb,
    DiskFull,
    ImageRejected,
    LowResolution,
    UnsafePdf,
)
from appliance.errors import DiskFullError, HaltedError, LuutruError, ValidationError
from appliance.fields import SCHEMAS

from . import i18n

# The form's label of each field (message ids of the catalogs, as the templates use them).
FIELD_LABELS = {
    "TypeName": "Document type",
    "CodeNumber": "Number",
    "CodeNotation": "Notation",
    "IssuedDate": "Document date",
    "OrganName": "Issuing agency (author)",
    "Subject": "Subject",
    "PageAmount": "Pages",
    "SignerPosition": "Signer's position",
    "SignerFullName": "Signer's name",
    "Priority": "Urgency",
    "ToPlaces": "Unit or person receiving it",
    "DueDate": "Reply due by",
    "Mode": "Access",
    "FileCode": "File (hồ sơ)",
    "Keyword": "Keywords",
    "Description": "Notes",
    "ArrivalDate": "Arrival date",
    "To": "Recipients",
    "Title": "File title",
    "FileNotation": "File number",
    "FileCatalog": "Year",
    "Maintenance": "Retention",
    "Rights": "Access",
    "Heading": "Heading",
    "Reason": "Reason",
    "Direction": "Incoming or outgoing",
    "Instruction": "Direction",
    "Lead": "Lead handler",
    "Support": "Co-handlers",
    "Due": "Deadline",
    "Note": "Progress",
    "Answer": "Answering document",
}
# Form fields of the văn bản đi workflow (named only as an error's field, never replaced
# inside a message's text: "file" or "pin" are ordinary words there).
FORM_LABELS = {
    "file": "Draft file (PDF or DOCX)",
    "signed": "Signed PDF",
    "pin": "Your signing PIN",
    "Comment": "Comment",
    "Approver": "Approver and signer",
    "Reviewers": "Reviewers (optional)",
    "Internal": "Also to colleagues (internal)",
    "t_body": "Body (blank line between paragraphs)",
    "template.body": "Body (blank line between paragraphs)",
    "Signer": "Signer",
    "cert": "Certificate",
    "image": "Signature image",
    "Relation": "Recall or correct this document",
    "Status": "Status",
    "role": "Signer",
}
_LABEL_VI = {f.name: f.label_vi for fields in SCHEMAS.values() for f in fields}
# Code names as they may appear inside a message without an id of its own.
_CODE_NAME = re.compile(r"\b(" + "|".join(sorted(
    {*FIELD_LABELS, *_LABEL_VI}, key=len, reverse=True)) + r")\b(?: \([^)]*\))?")


def field_label(name: str, gettext: Callable[[str], str]) -> str:
    """How the form names a field, in the page's language."""
    if name in FIELD_LABELS:
        return gettext(FIELD_LABELS[name])
    if name in FORM_LABELS:
        return gettext(FORM_LABELS[name])
    return _LABEL_VI.get(name, name)


def error_text(exc: LuutruError, lang: str) -> str:
    """The error in ``lang``, with the field's name as the form labels it."""
    gettext = i18n.translations(lang).gettext
    if isinstance(exc, ValidationError) and exc.msgid:
        label = field_label(exc.field, gettext) if exc.field else ""
        params = {**exc.params, "label": label}
        try:
            return gettext(exc.msgid) % params
        except (KeyError, TypeError, ValueError):  # a catalog entry out of step with its id
            return exc.msgid % params
    if isinstance(exc, HaltedError | DiskFullError):  # for the people at the box, no command
        return exc.english if lang == "en" else exc.vi
    capture = _capture_msgid(exc)
    if capture is not None:
        return gettext(capture) % {"name": getattr(exc, "name", "") or gettext("the file")}
    english = getattr(exc, "english", None)
    if lang == "en" and isinstance(english, str) and english:
        return english
    return _CODE_NAME.sub(lambda m: field_label(m.group(1), gettext), str(exc))


def _capture_msgid(exc: LuutruError) -> str | None:
    """A scan or photo the capture pipeline refused, said for the clerk who attached it."""
    if isinstance(exc, LowResolution):
        return ("%(name)s is too coarse to read as a page (under 200 dpi on A4): scan it at "
                "300 dpi, or photograph the page closer and in good light, then attach it again.")
    if isinstance(exc, DecompressionBomb):
        return "%(name)s claims more pixels than any page has; it was refused."
    if isinstance(exc, UnsafePdf):
        return "%(name)s carries scripts, actions or attachments; it was refused."
    if isinstance(exc, ImageRejected):
        return ("%(name)s could not be used as a scan (blank, damaged or not a page): check it "
                "shows the page, then attach it again.")
    if isinstance(exc, DiskFull):
        return "The disk is full: %(name)s was not stored. Tell the technician."
    return None


def error_field(exc: LuutruError) -> str | None:
    """The form field to highlight, if the error names one."""
    if not isinstance(exc, ValidationError) or not exc.field:
        return None
    if exc.field.startswith("template."):  # the form's template fields are t_body, t_place…
        return "t_" + exc.field.removeprefix("template.")
    return exc.field
