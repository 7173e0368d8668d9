"""The agency's mã định danh over time: the current one, and the former ones kept as aliases.

After the 2025 reorganisation an agency's electronic identifier (QĐ 20/2020/QĐ-TTg as amended by
QĐ 09/2025/QĐ-TTg) can change while the agency and its fonds go on. ``rekey`` records the new
code as an ``agency.rekey`` entry and the configuration then names it, keeping the old code as
an alias. Nothing sealed changes:

- hồ sơ opened before keep their mã hồ sơ, as the log holds them; ``resolve_file_code`` finds
  them by it, and also when the code is written with another of the agency's identifiers;
- the log's origin, which every checkpoint names, stays as it was, so everything verifies;
- the agency's own fonds keeps its mã phông (``ApplianceConfig.own_fond``), so numbering and
  registers continue within the year; new hồ sơ take the new code.

A former code is never given back: a re-keying to one is refused (codes are not reused).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import clock as clockmod
from . import writes
from .config import ApplianceConfig, save_config
from .errors import ConflictError, LuutruError, refusal
from .identifiers import validate_organ_id
from .kinds import Kind
from .ledger import Entry
from .text import nfc
from .writer import Txn

TABLE = "agency_rekeys"
DDL = """
CREATE TABLE IF NOT EXISTS agency_rekeys (
  log_index INTEGER PRIMARY KEY,
  old TEXT NOT NULL,
  new TEXT NOT NULL UNIQUE,
  effective TEXT NOT NULL,
  ref TEXT NOT NULL,
  reason TEXT,
  fond TEXT NOT NULL,
  actor TEXT NOT NULL,
  at TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Rekeying:
    old: str
    new: str
    effective: str
    ref: str
    reason: str | None
    fond: str
    actor: str
    at: str
    log_index: int

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _bad(vi: str, en: str, field: str) -> LuutruError:
    return refusal(vi, en, field)


def rekey(store: Any, new_id: str, effective: str | dt.date, ref: str,
          reason: str | None = None, actor: str = "system") -> Rekeying:
    """Give the agency the mã định danh ``new_id`` from ``effective`` on (the decision or notice
    that assigned it: ``ref``); the old code becomes an alias. ``store`` is an opened Store:
    its configuration is rewritten once the entry is durable."""
    config: ApplianceConfig = store.config
    new = validate_organ_id(nfc(new_id).strip(), "org_id")
    if new == config.org_id:
        raise ConflictError(f"{new} đã là mã định danh hiện tại (already the current code)")
    if new in config.former_ids:
        raise ConflictError(f"{new} là mã định danh cũ của cơ quan; mã không được dùng lại "
                            "(a former code is never reused)")
    when = clockmod.parse_date(effective, "effective")
    if when > store.clock.now().date():
        raise _bad("Ngày áp dụng mã mới sau ngày hôm nay", "effective is in the future",
                   "effective")
    ref = nfc(ref or "").strip()
    if not ref or len(ref) > 200:
        raise _bad("Hãy ghi văn bản giao mã định danh mới (tối đa 200 ký tự)",
                   "ref names the decision that assigned the code (1–200 characters)", "ref")
    why = nfc(reason or "").strip() or None
    data: dict[str, Any] = {"old": config.org_id, "new": new, "effective": when.isoformat(),
                            "ref": ref, "fond": config.fond_code}
    if why:
        data["reason"] = why[:500]

    def job(txn: Txn) -> Rekeying:
        if txn.conn.execute(f"SELECT 1 FROM {TABLE} WHERE new = ? OR old = ?",
                            (new, new)).fetchone():
            raise ConflictError(f"{new} đã từng là mã định danh của cơ quan (already used)")
        entry = writes.append_event(txn, Kind.AGENCY_REKEY, actor, data)
        project(txn.conn, entry)
        return history(txn.conn)[-1]

    done: Rekeying = store.writer_or_fail().call(job)
    store.config = _config_after(config, [done])
    save_config(store.data_dir, store.config)
    return done


def _config_after(config: ApplianceConfig, rekeyings: list[Rekeying]) -> ApplianceConfig:
    former = list(config.former_ids)
    for r in rekeyings:
        if r.old not in former:
            former.append(r.old)
    return dataclasses.replace(config, org_id=rekeyings[-1].new, former_ids=tuple(former),
                               own_fond=config.own_fond or rekeyings[0].fond)


def project(conn: sqlite3.Connection, entry: Entry) -> None:
    """Write an ``agency.rekey`` entry's row (the live path and rebuild.py)."""
    d = entry.data or {}
    conn.execute(
        f"INSERT INTO {TABLE} (log_index, old, new, effective, ref, reason, fond, actor, at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (entry.index, d["old"], d["new"], d["effective"], d["ref"], d.get("reason"),
         d["fond"], entry.actor, entry.at))


def history(conn: sqlite3.Connection) -> list[Rekeying]:
    """Every re-keying, oldest first."""
    rows = conn.execute(f"SELECT old, new, effective, ref, reason, fond, actor, at, log_index "
                        f"FROM {TABLE} ORDER BY log_index").fetchall()
    return [Rekeying(*tuple(r)) for r in rows]


def reconcile(data_dir: Path, config: ApplianceConfig,
              conn: sqlite3.Connection) -> ApplianceConfig:
    """The configuration as the log says it is: a re-keying whose entry committed but whose
    configuration was not yet written (a power cut in between) is completed here."""
    try:
        done = history(conn)
    except sqlite3.OperationalError:
        return config
    if not done or config.org_id == done[-1].new:
        return config
    fixed = _config_after(dataclasses.replace(config, former_ids=()), done)
    save_config(data_dir, fixed)
    return fixed


def equivalents(code: str, ids: tuple[str, ...]) -> list[str]:
    """The mã hồ sơ ``code`` written with each other identifier of the agency (``ids``: its
    current and former mã định danh); [] when it begins with none of them."""
    for own in ids:
        if code.startswith(own + "."):
            rest = code[len(own):]
            return [other + rest for other in ids if other != own]
    return []


def resolve_file_code(conn: sqlite3.Connection, config: ApplianceConfig,
                      code: str) -> str | None:
    """The mã hồ sơ under which ``code`` is stored: itself, or the same hồ sơ written with
    another of the agency's identifiers (a code printed before or after a re-keying)."""
    code = nfc(code).strip()
    for candidate in (code, *equivalents(code, config.all_ids)):
        if conn.execute('SELECT 1 FROM files WHERE "FileCode" = ?', (candidate,)).fetchone():
            return candidate
    return None


def file_filter(conn: sqlite3.Connection, config: ApplianceConfig,
                code: str | None) -> str | None:
    """A search's mã hồ sơ filter as stored: resolved through the agency's other codes when
    it is one of them, else as given (then it simply finds nothing)."""
    if not code:
        return code
    return resolve_file_code(conn, config, code) or code
