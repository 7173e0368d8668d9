"""Văn bản đi pages: drafting (from a Phụ lục I template, a PDF or a DOCX, or on paper),
new versions, submission, return and approval, the signer's signature (PIN or upload), issue
and deliveries (appliance/outgoing does the work)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from appliance.errors import LuutruError, NotFoundError, ValidationError
from appliance.fields import AUTO_FILLED
from appliance.outgoing import deliveries, drafting, issuing, layout, signing
from appliance.outgoing.docx import DOCX_MIME
from appliance.store import Store

from .common import blocking, clean, form_of, render, services
from .document_page import document_page, visible_document
from .errors import form_status
from .messages import error_field, error_text
from .reqkeys import LANG, me
from .views_documents import OUTGOING_FIELDS, _options, _recipients

TEMPLATE_FIELDS = ("body", "authority", "place", "parent_agency", "greeting")
MAX_FILE = 20 * 1024 * 1024


def template_values(form: dict[str, Any]) -> dict[str, str]:
    return {k: str(form.get(f"t_{k}") or "") for k in TEMPLATE_FIELDS}


async def upload_of(form: dict[str, Any], name: str = "file") -> tuple[bytes, str, str] | None:
    """(bytes, name, mime) of a PDF or DOCX in the form, checked by its first bytes."""
    field = form.get(name)
    if field is None or isinstance(field, str) or not getattr(field, "filename", None):
        return None
    field.file.seek(0)
    data = field.file.read(MAX_FILE + 1)
    if len(data) > MAX_FILE:
        raise ValidationError("the file is too large", "file",
                              msgid="The file is larger than 20 MB.")
    if data.startswith(b"%PDF-"):
        return data, str(field.filename), "application/pdf"
    if data.startswith(b"PK\x03\x04") and str(field.filename).lower().endswith(".docx"):
        return data, str(field.filename), DOCX_MIME
    raise ValidationError("not a PDF or DOCX", name, value=str(field.filename), msgid=(
        "%(label)s: '%(value)s' is neither a PDF nor a DOCX file. Choose the file again."))


def source_of(store: Store, mode: str, form: dict[str, Any], meta: dict[str, Any],
              upload: tuple[bytes, str, str] | None) -> drafting.Source | None:
    """The draft version the form describes (or None for a paper document without one)."""
    if mode == "template":
        return drafting.from_template(store, template_values(form), meta)
    if upload is not None:
        return drafting.from_file(upload[0], upload[1], upload[2], meta, mode == "paper")
    if mode == "file":
        raise ValidationError("no file", "file", msgid="Choose the PDF or DOCX of the draft.")
    return None


def _form_page(request: web.Request, values: dict[str, Any], error: Any = None,
               status: int = 200) -> web.Response:
    s = services(request)
    lang = request.get(LANG, "vi")
    field = error_field(error) if isinstance(error, LuutruError) else None
    text = error_text(error, lang) if isinstance(error, LuutruError) else error
    place = layout.place_of(s.store.config.org_name)
    return render(request, "outgoing.html", status=status, values=values, error=text,
                  error_field=field, auto=AUTO_FILLED["outgoing"],
                  template_types=layout.TEMPLATE_TYPES, default_place=place,
                  **_options(s, request))


async def outgoing_form(request: web.Request) -> web.Response:
    """The form; ``?relation=recall|correct&document=ID`` drafts a recall or correction."""
    values: dict[str, Any] = {"mode": "template"}
    kind, doc_id = request.query.get("relation"), request.query.get("document")
    if kind in ("recall", "correct") and doc_id:
        old = await visible_document(request, doc_id)
        number = f"{old.data.get('CodeNumber')}/{old.data.get('CodeNotation')}"
        what = "thu hồi" if kind == "recall" else "đính chính"
        values.update(relation_type=kind, relation_document=old.id,
                      Subject=f"Về việc {what} {old.data.get('TypeName', '')} số {number}",
                      SignerPosition=old.data.get("SignerPosition", ""),
                      SignerFullName=old.data.get("SignerFullName", ""))
    return _form_page(request, values)


async def outgoing_create(request: web.Request) -> web.Response:
    s = services(request)
    form = await form_of(request)
    values: dict[str, Any] = clean(form, OUTGOING_FIELDS)
    mode = str(form.get("mode") or "template")
    to_text = str(form.get("To") or "")
    shown = {**values, **{f"t_{k}": v for k, v in template_values(form).items()},
             "To": to_text, "mode": mode}
    relation = None
    if form.get("relation_type") and form.get("relation_document"):
        relation = {"type": str(form["relation_type"]), "document": str(form["relation_document"])}
        shown.update(relation_type=relation["type"], relation_document=relation["document"])
    try:
        if to_text.strip():
            values["To"] = _recipients(to_text)
        s.store.prepare_document("outgoing", values)
        s.store.check_can_write()  # a full disk or a halted store, before the file is read
        upload = await upload_of(form)
        source = await blocking(source_of, s.store, mode, form, values, upload)
        res = await blocking(drafting.create, s.store, values, source, me(request).username,
                             mode == "paper", relation)
    except LuutruError as exc:
        return _form_page(request, shown, exc, form_status(exc))
    raise web.HTTPSeeOther(f"/documents/{res.record.id}?done=drafted")


async def _act(request: web.Request, fn: Any, *args: Any, done: str,
               values: dict[str, Any] | None = None, **kw: Any) -> web.Response:
    rec = await visible_document(request, request.match_info["id"])
    try:
        await blocking(fn, services(request).store, rec.id, *args, **kw)
    except LuutruError as exc:
        status = form_status(exc, 422 if isinstance(exc, ValidationError)
                             else int(getattr(exc, "status", 0) or 409))
        return await document_page(request, rec.id, error=exc, status=status,
                                   values=values or {})
    raise web.HTTPSeeOther(f"/documents/{rec.id}?done={done}#outgoing")


async def document_version(request: web.Request) -> web.Response:
    s = services(request)
    rec = await visible_document(request, request.match_info["id"])
    form = await form_of(request)
    mode = str(form.get("mode") or "template")
    values = {f"t_{k}": v for k, v in template_values(form).items()}
    values["Note"] = str(form.get("Note") or "")
    try:
        upload = await upload_of(form)
        meta = dict(rec.data)
        source = await blocking(source_of, s.store, mode, form, {
            k: meta.get(k) for k in ("TypeName", "Subject", "SignerFullName", "SignerPosition",
                                     "CodeNotation", "To") if meta.get(k)}, upload)
        if source is None:
            raise ValidationError("no content", "file",
                                  msgid="Choose the PDF or DOCX of the draft.")
    except LuutruError as exc:
        return await document_page(request, rec.id, error=exc, status=422, values=values)
    return await _act(request, drafting.new_version, source, me(request).username,
                      values["Note"] or None, done="version", values=values)


async def document_submit(request: web.Request) -> web.Response:
    form = await form_of(request)
    post = await request.post()
    reviewers = [str(v) for v in post.getall("Reviewers", []) if v]
    values = {"Approver": str(form.get("Approver") or ""), "Comment": str(form.get("Comment")
                                                                         or "")}
    return await _act(request, drafting.submit, values["Approver"], me(request).username,
                      reviewers, values["Comment"] or None, done="submitted", values=values)


async def document_approve(request: web.Request) -> web.Response:
    form = await form_of(request)
    comment = str(form.get("Comment") or "")
    return await _act(request, drafting.approve, me(request).username, comment or None,
                      done="approved", values={"Comment": comment})


async def document_return(request: web.Request) -> web.Response:
    form = await form_of(request)
    comment = str(form.get("Comment") or "")
    return await _act(request, drafting.return_draft, me(request).username, comment,
                      done="returned", values={"Comment": comment})


async def document_sign(request: web.Request) -> web.Response:
    """The signer's PIN (a key on the box), or the PDF they signed elsewhere."""
    form = await form_of(request)
    user = me(request)
    rec = await visible_document(request, request.match_info["id"])
    try:
        upload = await upload_of(form, "signed")
    except LuutruError as exc:
        return await document_page(request, rec.id, error=exc, status=422)
    if upload is not None:
        from appliance.accounts import Role

        return await _act(request, signing.sign_uploaded, user.username, upload[0],
                          user.role is Role.CLERK, done="signed")
    return await _act(request, signing.sign_on_box, user.username, str(form.get("pin") or ""),
                      done="signed")


