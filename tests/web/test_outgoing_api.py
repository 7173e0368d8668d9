"""The văn bản đi contract over HTTP (issue 19): paths, roles, 409 reasons in Vietnamese."""

from __future__ import annotations

import asyncio
import io
import json

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from appliance.accounts import Role
from appliance.outgoing import pdfform, signers
from tests import outgoing_kit as kit
from tests.pki import SoftHsmToken, SoftwareAgencyKey, pem, softhsm_token
from tests.swtpm import Swtpm, swtpm, swtpm_factory

from .conftest import ROLE_USERS, services_of

__all__ = ["softhsm_token", "swtpm", "swtpm_factory"]
pytestmark = pytest.mark.asyncio
LEADER, CLERK, HANDLER = (ROLE_USERS[r] for r in (Role.LEADER, Role.CLERK, Role.HANDLER))


async def _token(client: TestClient, role: Role) -> dict[str, str]:
    s = services_of(client)
    _, secret = s.accounts.create_token(ROLE_USERS[role], "test", "test")
    return {"Authorization": f"Bearer {secret}"}


def _meta() -> dict[str, object]:
    return kit.meta(SignerFullName="Người leader", SignerPosition="Chủ tịch")


@pytest.mark.parametrize("paper", [False])
async def test_the_contract_from_draft_to_deliveries(
    client: TestClient, swtpm: Swtpm, softhsm_token: SoftHsmToken, paper: bool,
) -> None:
    """Draft from a template (handler), submit, a clerk cannot approve (403), return with a
    comment, new version, approve, issue unsigned → 409 in Vietnamese, sign with the PIN,
    a leader cannot issue (403), the clerk issues, deliveries listed."""
    s = services_of(client)
    store = s.store
    ca = kit.make_ca()
    kit.setup_agency(store, ca, swtpm.tcti)
    kit.setup_pkcs11_signer(store, ca, softhsm_token, LEADER, "Người leader")
    h = {r: await _token(client, r) for r in (Role.LEADER, Role.CLERK, Role.HANDLER)}

    r = await client.post("/api/v1/documents/outgoing", headers=h[Role.HANDLER],
                          json={**_meta(), "template": {"body": kit.TEMPLATE_BODY}})
    assert r.status == 201, await r.text()
    doc = (await r.json())["document"]["id"]
    base = f"/api/v1/documents/{doc}"
    r = await client.post(f"{base}/submit", headers=h[Role.HANDLER], json={"approver": LEADER})
    assert r.status == 200, await r.text()
    r = await client.post(f"{base}/approve", headers=h[Role.CLERK], json={})
    assert r.status == 403
    r = await client.post(f"{base}/issue", headers=h[Role.CLERK], json={})
    assert r.status == 409
    assert "chưa được duyệt" in (await r.json())["error"]["message"]
    r = await client.post(f"{base}/issue", headers={**h[Role.CLERK], "Cookie": "luutru_lang=en"},
                          json={})
    assert r.status == 409 and "not approved" in (await r.json())["error"]["message"]
    r = await client.post(f"{base}/return", headers=h[Role.LEADER],
                          json={"comment": "Bổ sung căn cứ pháp lý"})
    assert r.status == 200
    r = await client.post(f"{base}/versions", headers=h[Role.HANDLER],
                          json={"template": {"body": "Căn cứ Luật Phòng, chống thiên tai;\n\n"
                                             + kit.TEMPLATE_BODY}, "note": "Đã bổ sung"})
    assert r.status == 201, await r.text()
    await client.post(f"{base}/submit", headers=h[Role.HANDLER], json={"approver": LEADER})
    r = await client.post(f"{base}/approve", headers=h[Role.LEADER], json={"comment": "Đồng ý"})
    assert r.status == 200
    r = await client.post(f"{base}/issue", headers=h[Role.CLERK], json={})
    assert r.status == 409 and "chưa ký" in (await r.json())["error"]["message"]
    r = await client.post(f"{base}/sign", headers=h[Role.LEADER],
                          json={"role": "signer", "pin": "999999"})
    assert r.status == 422 and "PIN" in (await r.json())["error"]["message"]
    r = await client.post(f"{base}/sign", headers=h[Role.LEADER],
                          json={"role": "signer", "pin": softhsm_token.pin})
    assert r.status == 200, await r.text()
    r = await client.post(f"{base}/issue", headers=h[Role.LEADER], json={})
    assert r.status == 403
    r = await client.post(f"{base}/issue", headers=h[Role.CLERK], json={"internal": [HANDLER]})
    assert r.status == 200, await r.text()
    issued = (await r.json())["document"]["data"]
    assert issued["CodeNumber"] == "01" and issued["Status"] == "issued"
    r = await client.get(f"{base}/deliveries", headers=h[Role.HANDLER])
    items = (await r.json())["items"]
    assert [(i["channel"], i["status"]) for i in items] == [
        ("paper", "pending"), ("electronic", "pending"), ("internal", "sent")]
    r = await client.post(f"{base}/deliveries/1", headers=h[Role.CLERK], json={"status": "sent"})
    assert r.status == 200
    r = await client.get("/api/v1/signers", headers=h[Role.CLERK])
    cert = (await r.json())["items"][0]["certificate"]
    assert cert["days_left"] > 300 and cert["warning"] is False


