"""Verification: recompute everything from the log and the content files, and name each finding.

Checks every entry's encoding and position, every leaf and subtree hash, every checkpoint's
signature and root, every projection row, the search index, the number counters and every
content file's SHA-256; that the device key is the one that sealed the log; and that the log is
not behind the anchors kept outside the database (anchors.py: the mirrored checkpoint, the
centre's receipt, with ``counter`` the TPM's monotonic counter). It never repairs anything, and
whatever damage it meets (a database cut short, an unreadable key or configuration) becomes a
finding, never an exception.
"""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from . import anchors, merkle, preflight, schema
from .checkpoint import verify_checkpoint
from .config import DB_NAME, ApplianceConfig, load_config
from .content import ContentStore
from .errors import LuutruError
from .findings import Finding, Report, Severity
from .handover import KeySchedule
from .keys.verify import PublicKey, load_public_key
from .search import indexed_rows
from .verify_scan import Latest, Texts, merge, row_digest, scan_log, text_digest

__all__ = ["Finding", "Report", "Severity", "verify_data_dir"]


def _levels(leaves: list[bytes]) -> list[list[bytes]]:
    levels = [leaves]
    while len(levels[-1]) > 1:
        prev = levels[-1]
        levels.append([merkle.node_hash(prev[i], prev[i + 1]) for i in range(0, len(prev) - 1, 2)])
    return levels


def verify_data_dir(
    data_dir: Path,
    public_key: PublicKey | None = None,
    check_content: bool = True,
    workers: int | None = None,
    counter: bool = False,
) -> Report:
    """Verify a data folder. ``workers``: processes for the entry pass (default: one for a
    small log, else one per core up to 4). ``counter``: also hold the log against this box's
    TPM monotonic counter (on the box itself; a copy of the folder elsewhere has no chip)."""
    rep = Report()
    try:
        config = load_config(data_dir)
    except LuutruError as exc:
        rep.add("config.unreadable", f"the data folder's configuration cannot be read: {exc}")
        return rep
    chip: int | None = None
    if public_key is None:
        try:
            public_key, chip = _public_key(data_dir, config, counter)
        except (LuutruError, OSError, ValueError) as exc:
            rep.add("key.unreadable", f"neither the device key nor its public copy can be read "
                    f"({exc}): no checkpoint signature can be checked")
    db_path = data_dir / DB_NAME
    damaged = preflight.check_file(db_path)
    if damaged is not None:
        rep.add("database.damaged", damaged.english)
        if not db_path.exists():
            return rep
    try:
        conn = schema.connect(str(db_path), readonly=True)
    except sqlite3.DatabaseError as exc:
        rep.add("database.damaged", f"the database cannot be opened: {exc}")
        return rep
    try:
        conn.execute("BEGIN")  # one snapshot for the whole run
        _verify(rep, conn, data_dir, config, public_key, check_content, workers, chip)
    except sqlite3.DatabaseError as exc:
        _damaged(rep, conn, exc)
    finally:
        _end(conn)
        conn.close()
    return rep


def _end(conn: sqlite3.Connection) -> None:
    """End the read transaction; a damaged database may refuse even that."""
    if conn.in_transaction:
        try:
            conn.execute("COMMIT")
        except sqlite3.Error:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")


def _damaged(rep: Report, conn: sqlite3.Connection, exc: sqlite3.DatabaseError) -> None:
    """Reading stopped at damage: say where SQLite's own check finds it."""
    rep.add("database.damaged", f"the database cannot be read to the end: {exc}")
    _end(conn)
    try:
        rows = [str(r[0]) for r in conn.execute("PRAGMA quick_check(10)").fetchall()]
    except sqlite3.DatabaseError as again:
        rows = [str(again)]
    if rows != ["ok"]:
        rep.add("database.damaged", "SQLite's check: " + "; ".join(rows[:10]))


def _public_key(
    data_dir: Path, config: ApplianceConfig, with_counter: bool = False
) -> tuple[PublicKey, int | None]:
    """The device key's own public half when it can be opened, else the copy made at init;
    and the TPM counter's value when asked for and the key has one."""
    from .keys.base import counter_of
    from .keys.loader import open_key

    try:
        key = open_key(data_dir, config.key)
        try:
            chip = None
            counter = counter_of(key) if with_counter else None
            if counter is not None:
                chip = counter.read()
            return load_public_key(key.public_key_pem()), chip
        finally:
            key.close()
    except LuutruError:
        from .datadir import PUBLIC_KEY_NAME

        return load_public_key((data_dir / PUBLIC_KEY_NAME).read_bytes()), None


