"""Opening hồ sơ: validating and completing one, and writing it (closing one is the archive's,
``archive/closing.py``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import fileplan, records, retention, writes
from .codelists import CodeLists
from .config import ApplianceConfig
from .errors import ConflictError
from .identifiers import FileCode
from .kinds import Kind
from .results import Record
from .writer import Txn


def prepare_file(
    codes: CodeLists, config: ApplianceConfig, raw: Mapping[str, Any],
    table: retention.RetentionTable | None = None,
) -> dict[str, Any]:
    """Validate and complete a hồ sơ (outside the writer); its retention from the kind of
    hồ sơ in the retention table or the period given ("05 năm" is code 07 and 5 years)."""
    raw = dict(raw)
    raw.update(retention.resolve(raw, table or retention.load()))
    data = records.normalise("file", raw, codes)
    records.require(data, "Title")
    if "FileCode" in data:
        code = FileCode.parse(data["FileCode"])
    else:
        # The agency's own fonds keeps its mã phông after a re-keying; its new hồ sơ take
        # the agency's current mã định danh (appliance/agency_ids.py).
        organ = data.get("OrganId") or data.get("FondCode") or config.org_id
        if organ in config.all_ids or organ == config.fond_code:
            organ = config.org_id
        records.require(data, "FileCatalog", "FileNotation")
        code = FileCode.build(organ, data["FileCatalog"], data["FileNotation"])
    data.update(
        FileCode=str(code),
        OrganId=code.organ_id,
        FileCatalog=code.year,
        FileNotation=code.notation,
    )
    own = code.organ_id in config.all_ids or code.organ_id == config.fond_code
    data.setdefault("FondCode", config.fond_code if own else code.organ_id)
    data.setdefault("Status", "open")
    data.setdefault("Language", "01")
    records.require(data, "Maintenance")
    return data


def insert_file(
    txn: Txn, config: ApplianceConfig, data: dict[str, Any], actor: str, legacy: bool
) -> Record:
    """Write a new hồ sơ; its fonds must exist and be open (a legacy register's may not be)."""
    fonds = writes.fonds_state(txn.conn, config.fond_code, data["FondCode"])
    if not legacy:
        writes.require_open_fonds(txn.conn, fonds["FondCode"], "no new hồ sơ can be opened")
        fileplan.check_heading(txn.conn, data)
    if txn.conn.execute(
        'SELECT 1 FROM files WHERE "FileCode" = ?', (data["FileCode"],)
    ).fetchone():
        raise ConflictError(f"hồ sơ {data['FileCode']} already exists")
    return writes.put(txn, "file", Kind.FILE_OPEN, actor, data)
