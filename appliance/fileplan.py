"""The Danh mục hồ sơ of a year (Decree 30 Điều 28, Phụ lục V): its heading structure, the
headings hồ sơ take from it, and its approval by the head of the agency.

The structure is versioned data kept in the log: each ``fileplan.headings`` entry carries the
whole structure of one year (its full new version). Main headings are numbered I, II, III…,
sub-headings 1, 2, 3… within their main heading (Phụ lục V, I); a main heading may give the
abbreviation its hồ sơ numbers end with (``01.VP``). A hồ sơ of a year takes its heading from
that year's structure — chosen, never typed — so "I. Văn phòng" cannot be written two ways.

The head approves the year's Danh mục with a ``fileplan.approve`` entry naming the structure
version, the decision, and a digest of the list of hồ sơ as it stood, so that a later change is
seen; the printed Danh mục carries the approval (``fileplan_print.py``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import re
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import clock as clockmod
from . import writes
from .errors import ConflictError, LuutruError, refusal
from .kinds import Kind
from .ledger import Entry
from .text import nfc, nfc_multiline
from .writer import Txn
from .writes import WriteContext

DDL = """
CREATE TABLE IF NOT EXISTS fileplan_headings (
  year INTEGER NOT NULL,
  version INTEGER NOT NULL CHECK (version >= 1),
  headings TEXT NOT NULL CHECK (json_valid(headings)),
  actor TEXT NOT NULL,
  at TEXT NOT NULL,
  log_index INTEGER NOT NULL,
  PRIMARY KEY (year, version)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS fileplan_approvals (
  log_index INTEGER PRIMARY KEY,
  year INTEGER NOT NULL,
  headings_version INTEGER,
  decision TEXT NOT NULL,
  approved_on TEXT NOT NULL,
  approver TEXT NOT NULL CHECK (json_valid(approver)),
  files INTEGER NOT NULL,
  permanent INTEGER NOT NULL,
  digest TEXT NOT NULL,
  actor TEXT NOT NULL,
  at TEXT NOT NULL);
"""
TABLES = ("fileplan_headings", "fileplan_approvals")
MAX_HEADINGS = 200
MAX_TITLE = 250
PERMANENT = "01"

_ROMAN = [(1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"),
          (50, "L"), (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")]
_LINE = re.compile(r"^\s*([IVXLCDM]+|\d+)\s*[.)]\s*(.+?)\s*(?:\|\s*([^|]*?)\s*)?$")
_ABBR = re.compile(r"^[0-9A-ZĐ]{1,10}$")


def roman(n: int) -> str:
    out = ""
    for value, letters in _ROMAN:
        while n >= value:
            out, n = out + letters, n - value
    return out


@dataclass(frozen=True)
class Heading:
    code: str  # "I" (main) or "I.1" (sub-heading 1 of I)
    title: str
    abbr: str | None = None  # main headings: the abbreviation of their hồ sơ numbers

    @property
    def main(self) -> bool:
        return "." not in self.code

    @property
    def label(self) -> str:
        """What a hồ sơ's ``Heading`` holds: "I. Văn phòng", "I.1. Văn thư"."""
        return f"{self.code}. {self.title}"

    @property
    def short(self) -> str:
        """As the Danh mục prints it: "I. VĂN PHÒNG" is its main heading's, "1. Văn thư"."""
        return f"{self.code}. {self.title}" if self.main else \
            f"{self.code.split('.')[1]}. {self.title}"

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"code": self.code, "title": self.title}
        if self.abbr:
            d["abbr"] = self.abbr
        return d


@dataclass(frozen=True)
class Structure:
    year: int
    version: int
    headings: tuple[Heading, ...]
    actor: str
    at: str

    def by_label(self, label: str) -> Heading | None:
        for h in self.headings:
            if h.label == label or h.code == label:
                return h
        return None

    def main_of(self, h: Heading) -> Heading:
        code = h.code.split(".")[0]
        return next(m for m in self.headings if m.code == code)

    def to_json(self) -> dict[str, Any]:
        return {"year": self.year, "version": self.version, "actor": self.actor, "at": self.at,
                "headings": nested([h.to_json() for h in self.headings])}


def _bad(vi: str, en: str) -> LuutruError:
    return refusal(vi, en, "headings")


