"""Secrets at rest (session secret, token PINs): sealed to the TPM when there is one.

A TPM-sealed secret is a keyed-hash object under the owner storage key: the file holds only
the TPM-wrapped blob, which no other TPM (nor this one after a clear) can open. Without a TPM
the secret is a 0600 file and every description of it says so.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from .. import cbor
from ..errors import EncodingError
from ..fsutil import write_atomic
from .base import Backing
from .errors import SealedSecretError, TpmBlobCorruptedError, TpmForeignKeyError
from .loader import KeyConfig
from .tpm import DEFAULT_TCTI, import_tss, map_tpm_error, owner_srk, tpm_context, with_room

SECRETS_DIR = "secrets"
MAX_SECRET = 128  # TPM2B_SENSITIVE_DATA holds at most 128 bytes
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_FORMAT = 1
_ACTION_RESTORE = "restore {path} from the appliance's backup, or set the secret again"
_ACTION_FOREIGN = (
    "this secret was sealed by another TPM, or this TPM was cleared; set the secret again "
    "(a new session secret only logs every user out)"
)


class SecretStore:
    """Named small secrets in ``<data>/secrets``; sealed to the TPM at ``tcti`` if one is given."""

    def __init__(self, data_dir: Path, tcti: str | None) -> None:
        self._dir = data_dir / SECRETS_DIR
        self._tcti = tcti

    @property
    def backing(self) -> Backing:
        return Backing.SOFTWARE if self._tcti is None else Backing.TPM

    def describe(self) -> str:
        if self._tcti is None:
            return "secrets are NOT sealed (no TPM): stored as files readable only by the service"
        return f"secrets are sealed to the TPM at {self._tcti}"

    def _path(self, name: str) -> Path:
        if not _NAME.match(name):
            raise SealedSecretError(f"secret name {name!r} is not of the form [a-z0-9_-]")
        suffix = ".secret" if self._tcti is None else ".sealed"
        return self._dir / f"{name}{suffix}"

    def exists(self, name: str) -> bool:
        return self._path(name).exists()

    def seal(self, name: str, secret: bytes) -> None:
        """Store ``secret`` under ``name``, replacing any earlier value."""
        if not 0 < len(secret) <= MAX_SECRET:
            raise SealedSecretError(f"a sealed secret must be 1..{MAX_SECRET} bytes")
        path = self._path(name)
        if self._tcti is None:
            write_atomic(path, secret, mode=0o600)
            return
        blob = _tpm_seal(self._tcti, secret)
        write_atomic(path, cbor.dumps(blob), mode=0o600)

    def unseal(self, name: str) -> bytes:
        """Return the secret stored under ``name``; raise if absent, foreign or damaged."""
        path = self._path(name)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            other = path.with_suffix(".sealed" if self._tcti is None else ".secret")
            if other.exists():
                raise SealedSecretError(
                    f"secret {name!r} was stored by a different backing ({other.name}); "
                    "set it again on this appliance"
                ) from None
            raise SealedSecretError(f"secret {name!r} does not exist") from None
        if self._tcti is None:
            return raw
        return _tpm_unseal(self._tcti, raw, path)

    def get_or_create(self, name: str, size: int = 32) -> bytes:
        """The secret ``name``, made from os.urandom(size) and stored the first time."""
        if not self.exists(name):
            self.seal(name, os.urandom(size))
        return self.unseal(name)


def open_secret_store(data_dir: Path, key: KeyConfig) -> SecretStore:
    """Seal to the device key's TPM when the device key is in one; else plain 0600 files."""
    if key.backing is Backing.TPM:
        return SecretStore(data_dir, str(key.options.get("tcti", DEFAULT_TCTI)))
    return SecretStore(data_dir, None)


def _sealed_template() -> Any:
    from tpm2_pytss.constants import TPMA_OBJECT
    from tpm2_pytss.types import TPM2B_PUBLIC

    # No SENSITIVEDATAORIGIN: we supply the data. noDA: empty auth, nothing to guess.
    attrs = (
        TPMA_OBJECT.FIXEDTPM | TPMA_OBJECT.FIXEDPARENT | TPMA_OBJECT.NODA | TPMA_OBJECT.USERWITHAUTH
    )
    return TPM2B_PUBLIC.parse("keyedhash", objectAttributes=attrs)


def _tpm_seal(tcti: str, secret: bytes) -> dict[str, Any]:
    tss = import_tss()
    from tpm2_pytss.types import (
        TPM2B_SENSITIVE_CREATE,
        TPM2B_SENSITIVE_DATA,
        TPMS_SENSITIVE_CREATE,
    )

    sensitive = TPM2B_SENSITIVE_CREATE(TPMS_SENSITIVE_CREATE(data=TPM2B_SENSITIVE_DATA(secret)))
    with tpm_context(tcti) as ectx:

        def create() -> tuple[Any, Any, bytes]:
            srk = owner_srk(ectx)
            try:
                private, public, *_ = ectx.create(srk, sensitive, _sealed_template())
                return private, public, bytes(ectx.tr_get_name(srk))
            finally:
                ectx.flush_context(srk)

        try:
            private, public, srk_name = with_room(ectx, tcti, create)
        except tss.TSS2_Exception as exc:
            raise map_tpm_error(exc, tcti, "sealing a secret") from exc
    return {
        "format": _FORMAT,
        "srk_name": srk_name,
        "public": bytes(public.marshal()),
        "private": bytes(private.marshal()),
    }


def _tpm_unseal(tcti: str, raw: bytes, path: Path) -> bytes:
    tss = import_tss()
    from tpm2_pytss.types import TPM2B_PRIVATE, TPM2B_PUBLIC

    try:
        blob = cbor.loads(raw)
        if not isinstance(blob, dict) or blob.get("format") != _FORMAT:
            raise EncodingError("not a sealed-secret file")
        public, _ = TPM2B_PUBLIC.unmarshal(bytes(blob["public"]))
        private, _ = TPM2B_PRIVATE.unmarshal(bytes(blob["private"]))
        srk_name = bytes(blob["srk_name"])
    except Exception as exc:  # any parse failure is damage to the file
        raise TpmBlobCorruptedError(
            f"sealed secret {path} is damaged ({exc})", _ACTION_RESTORE.format(path=path), tcti
        ) from exc
    with tpm_context(tcti) as ectx:

        def load_and_unseal() -> bytes:
            srk = owner_srk(ectx)
            try:
                if bytes(ectx.tr_get_name(srk)) != srk_name:
                    raise TpmForeignKeyError(
                        f"sealed secret {path} belongs to another TPM", _ACTION_FOREIGN, tcti
                    )
                handle = ectx.load(srk, private, public)
            finally:
                ectx.flush_context(srk)
            try:
                return bytes(ectx.unseal(handle))
            finally:
                ectx.flush_context(handle)

        try:
            return with_room(ectx, tcti, load_and_unseal)
        except tss.TSS2_Exception as exc:
            err = map_tpm_error(exc, tcti, "unsealing a secret", path)
            if isinstance(err, TpmBlobCorruptedError):
                raise TpmBlobCorruptedError(
                    f"the TPM rejects sealed secret {path} ({exc})",
                    _ACTION_RESTORE.format(path=path),
                    tcti,
                ) from exc
            raise err from exc
