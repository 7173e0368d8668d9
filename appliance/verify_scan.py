"""Verification's pass over the log (verify.py): each entry's encoding, position, version and
references checked on its own, in ranges that worker processes can take in parallel, then the
ranges joined in log order. What it gathers (the latest version of every record, the texts,
the references) is what the projections and content are then checked against."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, TypeVar

import cbor2

from . import merkle, schema
from .errors import EncodingError, ValidationError
from .findings import Finding, Report, Severity
from .handover import HANDOVER_KIND, Handover
from .handover import parse as parse_handover
from .kinds import Kind
from .ledger import Entry
from .numbering import NUMBER_USED_KIND
from .search import OCR_TEXT_KIND, fts_body, fts_ocr


def text_digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def row_digest(values: tuple[Any, ...]) -> bytes:
    # The projection row as SQLite returns it and the row the entry's data must project to
    # (schema.row_values) are tuples of str/int/bytes/None; repr() tells all of them apart
    # (1 from '1', None from 'None'), so equal digests mean equal rows.
    return hashlib.sha256(repr(values).encode()).digest()



T = TypeVar("T")
Latest = dict[tuple[str, str], tuple[int, int, bytes, bytes | None]]
# document id -> (log index, digest of its document_text row, digest of its indexed OCR text)
Texts = dict[str, tuple[int, bytes, bytes]]


@dataclass
class _Scan:
    """What one pass over a range of the log found: leaves, findings, latest versions, refs."""

    start: int
    end: int  # one past the last index seen (the range's own gaps are already findings)
    leaves: list[bytes] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    latest: Latest = field(default_factory=dict)
    first: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)  # idx, version
    refs: dict[str, int] = field(default_factory=dict)
    texts: Texts = field(default_factory=dict)
    withheld: list[int] = field(default_factory=list)  # empty rows: leaf hash only
    handovers: list[Handover] = field(default_factory=list)
    numbers: dict[tuple[str, str, int], int] = field(default_factory=dict)  # numbering.used
    released: set[str] = field(default_factory=set)  # content whose bytes were not kept
    ended: list[tuple[str, str]] = field(default_factory=list)  # memberships taken out

    def add(self, code: str, message: str, index: int | None = None) -> None:
        self.findings.append(Finding(code, message, Severity.ERROR, index))


def _scan(rows: Iterator[tuple[int, bytes]], start: int) -> _Scan:
    """Check each entry of a contiguous range on its own; versions are checked within it."""
    scan = _Scan(start, start)
    expected = start
    leaves, latest, first, refs = scan.leaves, scan.latest, scan.first, scan.refs
    leaf_hash, loads, dumps = merkle.leaf_hash, cbor2.loads, cbor2.dumps
    row_values = schema.row_values
    tables = schema.TABLES
    for idx, raw in rows:
        raw = bytes(raw)
        if idx != expected:
            missing = f"{expected}" if idx == expected + 1 else f"{expected}–{idx - 1}"
            scan.add("log.gap", f"log entries {missing} are missing (deleted)", expected)
            expected = idx
        expected += 1
        if not raw:  # held as its leaf hash only (restored from the centre's copy)
            leaves.append(b"")
            scan.withheld.append(idx)
            continue
        leaves.append(leaf_hash(raw))
        try:
            value = loads(raw)
            if dumps(value, canonical=True) != raw:
                raise EncodingError("not in deterministic encoding")
            entry = Entry.from_map(value)
        except (EncodingError, ValueError) as exc:
            scan.add("entry.encoding", f"log entry {idx} is not a valid entry: {exc}", idx)
            continue
        if entry.index != idx:
            scan.add(
                "entry.position",
                f"log entry stored at {idx} says it is entry {entry.index} (entries reordered)",
                idx,
            )
        if entry.type in tables and entry.id is not None and entry.version is not None:
            key = (entry.type, entry.id)
            prev = latest.get(key)
            if prev is None:
                first[key] = (idx, entry.version or 0)
            elif entry.version != prev[1] + 1:
                scan.add(
                    "entry.version",
                    f"log entry {idx}: {entry.type} {entry.id} version {entry.version}, "
                    f"expected {prev[1] + 1}",
                    idx,
                )
            data = entry.data or {}
            latest[key] = (
                idx,
                entry.version or 0,
                row_digest(row_values(entry.type, data)),
                text_digest(fts_body(data)) if entry.type == "document" else None,
            )
        elif entry.kind == Kind.FILE_REMOVE_DOCUMENT and entry.id is not None:
            latest.pop(("membership", entry.id), None)  # its row goes (schema.end_membership)
            scan.ended.append(("membership", entry.id))
        elif entry.kind == NUMBER_USED_KIND and entry.data:
            d = entry.data
            try:
                nkey = (str(d["FondCode"]), str(d["Series"]), int(d["Year"]))
                scan.numbers[nkey] = max(scan.numbers.get(nkey, 0), int(d["Number"]))
            except (KeyError, TypeError, ValueError):
                scan.add("entry.data", f"log entry {idx}: a malformed {entry.kind} entry", idx)
        elif entry.kind == HANDOVER_KIND:
            try:
                scan.handovers.append(parse_handover(idx, entry.data))
            except ValidationError as exc:
                scan.add("key.handover", str(exc), idx)
        elif entry.kind == OCR_TEXT_KIND and entry.id is not None and entry.data:
            sha, text = entry.data.get("sha256"), entry.data.get("text")
            scan.texts[entry.id] = (
                idx,
                row_digest((sha, text)),
                text_digest(fts_ocr(text if isinstance(text, str) else None)),
            )
        for r in entry.refs:
            refs.setdefault(r.hex(), idx)
        if entry.data and entry.data.get("Content"):
            scan.released.update(
                c["sha256"] for c in entry.data["Content"] if c.get("keep") == "none"
            )
            named = {c["sha256"] for c in entry.data["Content"]}
            if named != {r.hex() for r in entry.refs}:
                scan.add("entry.refs", f"log entry {idx}: content list and references differ", idx)
    scan.end = expected
    return scan


def _scan_file(db_path: str, start: int, end: int) -> _Scan:
    """A worker process's share: entries [start, end) read from its own connection."""
    conn = schema.connect(db_path, readonly=True)
    try:
        rows = conn.execute(
            "SELECT idx, entry FROM log WHERE idx >= ? AND idx < ? ORDER BY idx", (start, end)
        )
        return _scan(rows, start)
    finally:
        conn.close()