def _verify(
    rep: Report,
    conn: sqlite3.Connection,
    data_dir: Path,
    config: ApplianceConfig,
    public_key: PublicKey | None,
    check_content: bool,
    workers: int | None = None,
    chip: int | None = None,
) -> None:
    scans, projections = scan_log(
        conn, str(data_dir / DB_NAME), workers, lambda: _read_projections(conn)
    )
    leaves, latest, texts, refs = merge(scans, rep)
    rep.entries = len(leaves)
    rep.tree_size = scans[-1].end
    keys = None
    if public_key is not None:
        keys = KeySchedule(public_key, rep.handovers)
        for problem in keys.problems:
            rep.add("key.handover", problem)
    _fill_withheld(conn, leaves, keys.withheld if keys else frozenset(), rep)
    levels = _levels(leaves) if leaves else [[]]
    _check_nodes(conn, levels, rep)
    source = lambda level, i: levels[level][i]  # noqa: E731
    if keys is not None and public_key is not None:
        _check_checkpoints(conn, config, keys, source, len(leaves), rep)
        _check_device_key(conn, public_key, rep)
    _check_anchors(conn, data_dir, keys, chip, rep)
    _check_projections(projections, latest, texts, rep)
    _check_texts(conn, texts, rep)
    _check_counters(conn, rep, rep.numbers_used)
    if check_content:
        from .archive.state import destroyed_content

        destroyed = destroyed_content(conn)
        lost = (keys.lost_content if keys else frozenset()) & refs.keys()
        if lost:
            rep.add(
                "content.lost",
                f"{len(lost)} content files never reached the centre before this appliance's "
                "predecessor failed, and could not be restored (listed in the hand-over entry)",
                severity=Severity.WARNING,
            )
        # A released version (the lossless assembly of a scan once its archival PDF exists,
        # ``keep: none`` in the log) is provenance only: its bytes were not kept.
        gone = destroyed | lost | rep.released_content
        _check_content(ContentStore(data_dir / "content"), refs, rep, gone)
    rep.content_files = len(refs)


def _check_device_key(conn: sqlite3.Connection, public_key: PublicKey, rep: Report) -> None:
    """The folder's device key sealed the latest checkpoint (or a hand-over gave it the log)."""
    from .keys.verify import public_pem

    fault = preflight.check_key(conn, public_pem(public_key))
    if fault is not None:
        rep.add(fault.code, fault.english)


def _check_anchors(
    conn: sqlite3.Connection, data_dir: Path, keys: KeySchedule | None, chip: int | None,
    rep: Report,
) -> None:
    """The log against what was anchored outside the database (anchors.py)."""
    found, damaged = anchors.read_anchors(data_dir)
    for problem in damaged:
        rep.add("anchor.unreadable", problem, severity=Severity.WARNING)
    good = []
    for a in found:
        try:
            if keys is None:
                raise LuutruError("no device key to check it with")
            cp = verify_checkpoint(a.checkpoint, keys.key_for(a.tree_size))
            if (cp.tree_size, cp.root_hash) != (a.tree_size, a.root_hash):
                raise LuutruError("its size or root differs from the signed checkpoint's")
        except LuutruError as exc:
            rep.add("anchor.signature", f"the {a.source} anchor (size {a.tree_size}) is not a "
                    f"checkpoint this appliance signed: {exc}")
            continue
        good.append(a)
    for p in anchors.tail_problems(conn, good, (anchors.db_counter(conn), chip)):
        rep.add(p.code, p.message, p.tree_size)


def _fill_withheld(
    conn: sqlite3.Connection, leaves: list[bytes], allowed: frozenset[int], rep: Report
) -> None:
    """Put the sealed leaf hash in place of each empty log row a hand-over allows; an empty
    row no hand-over lists is an erased entry."""
    for idx in rep.withheld_rows:
        row = conn.execute(
            "SELECT hash FROM merkle_nodes WHERE level = 0 AND idx = ?", (idx,)
        ).fetchone()
        leaves[idx] = bytes(row[0]) if row is not None else b"\0" * 32
        if idx not in allowed:
            rep.add(
                "entry.erased",
                f"log entry {idx} is empty, and no hand-over entry says it was withheld "
                "(entry erased)",
                idx,
            )
    if rep.withheld_rows:
        rep.add(
            "log.withheld",
            f"{len(rep.withheld_rows)} entries of classified records are held as their leaf "
            "hashes only: they never left the appliance that was replaced; restore them from "
            "its offline backup",
            severity=Severity.WARNING,
        )



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
    keys: KeySchedule,
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
            cp = verify_checkpoint(bytes(cose), keys.key_for(int(tree_size)))
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


