"""Create and open the device key named by the data folder's configuration."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .base import Backing, KeyProvider
from .software import SoftwareKey


@dataclass(frozen=True)
class KeyConfig:
    """How the device key is held; stored in the data folder's appliance.json."""

    backing: Backing
    path: str  # relative to the data folder: the seed (software) or the TSS2 PEM blob (tpm)
    options: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"backing": self.backing.value, "path": self.path, "options": dict(self.options)}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> KeyConfig:
        try:
            options = dict(value.get("options", {}))
            return cls(Backing(value["backing"]), str(value["path"]), options)
        except (KeyError, ValueError) as exc:
            raise ConfigError(f"key configuration is malformed: {exc}") from exc


SOFTWARE_KEY_PATH = "keys/device-ed25519.key"
TPM_KEY_PATH = "keys/device-tpm.pem"
KEY_KINDS = ("software", "tpm", "auto")
# Options a caller may pass for a TPM key; the rest of its options are written by create_key.
_TPM_CALLER_OPTIONS = ("tcti", "sign_delay_ms", "noda")


def create_key(data_dir: Path, kind: str, options: dict[str, Any] | None = None) -> KeyConfig:
    """Make a new device key of ``kind``: "software", "tpm", or "auto" (TPM if one answers).

    For "tpm"/"auto", ``options`` may hold "tcti" (default device:/dev/tpmrm0) and
    "sign_delay_ms" (a fixed added delay per signature, for tests and benches). The returned
    config says which backing was chosen; the caller shows it loudly.
    """
    opts = dict(options or {})
    if kind == "auto":
        from . import tpm

        tcti = str(opts.get("tcti", tpm.DEFAULT_TCTI))
        kind = Backing.TPM.value if tpm.probe(tcti) else Backing.SOFTWARE.value
    if kind == Backing.SOFTWARE.value:
        SoftwareKey.create(data_dir / SOFTWARE_KEY_PATH)
        return KeyConfig(Backing.SOFTWARE, SOFTWARE_KEY_PATH, {})
    if kind == Backing.TPM.value:
        from . import tpm

        unknown = set(opts) - set(_TPM_CALLER_OPTIONS)
        if unknown:
            raise ConfigError(f"unknown TPM key options: {', '.join(sorted(unknown))}")
        tcti = str(opts.get("tcti", tpm.DEFAULT_TCTI))
        info = tpm.create_key_blob(data_dir / TPM_KEY_PATH, tcti, bool(opts.get("noda", True)))
        saved: dict[str, Any] = {
            "tcti": tcti,
            "kid": info.kid.hex(),
            "srk_name": info.srk_name.hex(),
        }
        if opts.get("sign_delay_ms"):
            saved["sign_delay_ms"] = float(opts["sign_delay_ms"])
        return KeyConfig(Backing.TPM, TPM_KEY_PATH, saved)
    raise ConfigError(f"unknown key kind {kind!r}; use one of {', '.join(KEY_KINDS)}")


def open_key(data_dir: Path, config: KeyConfig) -> KeyProvider:
    """Open the configured key; never falls back to another kind."""
    if config.backing is Backing.SOFTWARE:
        return SoftwareKey.load(data_dir / config.path)
    if config.backing is Backing.TPM:
        from . import tpm

        opts = config.options
        try:
            expected = (
                tpm.TpmKeyInfo(bytes.fromhex(opts["kid"]), bytes.fromhex(opts["srk_name"]))
                if "kid" in opts and "srk_name" in opts
                else None
            )
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"TPM key configuration is malformed: {exc}") from exc
        return tpm.TpmKey.open(
            data_dir / config.path,
            str(opts.get("tcti", tpm.DEFAULT_TCTI)),
            expected=expected,
            sign_delay_ms=float(opts.get("sign_delay_ms", 0.0)),
        )
    raise ConfigError(f"key backing {config.backing.value!r} is not supported by this build")