# Below this many entries one process is quicker than starting workers.
PARALLEL_FROM = 40_000


def scan_log(
    conn: sqlite3.Connection, db_path: str, workers: int | None, meanwhile: Callable[[], T]
) -> tuple[list[_Scan], T]:
    """The entry pass, and ``meanwhile()`` run in this process while workers do it."""
    row = conn.execute("SELECT max(idx) FROM log").fetchone()
    end = 0 if row[0] is None else int(row[0]) + 1
    if workers is None:
        workers = min(os.cpu_count() or 1, 4) if end >= PARALLEL_FROM else 1
    if workers <= 1 or end < 2 * workers:
        return [_scan(entries(conn), 0)], meanwhile()
    # Entries below `end` are append-only, so workers reading their own snapshots see the
    # same bytes as this connection's snapshot. Spawned, not forked: the caller may be a
    # threaded server.
    bounds = [end * i // workers for i in range(workers + 1)]
    ctx = multiprocessing.get_context("spawn")
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            futures = [
                pool.submit(_scan_file, db_path, bounds[i], bounds[i + 1])
                for i in range(workers)
            ]
            done = meanwhile()
            return [f.result() for f in futures], done
    except (BrokenProcessPool, OSError):
        # Workers could not start (a caller whose __main__ cannot be re-imported, no
        # /dev/shm, a process limit): the same pass in this process gives the same answer.
        return [_scan(entries(conn), 0)], meanwhile()


def merge(
    scans: list[_Scan], rep: Report
) -> tuple[list[bytes], Latest, Texts, dict[str, int]]:
    """Join ranges in log order: the versions where one range hands over to the next."""
    leaves: list[bytes] = []
    withheld: list[int] = []
    handovers: list[Handover] = []
    latest: Latest = {}
    texts: Texts = {}
    refs: dict[str, int] = {}
    for scan in scans:
        rep.findings.extend(scan.findings)
        leaves.extend(scan.leaves)
        for key, (idx, version) in scan.first.items():
            prev = latest.get(key)
            want = 1 if prev is None else prev[1] + 1
            if version != want:
                rep.add(
                    "entry.version",
                    f"log entry {idx}: {key[0]} {key[1]} version {version}, expected {want}",
                    idx,
                )
        latest.update(scan.latest)
        for key in scan.ended:  # a membership begun in an earlier range, ended in this one
            latest.pop(key, None)
        texts.update(scan.texts)
        withheld.extend(scan.withheld)
        handovers.extend(scan.handovers)
        for series, n in scan.numbers.items():
            rep.numbers_used[series] = max(rep.numbers_used.get(series, 0), n)
        for h, idx in scan.refs.items():
            refs.setdefault(h, idx)
        rep.released_content.update(scan.released)
    rep.withheld_rows = withheld
    rep.handovers = handovers
    return leaves, latest, texts, refs


def entries(conn: sqlite3.Connection) -> Iterator[tuple[int, bytes]]:
    yield from conn.execute("SELECT idx, entry FROM log ORDER BY idx")
