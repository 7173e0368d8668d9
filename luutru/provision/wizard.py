"""The provisioning run: every step idempotent, each reported, the setup sheet at the end.

Steps: identity and device key → LAN TLS certificate → first administrator → boot evidence
(TPM quote, logged so that it reaches the centre with the first batch) → enrolment at the
centre → self-test → setup sheet. A step that fails is reported and the run goes on where
the later steps can still be useful (the sheet then says what failed); re-running does only
what is missing. An existing data folder is never overwritten or given another identity.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance import writes
from appliance.clock import Clock, iso
from appliance.errors import LuutruError
from appliance.fsutil import write_atomic
from appliance.kinds import Kind

from .identity import Identity, apply_identity, check_same
from .selftest import SelfTestOptions

STATE_NAME = "provision/state.json"
SHEET_NAME = "provision/setup-sheet.pdf"
EVIDENCE_NAME = "provision/boot-evidence.json"
ATTEST_KIND = Kind.PROVISION_BOOT_EVIDENCE
ACTOR = "luutru provision"


@dataclass(frozen=True)
class Admin:
    username: str
    password: str
    full_name: str = ""
    role: str = "leader"  # lãnh đạo: the role that may grant access (web_ui/permissions.py)


@dataclass(frozen=True)
class Answers:
    identity: Identity
    key_kind: str = "auto"
    tcti: str | None = None
    hostname: str | None = None  # default <instance>.local from the commune's name
    ips: tuple[str, ...] = ()
    url: str | None = None  # default https://<hostname>/
    tls_ca_cert: Path | None = None
    tls_ca_key: Path | None = None
    admin: Admin | None = None
    centre_url: str | None = None
    token: str | None = None
    selftest: SelfTestOptions = field(default_factory=SelfTestOptions)
    sheet: Path | None = None


@dataclass
class Step:
    name: str
    status: str  # done | kept | skipped | failed
    message: str
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "message": self.message,
                "detail": self.detail}


@dataclass
class Report:
    data_dir: Path
    steps: list[Step] = field(default_factory=list)
    checks: list[Any] = field(default_factory=list)
    sheet: Path | None = None
    url: str = ""

    @property
    def ok(self) -> bool:
        return all(s.status != "failed" for s in self.steps) and all(
            c.status.value != "fail" for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "data_dir": str(self.data_dir), "url": self.url,
                "sheet": str(self.sheet) if self.sheet else None,
                "steps": [s.to_json() for s in self.steps],
                "self_test": [c.to_json() for c in self.checks]}


def _load_state(data_dir: Path) -> dict[str, Any]:
    try:
        return dict(json.loads((data_dir / STATE_NAME).read_text("utf-8")))
    except (OSError, ValueError):
        return {}


def _save_state(data_dir: Path, state: dict[str, Any]) -> None:
    write_atomic(data_dir / STATE_NAME,
                 json.dumps(state, ensure_ascii=False, indent=1).encode(), mode=0o640)


def default_ips() -> tuple[str, ...]:
    """The host's IPv4 addresses other than loopback (names in the TLS certificate)."""
    import ifaddr

    return tuple(sorted({ip.ip for a in ifaddr.get_adapters() for ip in a.ips
                         if isinstance(ip.ip, str) and not ip.ip.startswith("127.")}))


def provision(
    data_dir: Path,
    answers: Answers,
    clock: Clock,
    on_step: Callable[[Step], None] = lambda s: None,
) -> Report:
    """Run every step; never raises for a step's failure (it is in the report)."""
    from appliance.datadir import init_data_dir
    from appliance.store import Store
    from web_ui.mdns import instance_name

    ident = answers.identity
    report = Report(data_dir)

    def step(s: Step) -> Step:
        report.steps.append(s)
        on_step(s)
        return s

    # 1. identity and device key: refuse a foreign folder before touching anything.
    exists = check_same(data_dir, ident)
    if not exists:
        opts: dict[str, object] = {"tcti": answers.tcti} if answers.tcti else {}
        res = init_data_dir(data_dir, ident.org_id, ident.org_name, answers.key_kind,
                            ident.agency_abbr, opts)
        step(Step("device-key", "done", f"{res.backing} key {res.kid} created",
                  {"kid": res.kid, "backing": res.backing}))
    state = _load_state(data_dir)
    state.update(unit_code=ident.unit_code, org_id=ident.org_id,
                 fonds=[f.spec() for f in ident.fonds])
    hostname = answers.hostname or f"{instance_name(ident.org_name)}.local"
    url = answers.url or f"https://{hostname}/"
    report.url = url
    with Store.open(data_dir, clock=clock) as store:
        key = store.key
        assert key is not None
        if exists:
            step(Step("device-key", "kept", f"{key.backing.value} key {key.kid.hex()} kept",
                      {"kid": key.kid.hex(), "backing": key.backing.value}))
        added = apply_identity(store, ident, ACTOR, state.get("identity_entry"))
        state["identity_entry"] = added["identity_entry"]
        step(Step("identity", "done" if added["logged"] or added["fonds_added"] else "kept",
                  f"{ident.org_id} {ident.org_name}, mã ĐVHC {ident.unit_code}", added))
        _save_state(data_dir, state)

        # 2. TLS certificate for the LAN.
        from .tls import ensure_certificate

        try:
            ips = answers.ips or default_ips()
            tls = ensure_certificate(data_dir, hostname, ips, ident.org_name, clock.now(),
                                     answers.tls_ca_cert, answers.tls_ca_key)
            step(Step("tls", "done" if tls.created else "kept",
                      f"{hostname} SHA-256 {tls.fingerprint}", tls.to_json()))
            state.update(tls_fingerprint=tls.fingerprint, hostname=hostname, ips=list(ips))
        except LuutruError as exc:
            step(Step("tls", "failed", str(exc)))

        # 3. first administrator, through the web UI's accounts library.
        if answers.admin is None:
            step(Step("admin", "skipped", "no administrator given: add one with "
                      "`luutru user add`"))
        else:
            step(_admin(store, answers.admin))
            state["admin"] = answers.admin.username

        # 4. boot evidence (TPM quote), logged for the centre.
        step(_evidence(data_dir, store, answers, state))
        _save_state(data_dir, state)

        # 5. enrolment.
        step(_enrol(data_dir, store, answers, clock))
        store.wait_sealed()
        config = store.config

    # 6. self-test.
    from .selftest import run_selftest

    report.checks = run_selftest(data_dir, config, clock, answers.centre_url, answers.selftest)

    # 7. setup sheet.
    from sync.agent.status import sync_status

    from .sheet import SheetData, write_sheet

    sheet_path = answers.sheet or data_dir / SHEET_NAME
    data = SheetData(
        org_name=ident.org_name, org_id=ident.org_id, unit_code=ident.unit_code, url=url,
        hostname=hostname, tls_fingerprint=str(state.get("tls_fingerprint", "—")),
        key_id=key.kid.hex(), key_backing=key.backing.value,
        centre_url=answers.centre_url, enrolled=sync_status(data_dir).enrolled,
        admin_username=state.get("admin"), made_at=clock.now(),
        checks=[c.to_json() for c in report.checks], steps=[s.to_json() for s in report.steps],
    )
    try:
        report.sheet = write_sheet(sheet_path, data)
        step(Step("sheet", "done", str(sheet_path)))
    except (LuutruError, OSError) as exc:
        step(Step("sheet", "failed", str(exc)))
    state["last_run"] = {"at": iso(clock.now()), "ok": report.ok}
    _save_state(data_dir, state)
    return report


