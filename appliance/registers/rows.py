"""Where each register's rows come from, in what order, and how a row becomes its cells.

Sổ đăng ký văn bản đến and đi, and Sổ theo dõi giải quyết văn bản đến, read the documents of a
numbering year (the follow-up register reads each incoming document's ``Handling``, written when
the leader directs it and the handlers report). Sổ gửi văn bản đi bưu điện and Sổ sử dụng bản
lưu read their own records (appliance/postal.py, appliance/copyuse.py) joined to the document.

A number stays in its register for ever: a cancelled document keeps its row marked "Huỷ", a
recalled one "Thu hồi" (Ghi chú). Classified (mật) documents are kept in their own register
(Điều 16.3, 22.4), shown to cleared roles only (``classified``).
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..classified import DOCUMENT_IS_CLASSIFIED_SQL, DOCUMENT_NOT_CLASSIFIED_SQL, is_classified
from .layout import LAYOUTS, Period, Register, vn

Row = tuple[str, list[str]]  # (document id, the register's cells)


@dataclass(frozen=True)
class Ctx:
    """What turning rows into cells needs beyond the row: the day (overdue marks) and the
    users' full names (who handles a document)."""

    today: dt.date
    names: dict[str, str]
    classified: bool


@dataclass(frozen=True)
class Source:
    sql_from: str  # FROM clause; the document is ``d``
    base: str  # what makes a document a row of this register
    date: str  # the date a row is filed under (periods)
    key: tuple[str, ...]  # the order of the rows, unique within the register
    select: tuple[str, ...]  # what ``cells`` reads, in order
    number: str | None  # Từ số … đến số …
    cells: Callable[[Sequence[Any], Ctx], list[str]]
    by_year: bool  # documents of a numbering year (else: dated in the year)


def _s(value: Any) -> str:
    return "" if value is None else str(value)


def _join(sep: str, *parts: Any) -> str:
    return sep.join(str(p) for p in parts if p)


NO_NUMBER = "Không số"  # a received document without số, ký hiệu (an đơn), as on its page


def _number(no: Any, notation: Any) -> str:
    return f"{_s(no)}/{_s(notation)}".strip("/")


def note(status: Any, cancelled: Any, reason: Any, desc: Any) -> str:
    """Ghi chú: the register's mark for a cancelled (huỷ, with when and why) or recalled
    document, then its notes."""
    mark = "Thu hồi" if status == "recalled" else ""
    if cancelled:
        mark = _join(": ", f"Huỷ ngày {vn(_s(cancelled))}", reason)
    return _join("; ", mark, desc)


def _incoming(v: Sequence[Any], ctx: Ctx) -> list[str]:
    (arrival, no, organ, code_no, notation, issued, type_, subject, places, desc, status,
     cancelled, reason) = v
    return [_s(arrival), _s(no), _s(organ), _number(code_no, notation) or NO_NUMBER, _s(issued),
            _join(" ", type_, subject), _s(places), "", "", note(status, cancelled, reason, desc)]


def _outgoing(v: Sequence[Any], ctx: Ctx) -> list[str]:
    (code_no, notation, issued, type_, subject, pos, name, to, amount, desc, status, cancelled,
     reason) = v
    if isinstance(to, str):
        to = json.loads(to)
    return [_number(code_no, notation), _s(issued), _join(" ", type_, subject),
            _join(", ", pos, name), "; ".join(r.get("OrganName", "") for r in to or ()), "",
            _s(amount), "", "", note(status, cancelled, reason, desc)]


def identification(type_: Any, code_no: Any, notation: Any, issued: Any, organ: Any) -> str:
    """"Công văn số 88/STC-NS ngày 15/09/2025 của Sở Tài chính": what column 2 of the
    follow-up register asks for, from what the document has ("Đơn không số ngày … của …" for a
    petition without one)."""
    number = _number(code_no, notation)
    return _join(" ", type_, f"số {number}" if number else NO_NUMBER.lower(),
                 f"ngày {vn(issued)}" if issued else "", f"của {organ}" if organ else "")


def _handling(v: Sequence[Any], ctx: Ctx) -> list[str]:
    (no, type_, code_no, notation, issued, organ, raw, due_date, desc, status, cancelled,
     reason, a_no, a_notation, a_issued, a_mode) = v
    h: dict[str, Any] = json.loads(raw) if raw else {}
    lead = h.get("lead")
    who = ctx.names.get(lead, lead) if lead else ""
    support = [ctx.names.get(u, u) for u in h.get("support") or ()]
    if support:
        who = _join("; ", who, "phối hợp: " + ", ".join(support))
    due = _s(h.get("due") or due_date)
    answer = ""
    if h.get("answer") and a_no is not None:
        answer = ("(văn bản mật)" if is_classified({"Mode": a_mode}) and not ctx.classified
                  else _join(" ngày ", _number(a_no, a_notation), vn(_s(a_issued))))
    return [_s(no), identification(type_, code_no, notation, issued, organ), who, due,
            progress(h, due, ctx.today), answer, note(status, cancelled, reason, desc)]