async def document_issue(request: web.Request) -> web.Response:
    form = await form_of(request)
    post = await request.post()
    internal = tuple(str(v) for v in post.getall("Internal", []) if v)
    return await _act(request, issuing.issue, me(request).username,
                      agency_pin=str(form.get("agency_pin") or "") or None,
                      file_code=str(form.get("FileCode") or "") or None, internal=internal,
                      done="issued")


async def document_delivery(request: web.Request) -> web.Response:
    form = await form_of(request)
    n = _int(request.match_info["n"])
    status = str(form.get("Status") or "")
    user = me(request).username
    if status == "package":
        from appliance.edxml.signing import open_signer

        def package(store: Store, doc_id: str) -> Any:
            with open_signer(store.data_dir) as key:
                return deliveries.package_electronic(store, doc_id, n, user, key)

        return await _act(request, package, done="delivery")
    envelopes = _int(str(form.get("Envelopes") or "0")) or None
    return await _act(request, deliveries.set_status, n, status, user,
                      str(form.get("Note") or "") or None, None, envelopes, done="delivery")


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise web.HTTPNotFound() from None


async def version_file(request: web.Request) -> web.StreamResponse:
    """A draft version's PDF (every version is kept), a logged view."""
    s = services(request)
    rec = await visible_document(request, request.match_info["id"])
    n = _int(request.match_info["n"])
    versions = (rec.data.get("Drafting") or {}).get("versions") or []
    v = next((x for x in versions if x.get("n") == n), None)
    if v is None:
        raise web.HTTPNotFound()
    await blocking(s.store.audit, "view", me(request).username, "document", rec.id,
                   {"sha256": v["sha256"], "via": "web", "version": n})
    try:
        path = s.store.content.path(v["sha256"])
    except NotFoundError:
        raise web.HTTPNotFound() from None
    return web.FileResponse(path, headers={
        "Content-Type": "application/pdf", "Cache-Control": "no-store",
        "Content-Disposition": f'inline; filename="du-thao-v{n}.pdf"',
        "X-Content-Type-Options": "nosniff"})


HANDLERS = {
    "outgoing_form": outgoing_form,
    "outgoing_create": outgoing_create,
    "document_version": document_version,
    "document_submit": document_submit,
    "document_approve": document_approve,
    "document_return": document_return,
    "document_sign": document_sign,
    "document_issue": document_issue,
    "document_delivery": document_delivery,
    "document_version_file": version_file,
}
