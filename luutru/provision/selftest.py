"""The self-test at the end of provisioning: TPM, disk, clock, scanners, centre, mDNS.

Each check gives pass / warn / fail / skipped with the reason a technician can act on, and
never raises. Tests point SANE at a private config folder and mDNS at loopback: the default
SANE configuration probes the whole LAN, and so would mDNS on every interface.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.clock import TZ, Clock
from appliance.config import ApplianceConfig

CENTRE_TIMEOUT_S = 5.0
CLOCK_SKEW_WARN_S = 300.0


@dataclass(frozen=True)
class SelfTestOptions:
    sane_config_dir: Path | None = None  # None: the system's SANE configuration
    escl_interfaces: tuple[str, ...] | None = None  # None: every interface
    escl_timeout_s: float = 3.0
    mdns_interfaces: tuple[str, ...] | None = None  # None: every interface
    mdns_timeout_s: float = 5.0
    skip: frozenset[str] = field(default_factory=frozenset)  # check names not to run


def _check(name: str, status: str, reason: str, detail: dict[str, Any] | None = None) -> Any:
    from firmware_hooks.result import Check, CheckStatus

    return Check(name, CheckStatus(status), reason, detail or {})


def check_scanners(opts: SelfTestOptions) -> Any:
    """USB scanners through SANE and network scanners announcing eSCL (`_uscan._tcp`)."""
    from appliance.capture.sources.escl import discover
    from appliance.capture.sources.sane import list_devices

    env = {"SANE_CONFIG_DIR": str(opts.sane_config_dir)} if opts.sane_config_dir else {}
    sane = list_devices(env)
    try:
        escl = [f"{s.name} ({s.url})" for s in discover(opts.escl_timeout_s,
                                                        opts.escl_interfaces)]
    except Exception as exc:  # no multicast route: eSCL discovery is only a help
        escl = []
        note = f"; eSCL discovery failed: {exc}"
    else:
        note = ""
    detail = {"sane": sane, "escl": escl}
    found = len(sane) + len(escl)
    if not found:
        return _check("scanners", "fail", "no scanner found: plug in the USB scanner or switch on "
                      "the network scanner, then re-run the self-test" + note, detail)
    return _check("scanners", "pass", f"{found} scanner(s): " + ", ".join(sane + escl) + note,
                  detail)


def check_centre(url: str | None, clock: Clock) -> tuple[Any, float | None]:
    """GET <centre>/healthz; also returns the clock skew against the centre's Date header."""
    if not url:
        return _check("centre", "skipped", "no centre URL given (offline, or by USB stick)"), None
    target = url.rstrip("/") + "/healthz"
    started = time.monotonic()
    try:
        with urllib.request.urlopen(target, timeout=CENTRE_TIMEOUT_S) as resp:
            body = json.loads(resp.read(65536) or b"{}")
            date = resp.headers.get("Date")
    except urllib.error.HTTPError as exc:
        return _check("centre", "fail", f"the centre answered HTTP {exc.code} at {target}"), None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return _check("centre", "fail", f"the centre cannot be reached at {target}: {reason}",
                      {"url": target}), None
    rtt = time.monotonic() - started
    skew = None
    if date:
        theirs = email.utils.parsedate_to_datetime(date)
        skew = (clock.now() - theirs).total_seconds()
    detail = {"url": target, "rtt_ms": round(rtt * 1000), "origin": body.get("origin")}
    return _check("centre", "pass", f"reachable ({round(rtt * 1000)} ms)", detail), skew


def check_clock(clock: Clock, skew: float | None) -> Any:
    now = clock.now()
    detail: dict[str, Any] = {"now": now.isoformat(timespec="seconds")}
    if now < dt.datetime(2025, 1, 1, tzinfo=TZ):
        return _check("clock", "fail", "the clock is before 2025: set the date (and check the "
                      "RTC battery)", detail)
    if skew is not None:
        detail["skew_s"] = round(skew, 1)
        if abs(skew) > CLOCK_SKEW_WARN_S:
            return _check("clock", "warn", f"the clock is {skew:+.0f} s off the centre's: enable "
                          "NTP or set the time", detail)
        return _check("clock", "pass", f"within {abs(skew):.0f} s of the centre", detail)
    return _check("clock", "pass", "plausible (no centre to compare with)", detail)


def check_mdns(org_name: str, opts: SelfTestOptions) -> Any:
    """Announce a probe name and resolve it from a second responder: mDNS works here."""
    from zeroconf import IPVersion, ServiceInfo, Zeroconf

    from web_ui.mdns import instance_name

    name = f"{instance_name(org_name)}-kiem-tra"[:63]
    kw: dict[str, Any] = {"ip_version": IPVersion.V4Only}
    if opts.mdns_interfaces:
        kw["interfaces"] = list(opts.mdns_interfaces)
    address = opts.mdns_interfaces[0] if opts.mdns_interfaces else _lan_address()
    stype = "_http._tcp.local."
    info = ServiceInfo(stype, f"{name}.{stype}", addresses=[socket.inet_aton(address)], port=9,
                       properties={"product": "luutru-selftest"}, server=f"{name}.local.")
    announcer = browser = None
    try:
        announcer = Zeroconf(**kw)
        announcer.register_service(info, allow_name_change=True)
        browser = Zeroconf(**kw)
        found = browser.get_service_info(stype, info.name,
                                         timeout=int(opts.mdns_timeout_s * 1000))
    except Exception as exc:  # no multicast-capable interface, port 5353 taken, …
        return _check("mdns", "fail", f"mDNS does not work here: {exc}")
    finally:
        if announcer is not None:
            try:
                announcer.unregister_service(info)
            finally:
                announcer.close()
        if browser is not None:
            browser.close()
    if found is None:
        return _check("mdns", "fail", "the appliance's name was announced but not heard back: "
                      "the network blocks multicast (5353/udp)")
    return _check("mdns", "pass", f"{instance_name(org_name)}.local can be found on the LAN",
                  {"resolved": found.parsed_addresses()})


def _lan_address() -> str:
    """The address this host would use towards the LAN (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: routing lookup only
            return str(s.getsockname()[0])
        except OSError:
            return "127.0.0.1"


def run_selftest(
    data_dir: Path,
    config: ApplianceConfig,
    clock: Clock,
    centre_url: str | None,
    opts: SelfTestOptions,
) -> list[Any]:
    from firmware_hooks.checks import Limits, check_disk, check_tpm

    out: list[Any] = []
    skipped = opts.skip

    def wanted(name: str) -> bool:
        if name in skipped:
            out.append(_check(name, "skipped", "not asked for (--skip-check)"))
            return False
        return True

    if wanted("tpm"):
        out.append(check_tpm(config))
    if wanted("disk"):
        out.append(check_disk(data_dir, Limits()))
    skew = None
    centre = None
    if wanted("centre"):
        centre, skew = check_centre(centre_url, clock)
    if wanted("clock"):
        out.append(check_clock(clock, skew))
    if wanted("scanners"):
        out.append(check_scanners(opts))
    if centre is not None:
        out.append(centre)
    if wanted("mdns"):
        out.append(check_mdns(config.org_name, opts))
    return out
