"""The start-up check of a data folder opened for writing (``Store.open``, so ``serve`` and
every command that writes): before anything is appended, the folder must be the one that was
left.

1. The database opens and is whole: the file is not shorter than its header says, and
   ``PRAGMA quick_check`` finds nothing within a time budget (a big database is checked as far
   as the budget goes; ``luutru verify`` reads all of it).
2. The device key is the key that signed the latest checkpoint, or the one a logged hand-over
   gave the log to (key files replaced by another box's are refused).
3. The log's tail is not behind any anchor it knows (``anchors.py``): the checkpoint mirrored
   beside the database, the centre's newest receipt, the TPM's monotonic counter.

Each fault names what is wrong and the command that repairs it. A store with faults refuses
every write to the log (``HaltedError``): appending to a log that lost its tail would give the
lost numbers again and fork it from the centre's copy.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .anchors import Anchor, TailProblem, db_counter, read_anchors, tail_problems
from .checkpoint import verify_checkpoint
from .errors import EncodingError, HaltedError, LuutruError
from .handover import HANDOVER_KIND
from .handover import parse as parse_handover
from .keys.verify import key_id, load_public_key
from .ledger import Entry, latest_checkpoint

QUICK_CHECK_BUDGET_S = 1.0
SQLITE_HEADER = 100

RECOVER_DB = (
    "luutru restore --data THƯ_MỤC_MỚI --from-backup Ổ_SAO_LƯU (bản sao lưu), hoặc thay máy từ "
    "bản của tỉnh: luutru restore --data THƯ_MỤC_MỚI --from-centre URL --token MÃ"
)
RECOVER_KEY = (
    "đặt lại tệp khóa thiết bị của chính máy này (thư mục keys/) từ bản sao lưu; nếu đây là máy "
    "thay thế, khôi phục từ bản của tỉnh: luutru restore --from-centre URL --token MÃ"
)
RECOVER_TAIL = "luutru restore --data {data} --tail-from-centre"


@dataclass(frozen=True)
class Fault:
    """One reason the folder may not be written: what, in Vietnamese and English, and the
    command that repairs it."""

    code: str
    vi: str
    english: str
    recovery: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.vi, "english": self.english,
                "recovery": self.recovery, **({"details": self.details} if self.details else {})}


def halted(faults: Sequence[Fault]) -> HaltedError:
    """The error every refused write raises: each fault in both languages, and for the
    technician (its message) the command that repairs it."""
    vi = " ".join(f.vi for f in faults)
    en = " ".join(f.english for f in faults)
    technical = " ".join(f"{f.vi} Cách khôi phục: {f.recovery}" for f in faults) + " / " + (
        " ".join(f"{f.english} To repair: {f.recovery}" for f in faults))
    return HaltedError(
        tuple(faults),
        f"Máy đã ngừng ghi. {vi} Hãy báo kỹ thuật viên.",
        f"The appliance has stopped writing. {en} Call the technician.",
        f"Máy đã ngừng ghi. {technical}",
    )


# -- 1. the database --------------------------------------------------------------------------


def check_file(db_path: Path) -> Fault | None:
    """The file is as long as its header says (a cut file is noticed before any page of it
    is read)."""
    try:
        size = db_path.stat().st_size
        with db_path.open("rb") as fh:
            head = fh.read(SQLITE_HEADER)
    except FileNotFoundError:
        return database_fault(f"the database file {db_path.name} is missing")
    except OSError as exc:
        return database_fault(f"the database file cannot be read ({exc.strerror})")
    if size == 0:
        return None  # made a moment ago, before its first page (init)
    if len(head) < SQLITE_HEADER or not head.startswith(b"SQLite format 3\0"):
        return database_fault("the database file is not an SQLite database (header damaged)")
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(head[28:32], "big")
    change, valid_for = head[24:28], head[92:96]
    if change == valid_for and pages and size < pages * page_size:
        return database_fault(
            f"the database file is cut short: {size} bytes where its header counts {pages} "
            f"pages of {page_size} bytes"
        )
    return None


def quick_check(conn: sqlite3.Connection, budget_s: float) -> Fault | None:
    """``PRAGMA quick_check`` for at most ``budget_s`` seconds (then: nothing found so far)."""
    deadline = time.monotonic() + budget_s
    # The check reads every page once: a small page cache, so that a large database does not
    # leave megabytes in the process (a thread's malloc arena keeps what it once held).
    (cache,) = conn.execute("PRAGMA cache_size").fetchone()
    conn.execute("PRAGMA cache_size = -256")
    conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
    try:
        rows = [str(r[0]) for r in conn.execute("PRAGMA quick_check(20)").fetchall()]
    except sqlite3.OperationalError as exc:
        if "interrupt" in str(exc):
            return None  # the budget ran out before anything was found
        raise  # an I/O error, not damage found (preflight tells a full disk apart)
    except sqlite3.DatabaseError as exc:  # malformed pages on the way
        return database_fault(str(exc))
    finally:
        conn.set_progress_handler(None, 0)
        conn.execute(f"PRAGMA cache_size = {int(cache)}")
    if rows != ["ok"]:
        return database_fault("; ".join(rows[:3]))
    return None


def database_fault(detail: str) -> Fault:
    return Fault(
        "database.damaged",
        "Cơ sở dữ liệu của máy bị hỏng: không đọc được trọn vẹn.",
        f"The appliance's database is damaged ({detail}).",
        RECOVER_DB,
        {"detail": detail},
    )


# -- 2. the device key ------------------------------------------------------------------------


def check_key(conn: sqlite3.Connection, public_key_pem: str) -> Fault | None:
    """The latest checkpoint is this key's, or the entry right after it hands the log over
    to this key (the checkpoint before a hand-over is the previous key's)."""
    latest = latest_checkpoint(conn)
    if latest is None:
        return None
    size, _root, _at, cose = latest
    current = load_public_key(public_key_pem)
    try:
        verify_checkpoint(cose, current)
        return None
    except LuutruError:
        pass
    row = conn.execute("SELECT entry FROM log WHERE idx = ?", (size,)).fetchone()
    if row is not None and row[0]:
        try:
            entry = Entry.decode(bytes(row[0]), strict=False)
            if entry.kind == HANDOVER_KIND:
                h = parse_handover(entry.index, entry.data)
                if key_id(h.new_key) == key_id(current):
                    verify_checkpoint(cose, h.previous_key)
                    return None
        except (LuutruError, EncodingError):
            pass
    kid = key_id(current).hex()
    return Fault(
        "key.foreign",
        "Khóa thiết bị hiện có không phải khóa đã niêm phong nhật ký của máy này, và không có "
        "mục bàn giao khóa nào nêu nó: tệp khóa đã bị thay bằng khóa của máy khác.",
        f"The device key present ({kid[:16]}…) is not the key that sealed this appliance's log "
        f"(checkpoint of {size} entries), and no hand-over entry names it: the key files were "
        "replaced by another box's.",
        RECOVER_KEY,
        {"key_id": kid, "checkpoint_size": size},
    )


# -- 3. the tail ------------------------------------------------------------------------------


def tail_fault(problem: TailProblem, data_dir: Path) -> Fault:
    """A tail problem as the people at the box read it: Vietnamese without internal names,
    counts from 1, dates dd/mm/yyyy (the English keeps the technical detail)."""
    d = problem.details
    n, m = int(d.get("log_size", 0)), int(d.get("tree_size", 0))
    when = _vn_when(d.get("signed_at"))
    where = ("biên nhận của trung tâm tỉnh" if d.get("source") == "centre"
             else "bản sao điểm niêm phong lưu cạnh cơ sở dữ liệu")
    if problem.code == "log.behind_counter":
        k = int(d.get("tpm_counter", 0)) - int(d.get("db_counter", 0))
        vi = (f"Bộ đếm của chip TPM cho thấy máy đã ký {k} điểm niêm phong mà cơ sở dữ liệu "
              "không còn: một bản cũ của ổ đĩa hoặc của cơ sở dữ liệu đã được chép vào.")
    elif problem.code == "log.anchor_mismatch":
        vi = (f"Nhật ký của máy khác với bản đã niêm phong trước đây ở {m} mục: nhật ký đã bị "
              "quay lui rồi ghi tiếp.")
    else:
        vi = (f"Nhật ký của máy bị mất phần cuối: máy còn {n} mục, nhưng {where}"
              f"{' (niêm phong ' + when + ')' if when else ''} có {m} mục; các mục từ {n + 1} "
              f"đến {m} không còn trên máy.")
    return Fault(
        problem.code,
        f"{vi} Máy ngừng cấp số và ghi mới để không cấp lại số đã dùng.",
        f"The appliance's log is behind what it signed before: {problem.message}. Numbering "
        "and writing are stopped so that no number is given twice.",
        RECOVER_TAIL.format(data=data_dir),
        problem.details,
    )


def _vn_when(iso: object) -> str:
    """``HH:MM dd/mm/yyyy`` of an ISO 8601 time (Vietnam's own), or "" when there is none."""
    import datetime as dt

    if not isinstance(iso, str):
        return ""
    try:
        t = dt.datetime.fromisoformat(iso)
    except ValueError:
        return ""
    return f"lúc {t:%H:%M} ngày {t:%d/%m/%Y}"


def check_tail(
    conn: sqlite3.Connection, data_dir: Path, chip_counter: int | None,
    anchors: Sequence[Anchor] | None = None,
) -> list[Fault]:
    found = list(anchors) if anchors is not None else read_anchors(data_dir)[0]
    problems = tail_problems(conn, found, (db_counter(conn), chip_counter))
    return [tail_fault(p, data_dir) for p in problems]


# -- all of it --------------------------------------------------------------------------------


def preflight(
    data_dir: Path,
    db_path: Path,
    public_key_pem: str | None,
    chip_counter: int | None,
    budget_s: float = QUICK_CHECK_BUDGET_S,
) -> list[Fault]:
    """Every fault of the folder, cheapest checks first; an unreadable database stops there."""
    fault = check_file(db_path)
    if fault is not None:
        return [fault]
    from . import schema

    try:
        conn = schema.connect(str(db_path), readonly=True)
    except sqlite3.DatabaseError as exc:
        return [_unreadable(db_path, exc)]
    try:
        fault = quick_check(conn, budget_s)
        if fault is not None:
            return [fault]
        conn.execute("BEGIN")
        out: list[Fault] = []
        if public_key_pem is not None:
            key = check_key(conn, public_key_pem)
            if key is not None:
                out.append(key)
        out.extend(check_tail(conn, data_dir, chip_counter))
        conn.execute("COMMIT")
        return out
    except sqlite3.DatabaseError as exc:
        return [_unreadable(db_path, exc)]
    finally:
        conn.close()


def _unreadable(db_path: Path, exc: sqlite3.DatabaseError) -> Fault:
    """The database could not be read: damage, unless the disk is merely full (SQLite cannot
    even map its shared memory then), which is no fault of the database."""
    from .diskspace import ESSENTIAL_FLOOR
    from .errors import DiskFullError

    st = os.statvfs(db_path.parent)
    free = st.f_bavail * st.f_frsize
    if st.f_blocks and free < ESSENTIAL_FLOOR:
        raise DiskFullError(free) from exc
    return database_fault(str(exc))

