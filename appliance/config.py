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
class ApplianceConfig:
    org_id: str
    org_name: str
    agency_abbr: str
    origin: str
    key: KeyConfig
    numbering: NumberingConfig = field(default_factory=NumberingConfig)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "org_id": self.org_id,
            "org_name": self.org_name,
            "agency_abbr": self.agency_abbr,
            "origin": self.origin,
            "key": self.key.to_json(),
            "numbering": {"own_series_types": list(self.numbering.own_series_types)},
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> ApplianceConfig:
        if value.get("format") != FORMAT:
            raise ConfigError(f"data folder format {value.get('format')} is not {FORMAT}")
        try:
            numbering = value.get("numbering", {})
            return cls(
                org_id=value["org_id"],
                org_name=value["org_name"],
                agency_abbr=value.get("agency_abbr", "UBND"),
                origin=value["origin"],
                key=KeyConfig.from_json(value["key"]),
                numbering=NumberingConfig(tuple(numbering.get("own_series_types", ()))),
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