def _admin(store: Any, admin: Admin) -> Step:
    try:
        from appliance.accounts import Accounts, ensure_schema
        from appliance.keys.sealing import open_secret_store
    except ImportError as exc:
        return Step("admin", "failed", f"the web UI's accounts library is missing: {exc}")
    try:
        ensure_schema(store)
        secret = open_secret_store(store.data_dir, store.config.key).get_or_create("session")
        accounts = Accounts(store, secret)
        existing = accounts.get_user(admin.username)
        if existing is not None:
            return Step("admin", "kept", f"{admin.username} exists ({existing.role.value})")
        user = accounts.add_user(admin.username, admin.role, admin.password, ACTOR,
                                 admin.full_name)
    except LuutruError as exc:
        return Step("admin", "failed", str(exc))
    return Step("admin", "done", f"{user.username} ({user.role.value}) created")


def _evidence(data_dir: Path, store: Any, answers: Answers, state: dict[str, Any]) -> Step:
    from appliance.keys.base import Backing

    if store.key.backing is not Backing.TPM:
        return Step("boot-evidence", "skipped", "software device key: no TPM to quote")
    if state.get("evidence_entry") is not None:
        return Step("boot-evidence", "kept", f"logged at entry {state['evidence_entry']}")
    from .attest import quote_boot_state, verify_evidence

    nonce = os.urandom(16)
    if answers.token:
        try:
            from sync import wire

            nonce = wire.token_id(wire.parse_token(answers.token)[0]) + nonce[:8]
        except LuutruError:
            pass  # a malformed token is reported by the enrolment step
    try:
        blob = (data_dir / store.config.key.path).read_bytes()
        ev = quote_boot_state(str(store.config.key.options.get("tcti")), blob, nonce)
        verify_evidence(ev, store.key.public_key_pem())
    except Exception as exc:  # a TPM or TSS failure: reported; provisioning goes on
        return Step("boot-evidence", "failed", f"{exc}")
    write_atomic(data_dir / EVIDENCE_NAME, json.dumps(ev, indent=1).encode(), mode=0o644)
    index = store.writer_or_fail().call(
        lambda txn: writes.append_event(txn, ATTEST_KIND, ACTOR, ev).index)
    state["evidence_entry"] = index
    return Step("boot-evidence", "done", f"TPM quote over PCR 0–7 logged at entry {index}",
                {"entry": index, "pcrs": ev["pcrs"]})


def _enrol(data_dir: Path, store: Any, answers: Answers, clock: Clock) -> Step:
    import asyncio

    from sync.agent.enrol import enrol_online
    from sync.agent.state import ENROLMENT_NAME, load_enrolment, sync_dir

    if (sync_dir(data_dir) / ENROLMENT_NAME).exists():
        e = load_enrolment(data_dir)
        return Step("enrol", "kept", f"enrolled at {e.centre_name or e.centre_url} as "
                    f"{e.appliance_id}")
    if not answers.centre_url or not answers.token:
        return Step("enrol", "skipped", "no centre URL and token: enrol later with `luutru "
                    "enrol`, or by USB stick")
    try:
        e = asyncio.run(enrol_online(data_dir, store.key, store.config, answers.centre_url,
                                     answers.token, clock))
    except Exception as exc:  # sync's errors, and a transport's own (bad URL, refused, TLS)
        return Step("enrol", "failed", f"enrolment failed: {exc}")
    return Step("enrol", "done", f"enrolled at {e.centre_name or e.centre_url} as "
                f"{e.appliance_id}", {"appliance_id": e.appliance_id})