def nested(flat: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The flat list as main headings with their ``children`` (the API's form)."""
    out: list[dict[str, Any]] = []
    for h in flat:
        if "." in h["code"]:
            out[-1]["children"].append({"code": h["code"].split(".")[1], "title": h["title"]})
        else:
            out.append({**h, "children": []})
    return out


def parse_text(text: str) -> list[dict[str, Any]]:
    """The heading structure as the form writes it, one heading a line:
    ``I. Công tác văn phòng | VP`` for a main heading (with its abbreviation), ``1. Văn thư``
    for a sub-heading of the main heading above it."""
    out: list[dict[str, Any]] = []
    for n, line in enumerate(nfc_multiline(text).splitlines(), 1):
        if not line.strip():
            continue
        m = _LINE.match(line)
        if not m:
            raise _bad(f"Dòng {n} không đúng mẫu 'I. Tên đề mục | VP' hoặc '1. Tên đề mục con'",
                       f"line {n} is not 'I. Title | ABBR' or '1. Sub-heading'")
        number, title, abbr = m.group(1), m.group(2), m.group(3)
        if number.isdigit():
            if not out:
                raise _bad(f"Dòng {n}: đề mục con phải nằm dưới một đề mục lớn",
                           f"line {n}: a sub-heading needs a main heading above it")
            out[-1]["children"].append({"code": number, "title": title})
        else:
            main: dict[str, Any] = {"code": number, "title": title, "children": []}
            if abbr:
                main["abbr"] = abbr
            out.append(main)
    return out


def normalise(headings: Sequence[Mapping[str, Any]]) -> tuple[Heading, ...]:
    """A structure given as main headings with ``children`` checked and made flat: mains
    numbered I, II, III… in order, their sub-headings 1, 2, 3…, titles unique, abbreviations
    of 1–10 letters (A–Z, Đ, digits) and unique."""
    if not isinstance(headings, Sequence) or not headings:
        raise _bad("Hãy ghi ít nhất một đề mục", "give at least one heading")
    out: list[Heading] = []
    abbrs: set[str] = set()
    for i, main in enumerate(headings, 1):
        if not isinstance(main, Mapping):
            raise _bad("Mỗi đề mục là một đối tượng", "each heading is an object")
        code = roman(i)
        if any(not isinstance(main.get(k, ""), str) for k in ("code", "abbr")):
            raise _bad(f"Số và chữ viết tắt của đề mục {code} phải là chữ",
                       f"heading {code}'s code and abbreviation must be text")
        if str(main.get("code") or code).strip().upper() != code:
            raise _bad(f"Đề mục lớn thứ {i} phải đánh số {code}",
                       f"main heading {i} must be numbered {code}")
        abbr = nfc(str(main.get("abbr") or "")).strip().upper() or None
        if abbr is not None:
            if not _ABBR.match(abbr) or abbr in abbrs:
                raise _bad(f"Chữ viết tắt {abbr} của đề mục {code} không hợp lệ hoặc trùng",
                           f"abbreviation {abbr} of {code} is malformed or repeated")
            abbrs.add(abbr)
        out.append(Heading(code, _title(main.get("title"), code), abbr))
        children = main.get("children", [])
        if not isinstance(children, list):
            raise _bad(f"Đề mục con của {code} phải là một danh sách",
                       f"the sub-headings of {code} must be a list")
        for j, sub in enumerate(children, 1):
            if not isinstance(sub, Mapping) or not isinstance(sub.get("code", ""), str) \
                    or str(sub.get("code") or j).strip() != str(j):
                raise _bad(f"Đề mục con thứ {j} của {code} phải đánh số {j}",
                           f"sub-heading {j} of {code} must be numbered {j}")
            out.append(Heading(f"{code}.{j}", _title(sub.get("title"), f"{code}.{j}")))
    if len(out) > MAX_HEADINGS:
        raise _bad(f"Nhiều nhất {MAX_HEADINGS} đề mục", f"at most {MAX_HEADINGS} headings")
    titles = [(h.main, h.code.split(".")[0] if not h.main else "", h.title.casefold())
              for h in out]
    if len(set(titles)) != len(titles):
        raise _bad("Hai đề mục cùng cấp trùng tên", "two headings at one level share a title")
    return tuple(out)


def _title(value: Any, code: str) -> str:
    if not isinstance(value, str):
        raise _bad(f"Tên đề mục {code} phải là chữ", f"heading {code}'s title must be text")
    title = nfc(value).strip()
    if not title or len(title) > MAX_TITLE:
        raise _bad(f"Tên đề mục {code} phải có từ 1 đến {MAX_TITLE} ký tự",
                   f"heading {code} needs a title of 1–{MAX_TITLE} characters")
    return title


def set_headings(store: WriteContext, year: int, headings: Sequence[Mapping[str, Any]],
                 actor: str = "system") -> Structure:
    """Record a new version of the year's heading structure. A heading of the previous version
    that hồ sơ of the year use cannot disappear or be renamed (their ``Heading`` would point at
    nothing); headings written before any structure (imported registers) are left as they
    are."""
    flat = normalise(headings)
    if not 1900 <= year <= 2200:
        raise refusal(f"Năm {year} không hợp lệ", "year out of range", "year")

    def job(txn: Txn) -> Structure:
        old = structure(txn.conn, year)
        dropped = ({h.label for h in old.headings} if old else set()) - {h.label for h in flat}
        used = [r[0] for r in txn.conn.execute(
            'SELECT DISTINCT "Heading" FROM files WHERE "FileCatalog" = ? AND "Heading" IS NOT '
            "NULL ORDER BY 1", (year,)) if r[0] in dropped]
        if used:
            raise refusal(f"Hồ sơ năm {year} đang dùng đề mục không còn trong khung mới: "
                          f"{used[0]}", f"hồ sơ of {year} use a heading the new structure "
                          f"drops: {used[0]}", "headings", ConflictError)
        version = 1 if old is None else old.version + 1
        data = {"year": year, "version": version, "headings": [h.to_json() for h in flat]}
        entry = writes.append_event(txn, Kind.FILEPLAN_HEADINGS, actor, data)
        project(txn.conn, entry)
        s = structure(txn.conn, year)
        assert s is not None
        return s

    result: Structure = store.writer_or_fail().call(job)
    return result


def structure(conn: sqlite3.Connection, year: int,
              version: int | None = None) -> Structure | None:
    """The year's heading structure (its latest version, or ``version``); None if none."""
    sql = "SELECT version, headings, actor, at FROM fileplan_headings WHERE year = ?"
    args: tuple[Any, ...] = (year,)
    if version is not None:
        sql, args = sql + " AND version = ?", (year, version)
    row = conn.execute(sql + " ORDER BY version DESC LIMIT 1", args).fetchone()
    if row is None:
        return None
    items = tuple(Heading(h["code"], h["title"], h.get("abbr")) for h in json.loads(row[1]))
    return Structure(year, int(row[0]), items, str(row[2]), str(row[3]))


def check_heading(conn: sqlite3.Connection, data: dict[str, Any]) -> None:
    """A new hồ sơ's heading must be one of its year's structure (chosen, not typed); its
    number must end with its main heading's abbreviation. The heading is written as the
    structure labels it (a code such as "I.1" is accepted for it)."""
    given = data.get("Heading")
    if not given:
        return
    year = int(data["FileCatalog"])
    s = structure(conn, year)
    if s is None:
        raise refusal(f"Danh mục hồ sơ năm {year} chưa có khung đề mục; hãy lập khung đề mục "
                      "trước khi chọn đề mục",
                      f"the Danh mục of {year} has no heading structure yet", "Heading")
    h = s.by_label(nfc(str(given)).strip())
    if h is None:
        raise refusal(f"Đề mục '{given}' không có trong khung đề mục năm {year}; hãy chọn "
                      "trong danh sách", f"'{given}' is not a heading of {year}", "Heading")
    data["Heading"] = h.label
    abbr = s.main_of(h).abbr
    notation = str(data.get("FileNotation") or "")
    if abbr and notation.split(".", 1)[-1] != abbr:
        raise refusal(f"Số và ký hiệu hồ sơ {notation} phải kết thúc bằng chữ viết tắt {abbr} "
                      f"của đề mục {s.main_of(h).code}",
                      f"the file number must end with .{abbr}, its heading's abbreviation",
                      "FileNotation")


# -- approval ------------------------------------------------------------------------------

def listing(conn: sqlite3.Connection, year: int) -> list[dict[str, Any]]:
    """The year's hồ sơ as the Danh mục lists them (every one, classified ones too)."""
    cols = ("FileCode", "FileNotation", "Title", "Heading", "Maintenance", "Creator",
            "Description", "Rights", "Status")
    rows = conn.execute(
        f"SELECT {', '.join(chr(34) + c + chr(34) for c in cols)} FROM files "
        'WHERE "FileCatalog" = ? ORDER BY "FileNotation"', (year,)).fetchall()
    return [dict(zip(cols, r, strict=True)) for r in rows]


def digest(files: list[dict[str, Any]]) -> str:
    """SHA-256 of what the head approves of each hồ sơ: number, title, heading, retention,
    creator (not its contents, which keep changing through the year)."""
    keys = ("FileCode", "Title", "Heading", "Maintenance", "Creator")
    body = sorted([[f.get(k) or "" for k in keys] for f in files])
    return hashlib.sha256(json.dumps(body, ensure_ascii=False).encode()).hexdigest()


@dataclass(frozen=True)
class Approval:
    year: int
    headings_version: int | None
    decision: str
    approved_on: str
    approver: dict[str, str]
    files: int
    permanent: int
    digest: str
    actor: str
    at: str
    log_index: int

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def approve(store: WriteContext, year: int, decision: str, approved_on: str | dt.date,
            approver: Mapping[str, str], actor: str = "system") -> Approval:
    """The head's approval of the year's Danh mục hồ sơ as it stands (``decision``: the
    quyết định that issues it; ``approver``: username, full_name, position)."""
    decision = nfc(decision or "").strip()
    if not decision or len(decision) > 300:
        raise refusal("Hãy ghi số, ngày văn bản phê duyệt (tối đa 300 ký tự)",
                      "give the approving decision (1–300 characters)", "decision")
    day = clockmod.parse_date(approved_on, "approved_on")
    if day > store.clock.now().date():
        raise refusal("Ngày phê duyệt sau ngày hôm nay", "approved_on is in the future",
                      "approved_on")
    who = {k: nfc(str(approver.get(k) or "")).strip()[:100]
           for k in ("username", "full_name", "position")}

    def job(txn: Txn) -> Approval:
        files = listing(txn.conn, year)
        if not files:
            raise refusal(f"Danh mục hồ sơ năm {year} chưa có hồ sơ nào",
                          f"the Danh mục of {year} has no hồ sơ", None, ConflictError)
        s = structure(txn.conn, year)
        data = {"year": year, "headings_version": s.version if s else None,
                "decision": decision, "approved_on": day.isoformat(), "approver": who,
                "files": len(files),
                "permanent": sum(1 for f in files if f["Maintenance"] == PERMANENT),
                "digest": digest(files)}
        entry = writes.append_event(txn, Kind.FILEPLAN_APPROVE, actor, data)
        project(txn.conn, entry)
        found = approval(txn.conn, year)
        assert found is not None
        return found

    result: Approval = store.writer_or_fail().call(job)
    return result


def approval(conn: sqlite3.Connection, year: int) -> Approval | None:
    """The latest approval of the year's Danh mục, or None."""
    row = conn.execute(
        "SELECT year, headings_version, decision, approved_on, approver, files, permanent, "
        "digest, actor, at, log_index FROM fileplan_approvals WHERE year = ? "
        "ORDER BY log_index DESC LIMIT 1", (year,)).fetchone()
    if row is None:
        return None
    r = list(row)
    r[4] = json.loads(r[4])
    return Approval(*r)


def changed_since(conn: sqlite3.Connection, year: int, ap: Approval | None) -> bool:
    """Whether the year's list of hồ sơ differs from the one ``ap`` approved."""
    return ap is not None and digest(listing(conn, year)) != ap.digest


def project(conn: sqlite3.Connection, entry: Entry) -> None:
    """Write a ``fileplan.*`` entry's row (the live path and rebuild.py)."""
    d = entry.data or {}
    if entry.kind == Kind.FILEPLAN_HEADINGS:
        conn.execute(
            "INSERT INTO fileplan_headings (year, version, headings, actor, at, log_index) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (d["year"], d["version"],
             json.dumps(d["headings"], ensure_ascii=False, sort_keys=True),
             entry.actor, entry.at, entry.index))
    else:
        conn.execute(
            "INSERT INTO fileplan_approvals (log_index, year, headings_version, decision, "
            "approved_on, approver, files, permanent, digest, actor, at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (entry.index, d["year"], d.get("headings_version"), d["decision"],
             d["approved_on"], json.dumps(d["approver"], ensure_ascii=False, sort_keys=True),
             d["files"], d["permanent"], d["digest"], entry.actor, entry.at))


def arrange(files: list[dict[str, Any]],
            s: Structure | None) -> list[tuple[int, str, list[dict[str, Any]]]]:
    """The Danh mục's rows in the structure's order: (level, heading text, its hồ sơ) with
    level 1 a main heading, 2 a sub-heading, 0 the hồ sơ without a heading of the structure
    (grouped by what they hold, last)."""
    out: list[tuple[int, str, list[dict[str, Any]]]] = []
    known: set[str] = set()
    if s is not None:
        for h in s.headings:
            mine = [f for f in files if f.get("Heading") == h.label]
            known.add(h.label)
            out.append((1 if h.main else 2, h.short, mine))
    rest: dict[str, list[dict[str, Any]]] = {}
    for f in files:
        if f.get("Heading") not in known:
            rest.setdefault(str(f.get("Heading") or ""), []).append(f)
    for label in sorted(rest):
        out.append((0, label, rest[label]))
    return out
