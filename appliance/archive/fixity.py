"""The fixity audit: every content file and every log entry, here and on each backup medium,
with minutes in the shape of TT 05/2025 Phụ lục VII (biên bản kiểm tra); and healing a
failed copy from a good one, each step logged.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..clock import iso, vn_date
from ..errors import LuutruError
from ..kinds import Kind
from . import state
from .backup import DB_FULL, DB_PAGES, _log_event, backup
from .medium import Medium, copy_verified, open_medium
from .pdf import Doc

if TYPE_CHECKING:
    from ..store import Store

PRIMARY = "Ổ dữ liệu chính"
WORKERS = 2


@dataclass(frozen=True)
class Failure:
    """One thing that failed the audit: where (medium label), which path, what is wrong."""

    medium: str
    path: str
    kind: str  # content.corrupt · content.missing · backup.content.corrupt · backup.set.corrupt …
    message: str
    sha256: str | None = None
    set_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        out = {"medium": self.medium, "path": self.path, "kind": self.kind,
               "message": self.message}
        if self.sha256:
            out["sha256"] = self.sha256
        if self.set_id:
            out["set_id"] = self.set_id
        return out


@dataclass
class AuditResult:
    at: str
    content_checked: int = 0
    content_bytes: int = 0
    entries_checked: int = 0
    media: list[str] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    # Content a device replacement recorded as lost (the hand-over entry lists it: it never
    # reached the centre before the old box died). Not on disk, and known: listed, not failed.
    known_lost: list[str] = field(default_factory=list)
    minutes_sha256: str | None = None
    minutes_path: str | None = None
    logged_index: int | None = None

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "at": self.at,
            "content_checked": self.content_checked,
            "content_bytes": self.content_bytes,
            "entries_checked": self.entries_checked,
            "media": self.media,
            "failures": [f.to_json() for f in self.failures],
            "known_lost": self.known_lost,
            "minutes_sha256": self.minutes_sha256,
            "minutes_path": self.minutes_path,
            "logged_index": self.logged_index,
        }


def _hash_one(path: Path) -> tuple[Path, str | None, int]:
    try:
        with path.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            return path, hashlib.file_digest(fh, "sha256").hexdigest(), size
    except OSError:
        return path, None, 0


def hash_files(paths: Sequence[Path], workers: int = WORKERS) -> list[tuple[Path, str | None, int]]:
    """SHA-256 of many files; hashlib releases the GIL, so threads use both cores."""
    if workers <= 1 or len(paths) < 2:
        return [_hash_one(p) for p in paths]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(_hash_one, paths, chunksize=16))


def _destroyed_content(store: Store) -> set[str]:
    from ..ledger import Entry

    out: set[str] = set()
    for (idx,) in state.rows(
        store.reader(),
        "SELECT log_index FROM archive_holds WHERE kind = 'destroyed' AND target_type = 'document'",
    ):
        raw = store.reader().execute("SELECT entry FROM log WHERE idx = ?", (idx,)).fetchone()
        if raw is not None:
            data = Entry.decode(bytes(raw[0]), strict=False).data or {}
            out.update(data.get("content", []))
    return out


def _released_content(store: Store) -> set[str]:
    """Content whose bytes the log says were not kept (``keep: none``)."""
    out: set[str] = set()
    for (raw,) in store.reader().execute(
        'SELECT "Content" FROM documents WHERE "Content" LIKE ?', ('%"keep"%',)
    ):
        out.update(c["sha256"] for c in json.loads(raw) if c.get("keep") == "none")
    return out


def _check_primary(
    store: Store, res: AuditResult, workers: int, lost: frozenset[str] = frozenset()
) -> None:
    present = sorted(store.content.iter_hashes())
    for path, sha, size in hash_files([store.content.path(s) for s in present], workers):
        res.content_checked += 1
        res.content_bytes += size
        if sha != path.name:
            res.failures.append(Failure(PRIMARY, str(path), "content.corrupt",
                                        "tệp nội dung không còn đúng mã SHA-256 (hỏng bit)",
                                        path.name))
    # A version kept inside another (appliance/versions.py) is rebuilt and rehashed; one the
    # log says was released (a lossless scan once its archival version exists) is not here.
    derived = sorted(store.content.iter_derived())
    for sha in derived:
        res.content_checked += 1
        if store.content.hash_file(sha) != sha:
            res.failures.append(Failure(PRIMARY, str(store.content.derived_path(sha)),
                                        "content.corrupt",
                                        "phiên bản lưu trong tệp khác không còn đúng mã SHA-256",
                                        sha))
    expected = {str(r[0]) for r in store.reader().execute("SELECT sha256 FROM content")}
    gone = set(present) | set(derived) | _destroyed_content(store) | _released_content(store)
    for sha in sorted(expected - gone):
        if sha in lost:
            res.known_lost.append(sha)
            continue
        res.failures.append(Failure(PRIMARY, str(store.content.path(sha)), "content.missing",
                                    "tệp nội dung bị mất", sha))


def _check_log(store: Store, res: AuditResult) -> frozenset[str]:
    """Verify the log; returns the content its hand-over entries record as lost."""
    from ..verify import Severity, verify_data_dir

    report = verify_data_dir(store.data_dir, check_content=False)
    res.entries_checked = report.entries
    for f in report.findings:
        if f.severity is Severity.ERROR:
            where = f"log entry {f.index}" if f.index is not None else store.db_path
            res.failures.append(Failure(PRIMARY, f"{store.db_path} ({where})", f"log.{f.code}",
                                        f.message))
    return frozenset().union(*(h.lost_content for h in report.handovers))


def _check_medium(medium: Medium, res: AuditResult, workers: int) -> None:
    res.media.append(medium.label)
    present = sorted(medium.iter_content())
    for path, sha, size in hash_files([medium.content_path(s) for s in present], workers):
        res.content_checked += 1
        res.content_bytes += size
        if sha != path.name:
            res.failures.append(Failure(medium.label, str(path), "backup.content.corrupt",
                                        "bản sao tệp nội dung không còn đúng mã SHA-256",
                                        path.name))
    expected: set[str] = set()
    for set_id in medium.set_ids():
        m = medium.manifest(set_id)
        expected.update(m.get("content", []))
        part = medium.sets_dir / set_id / (DB_FULL if m["kind"] == "full" else DB_PAGES)
        _, sha, _ = _hash_one(part)
        if sha != m["db"]["part_sha256"]:
            res.failures.append(Failure(medium.label, str(part), "backup.set.corrupt",
                                        "bản sao cơ sở dữ liệu của bộ sao lưu bị hỏng",
                                        set_id=set_id))
        for rel, want in m.get("files", {}).items():
            p = medium.sets_dir / set_id / "files" / rel
            _, got, _ = _hash_one(p)
            if got != want:
                res.failures.append(Failure(medium.label, str(p), "backup.set.corrupt",
                                            "tệp cấu hình của bộ sao lưu bị hỏng", set_id=set_id))
    for sha in sorted(expected - set(present)):
        res.failures.append(Failure(medium.label, str(medium.content_path(sha)),
                                    "backup.content.missing", "bản sao tệp nội dung bị mất", sha))


def minutes_pdf(store: Store, res: AuditResult, actor: str) -> bytes:
    """Biên bản kiểm tra (TT 05/2025 Phụ lục VII): scope, results, the faulty files listed."""
    now = dt.datetime.fromisoformat(res.at)
    doc = Doc("Biên bản kiểm tra tài liệu lưu trữ số")
    doc.header([store.config.org_name.upper()], ["CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
                                                 "Độc lập - Tự do - Hạnh phúc"])
    doc.space(14)
    doc.heading("BIÊN BẢN KIỂM TRA")
    doc.heading("Tính toàn vẹn của tài liệu lưu trữ số và cơ sở dữ liệu")
    doc.para(f"Thời gian: {now.strftime('%H:%M')} ngày {vn_date(now.date())} "
             f"({res.at})")
    doc.para(f"Người thực hiện: {actor}. Phương pháp: tính lại mã SHA-256 của từng tệp và "
             "kiểm tra lại toàn bộ nhật ký niêm phong (cây Merkle, chữ ký các điểm kiểm tra, "
             "bảng dữ liệu).")
    doc.para("Vật mang tin được kiểm tra: " + ", ".join([PRIMARY, *res.media]))
    doc.para(f"Kết quả: đã kiểm tra {res.content_checked} tệp ({res.content_bytes:,} byte) và "
             f"{res.entries_checked} mục nhật ký; phát hiện {len(res.failures)} lỗi.")
    if res.known_lost:
        doc.para(f"{len(res.known_lost)} tệp nội dung đã được ghi nhận là mất khi thay thiết bị "
                 "(mục bàn giao trong nhật ký; chưa kịp gửi về trung tâm trước khi thiết bị cũ "
                 "hỏng), không tính là lỗi: " + ", ".join(res.known_lost))
    doc.space()
    if res.failures:
        doc.table(
            ["STT", "Tên tệp / đối tượng", "Nhãn vật mang tin", "Đường dẫn", "Lỗi phát hiện"],
            [(str(n), f.sha256 or f.set_id or f.kind, f.medium, f.path, f.message)
             for n, f in enumerate(res.failures, start=1)],
            [25, 95, 80, 190, 120],
        )
    else:
        doc.para("Không phát hiện tệp hoặc mục nhật ký nào bị sai lệch.")
    doc.space(14)
    doc.para("Kết luận: " + ("tài liệu toàn vẹn." if res.ok else "cần phục hồi các tệp hỏng "
                             "từ bản sao còn tốt (luutru fixity --heal)."))
    doc.space(24)
    doc.table(["NGƯỜI KIỂM TRA", "THỦ TRƯỞNG CƠ QUAN"], [("(Ký, ghi rõ họ tên)",
                                                         "(Ký tên, đóng dấu)")], [255, 255])
    return doc.render()


def audit(
    store: Store,
    media: Sequence[Path] = (),
    *,
    actor: str = "system",
    minutes_to: Path | None = None,
    record: bool = True,
    workers: int = WORKERS,
) -> AuditResult:
    """Check every content file and log entry here and on each medium; log it with minutes."""
    res = AuditResult(at=iso(store.clock.now()))
    lost = _check_log(store, res)
    _check_primary(store, res, workers, lost)
    for path in media:
        try:
            medium = open_medium(path)
        except LuutruError as exc:
            res.failures.append(Failure(str(path), str(path), "backup.medium", str(exc)))
            continue
        _check_medium(medium, res, workers)
    if not record:
        return res
    body = minutes_pdf(store, res, actor)
    stored = store.content.put_bytes(body)
    res.minutes_sha256 = stored.sha256
    if minutes_to is not None:
        from ..fsutil import write_atomic

        write_atomic(minutes_to, body)
        res.minutes_path = str(minutes_to)
    summary = {k: v for k, v in res.to_json().items() if k not in ("logged_index",)}
    res.logged_index = _log_event(store, Kind.ARCHIVE_FIXITY_AUDIT, "fixity", res.ok, summary,
                                  actor, refs=(bytes.fromhex(stored.sha256),))
    for path in media:
        with contextlib.suppress(LuutruError):
            open_medium(path).log({"event": "fixity_audit", "at": res.at, "actor": actor,
                                   "ok": res.ok, "failures": len(res.failures)})
    return res


@dataclass
class HealResult:
    healed: list[dict[str, Any]] = field(default_factory=list)
    unhealed: list[Failure] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"healed": self.healed, "unhealed": [f.to_json() for f in self.unhealed]}


def _good_copy(sha: str, sources: list[tuple[str, Path]]) -> tuple[str, Path] | None:
    for label, path in sources:
        if path.is_file() and _hash_one(path)[1] == sha:
            return label, path
    return None


def heal(
    store: Store,
    media: Sequence[Path],
    result: AuditResult | None = None,
    *,
    actor: str = "system",
) -> HealResult:
    """Repair each failed copy from a good one (the other medium or the appliance); log each."""
    result = result or audit(store, media, record=False)
    opened = [open_medium(p) for p in media]
    by_label = {m.label: (m, p) for m, p in zip(opened, media, strict=True)}
    out = HealResult()
    new_full: set[str] = set()
    for f in result.failures:
        if f.kind in ("content.corrupt", "content.missing") and f.sha256:
            src = _good_copy(f.sha256, [(m.label, m.content_path(f.sha256)) for m in opened])
            if src is None:
                out.unhealed.append(f)
                continue
            with src[1].open("rb") as fh:
                copy_verified(fh, store.content.path(f.sha256), f.sha256,
                              store.data_dir / "content" / "tmp")
            out.healed.append({"sha256": f.sha256, "kind": f.kind, "from": src[0],
                               "to": PRIMARY, "path": f.path})
        elif f.kind in ("backup.content.corrupt", "backup.content.missing") and f.sha256:
            medium = by_label.get(f.medium)
            sources = [(PRIMARY, store.content.path(f.sha256))] + [
                (m.label, m.content_path(f.sha256)) for m in opened if m.label != f.medium
            ]
            src = _good_copy(f.sha256, sources)
            if medium is None or src is None:
                out.unhealed.append(f)
                continue
            with src[1].open("rb") as fh:
                copy_verified(fh, medium[0].content_path(f.sha256), f.sha256,
                              medium[0].path / "tmp")
            out.healed.append({"sha256": f.sha256, "kind": f.kind, "from": src[0],
                               "to": f.medium, "path": f.path})
        elif f.kind == "backup.set.corrupt" and f.medium in by_label:
            if f.medium not in new_full:
                res = backup(store, by_label[f.medium][1], full=True, actor=actor)
                new_full.add(f.medium)
                out.healed.append({"set_id": f.set_id, "kind": f.kind, "to": f.medium,
                                   "path": f.path, "action": f"new full set {res.set_id}"})
        else:
            out.unhealed.append(f)
    for sha in result.known_lost:  # lost with the old box; an older backup may still hold it
        src = _good_copy(sha, [(m.label, m.content_path(sha)) for m in opened])
        if src is not None:
            with src[1].open("rb") as fh:
                copy_verified(fh, store.content.path(sha), sha, store.data_dir / "content" / "tmp")
            out.healed.append({"sha256": sha, "kind": "content.lost", "from": src[0],
                               "to": PRIMARY, "path": str(store.content.path(sha))})
    for h in out.healed:
        _log_event(store, Kind.ARCHIVE_HEAL, "heal", True, dict(h, at=iso(store.clock.now())),
                   actor)
        medium = by_label.get(str(h.get("to")))
        if medium is not None:
            medium[0].log({"event": "heal", "at": iso(store.clock.now()), "actor": actor, **h})
    return out


def run_scheduled(
    store: Store,
    media: Sequence[Path],
    *,
    interval_days: int = 365,
    actor: str = "luutru serve",
) -> AuditResult | None:
    """run_once for the serve loop: a full audit when the last one is older than the interval
    (TT 05 asks that all holdings are checked within 3 years; yearly by default)."""
    last = state.last_audit(store.reader(), "fixity")
    now = store.clock.now()
    if last is not None and now - dt.datetime.fromisoformat(last[0]) < dt.timedelta(
        days=interval_days
    ):
        return None
    return audit(store, media, actor=actor)