@dataclass
class _Projections:
    """The projection rows as digests, read while the workers scan the log."""

    # (record type, id) -> (table, log_index, version, row digest, rid)
    rows: dict[tuple[str, str], tuple[str, int, int, bytes, int]] = field(default_factory=dict)
    fts: dict[int, tuple[bytes, bytes]] = field(default_factory=dict)  # rid -> body, ocr


def _read_projections(conn: sqlite3.Connection) -> _Projections:
    out = _Projections()
    fts = out.fts
    for rid, body, ocr in indexed_rows(conn):  # document_fts, then search_pending
        # A document indexed in both halves matches nothing: named as search.mismatch.
        fts[rid] = (b"", b"") if rid in fts else (text_digest(body), text_digest(ocr or ""))
    for record_type, table in schema.TABLES.items():
        cols = ", ".join(schema.q(n) for n in schema.field_columns(record_type))
        for row in conn.execute(f"SELECT id, version, log_index, rid, {cols} FROM {table}"):
            out.rows[(record_type, row[0])] = (
                table, int(row[2]), int(row[1]), row_digest(row[4:]), int(row[3])
            )
    return out


def _check_projections(
    proj: _Projections,
    latest: Latest,
    texts: Texts,
    rep: Report,
) -> None:
    fts = proj.fts
    no_text = text_digest("")
    for key, (table, log_index, version, digest, rid) in proj.rows.items():
        record_type, record_id = key
        rep.records += 1
        want = latest.get(key)
        if want is None:
            rep.add(
                "projection.extra",
                f"{table} row {record_id} has no log entry (row inserted by hand)",
            )
        elif (log_index, version) != want[:2] or digest != want[2]:
            rep.add(
                "projection.mismatch",
                f"{table} row {record_id} differs from its log entry {want[0]} (row edited)",
                want[0],
            )
        if record_type != "document":
            continue
        indexed = fts.pop(rid, None)
        ocr = texts[record_id][2] if record_id in texts else no_text
        if want is not None and indexed != (want[3], ocr):
            rep.add(
                "search.mismatch",
                f"search index entry of document {record_id} differs from it",
            )
    for key, (idx, _, _, _) in latest.items():
        if key not in proj.rows:
            rep.add(
                "projection.missing",
                f"{key[0]} {key[1]} (log entry {idx}) has no row (row deleted)",
                idx,
            )
    if fts:
        rep.add("search.extra", f"{len(fts)} search index rows belong to no document")


def _check_texts(conn: sqlite3.Connection, texts: Texts, rep: Report) -> None:
    """The OCR text projection (document_text) against its 'document.text' log entries."""
    seen = set()
    for doc_id, sha, text, log_index in conn.execute(
        "SELECT document_id, sha256, text, log_index FROM document_text"
    ):
        seen.add(doc_id)
        want = texts.get(doc_id)
        if want is None:
            rep.add("projection.extra", f"OCR text of {doc_id} has no log entry")
        elif (log_index, row_digest((sha, text))) != want[:2]:
            rep.add(
                "projection.mismatch",
                f"OCR text of {doc_id} differs from its log entry {want[0]} (row edited)",
                want[0],
            )
    for doc_id, (idx, _, _) in texts.items():
        if doc_id not in seen:
            rep.add("projection.missing", f"OCR text of {doc_id} (log entry {idx}) is missing", idx)


def _check_counters(
    conn: sqlite3.Connection, rep: Report, logged: dict[tuple[str, str, int], int]
) -> None:
    """Each counter is the highest number its series holds: in the documents, or logged on
    its own for a classified document (which a replaced box holds as a leaf hash only)."""
    used = {
        (f, s, int(y)): int(n)
        for f, s, y, n in conn.execute(
            'SELECT "FondCode", "Series", "Year", max(CASE WHEN "Direction" = \'incoming\' '
            'THEN "ArrivalNumber" ELSE CAST("CodeNumber" AS INTEGER) END) FROM documents '
            'WHERE "Series" IS NOT NULL AND "Year" IS NOT NULL GROUP BY 1, 2, 3'
        )
    }
    for key, n in logged.items():
        used[key] = max(used.get(key, 0), n)
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


def _check_content(
    content: ContentStore,
    refs: dict[str, int],
    rep: Report,
    destroyed: frozenset[str] | set[str] = frozenset(),
) -> None:
    for sha, idx in sorted(refs.items()):
        if not content.exists(sha):
            if sha in destroyed:  # removed by a logged destruction or recall
                continue
            rep.add("content.missing", f"content file {sha} (log entry {idx}) is missing", idx)
        elif content.hash_file(sha) != sha:
            rep.add(
                "content.corrupt",
                f"content file {sha} (log entry {idx}) no longer has that SHA-256 "
                f"({content.path(sha)})",
                idx,
            )
