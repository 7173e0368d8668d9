"""The PIN of the archive's PKCS#11 token at the centre, kept so certified copies sign unattended.

The centre signs a reader's certified copy when the archivist approves it, with the archive's
agency key on its PKCS#11 token; the token asks for its user PIN at every opening. A salted
hash of the PIN would be of no use here: a token is opened with the PIN itself, never with a
verifier, so the PIN is kept as a secret in the centre's secret store
(``appliance/keys/sealing.py``, as the appliance keeps its own token's PIN): sealed to the TPM
named by ``pin_tcti`` when the centre's machine has one (the file holds a TPM-wrapped blob that
no other TPM opens), else a 0600 file inside the centre's folder, described as not sealed.
Guessing is the token's business: it counts wrong PINs and locks itself, which no file here
can do; a PIN is accepted here only if it opens the token.

The older setting ``pin_file`` (a plain file anywhere, read at every start) is migrated on
start: its PIN moves into the store and the plain file is overwritten and removed.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from appliance.fsutil import fsync_dir
from appliance.keys.sealing import SecretStore

SECRET = "catalogue-token-pin"
log = logging.getLogger(__name__)


def secret_store(data_dir: Path, tcti: str | None) -> SecretStore:
    """The centre's secret store: sealed to the TPM at ``tcti``, else 0600 files."""
    return SecretStore(data_dir, tcti)


def set_pin(data_dir: Path, pin: str, tcti: str | None = None) -> str:
    """Keep ``pin`` once it has opened the archive's token (a wrong one raises and nothing is
    kept); returns how it is kept, in words."""
    from appliance.keys.agency import open_agency_key

    with open_agency_key(data_dir, pin):
        pass
    store = secret_store(data_dir, tcti)
    store.seal(SECRET, pin.encode())
    return store.describe()


def token_pin(data_dir: Path, tcti: str | None = None) -> str | None:
    """The PIN kept by ``set_pin`` (or migrated from ``pin_file``), if any."""
    store = secret_store(data_dir, tcti)
    if not store.exists(SECRET):
        return None
    return bytes(store.unseal(SECRET)).decode()


def migrate_pin_file(data_dir: Path, pin_file: Path, tcti: str | None = None) -> bool:
    """Move the PIN of a plain ``pin_file`` into the store, then overwrite and remove the file;
    False if there is no such file (already migrated). The PIN is not tried on the token here:
    it is the one the centre has been using, and a token unplugged at start must not stop the
    catalogue; a wrong one shows at the first signature, as it did before."""
    import fcntl

    lock = data_dir / "keys" / ".pin-migration.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as held:  # the centre's worker processes start together
        fcntl.flock(held, fcntl.LOCK_EX)
        return _migrate(data_dir, pin_file, tcti)


def _migrate(data_dir: Path, pin_file: Path, tcti: str | None) -> bool:
    try:
        pin = pin_file.read_text("utf-8").strip()
    except FileNotFoundError:
        return False
    if not pin or "\0" in pin:
        raise ValueError(f"{pin_file} (the catalogue's pin_file) holds no PIN")
    secret_store(data_dir, tcti).seal(SECRET, pin.encode())
    try:
        _shred(pin_file)
    except OSError as exc:
        log.error("the token PIN is now kept in the centre's secret store, but its plain file "
                  "%s could not be removed (%s): remove it by hand", pin_file, exc)
        return True
    log.warning("the token PIN moved from %s into the centre's secret store (%s); remove "
                "pin_file from catalogue.json", pin_file,
                secret_store(data_dir, tcti).describe())
    return True


def _shred(path: Path) -> None:
    """Overwrite the file's bytes in place and fsync before unlinking it (on a file system
    that rewrites in place, the PIN is not left in the freed blocks)."""
    size = path.stat().st_size
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, b"\0" * size)
        os.fsync(fd)
    finally:
        os.close(fd)
    path.unlink()
    fsync_dir(path.parent)
