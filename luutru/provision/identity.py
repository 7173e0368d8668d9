"""The commune's identity: mã định danh, name, 2025 administrative-unit code, the fonds held.

Applying it to a data folder is idempotent: a new folder is created with ``luutru init``'s
library; an existing one must carry the same mã định danh (never overwritten), and only the
fonds and the identity record that are missing are added.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance import writes
from appliance.clock import parse_date
from appliance.config import CONFIG_NAME, load_config
from appliance.errors import LuutruError
from appliance.identifiers import validate_organ_id
from appliance.kinds import Kind
from appliance.text import nfc

from .errors import AnswerError, IdentityMismatchError

UNIT_CODE = re.compile(r"^\d{5}$", re.ASCII)  # 0–9 only, not every script's digits
IDENTITY_KIND = Kind.PROVISION_IDENTITY


@dataclass(frozen=True)
class FondsSpec:
    """A fonds held by the appliance: ``CODE|Tên phông|open`` or ``CODE|Tên|closed|dd/mm/yyyy``."""

    code: str
    name: str
    closed_on: str | None = None  # ISO date when closed

    def spec(self) -> str:
        """The form ``parse`` reads back."""
        if self.closed_on:
            return f"{self.code}|{self.name}|closed|{self.closed_on}"
        return f"{self.code}|{self.name}|open"

    @classmethod
    def parse(cls, text: str) -> FondsSpec:
        parts = [p.strip() for p in nfc(text).split("|")]
        if len(parts) < 2 or not parts[0] or not parts[1]:
            raise AnswerError(f"fonds {text!r}: write CODE|Tên phông|open or "
                              "CODE|Tên phông|closed|dd/mm/yyyy", "fonds")
        status = parts[2].lower() if len(parts) > 2 and parts[2] else "open"
        try:
            code = validate_organ_id(parts[0], "FondCode", strict=False)
        except LuutruError as exc:
            raise AnswerError(f"fonds {text!r}: {exc}", "fonds") from exc
        if status in ("open", "mở", "mo"):
            return cls(code, parts[1])
        if status in ("closed", "đóng", "dong"):
            if len(parts) < 4:
                raise AnswerError(f"fonds {text!r}: a closed fonds needs its closing date",
                                  "fonds")
            try:
                when = parse_date(parts[3], "ClosedDate").isoformat()
            except LuutruError as exc:
                raise AnswerError(f"fonds {text!r}: {exc}", "fonds") from exc
            return cls(code, parts[1], when)
        raise AnswerError(f"fonds {text!r}: status must be open or closed", "fonds")


@dataclass(frozen=True)
class Identity:
    org_id: str
    org_name: str
    unit_code: str  # mã đơn vị hành chính cấp xã, QĐ 19/2025/QĐ-TTg: 5 digits
    agency_abbr: str = "UBND"
    fonds: tuple[FondsSpec, ...] = field(default=())

    @classmethod
    def build(
        cls, org_id: str, org_name: str, unit_code: str, agency_abbr: str = "UBND",
        fonds: tuple[str, ...] = (),
    ) -> Identity:
        try:
            org_id = validate_organ_id(org_id)
        except LuutruError as exc:
            raise AnswerError(str(exc), "org_id") from exc
        name = nfc(org_name)
        if not name or len(name) > 200:
            raise AnswerError("the commune's name must be 1–200 characters", "org_name")
        code = unit_code.strip()
        if not UNIT_CODE.match(code) or code == "00000":
            raise AnswerError(
                f"mã đơn vị hành chính {unit_code!r} must be the commune's 5 digits "
                "(QĐ 19/2025/QĐ-TTg), e.g. 07123", "unit_code",
            )
        specs = tuple(FondsSpec.parse(f) for f in fonds)
        codes = [s.code for s in specs]
        if len(set(codes)) != len(codes) or org_id in codes:
            raise AnswerError("each fonds is listed once, and not the commune's own (it is "
                              "created open with the appliance)", "fonds")
        return cls(org_id, name, code, nfc(agency_abbr) or "UBND", specs)

    def record(self) -> dict[str, Any]:
        return {"OrganId": self.org_id, "OrganName": self.org_name, "UnitCode": self.unit_code,
                "Fonds": [{"FondCode": f.code, "FondName": f.name,
                           "Status": "closed" if f.closed_on else "open",
                           **({"ClosedDate": f.closed_on} if f.closed_on else {})}
                          for f in self.fonds]}


def existing_identity(data_dir: Path) -> tuple[str, str] | None:
    """(mã định danh, name) of the folder's configuration, or None when there is none."""
    if not (data_dir / CONFIG_NAME).exists():
        return None
    config = load_config(data_dir)
    return config.org_id, config.org_name


def check_same(data_dir: Path, identity: Identity) -> bool:
    """True if the folder exists for this identity; raise if it belongs to another."""
    found = existing_identity(data_dir)
    if found is None:
        if data_dir.exists() and any(data_dir.iterdir()):
            raise IdentityMismatchError(
                f"{data_dir} is not empty but holds no appliance configuration; provision into "
                "an empty folder (nothing was changed)"
            )
        return False
    if found[0] != identity.org_id and identity.org_id in load_config(data_dir).former_ids:
        raise IdentityMismatchError(
            f"{data_dir} was re-keyed from {identity.org_id} to {found[0]} (luutru identity "
            f"rekey); provision it with --org-id {found[0]}. Nothing was changed."
        )
    if found[0] != identity.org_id:
        raise IdentityMismatchError(
            f"{data_dir} already belongs to {found[0]} ({found[1]}), not {identity.org_id}; "
            "nothing was changed. A folder is never re-provisioned for another commune."
        )
    return True


def apply_identity(
    store: Any, identity: Identity, actor: str, known_index: int | None = None
) -> dict[str, Any]:
    """Add the fonds and the identity entry that are missing; returns what was added.

    ``known_index``: where an earlier run logged the identity (saves scanning the log)."""
    from appliance.errors import ConflictError

    added: list[str] = []
    for spec in identity.fonds:
        current = store.find_one("fonds", FondCode=spec.code)
        if current is None:
            store.create_fonds({"FondCode": spec.code, "FondName": spec.name, "Status": "open"},
                               actor=actor)
            current = store.find_one("fonds", FondCode=spec.code)
            added.append(spec.code)
        if spec.closed_on and current.data.get("Status") != "closed":
            with contextlib.suppress(ConflictError):  # closed meanwhile: what we wanted
                store.close_fonds(spec.code, spec.closed_on, successor=identity.org_id,
                                  actor=actor)
    body = identity.record()
    index, last = _last_identity(store, known_index)
    if last != body:
        index = store.writer_or_fail().call(
            lambda txn: writes.append_event(txn, IDENTITY_KIND, actor, body).index
        )
        return {"fonds_added": added, "identity_entry": index, "logged": True}
    return {"fonds_added": added, "identity_entry": index, "logged": False}


def _last_identity(store: Any, known: int | None) -> tuple[int | None, dict[str, Any] | None]:
    from appliance.ledger import Entry

    rows = store.entries(known, known + 1) if known is not None else store.entries()
    found: tuple[int | None, dict[str, Any] | None] = (None, None)
    for idx, raw in rows:
        entry = Entry.decode(raw, strict=False)
        if entry.kind == IDENTITY_KIND:
            found = (idx, entry.data)
    if known is not None and found[0] is None:
        return _last_identity(store, None)  # the hint was stale: look everywhere
    return found
