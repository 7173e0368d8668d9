"""Người ký: each leader's signing key (in the TPM with their PIN, on a PKCS#11 token, or
external), certificate (with its expiry shown and warned about) and signature image; the
agency's seal image (appliance/outgoing/signers.py does the work)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from appliance.accounts import Role
from appliance.errors import LuutruError, ValidationError
from appliance.outgoing import signers

from .common import blocking, form_of, render, services
from .messages import error_field, error_text
from .reqkeys import LANG


def _rows(request: web.Request) -> list[dict[str, Any]]:
    s = services(request)
    now = datetime.now(UTC)
    out = []
    for u in s.accounts.list_users():
        if u.role is not Role.LEADER or u.disabled:
            continue
        p = signers.load(s.store.data_dir, u.username)
        chain = signers.chain_of(s.store.data_dir, p) if p else []
        out.append({"user": u, "profile": p,
                    "cert": signers.cert_status(chain[0], now) if chain else None})
    return out


async def page(request: web.Request, error: Any = None, status: int = 200,
               values: dict[str, Any] | None = None) -> web.Response:
    s = services(request)
    lang = request.get(LANG, "vi")
    field = error_field(error) if isinstance(error, LuutruError) else None
    text = error_text(error, lang) if isinstance(error, LuutruError) else error
    return render(request, "signers.html", status=status, rows=await blocking(_rows, request),
                  seal=signers.seal_image(s.store.data_dir) is not None, error=text,
                  error_field=field, values=values or {}, done=request.query.get("done"),
                  warn_days=signers.WARN_DAYS)


async def signers_page(request: web.Request) -> web.Response:
    return await page(request)


async def _file(form: dict[str, Any], name: str) -> bytes:
    field = form.get(name)
    if field is None or isinstance(field, str) or not getattr(field, "filename", None):
        raise ValidationError("no file", name, msgid="Choose a file.")
    field.file.seek(0)
    return bytes(field.file.read(2 << 20))


async def signer_update(request: web.Request) -> web.StreamResponse:
    """One form per action: a key in the TPM (answers its CSR), a token, external, the
    certificate, the signature image."""
    s = services(request)
    username = request.match_info["username"]
    form = await form_of(request)
    action = str(form.get("action") or "")
    data_dir = s.store.data_dir
    user = next((u for u in s.accounts.list_users() if u.username == username), None)
    if user is None or user.role is not Role.LEADER:
        raise web.HTTPNotFound()
    try:
        if action == "tpm":
            pin = str(form.get("pin") or "")
            if pin != str(form.get("pin2") or ""):
                raise ValidationError("the PINs differ", "pin",
                                      msgid="The two PINs are not the same.")
            tcti = s.store.config.key.options.get("tcti") or "device:/dev/tpmrm0"
            profile = await blocking(signers.create_tpm_key, data_dir, username, pin, str(tcti))
            csr = await blocking(signers.csr, data_dir, profile, pin,
                                 user.full_name or username, s.store.config.org_name)
            return web.Response(body=csr, content_type="application/pkcs10", headers={
                "Content-Disposition": f'attachment; filename="{username}.csr.pem"'})
        if action == "pkcs11":
            await blocking(signers.configure_pkcs11, data_dir, username,
                           str(form.get("module") or ""), str(form.get("token_label") or ""),
                           str(form.get("key_label") or ""))
        elif action == "external":
            await blocking(signers.configure_external, data_dir, username)
        elif action == "cert":
            await blocking(signers.import_cert, data_dir, username, await _file(form, "cert"))
        elif action == "image":
            await blocking(signers.set_image, data_dir, username, await _file(form, "image"))
        else:
            raise web.HTTPBadRequest()
    except LuutruError as exc:
        return await page(request, exc, 422)
    raise web.HTTPSeeOther(f"/signers?done={action}")


async def seal_update(request: web.Request) -> web.Response:
    s = services(request)
    form = await form_of(request)
    try:
        await blocking(signers.set_seal, s.store.data_dir, await _file(form, "image"))
    except LuutruError as exc:
        return await page(request, exc, 422)
    raise web.HTTPSeeOther("/signers?done=seal")


HANDLERS = {
    "signers": signers_page,
    "signer_update": signer_update,
    "seal_update": seal_update,
}