def progress(h: dict[str, Any], due: str, today: dt.date) -> str:
    """Tiến độ giải quyết: awaiting direction, assigned, in progress (the last report) or
    done, and how late against the deadline."""
    status = h.get("status")
    if not h:
        text = "Chờ ý kiến chỉ đạo"
    elif h.get("info"):
        return "Để biết" + (f" ({h['direction']})" if h.get("direction") else "")
    elif status == "done":
        text = _join(" ", "Đã giải quyết", f"ngày {vn(_s(h.get('done_at'))[:10])}"
                     if h.get("done_at") else "")
    else:
        reports = h.get("progress") or []
        last = reports[-1] if reports else None
        text = "Đang giải quyết" if status == "in_progress" else "Đã giao xử lý"
        if last and last.get("note"):
            text += f" ({vn(_s(last.get('at'))[:10])}: {last['note']})"
    end = _s(h.get("done_at"))[:10] if status == "done" else today.isoformat()
    if due and end and end > due:
        late = (dt.date.fromisoformat(end) - dt.date.fromisoformat(due)).days
        text += f" — quá hạn {late} ngày"
    return text


def _post(v: Sequence[Any], ctx: Ctx) -> list[str]:
    sent, code_no, notation, addressees, envelopes, remark, status, cancelled, reason = v
    places = json.loads(addressees) if addressees else []
    return [_s(sent), _number(code_no, notation),
            "; ".join(_join(" ", p.get("OrganName"), f"({p['OrganId']})" if p.get("OrganId")
                            else "") for p in places),
            _s(envelopes), "", note(status, cancelled, reason, remark)]


def _copies(v: Sequence[Any], ctx: Ctx) -> list[str]:
    (used, who, code_no, notation, issued, type_, subject, file_no, returned, approver,
     remark, back_note, status, cancelled, reason) = v
    return [_s(used), _s(who), _join(", ", _number(code_no, notation), vn(_s(issued))),
            _join(" ", type_, subject), _s(file_no), "", _s(returned), _s(approver),
            note(status, cancelled, reason, _join("; ", remark, back_note))]


_DOCS = "documents d"
_CANCEL = ('d."CancelledDate"', 'd."CancelReason"')  # a cancelled number's mark
_INCOMING = "d.\"Direction\" = 'incoming' AND d.\"ArrivalNumber\" IS NOT NULL"
SOURCES: dict[str, Source] = {
    "incoming": Source(
        _DOCS, _INCOMING, 'd."ArrivalDate"', ('d."ArrivalNumber"',),
        ('d."ArrivalDate"', 'd."ArrivalNumber"', 'd."OrganName"', 'd."CodeNumber"',
         'd."CodeNotation"', 'd."IssuedDate"', 'd."TypeName"', 'd."Subject"', 'd."ToPlaces"',
         'd."Description"', 'd."Status"', *_CANCEL),
        'd."ArrivalNumber"', _incoming, True),
    "outgoing": Source(
        _DOCS,
        "d.\"Direction\" = 'outgoing' AND d.\"Status\" <> 'draft' AND d.\"CodeNumber\" IS NOT NULL",
        'd."IssuedDate"',
        ("coalesce(d.\"Series\", '')", 'CAST(d."CodeNumber" AS INTEGER)', "d.rid"),
        ('d."CodeNumber"', 'd."CodeNotation"', 'd."IssuedDate"', 'd."TypeName"', 'd."Subject"',
         'd."SignerPosition"', 'd."SignerFullName"', 'd."To"', 'd."IssuedAmount"',
         'd."Description"', 'd."Status"', *_CANCEL),
        'CAST(d."CodeNumber" AS INTEGER)', _outgoing, True),
    "handling": Source(
        "documents d LEFT JOIN documents a ON a.id = json_extract(d.\"Handling\", '$.answer')",
        _INCOMING, 'd."ArrivalDate"', ('d."ArrivalNumber"',),
        ('d."ArrivalNumber"', 'd."TypeName"', 'd."CodeNumber"', 'd."CodeNotation"',
         'd."IssuedDate"', 'd."OrganName"', 'd."Handling"', 'd."DueDate"', 'd."Description"',
         'd."Status"', *_CANCEL, 'a."CodeNumber"', 'a."CodeNotation"', 'a."IssuedDate"',
         'a."Mode"'),
        'd."ArrivalNumber"', _handling, True),
    "post": Source(
        "postal_sendings p JOIN documents d ON d.id = p.document_id", "1", "p.sent_on",
        ("p.sent_on", "p.log_index"),
        ("p.sent_on", 'd."CodeNumber"', 'd."CodeNotation"', "p.addressees", "p.envelopes",
         "p.note", 'd."Status"', *_CANCEL),
        None, _post, False),
    "copies": Source(
        'copy_uses c JOIN documents d ON d.id = c.document_id '
        'LEFT JOIN files f ON f."FileCode" = d."FileCode"', "1", "c.used_on",
        ("c.used_on", "c.log_index"),
        ("c.used_on", "c.user_name", 'd."CodeNumber"', 'd."CodeNotation"', 'd."IssuedDate"',
         'd."TypeName"', 'd."Subject"', 'f."FileNotation"', "c.returned_on", "c.approved_by",
         "c.note", "c.return_note", 'd."Status"', *_CANCEL),
        None, _copies, False),
}


