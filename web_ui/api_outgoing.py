"""/api/v1 for văn bản đi: the draft (metadata with template fields, or a PDF/DOCX as
multipart), versions, submit, approve, return, sign (PIN, or the PDF signed elsewhere as
multipart), issue, deliveries; and the signers' certificates with their expiry.

A step the draft's state does not allow answers 409 with the reason in Vietnamese (English
with the language cookie set to English); a step this person may not take, 403.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from aiohttp import BodyPartReader, web

from appliance.accounts import Role
from appliance.errors import LuutruError, ValidationError
from appliance.outgoing import deliveries, drafting, issuing, signers, signing
from appliance.outgoing.docx import DOCX_MIME

from . import queries
from .api import SYSTEM_FIELDS, doc_json, json_body
from .common import blocking, services
from .document_page import visible_document
from .errors import BadRequestError
from .reqkeys import me
from .views_outgoing import MAX_FILE, source_of

SYSTEM = SYSTEM_FIELDS | {"CodeNumber", "IssuedDate", "Drafting", "Deliveries", "Relation"}


async def _body_and_file(request: web.Request) -> tuple[dict[str, Any],
                                                         tuple[bytes, str, str] | None]:
    """A JSON body, or multipart with a ``metadata`` JSON part and a ``file`` part."""
    if not request.content_type.startswith("multipart/"):
        return await json_body(request), None
    try:
        parts = await _parts(request)
    except LuutruError:
        raise
    except Exception as exc:  # aiohttp's parser: a malformed multipart body
        raise BadRequestError(
            f"Nội dung multipart không đọc được (the multipart body cannot be read: {exc})."
        ) from None
    body: Any = {}
    if "metadata" in parts:
        try:
            body = json.loads(parts["metadata"][0].decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValidationError(f"metadata is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ValidationError("metadata must be a JSON object")
    upload = None
    if "file" in parts:
        data, name = parts["file"]
        mime = "application/pdf" if data.startswith(b"%PDF-") else DOCX_MIME \
            if data.startswith(b"PK\x03\x04") else "?"
        if mime == "?":
            raise ValidationError("not a PDF or DOCX", "file",
                                  msgid="The draft must be a PDF or a DOCX file.")
        upload = (data, name or "du-thao", mime)
    return body, upload


async def _parts(request: web.Request) -> dict[str, tuple[bytes, str]]:
    """The ``metadata`` and ``file`` parts (bytes, file name); others are ignored."""
    out: dict[str, tuple[bytes, str]] = {}
    reader = await request.multipart()
    async for part in reader:
        if not isinstance(part, BodyPartReader) or part.name not in ("metadata", "file"):
            continue
        limit = MAX_FILE if part.name == "file" else 1 << 18
        data = await part.read()
        if len(data) > limit:
            raise ValidationError("the file is too large", "file",
                                  msgid="The file is larger than 20 MB.")
        out[part.name] = (bytes(data), str(part.filename or ""))
    return out


def _split(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], bool, Any]:
    meta = {k: v for k, v in body.items() if k not in ("template", "paper", "relation")}
    bad = sorted(SYSTEM.intersection(meta))
    if bad:
        raise ValidationError(f"{', '.join(bad)} is set by the system", bad[0])
    template = body.get("template")
    if template is not None and not isinstance(template, dict):
        raise ValidationError("template is an object of fields", "template")
    return meta, template or {}, body.get("paper") is True, body.get("relation")


def _form(template: dict[str, Any]) -> dict[str, Any]:
    return {f"t_{k}": v for k, v in template.items()}


async def api_outgoing(request: web.Request) -> web.Response:
    """A draft: {metadata…, "template": {"body", …}} or multipart (metadata + file); with
    "paper": true a paper document, numbered at issue without signatures."""
    s = services(request)
    body, upload = await _body_and_file(request)
    meta, template, paper, relation = _split(body)
    mode = "template" if template else "paper" if paper else "file"
    source = await blocking(source_of, s.store, mode, _form(template), meta, upload)
    res = await blocking(drafting.create, s.store, meta, source, me(request).username, paper,
                         relation)
    preview = await blocking(queries.preview_number, s.store, res.record.data,
                             s.store.clock.now().date())
    return web.json_response({"document": doc_json(res.record), "warnings": [],
                              "number_if_issued_now": preview}, status=201)


async def api_version(request: web.Request) -> web.Response:
    s = services(request)
    rec = await visible_document(request, request.match_info["id"])
    body, upload = await _body_and_file(request)
    raw = body.get("template")
    template: dict[str, Any] = raw if isinstance(raw, dict) else {}
    meta = {k: rec.data.get(k) for k in ("TypeName", "Subject", "SignerFullName",
                                         "SignerPosition", "CodeNotation", "To")
            if rec.data.get(k)}
    source = await blocking(source_of, s.store, "template" if template else "file",
                            _form(template), meta, upload)
    assert source is not None
    new = await blocking(drafting.new_version, s.store, rec.id, source, me(request).username,
                         str(body.get("note") or "") or None)
    return web.json_response({"document": doc_json(new)}, status=201)


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise ValidationError(f"{name} must be text", name.capitalize(),
                              msgid="%(label)s must be text.")
    return value or ""


async def api_submit(request: web.Request) -> web.Response:
    """{"approver": "lanhdao", "reviewers": ["…"], "comment": "…"}."""
    s = services(request)
    rec = await visible_document(request, request.match_info["id"])
    body = await json_body(request)
    reviewers = body.get("reviewers") or []
    if not isinstance(reviewers, list) or not all(isinstance(u, str) for u in reviewers):
        raise ValidationError("reviewers is a list of user names", "Reviewers",
                              msgid="%(label)s must be a list of user names.")
    new = await blocking(drafting.submit, s.store, rec.id, _text(body, "approver"),
                         me(request).username, reviewers, _text(body, "comment") or None)
    return web.json_response({"document": doc_json(new)})


async def api_approve(request: web.Request) -> web.Response:
    s = services(request)
    rec = await visible_document(request, request.match_info["id"])
    body = await json_body(request)
    new = await blocking(drafting.approve, s.store, rec.id, me(request).username,
                         _text(body, "comment") or None)
    return web.json_response({"document": doc_json(new)})


async def api_return(request: web.Request) -> web.Response:
    s = services(request)
    rec = await visible_document(request, request.match_info["id"])
    body = await json_body(request)
    new = await blocking(drafting.return_draft, s.store, rec.id, me(request).username,
                         _text(body, "comment"))
    return web.json_response({"document": doc_json(new)})


async def api_sign(request: web.Request) -> web.Response:
    """{"role": "signer", "pin": "…"}, or multipart with ``file``: the PDF signed elsewhere."""
    s = services(request)
    rec = await visible_document(request, request.match_info["id"])
    user = me(request)
    body, upload = await _body_and_file(request)
    if upload is not None:
        new = await blocking(signing.sign_uploaded, s.store, rec.id, user.username, upload[0],
                             user.role is Role.CLERK)
    else:
        if body.get("role", "signer") != "signer":
            raise ValidationError("role is 'signer' (the agency signs at issue)", "role",
                                  msgid="%(label)s: only the signer signs here; the agency "
                                  "signs when the document is issued.")
        new = await blocking(signing.sign_on_box, s.store, rec.id, user.username,
                             _text(body, "pin"))
    return web.json_response({"document": doc_json(new)})


async def api_issue(request: web.Request) -> web.Response:
    """{"file_code"?: the hồ sơ of the bản lưu, "internal"?: [users], "agency_pin"?}."""
    s = services(request)
    rec = await visible_document(request, request.match_info["id"])
    body = await json_body(request)
    internal = body.get("internal") or []
    if not isinstance(internal, list) or not all(isinstance(u, str) for u in internal):
        raise ValidationError("internal is a list of user names", "Internal")
    res = await blocking(issuing.issue, s.store, rec.id, me(request).username,
                         agency_pin=_text(body, "agency_pin") or None,
                         file_code=_text(body, "file_code") or None, internal=tuple(internal))
    return web.json_response({"document": doc_json(res.record), "warnings": list(res.warnings)})


async def api_deliveries(request: web.Request) -> web.Response:
    from .outgoing_page import delivery_rows

    rec = await visible_document(request, request.match_info["id"])
    items = await blocking(delivery_rows, services(request), rec)
    return web.json_response({"document": rec.id, "items": items})


async def api_delivery(request: web.Request) -> web.Response:
    """{"status": "sent" | "received" | "returned", "note"?, "envelopes"?}."""
    s = services(request)
    rec = await visible_document(request, request.match_info["id"])
    body = await json_body(request)
    try:
        n = int(request.match_info["n"])
    except ValueError:
        raise web.HTTPNotFound() from None
    envelopes = body.get("envelopes")
    new = await blocking(deliveries.set_status, s.store, rec.id, n, _text(body, "status"),
                         me(request).username, _text(body, "note") or None, None,
                         envelopes if isinstance(envelopes, int) else None)
    return web.json_response({"document": doc_json(new)})


async def api_signers(request: web.Request) -> web.Response:
    """The signers' keys and certificates, with days left and a warning under 30 days."""
    s = services(request)
    now = datetime.now(UTC)

    def load() -> list[dict[str, Any]]:
        out = []
        for p in signers.all_profiles(s.store.data_dir):
            chain = signers.chain_of(s.store.data_dir, p)
            item: dict[str, Any] = {"username": p.username, "backing": p.backing,
                                    "image": p.image is not None, "certificate": None}
            if chain:
                st = signers.cert_status(chain[0], now)
                item["certificate"] = {"subject": st.subject, "issuer": st.issuer,
                                       "not_after": st.not_after.isoformat(),
                                       "days_left": st.days_left, "expired": st.expired,
                                       "warning": st.warn}
            out.append(item)
        return out

    return web.json_response({"items": await blocking(load),
                              "seal": signers.seal_image(s.store.data_dir) is not None})


HANDLERS = {
    "api_outgoing": api_outgoing,
    "api_version": api_version,
    "api_submit": api_submit,
    "api_approve": api_approve,
    "api_return": api_return,
    "api_sign": api_sign,
    "api_issue": api_issue,
    "api_deliveries": api_deliveries,
    "api_delivery": api_delivery,
    "api_signers": api_signers,
}
