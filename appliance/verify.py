"""Verification: recompute everything from the log and the content files, and name each finding.

Checks every entry's encoding and position, every leaf and subtree hash, every checkpoint's
signature and root, every projection row, the search index, the number counters and every
content file's SHA-256. It never repairs anything.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import cbor2

from . import merkle, schema
from .checkpoint import verify_checkpoint
from .config import DB_NAME, ApplianceConfig, load_config
from .content import ContentStore
from .errors import EncodingError, LuutruError
from .keys.verify import PublicKey, load_public_key
from .ledger import Entry
from .search import fts_body


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Finding:
    code: str
    message: str
    severity: Severity = Severity.ERROR
    index: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
        }
        if self.index is not None:
            out["index"] = self.index
        return out


@dataclass
class Report:
    tree_size: int = 0
    entries: int = 0
    checkpoints: int = 0
    content_files: int = 0
    records: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(f.severity is Severity.ERROR for f in self.findings)

    def add(
        self, code: str, message: str, index: int | None = None, severity: Severity = Severity.ERROR
    ) -> None:
        self.findings.append(Finding(code, message, severity, index))

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "tree_size": self.tree_size,
            "entries": self.entries,
            "checkpoints": self.checkpoints,
            "records": self.records,
            "content_files": self.content_files,
            "findings": [f.to_json() for f in self.findings],
        }


def _digest(data: Any) -> bytes:
    # Both sides go through the same encoder, so this only compares values; sorted JSON is
    # several times faster than canonical CBOR here and tells True from 1.
    text = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).digest()


def _levels(leaves: list[bytes]) -> list[list[bytes]]:
    levels = [leaves]
    while len(levels[-1]) > 1:
        prev = levels[-1]
        levels.append([merkle.node_hash(prev[i], prev[i + 1]) for i in range(0, len(prev) - 1, 2)])
    return levels


def verify_data_dir(
    data_dir: Path, public_key: PublicKey | None = None, check_content: bool = True
) -> Report:
    config = load_config(data_dir)
    if public_key is None:
        public_key = _public_key(data_dir, config)
    conn = schema.connect(str(data_dir / DB_NAME), readonly=True)
    conn.execute("BEGIN")  # one snapshot for the whole run
    try:
        return _verify(conn, data_dir, config, public_key, check_content)
    finally:
        conn.execute("COMMIT")
        conn.close()


def _public_key(data_dir: Path, config: ApplianceConfig) -> PublicKey:
    """The device key's own public half when it can be opened, else the copy made at init."""
    from .keys.loader import open_key

    try:
        key = open_key(data_dir, config.key)
        try:
            return load_public_key(key.public_key_pem())
        finally:
            key.close()
    except LuutruError:
        from .datadir import PUBLIC_KEY_NAME

        return load_public_key((data_dir / PUBLIC_KEY_NAME).read_bytes())


def _verify(
    conn: sqlite3.Connection,
    data_dir: Path,
    config: ApplianceConfig,
    public_key: PublicKey,
    check_content: bool,
) -> Report:
    rep = Report()
    leaves: list[bytes] = []
    latest: dict[tuple[str, str], tuple[int, int, bytes]] = {}
    refs: dict[str, int] = {}
    expected = 0
    for idx, raw in _entries(conn):
        raw = bytes(raw)
        if idx != expected:
            missing = f"{expected}" if idx == expected + 1 else f"{expected}–{idx - 1}"
            rep.add("log.gap", f"log entries {missing} are missing (deleted)", expected)
            expected = idx
        expected += 1
        leaves.append(merkle.leaf_hash(raw))
        try:
            value = cbor2.loads(raw)
            if cbor2.dumps(value, canonical=True) != raw:
                raise EncodingError("not in deterministic encoding")
            entry = Entry.from_map(value)
        except (EncodingError, ValueError) as exc:
            rep.add("entry.encoding", f"log entry {idx} is not a valid entry: {exc}", idx)
            continue
        if entry.index != idx:
            rep.add(
                "entry.position",
                f"log entry stored at {idx} says it is entry {entry.index} (entries reordered)",
                idx,
            )
        if entry.type in schema.TABLES and entry.id is not None:
            prev = latest.get((entry.type, entry.id))
            want = 1 if prev is None else prev[1] + 1
            if entry.version != want:
                rep.add(
                    "entry.version",
                    f"log entry {idx}: {entry.type} {entry.id} version {entry.version}, "
                    f"expected {want}",
                    idx,
                )
            latest[(entry.type, entry.id)] = (idx, entry.version or 0, _digest(value.get("data")))
        for r in entry.refs:
            refs.setdefault(r.hex(), idx)
        if entry.data and entry.data.get("Content"):
            named = {c["sha256"] for c in entry.data["Content"]}
            if named != {r.hex() for r in entry.refs}:
                rep.add("entry.refs", f"log entry {idx}: content list and references differ", idx)
    rep.entries = len(leaves)
    rep.tree_size = expected
    levels = _levels(leaves) if leaves else [[]]
    _check_nodes(conn, levels, rep)
    source = lambda level, i: levels[level][i]  # noqa: E731
    _check_checkpoints(conn, config, public_key, source, len(leaves), rep)
    _check_projections(conn, latest, rep)
    _check_counters(conn, rep)
    if check_content:
        _check_content(ContentStore(data_dir / "content"), refs, rep)
    rep.content_files = len(refs)
    return rep


def _entries(conn: sqlite3.Connection) -> Iterator[tuple[int, bytes]]:
    yield from conn.execute("SELECT idx, entry FROM log ORDER BY idx")