def _filter(kind: str, fond: str, period: Period, classified: bool) -> tuple[str, list[Any]]:
    """The WHERE clause of a register and its arguments."""
    src = SOURCES[kind]
    mode = DOCUMENT_IS_CLASSIFIED_SQL if classified else DOCUMENT_NOT_CLASSIFIED_SQL
    mode = mode.replace('"Mode"', 'd."Mode"')
    where = f'd."FondCode" = ? AND {src.base} AND {mode}'
    args: list[Any] = [fond]
    if src.by_year:
        where += ' AND d."Year" = ?'
        args.append(period.year)
    if not (src.by_year and period.whole_year):
        where += f" AND {src.date} BETWEEN ? AND ?"
        args += [period.start.isoformat(), period.end.isoformat()]
    return where, args


def register_info(conn: sqlite3.Connection, fond: str, org_name: str, kind: str,
                  period: Period, classified: bool = False) -> Register:
    """The cover data: how many rows, the first and last date and number."""
    src = SOURCES[kind]
    where, args = _filter(kind, fond, period, classified)
    number = src.number or "NULL"
    row = conn.execute(
        f"SELECT count(*), min({src.date}), max({src.date}), min({number}), max({number}) "
        f"FROM {src.sql_from} WHERE {where}", args).fetchone()
    first = last = None
    if row[3] is not None:
        width = "" if kind in ("incoming", "handling") else "02d"
        first, last = format(int(row[3]), width), format(int(row[4]), width)
    return Register(kind, period, org_name, classified, int(row[0]), row[1], row[2], first, last)


def user_names(conn: sqlite3.Connection) -> dict[str, str]:
    """username → full name of the web UI's users (none when the folder has no users)."""
    try:
        rows = conn.execute("SELECT username, full_name FROM web_users").fetchall()
    except sqlite3.OperationalError:
        return {}
    return {str(u): str(n or u) for u, n in rows}


def _order(kind: str) -> str:
    return ", ".join(SOURCES[kind].key)


def page_starts(conn: sqlite3.Connection, fond: str, kind: str, period: Period,
                classified: bool, size: int) -> list[tuple[Any, ...]]:
    """The sort key of the first row of each page of ``size`` rows (for ``rows``)."""
    src = SOURCES[kind]
    where, args = _filter(kind, fond, period, classified)
    key = ", ".join(f"{k} AS k{i}" for i, k in enumerate(src.key))
    names = ", ".join(f"k{i}" for i in range(len(src.key)))
    return [tuple(r) for r in conn.execute(
        f"SELECT {names} FROM (SELECT {key}, row_number() OVER (ORDER BY {_order(kind)}) "
        f"AS n FROM {src.sql_from} WHERE {where}) WHERE (n - 1) % ? = 0 ORDER BY n",
        (*args, size)).fetchall()]


def rows(conn: sqlite3.Connection, fond: str, kind: str, period: Period, classified: bool,
         today: dt.date, limit: int | None = None,
         start: tuple[Any, ...] | int = 0) -> list[Row]:
    """The register's rows as (document id, cells), in register order: all of them, or up to
    ``limit`` from the row whose sort key is ``start`` (from ``page_starts``) or from the
    ``start``-th row (an offset)."""
    src = SOURCES[kind]
    where, args = _filter(kind, fond, period, classified)
    tail, more = "", []
    if isinstance(start, tuple):
        where += f" AND ({', '.join(src.key)}) >= ({', '.join('?' * len(src.key))})"
        args += list(start)
        if limit is not None:
            tail, more = "LIMIT ?", [limit]
    elif limit is not None or start:
        tail, more = "LIMIT ? OFFSET ?", [-1 if limit is None else limit, start]
    found = conn.execute(
        f"SELECT d.id, {', '.join(src.select)} FROM {src.sql_from} WHERE {where} "
        f"ORDER BY {_order(kind)} {tail}", [*args, *more]).fetchall()
    ctx = Ctx(today, user_names(conn) if kind == "handling" else {}, classified)
    return [(r[0], src.cells(tuple(r)[1:], ctx)) for r in found]


def register_years(conn: sqlite3.Connection) -> list[int]:
    """The years any document is numbered in, newest first."""
    return [int(r[0]) for r in conn.execute(
        'SELECT DISTINCT "Year" FROM documents WHERE "Year" IS NOT NULL ORDER BY 1 DESC')]


__all__ = [
    "LAYOUTS",
    "SOURCES",
    "Ctx",
    "Row",
    "identification",
    "note",
    "page_starts",
    "progress",
    "register_info",
    "register_years",
    "rows",
    "user_names",
]
