"""The ``shutdown`` hook: sign a checkpoint over every committed entry and fold the WAL into
the database file, after the appliance's services have stopped."""

from __future__ import annotations

from appliance.config import DB_NAME

from .dblock import wal_checkpoint
from .result import Check, CheckStatus, HookResult, Status
from .runner import HookConfig, provisioned_config
from .sealing import seal


def shutdown(config: HookConfig) -> HookResult:
    provisioned_config(config.data_dir)
    sealed = seal(config.data_dir, config.clock)
    wal = wal_checkpoint(config.data_dir / DB_NAME)
    out = [
        Check("seal", CheckStatus.PASS,
              f"all {sealed['tree_size']} entries under a signed checkpoint", sealed),
        Check("wal", CheckStatus.PASS if not wal["busy"] else CheckStatus.WARN,
              "folded into the database" if not wal["busy"]
              else "busy: another process still has the database open", wal),
    ]
    return HookResult("shutdown", Status.OK, "sealed; safe to power off", checks=out)
