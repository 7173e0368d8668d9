"""Creating a data folder: identity, device key, schema, code lists, the agency's own fonds."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import schema
from .clock import SystemClock
from .codelists import load_bundled
from .config import CONFIG_NAME, DB_NAME, ApplianceConfig, save_config
from .errors import ConfigError
from .fsutil import private_dirs, write_atomic
from .identifiers import validate_organ_id
from .keys.loader import create_key, open_key
from .store import Store, create_tables
from .text import nfc

PUBLIC_KEY_NAME = "keys/device.pub.pem"


@dataclass(frozen=True)
class InitResult:
    data_dir: Path
    org_id: str
    kid: str
    backing: str
    codelists_version: str


def init_data_dir(
    data_dir: Path,
    org_id: str,
    org_name: str,
    key_kind: str = "software",
    agency_abbr: str = "UBND",
    key_options: dict[str, object] | None = None,
) -> InitResult:
    """Make a new data folder; refuses one that already holds a configuration."""
    if (data_dir / CONFIG_NAME).exists() or (data_dir / DB_NAME).exists():
        raise ConfigError(f"{data_dir} already holds a luutru data folder")
    org_id = validate_organ_id(org_id)
    org_name = nfc(org_name)
    if not org_name or len(org_name) > 200:
        raise ConfigError("the agency name must be 1–200 characters")
    private_dirs(data_dir)
    key_config = create_key(data_dir, key_kind, dict(key_options or {}))
    key = open_key(data_dir, key_config)
    write_atomic(data_dir / PUBLIC_KEY_NAME, key.public_key_pem().encode())
    config = ApplianceConfig(
        org_id=org_id,
        org_name=org_name,
        agency_abbr=nfc(agency_abbr),
        origin=f"luutru/{org_id}/{key.kid.hex()}",
        key=key_config,
    )
    save_config(data_dir, config)
    conn = schema.connect(str(data_dir / DB_NAME))
    create_tables(conn)
    conn.close()
    raw, _ = load_bundled()
    with Store(data_dir, config, key, SystemClock()) as store:
        version = store.load_codelists(raw, actor="luutru init")
        store.create_fonds(
            {"FondCode": org_id, "FondName": f"Phông {org_name}", "Status": "open"},
            actor="luutru init",
        )
    return InitResult(data_dir, org_id, key.kid.hex(), key.backing.value, version)