async def test_external_signature_uploaded_as_multipart(client: TestClient, swtpm: Swtpm) -> None:
    """A PDF drafted as multipart, signed elsewhere by the registered certificate, uploaded
    by the clerk on the leader's behalf; another person's signature is refused (422)."""
    s = services_of(client)
    ca = kit.make_ca()
    kit.setup_agency(s.store, ca, swtpm.tcti)
    outsider = SoftwareAgencyKey.make("Người leader")
    signers.configure_external(s.store.data_dir, LEADER)
    signers.import_cert(s.store.data_dir, LEADER, pem(outsider.cert) + pem(outsider.ca.cert))
    h = {r: await _token(client, r) for r in (Role.LEADER, Role.CLERK)}
    form = aiohttp.FormData()
    form.add_field("metadata", json.dumps({**_meta(), "SignerFullName": kit.SIGNER_NAME}),
                   content_type="application/json")
    form.add_field("file", io.BytesIO(kit.typed_pdf()), filename="du-thao.pdf",
                   content_type="application/pdf")
    r = await client.post("/api/v1/documents/outgoing", headers=h[Role.CLERK], data=form)
    assert r.status == 201, await r.text()
    doc = (await r.json())["document"]["id"]
    base = f"/api/v1/documents/{doc}"
    r = await client.post(f"{base}/submit", headers=h[Role.CLERK], json={"approver": LEADER})
    assert r.status == 200, await r.text()
    r = await client.post(f"{base}/approve", headers=h[Role.LEADER], json={})
    assert r.status == 200, await r.text()
    prepared_sha = (await r.json())["document"]["data"]["Content"][0]["sha256"]
    prepared = (await client.get(f"{base}/content/{prepared_sha}?download=1",
                                 headers=h[Role.LEADER])).content
    body = await prepared.read()

    def upload(pdf: bytes) -> aiohttp.FormData:
        f = aiohttp.FormData()
        f.add_field("file", io.BytesIO(pdf), filename="da-ky.pdf", content_type="application/pdf")
        return f

    wrong = await asyncio.to_thread(pdfform.sign_field, body, SoftwareAgencyKey.make(
        "Ai Đó").pdf_signer(), pdfform.SIGNER_FIELD, None, "x")
    r = await client.post(f"{base}/sign", headers=h[Role.CLERK], data=upload(wrong))
    assert r.status == 422 and "không được nhận" in (await r.json())["error"]["message"]
    good = await asyncio.to_thread(pdfform.sign_field, body, outsider.pdf_signer(),
                                   pdfform.SIGNER_FIELD, kit.signature_png(), kit.SIGNER_NAME)
    r = await client.post(f"{base}/sign", headers=h[Role.CLERK], data=upload(good))
    assert r.status == 200, await r.text()
    r = await client.post(f"{base}/issue", headers=h[Role.CLERK], json={})
    assert r.status == 200, await r.text()
