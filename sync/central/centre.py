"""The centre's data folder: configuration, its own key, storage and blob store, opened once.

Layout: ``centre.json`` (configuration), ``keys/`` (the centre key; software Ed25519 by
default), ``centre.db`` (SQLite storage unless ``--db`` names another), ``blobs/`` (content).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance import clock as clockmod
from appliance.errors import ConfigError
from appliance.fsutil import write_atomic
from appliance.keys.base import Backing, KeyProvider
from appliance.keys.loader import KeyConfig, open_key
from appliance.keys.software import SoftwareKey
from appliance.keys.verify import PublicKey, load_public_key

from .. import wire
from .blobs import FolderBlobStore
from .ltv import LtvSettings
from .open import open_storage
from .storage import CentreStorage

CONFIG_NAME = "centre.json"
FORMAT = 1
KEY_PATH = "keys/centre-ed25519.key"
PUBLIC_KEY_NAME = "keys/centre.pub.pem"


@dataclass(frozen=True)
class CentreConfig:
    name: str
    origin: str
    db: str
    key: KeyConfig
    blobs: str = "blobs"
    skew_tolerance_s: int = 300  # beyond this an appliance's clock is reported, never refused
    token_ttl_hours: int = 72
    max_request_bytes: int = 32 << 20
    max_chunk_bytes: int = 16 << 20
    missing_listed: int = 500  # content hashes named in one response
    ltv: LtvSettings = field(default_factory=LtvSettings)  # signature upgrade (ltv.py)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "name": self.name,
            "origin": self.origin,
            "db": self.db,
            "key": self.key.to_json(),
            "blobs": self.blobs,
            "skew_tolerance_s": self.skew_tolerance_s,
            "token_ttl_hours": self.token_ttl_hours,
            "max_request_bytes": self.max_request_bytes,
            "max_chunk_bytes": self.max_chunk_bytes,
            "missing_listed": self.missing_listed,
            "ltv": self.ltv.to_json(),
        }

    @classmethod
    def from_json(cls, v: dict[str, Any]) -> CentreConfig:
        if v.get("format") != FORMAT:
            raise ConfigError(f"centre folder format {v.get('format')} is not {FORMAT}")
        try:
            return cls(
                name=str(v["name"]),
                origin=str(v["origin"]),
                db=str(v["db"]),
                key=KeyConfig.from_json(v["key"]),
                blobs=str(v.get("blobs", "blobs")),
                skew_tolerance_s=int(v.get("skew_tolerance_s", 300)),
                token_ttl_hours=int(v.get("token_ttl_hours", 72)),
                max_request_bytes=int(v.get("max_request_bytes", 32 << 20)),
                max_chunk_bytes=int(v.get("max_chunk_bytes", 16 << 20)),
                missing_listed=int(v.get("missing_listed", 500)),
                ltv=LtvSettings.from_json(v.get("ltv")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{CONFIG_NAME} is malformed: {exc}") from exc


@dataclass
class Centre:
    """An opened centre: what every intake call, upload and report works on."""

    data_dir: Path
    config: CentreConfig
    storage: CentreStorage
    blobs: FolderBlobStore
    key: KeyProvider
    clock: clockmod.Clock = field(default_factory=clockmod.SystemClock)

    @property
    def origin(self) -> str:
        return self.config.origin

    @property
    def public_key(self) -> PublicKey:
        return load_public_key(self.key.public_key_pem())

    def now(self) -> str:
        return clockmod.iso(self.clock.now())

    def sign_response(self, resp: wire.Response) -> bytes:
        return wire.sign_response(resp, self.key)

    def close(self) -> None:
        self.storage.close()
        self.key.close()

    def __enter__(self) -> Centre:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def init_centre(
    data_dir: Path, name: str = "Trung tâm dữ liệu tỉnh", db: str | None = None
) -> Centre:
    """Create a centre folder with its key and empty storage; refuses an existing one."""
    if (data_dir / CONFIG_NAME).exists():
        raise ConfigError(f"{data_dir} already holds a centre")
    data_dir.mkdir(parents=True, exist_ok=True)
    db = db or "sqlite:centre.db"
    # Storage first: a database that fails leaves no key behind that would make the
    # corrected command refuse ("a key already exists").
    storage = open_storage(db, data_dir)
    key = SoftwareKey.create(data_dir / KEY_PATH)
    write_atomic(data_dir / PUBLIC_KEY_NAME, key.public_key_pem().encode())
    config = CentreConfig(
        name=name,
        origin=f"luutru-centre/{key.kid.hex()}",
        db=db,
        key=KeyConfig(Backing.SOFTWARE, KEY_PATH, {}),
    )
    body = json.dumps(config.to_json(), ensure_ascii=False, indent=2) + "\n"
    write_atomic(data_dir / CONFIG_NAME, body.encode("utf-8"), mode=0o640)
    return Centre(data_dir, config, storage, FolderBlobStore(data_dir / config.blobs), key)


def open_centre(data_dir: Path, clock: clockmod.Clock | None = None) -> Centre:
    path = data_dir / CONFIG_NAME
    try:
        raw = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"{data_dir} is not a centre folder (no {CONFIG_NAME}); run `luutru central init`"
        ) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    config = CentreConfig.from_json(raw)
    key = open_key(data_dir, config.key)
    storage = open_storage(config.db, data_dir)
    return Centre(
        data_dir,
        config,
        storage,
        FolderBlobStore(data_dir / config.blobs),
        key,
        clock or clockmod.SystemClock(),
    )
