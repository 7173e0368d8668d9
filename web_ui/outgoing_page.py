"""What the document page shows of a văn bản đi's workflow and offers this user: versions,
steps with comments, approval, signature, issue, deliveries, recall and correction."""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

from appliance.accounts import Role
from appliance.outgoing import deliveries, drafting, signers
from appliance.results import Record

from . import permissions, queries
from .reqkeys import me
from .services import Services


def _related(s: Services, rec: Record) -> list[dict[str, Any]]:
    """Issued or drafted documents recalling or correcting this one."""
    rows = s.store.reader().execute(
        'SELECT id, "CodeNumber", "CodeNotation", "Status", "Relation" FROM documents WHERE '
        "json_extract(\"Relation\", '$.document') = ?", (rec.id,)).fetchall()
    return [{"id": r[0], "number": f"{r[1]}/{r[2]}" if r[1] else None, "status": r[3],
             "type": json.loads(r[4]).get("type")} for r in rows]


def _common_name(subject: str) -> str:
    """The CN of an RFC 4514 subject ('CN=Nguyễn Văn An,O=…' → 'Nguyễn Văn An')."""
    m = re.search(r"(?:^|,)CN=((?:\\.|[^,])*)", subject)
    return m.group(1).replace("\\", "") if m else subject


def delivery_rows(s: Services, rec: Record) -> list[dict[str, Any]]:
    """Each delivery with the time of its status and the addressee's status messages that
    did not move it (unsigned, untrusted, forged, or late), for the page and the API."""
    from appliance.edxml.answers import answers_for

    kept: dict[int, list[dict[str, Any]]] = {}
    for a in answers_for(s.store.reader(), rec.id):
        if a.outcome != "applied" and a.delivery is not None:
            kept.setdefault(a.delivery, []).append(a.to_json())
    return [dict(d, status_vi=deliveries.STATUS_VI.get(str(d.get("status")), ""),
                 status_at=deliveries.status_time(d), answers=kept.get(int(d["n"]), []))
            for d in rec.data.get("Deliveries") or []]


def outgoing_view(request: web.Request, s: Services, rec: Record) -> dict[str, Any] | None:
    data = rec.data
    if data.get("Direction") != "outgoing":
        return None
    d = data.get("Drafting") or {}
    related = _related(s, rec)
    if not d and not related and not data.get("Deliveries"):
        return None
    user = me(request)
    users = [u for u in s.accounts.list_users() if not u.disabled]
    names = s.accounts.display_names()
    state = d.get("state")
    draft = data.get("Status") == "draft" and not data.get("CancelledDate") and bool(d)
    pending = [u for u in d.get("reviewers", []) if u not in d.get("approvals", [])]
    drafter_role = user.role in permissions.DRAFTERS
    mine = user.username == d.get("approver")
    profile = signers.load(s.store.data_dir, user.username) if mine else None
    issuable = draft and (d.get("paper") or state == "signed")
    view: dict[str, Any] = {
        "d": d, "state": state, "state_vi": drafting.STATE_VI.get(str(state), ""),
        "draft": draft, "names": names, "pending": pending,
        "versions": d.get("versions", []), "steps": d.get("steps", []),
        "may_version": draft and drafter_role and state in drafting.EDITABLE,
        "may_submit": draft and drafter_role and state in drafting.EDITABLE
        and bool(d.get("versions")),
        "may_approve": draft and state == "submitted" and (
            user.username in pending or (mine and not pending)),
        "may_return": draft and state in ("submitted", "approved") and (
            mine or user.username in d.get("reviewers", [])),
        "may_sign_pin": draft and state == "approved" and mine and profile is not None
        and profile.backing in ("tpm", "pkcs11"),
        "may_upload_signed": draft and state == "approved" and (
            mine or user.role is Role.CLERK),
        "may_issue": issuable and user.role is Role.CLERK,
        "leaders": [(u.username, u.full_name or u.username) for u in users
                    if u.role is Role.LEADER],
        "reviewers": [(u.username, u.full_name or u.username) for u in users
                      if u.role in (Role.LEADER, Role.HANDLER, Role.ARCHIVIST)],
        "colleagues": [(u.username, u.full_name or u.username) for u in users
                       if u.role is not Role.TECHNICIAN],
        "preview": None, "related": related, "relation": data.get("Relation"),
        "deliveries": delivery_rows(s, rec), "status_vi": deliveries.STATUS_VI,
        "next": deliveries.NEXT, "may_send": user.role is Role.CLERK
        and data.get("Status") == "issued",
        "template": (d.get("versions") or [{}])[-1].get("template") or {},
        "signed_by": _common_name(str((d.get("signature") or {}).get("subject") or "")),
    }
    if issuable:
        view["preview"] = queries.preview_number(s.store, data, s.store.clock.now().date())
    return view