def _check_nodes(conn: sqlite3.Connection, levels: list[list[bytes]], rep: Report) -> None:
    bad = 0
    for level, idx, h in conn.execute("SELECT level, idx, hash FROM merkle_nodes"):
        want = levels[level][idx] if level < len(levels) and idx < len(levels[level]) else None
        if want != bytes(h):
            bad += 1
            if bad <= 20:
                if level == 0:
                    rep.add(
                        "entry.hash",
                        f"log entry {idx} does not match its sealed leaf hash (entry edited, "
                        "deleted or moved)",
                        idx,
                    )
                else:
                    rep.add("tree.node", f"Merkle node ({level}, {idx}) does not match the log")
    if bad > 20:
        rep.add("tree.node", f"… {bad - 20} more Merkle nodes do not match")


def _check_checkpoints(
    conn: sqlite3.Connection,
    config: ApplianceConfig,
    public_key: PublicKey,
    source: merkle.NodeSource,
    size: int,
    rep: Report,
) -> None:
    last_good = 0
    signed = 0
    for tree_size, root, _signed_at, cose in conn.execute(
        "SELECT tree_size, root_hash, signed_at, cose FROM checkpoints ORDER BY tree_size"
    ):
        rep.checkpoints += 1
        try:
            cp = verify_checkpoint(bytes(cose), public_key)
        except LuutruError as exc:
            rep.add(
                "checkpoint.signature",
                f"checkpoint at tree size {tree_size}: signature invalid ({exc})",
                tree_size,
            )
            continue
        if cp.tree_size != tree_size or cp.root_hash != bytes(root):
            rep.add(
                "checkpoint.row",
                f"checkpoint at tree size {tree_size}: stored size/root differ from the "
                "signed ones",
                tree_size,
            )
        if cp.origin != config.origin:
            rep.add(
                "checkpoint.origin",
                f"checkpoint at tree size {tree_size} is for origin {cp.origin!r}, "
                f"not {config.origin!r}",
                tree_size,
            )
        if cp.tree_size > size:
            rep.add(
                "checkpoint.beyond",
                f"signed checkpoint covers {cp.tree_size} entries but the log has {size} "
                "(entries deleted)",
                cp.tree_size,
            )
            continue
        if merkle.root_hash(source, cp.tree_size) != cp.root_hash:
            rep.add(
                "checkpoint.root",
                f"the log no longer matches the signed checkpoint at size {cp.tree_size}: "
                f"entries {last_good}–{cp.tree_size - 1} were changed",
                last_good,
            )
        else:
            last_good = cp.tree_size
        signed = max(signed, cp.tree_size)
    if size > signed:
        rep.add(
            "log.unsealed",
            f"entries {signed}–{size - 1} are not yet covered by a signed checkpoint "
            "(they are sealed when the appliance next runs)",
            signed,
            Severity.WARNING,
        )


def _check_projections(
    conn: sqlite3.Connection, latest: dict[tuple[str, str], tuple[int, int, bytes]], rep: Report
) -> None:
    conn.row_factory = sqlite3.Row
    seen: set[tuple[str, str]] = set()
    fts: dict[int, str] = {
        int(r[0]): str(r[1]) for r in conn.execute("SELECT rowid, body FROM document_fts")
    }
    try:
        for record_type, table in schema.TABLES.items():
            for row in conn.execute(f"SELECT * FROM {table}"):
                rep.records += 1
                key = (record_type, row["id"])
                seen.add(key)
                want = latest.get(key)
                data = schema.from_row(record_type, row)
                if want is None:
                    rep.add(
                        "projection.extra",
                        f"{table} row {row['id']} has no log entry (row inserted by hand)",
                    )
                elif (row["log_index"], row["version"]) != want[:2] or _digest(data) != want[2]:
                    rep.add(
                        "projection.mismatch",
                        f"{table} row {row['id']} differs from its log entry {want[0]} "
                        "(row edited)",
                        want[0],
                    )
                if record_type == "document" and fts.pop(int(row["rid"]), None) != fts_body(data):
                    rep.add(
                        "search.mismatch",
                        f"search index entry of document {row['id']} differs from it",
                    )
        for key, (idx, _, _) in latest.items():
            if key not in seen:
                rep.add(
                    "projection.missing",
                    f"{key[0]} {key[1]} (log entry {idx}) has no row (row deleted)",
                    idx,
                )
        if fts:
            rep.add("search.extra", f"{len(fts)} search index rows belong to no document")
    finally:
        conn.row_factory = None


def _check_counters(conn: sqlite3.Connection, rep: Report) -> None:
    used = {
        (f, s, int(y)): int(n)
        for f, s, y, n in conn.execute(
            'SELECT "FondCode", "Series", "Year", max(CASE WHEN "Direction" = \'incoming\' '
            'THEN "ArrivalNumber" ELSE CAST("CodeNumber" AS INTEGER) END) FROM documents '
            'WHERE "Series" IS NOT NULL AND "Year" IS NOT NULL GROUP BY 1, 2, 3'
        )
    }
    counters = {
        (f, s, int(y)): int(n)
        for f, s, y, n in conn.execute("SELECT fond, series, year, last FROM number_counters")
    }
    for key in used.keys() | counters.keys():
        if used.get(key) != counters.get(key):
            rep.add(
                "numbering.counter",
                f"number counter {key[1]}/{key[2]} of {key[0]} is {counters.get(key)} but "
                f"the highest number used is {used.get(key)}",
            )


def _check_content(content: ContentStore, refs: dict[str, int], rep: Report) -> None:
    for sha, idx in sorted(refs.items()):
        if not content.exists(sha):
            rep.add("content.missing", f"content file {sha} (log entry {idx}) is missing", idx)
        elif content.hash_file(sha) != sha:
            rep.add(
                "content.corrupt",
                f"content file {sha} (log entry {idx}) no longer has that SHA-256 "
                f"({content.path(sha)})",
                idx,
            )
