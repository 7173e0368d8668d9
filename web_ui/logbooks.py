"""What the page of an issued văn bản đi shows of its postal sendings and of the uses of its
kept copy (the forms are views_logbooks.py's)."""

from __future__ import annotations

from typing import Any

from appliance import clock as clockmod
from appliance import copyuse, postal
from appliance.results import Record

from .services import Services


def logbook_context(s: Services, rec: Record) -> dict[str, Any]:
    """What the document page shows of its sendings and kept-copy uses (issued văn bản đi)."""
    data = rec.data
    if data.get("Direction") != "outgoing" or data.get("Status") in (None, "draft"):
        return {"logbooks": False}
    conn = s.store.reader()
    today = clockmod.vn_date(s.store.clock.now().date())
    to = "\n".join(r.get("OrganName", "") for r in data.get("To") or ())
    return {
        "logbooks": True,
        "sendings": postal.sendings_of(conn, rec.id),
        "uses": copyuse.uses_of(conn, rec.id),
        "lb_today": today,
        "lb_defaults": {"postal": {"sent_on": today, "addressees": to},
                        "use": {"used_on": today}, "return": {"returned_on": today}},
    }
