"""The ``factory-reset`` hook: destroy the device's keys and its data folder.

Refused (exit 3, nothing changed) while anything exists only here: log entries or content
the provincial centre has not confirmed, an appliance never enrolled, a quarantine, or
classified (mật) documents, which by rule never leave the appliance. ``force`` with the
confirmation phrase ``XOA DU LIEU <mã định danh>`` (diacritics optional) overrides that.

Keys go first, so an interrupted reset cannot leave a box that still signs: TPM persistent
handles holding our keys are evicted, every file under keys/, secrets/ and tls/ is
overwritten with random bytes, fsynced and removed. (On flash storage an overwrite is best
effort; with a TPM the blobs are useless without this chip's owner seed, which
``clear_tpm`` also changes; it is opt-in because a disk unlocked by the TPM would lose it too.)
Then the data folder is renamed aside and removed.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.classified import DOCUMENT_IS_CLASSIFIED_SQL
from appliance.config import DB_NAME, ApplianceConfig
from appliance.fsutil import fsync_dir
from appliance.text import fold

from .dblock import write_lock
from .errors import RefusedError
from .result import HookResult, Status
from .runner import HookConfig, provisioned_config, read_only

SECRET_DIRS = ("keys", "secrets", "tls")
PHRASE = "XOA DU LIEU {org_id}"


@dataclass(frozen=True)
class ResetOptions:
    force: bool = False
    confirm: str = ""
    clear_tpm: bool = False


def phrase_for(org_id: str) -> str:
    return PHRASE.format(org_id=org_id)


def phrase_matches(given: str, org_id: str) -> bool:
    return " ".join(fold(given).split()) == fold(phrase_for(org_id))


def blockers(data_dir: Path) -> list[str]:
    """Why erasing would lose records: whatever is not confirmed at the centre."""
    from sync.agent.status import sync_status

    conn = read_only(data_dir)
    try:
        row = conn.execute("SELECT max(idx) FROM log").fetchone()
        size = 0 if row[0] is None else int(row[0]) + 1
        classified = int(conn.execute(
            f"SELECT count(*) FROM documents WHERE {DOCUMENT_IS_CLASSIFIED_SQL}").fetchone()[0])
    finally:
        conn.close()
    st = sync_status(data_dir, size)
    out = []
    if not st.enrolled:
        out.append(f"not enrolled at a centre: none of the {size} log entries has a copy there")
    else:
        if st.pending_entries:
            out.append(f"{st.pending_entries} log entries are not confirmed by the centre")
        if st.pending_content:
            out.append(f"{st.pending_content} content files are not at the centre")
        if st.quarantined:
            out.append("the centre has quarantined this appliance")
    if classified:
        out.append(f"{classified} classified (mật) documents exist only on this appliance")
    return out


def overwrite(path: Path) -> None:
    """Overwrite a file with random bytes, fsync, remove it."""
    size = path.stat().st_size
    with path.open("r+b") as fh:
        left = size
        while left > 0:
            n = min(left, 1 << 20)
            fh.write(os.urandom(n))
            left -= n
        fh.flush()
        os.fsync(fh.fileno())
    path.unlink()


def evict_tpm_keys(config: ApplianceConfig, clear: bool) -> list[str]:
    """Evict persistent TPM objects whose public key is ours; optionally TPM2_Clear."""
    from appliance.keys.tpm import DEFAULT_TCTI
    from appliance.keys.tpm_ops import evict_keys

    tcti = str(config.key.options.get("tcti", DEFAULT_TCTI))
    return evict_keys(tcti, {str(config.key.options.get("kid", ""))} - {""}, clear)


def factory_reset(config: HookConfig, options: ResetOptions | None = None) -> HookResult:
    from appliance.keys.base import Backing

    opts = options or ResetOptions()
    data_dir = config.data_dir
    app = provisioned_config(data_dir)
    found = blockers(data_dir)
    details: dict[str, Any] = {"blockers": found, "org_id": app.org_id}
    if found:
        if not opts.force:
            raise RefusedError(
                "factory reset refused, nothing was changed: " + "; ".join(found)
                + f". To erase anyway: --force --confirm \"{phrase_for(app.org_id)}\""
            )
        if not phrase_matches(opts.confirm, app.org_id):
            raise RefusedError(
                f"the confirmation phrase is wrong; type exactly \"{phrase_for(app.org_id)}\" "
                "(nothing was changed)"
            )
    elif opts.force and opts.confirm and not phrase_matches(opts.confirm, app.org_id):
        raise RefusedError("the confirmation phrase is wrong (nothing was changed)")
    with write_lock(data_dir / DB_NAME):
        pass  # refuse while a write is in flight: the services must be stopped first
    destroyed: list[str] = []
    if app.key.backing is Backing.TPM:
        try:
            destroyed += evict_tpm_keys(app, opts.clear_tpm)
        except Exception as exc:  # the blob files still go below; report what the TPM said
            details["tpm_error"] = str(exc)
    for name in SECRET_DIRS:
        folder = data_dir / name
        if not folder.is_dir():
            continue
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
            overwrite(path)
            destroyed.append(str(path.relative_to(data_dir)))
        fsync_dir(folder)
    details["destroyed"] = destroyed
    aside = data_dir.with_name(f".{data_dir.name}.erasing")
    if aside.exists():
        shutil.rmtree(aside)
    os.replace(data_dir, aside)
    fsync_dir(aside.parent)
    shutil.rmtree(aside)
    details["data_removed"] = True
    return HookResult(
        "factory-reset", Status.OK,
        "keys destroyed and data removed" + (" (forced)" if found else ""), details=details,
    )
