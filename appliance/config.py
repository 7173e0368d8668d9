"""The data folder: its layout and the configuration written at ``luutru init``."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .fsutil import write_atomic
from .keys.loader import KeyConfig

CONFIG_NAME = "appliance.json"
DB_NAME = "luutru.db"
FORMAT = 1


def _string_list(value: Any, what: str) -> tuple[str, ...]:
    # tuple("02") would be ("0", "2"): a hand-edited string must not be read letter by letter.
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{what} in {CONFIG_NAME} must be a list, not {value!r}")
    return tuple(str(v) for v in value)


def resolve_data_dir(value: str | os.PathLike[str] | None) -> Path:
    """--data, then $LUUTRU_DATA, then ./var/appliance."""
    if value:
        return Path(value)
    env = os.environ.get("LUUTRU_DATA")
    return Path(env) if env else Path("var/appliance")


@dataclass(frozen=True)
class NumberingConfig:
    """How outgoing numbers are grouped into series (Decree 30 Điều 15: as the head decides)."""

    # TT 05 typeName codes that get a series of their own (e.g. legal normative documents).
    own_series_types: tuple[str, ...] = ()


@dataclass(frozen=True)
class SyncConfig:
    """How the sync agent may use the link to the provincial centre (sync/agent.py)."""

    bandwidth_kbit: int = 0  # upload cap; 0 = none
    windows: tuple[str, ...] = ()  # "HH:MM-HH:MM" in Vietnam time (may wrap midnight); () = always
    interval_s: int = 300  # between cycles when there is nothing to send
    chunk_bytes: int = 256 * 1024  # content upload chunk (a resume resends at most one)
    max_batch_entries: int = 2000
    max_batch_bytes: int = 512 * 1024
    backoff_max_s: int = 3600
    stall_timeout_s: int = 30  # a request whose body stops moving this long is given up
    read_timeout_s: int = 60  # waiting for the centre's answer
    # Content of a scan still being OCR'd or signed is held back (only its final version is
    # sent), for this long at most after the scan was filed (then what there is goes).
    capture_hold_s: int = 6 * 3600

    def to_json(self) -> dict[str, Any]:
        return {
            "bandwidth_kbit": self.bandwidth_kbit,
            "windows": list(self.windows),
            "interval_s": self.interval_s,
            "chunk_bytes": self.chunk_bytes,
            "max_batch_entries": self.max_batch_entries,
            "max_batch_bytes": self.max_batch_bytes,
            "backoff_max_s": self.backoff_max_s,
            "stall_timeout_s": self.stall_timeout_s,
            "read_timeout_s": self.read_timeout_s,
            "capture_hold_s": self.capture_hold_s,
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> SyncConfig:
        d = cls()
        try:
            return cls(
                bandwidth_kbit=int(value.get("bandwidth_kbit", d.bandwidth_kbit)),
                windows=_string_list(value.get("windows", d.windows), "sync.windows"),
                interval_s=int(value.get("interval_s", d.interval_s)),
                chunk_bytes=int(value.get("chunk_bytes", d.chunk_bytes)),
                max_batch_entries=int(value.get("max_batch_entries", d.max_batch_entries)),
                max_batch_bytes=int(value.get("max_batch_bytes", d.max_batch_bytes)),
                backoff_max_s=int(value.get("backoff_max_s", d.backoff_max_s)),
                stall_timeout_s=int(value.get("stall_timeout_s", d.stall_timeout_s)),
                read_timeout_s=int(value.get("read_timeout_s", d.read_timeout_s)),
                capture_hold_s=int(value.get("capture_hold_s", d.capture_hold_s)),
            )
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"sync settings in {CONFIG_NAME} are malformed: {exc}") from exc


MASTERS = ("off", "box", "sync")
PROFILES = ("text", "drawing")


@dataclass(frozen=True)
class ScanConfig:
    """The office's choices for new scans (appliance/capture/archival.py, versions.py)."""

    profile: str = "text"  # "drawing": keep the scan's resolution (300 dpi) for every page
    masters: str = "off"  # lossless masters: "off", "box" (kept here only) or "sync" (also sent)

    def to_json(self) -> dict[str, Any]:
        return {"profile": self.profile, "masters": self.masters}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> ScanConfig:
        out = cls(str(value.get("profile", "text")), str(value.get("masters", "off")))
        if out.profile not in PROFILES or out.masters not in MASTERS:
            raise ConfigError(
                f"scans settings in {CONFIG_NAME}: profile is one of {', '.join(PROFILES)}, "
                f"masters one of {', '.join(MASTERS)}"
            )
        return out


@dataclass(frozen=True)
class UseConfig:
    """Who decides on requests to use the archive (Luật Lưu trữ 2024: the head of the agency,
    or whom the office names) and keeps the register of use: web roles, "leader" by default."""

    approver_roles: tuple[str, ...] = ("leader",)

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> UseConfig:
        roles = value.get("approver_roles", cls.approver_roles)
        if not isinstance(roles, list | tuple) or not all(isinstance(r, str) for r in roles):
            raise ConfigError(f"use.approver_roles in {CONFIG_NAME} must be a list of roles")
        return cls(tuple(roles) or cls.approver_roles)


@dataclass(frozen=True)
class SpaceConfig:
    """How full the data disk may get (appliance/diskspace.py): below ``warn_mb`` free the
    home page and /healthz say "disk almost full"; below ``refuse_mb`` new records and files
    are refused (507) while reads and their audit entries go on; ``reserve_mb`` is held in a
    file by ``serve`` and released when the disk runs out, for the entries that keep the box
    lawful. Unset (null), each is 2048, 256 and 32 MiB, or 10 %, 2 % and 1 % of the disk when
    that is less (a small disk)."""

    warn_mb: int | None = None
    refuse_mb: int | None = None
    reserve_mb: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"warn_mb": self.warn_mb, "refuse_mb": self.refuse_mb,
                "reserve_mb": self.reserve_mb}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> SpaceConfig:
        def mb(name: str) -> int | None:
            v = value.get(name)
            if v is None:
                return None
            n = int(v)
            if n < 0:
                raise ValueError(f"{name} is negative")
            return n

        try:
            out = cls(warn_mb=mb("warn_mb"), refuse_mb=mb("refuse_mb"),
                      reserve_mb=mb("reserve_mb"))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"space settings in {CONFIG_NAME} are malformed: {exc}") from exc
        if out.warn_mb is not None and out.refuse_mb is not None and out.refuse_mb > out.warn_mb:
            raise ConfigError(f"space settings in {CONFIG_NAME} need refuse_mb <= warn_mb")
        return out


@dataclass(frozen=True)
class ApplianceConfig:
    org_id: str
    org_name: str
    agency_abbr: str
    origin: str
    key: KeyConfig
    numbering: NumberingConfig = field(default_factory=NumberingConfig)
    sync: SyncConfig = field(default_factory=SyncConfig)
    scans: ScanConfig = field(default_factory=ScanConfig)
    # The agency's former mã định danh, oldest first, kept as aliases (appliance/agency_ids.py).
    former_ids: tuple[str, ...] = ()
    # The mã phông of the agency's own fonds when it differs from org_id (after a re-keying the
    # fonds keeps its code, and numbering continues in it).
    own_fond: str | None = None
    use: UseConfig = field(default_factory=UseConfig)
    space: SpaceConfig = field(default_factory=SpaceConfig)

    @property
    def fond_code(self) -> str:
        """The agency's own fonds: where its new records go and its registers are kept."""
        return self.own_fond or self.org_id

    @property
    def all_ids(self) -> tuple[str, ...]:
        """The current mã định danh, then the former ones."""
        return (self.org_id, *reversed(self.former_ids))

    def to_json(self) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if self.former_ids:
            extra["former_ids"] = list(self.former_ids)
        if self.own_fond:
            extra["own_fond"] = self.own_fond
        return {
            "format": FORMAT,
            "org_id": self.org_id,
            "org_name": self.org_name,
            "agency_abbr": self.agency_abbr,
            "origin": self.origin,
            "key": self.key.to_json(),
            "numbering": {"own_series_types": list(self.numbering.own_series_types)},
            "sync": self.sync.to_json(),
            "scans": self.scans.to_json(),
            **extra,
            "use": {"approver_roles": list(self.use.approver_roles)},
            "space": self.space.to_json(),
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> ApplianceConfig:
        if value.get("format") != FORMAT:
            raise ConfigError(f"data folder format {value.get('format')} is not {FORMAT}")
        numbering = value.get("numbering", {})
        if not isinstance(numbering, dict):
            raise ConfigError(f"numbering in {CONFIG_NAME} must be an object")
        try:
            return cls(
                org_id=value["org_id"],
                org_name=value["org_name"],
                agency_abbr=value.get("agency_abbr", "UBND"),
                origin=value["origin"],
                key=KeyConfig.from_json(value["key"]),
                numbering=NumberingConfig(_string_list(
                    numbering.get("own_series_types", ()), "numbering.own_series_types")),
                sync=SyncConfig.from_json(value.get("sync", {})),
                scans=ScanConfig.from_json(value.get("scans", {})),
                former_ids=tuple(str(i) for i in value.get("former_ids", ())),
                own_fond=value.get("own_fond") or None,
                use=UseConfig.from_json(value.get("use", {})),
                space=SpaceConfig.from_json(value.get("space", {})),
            )
        except KeyError as exc:
            raise ConfigError(f"{CONFIG_NAME} lacks {exc}") from exc


def load_config(data_dir: Path) -> ApplianceConfig:
    path = data_dir / CONFIG_NAME
    try:
        raw = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"{data_dir} is not a luutru data folder (no {CONFIG_NAME}); run `luutru init` first"
        ) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    return ApplianceConfig.from_json(raw)


def save_config(data_dir: Path, config: ApplianceConfig) -> None:
    body = json.dumps(config.to_json(), ensure_ascii=False, indent=2) + "\n"
    write_atomic(data_dir / CONFIG_NAME, body.encode("utf-8"), mode=0o640)
