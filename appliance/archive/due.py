"""The due-date engine: when each hồ sơ falls due for the current and the historical archive.

Rules are data (``appliance/data/due_rules.json``, overridden per appliance by
``<data>/due_rules.json``); for each stage the earliest deadline of the enabled rules that
match a file applies, and a file is reported ``warn_days`` (30) ahead.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import sqlite3
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..clock import vn_date
from ..errors import ConfigError
from ..text import fold
from . import state

if TYPE_CHECKING:
    from ..store import Store

RULES_NAME = "due_rules.json"


class Stage(StrEnum):
    CURRENT = "current_archive"  # nộp lưu vào lưu trữ hiện hành
    REGISTER = "historical_registration"  # đăng ký nộp lưu lịch sử (12 tháng trước)
    HISTORICAL = "historical_archive"  # nộp lưu vào lưu trữ lịch sử
    EXPIRY = "retention_expiry"  # hết thời hạn lưu trữ: xem xét hủy


STAGE_LABELS = {
    Stage.CURRENT: "Nộp lưu vào lưu trữ hiện hành",
    Stage.REGISTER: "Đăng ký nộp lưu vào lưu trữ lịch sử",
    Stage.HISTORICAL: "Nộp lưu vào lưu trữ lịch sử",
    Stage.EXPIRY: "Hết thời hạn lưu trữ (xem xét hủy)",
}


class DueStatus(StrEnum):
    OVERDUE = "overdue"
    DUE_SOON = "due_soon"
    UPCOMING = "upcoming"


@dataclass(frozen=True)
class Rule:
    id: str
    label: str
    kind: str  # after_end | end_of_year_after_end | end_of_year_after_accession
    years: int = 0
    months: int = 0
    days: int = 0
    heading_contains: tuple[str, ...] = ()
    enabled: bool = True

    def matches(self, file: dict[str, Any]) -> bool:
        if not self.heading_contains:
            return True
        text = fold(" ".join(str(file.get(k) or "") for k in ("Heading", "Title", "FileNotation")))
        return any(fold(word) in text for word in self.heading_contains)


@dataclass(frozen=True)
class DueRules:
    version: str
    warn_days: int
    hold_max_years: int
    current: tuple[Rule, ...]
    historical: tuple[Rule, ...]
    registration_months: int
    retention_years: dict[str, int]
    source: str


@dataclass(frozen=True)
class DueItem:
    file_code: str
    title: str
    fond_code: str
    maintenance: str
    stage: Stage
    deadline: dt.date
    rule: str
    rule_label: str
    days_left: int
    status: DueStatus

    def to_json(self) -> dict[str, Any]:
        return {
            "file_code": self.file_code,
            "title": self.title,
            "fond_code": self.fond_code,
            "maintenance": self.maintenance,
            "stage": self.stage.value,
            "stage_label": STAGE_LABELS[self.stage],
            "deadline": self.deadline.isoformat(),
            "deadline_vn": vn_date(self.deadline),
            "rule": self.rule,
            "rule_label": self.rule_label,
            "days_left": self.days_left,
            "status": self.status.value,
        }


def _rule(raw: dict[str, Any]) -> Rule:
    try:
        match = raw.get("match") or {}
        words = match.get("heading_contains") or ()
        if isinstance(words, str):
            words = (words,)
        rule = Rule(
            id=str(raw["id"]),
            label=str(raw.get("label", raw["id"])),
            kind=str(raw["kind"]),
            years=int(raw.get("years", 0)),
            months=int(raw.get("months", 0)),
            days=int(raw.get("days", 0)),
            heading_contains=tuple(str(w) for w in words),
            enabled=bool(raw.get("enabled", True)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"due rule {raw!r} is malformed: {exc}") from exc
    if rule.kind not in ("after_end", "end_of_year_after_end", "end_of_year_after_accession"):
        raise ConfigError(f"due rule {rule.id}: unknown kind {rule.kind!r}")
    return rule


def parse_rules(raw: bytes, source: str = "") -> DueRules:
    try:
        doc = json.loads(raw.decode("utf-8"))
        return DueRules(
            version=str(doc["version"]),
            warn_days=int(doc.get("warn_days", 30)),
            hold_max_years=int(doc.get("hold_max_years", 2)),
            current=tuple(_rule(r) for r in doc["current_archive"]),
            historical=tuple(_rule(r) for r in doc["historical_archive"]),
            registration_months=int(doc.get("historical_registration_months", 12)),
            retention_years={str(k): int(v) for k, v in doc.get("retention_years", {}).items()},
            source=source,
        )
    except (KeyError, TypeError, ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"due rules {source or '(bundled)'} are malformed: {exc}") from exc


def load_rules(data_dir: Path | None = None) -> DueRules:
    """The appliance's own rules file if it has one, else the bundled rules."""
    if data_dir is not None and (data_dir / RULES_NAME).is_file():
        path = data_dir / RULES_NAME
        return parse_rules(path.read_bytes(), str(path))
    raw = resources.files("appliance").joinpath(f"data/{RULES_NAME}").read_bytes()
    return parse_rules(raw, f"appliance/data/{RULES_NAME}")


def add_months(d: dt.date, months: int) -> dt.date:
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    return dt.date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def apply_rule(rule: Rule, base: dt.date) -> dt.date:
    """The deadline ``rule`` gives for a work that ended (or was accessioned) on ``base``."""
    if rule.kind == "after_end":
        return add_months(base, rule.years * 12 + rule.months) + dt.timedelta(days=rule.days)
    return dt.date(base.year + rule.years, 12, 31)


def earliest(
    rules: tuple[Rule, ...], kinds: tuple[str, ...], file: dict[str, Any], base: dt.date
) -> tuple[dt.date, Rule] | None:
    best: tuple[dt.date, Rule] | None = None
    for rule in rules:
        if rule.enabled and rule.kind in kinds and rule.matches(file):
            when = apply_rule(rule, base)
            if best is None or when < best[0]:
                best = (when, rule)
    return best


def work_ended(file: dict[str, Any]) -> dt.date | None:
    """The day the work of a hồ sơ ended: its EndDate, known once it is closed or dated."""
    end = file.get("EndDate")
    if end:
        return dt.date.fromisoformat(str(end))
    return None


def _status(deadline: dt.date, today: dt.date, warn_days: int) -> DueStatus:
    if deadline < today:
        return DueStatus.OVERDUE
    if (deadline - today).days <= warn_days:
        return DueStatus.DUE_SOON
    return DueStatus.UPCOMING


def deadlines(
    file: dict[str, Any], custody: dict[str, Any], rules: DueRules, destroyed: bool = False
) -> list[tuple[Stage, dt.date, str, str]]:
    """Every pending deadline of one hồ sơ: (stage, date, rule id, rule label)."""
    out: list[tuple[Stage, dt.date, str, str]] = []
    end = work_ended(file)
    if end is None or destroyed:
        return out
    maintenance = str(file.get("Maintenance") or "")
    current_due: dt.date | None = None
    if not custody.get("accessioned_on"):
        found = earliest(rules.current, ("after_end", "end_of_year_after_end"), file, end)
        if found is not None:
            current_due, rule = found
            rule_id, label = rule.id, rule.label
            hold = custody.get("hold_until")
            if hold and dt.date.fromisoformat(hold) > current_due:
                current_due = dt.date.fromisoformat(hold)
                rule_id = "nd30-d31.3-hold"
                label = f"Giữ lại có văn bản đồng ý ({custody.get('hold_ref', '')})"
            out.append((Stage.CURRENT, current_due, rule_id, label))
    if maintenance == "01" and not custody.get("transferred_on"):
        accessioned = custody.get("accessioned_on")
        base = dt.date.fromisoformat(accessioned) if accessioned else current_due or end
        found = earliest(rules.historical, ("end_of_year_after_accession",), file, base)
        by_end = earliest(rules.historical, ("after_end", "end_of_year_after_end"), file, end)
        if by_end is not None and (found is None or by_end[0] < found[0]):
            found = by_end
        if found is not None:
            when, rule = found
            if rules.registration_months:
                out.append(
                    (
                        Stage.REGISTER,
                        add_months(when, -rules.registration_months),
                        "tt05-register",
                        f"Đăng ký nộp lưu trước {rules.registration_months} tháng "
                        "(Thông tư 05/2025/TT-BNV)",
                    )
                )
            out.append((Stage.HISTORICAL, when, rule.id, rule.label))
    # The hồ sơ's own number of years first: a 5-year file is code 07 "Khác" and still ends.
    years = file.get("RetentionYears") or rules.retention_years.get(maintenance)
    if years and maintenance != "01":
        out.append(
            (
                Stage.EXPIRY,
                dt.date(end.year + years, 12, 31),
                f"retention-{maintenance}",
                f"Thời hạn lưu trữ {years} năm tính từ năm {end.year}",
            )
        )
    return out


def _files(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    cur = conn.execute(
        'SELECT "FileCode", "Title", "FondCode", "Maintenance", "RetentionYears", "EndDate", '
        '"Heading", '
        '"FileNotation", "Status" FROM files ORDER BY rid'
    )
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def files_due(
    store: Store,
    today: dt.date | None = None,
    *,
    rules: DueRules | None = None,
    include_upcoming: bool = False,
) -> list[DueItem]:
    """Files falling due within the warning window (or already overdue), earliest first.

    This is what the web UI's home page shows; ``luutru due --json`` prints the same items.
    """
    rules = rules or load_rules(store.data_dir)
    today = today or store.clock.now().date()
    conn = store.reader()
    custody = state.all_custody(conn)
    destroyed = {
        str(r[0])
        for r in state.rows(
            conn, "SELECT target_id FROM archive_holds WHERE target_type = 'file' "
            "AND kind = 'destroyed'"
        )
    }
    items: list[DueItem] = []
    for file in _files(conn):
        code = str(file["FileCode"])
        for stage, when, rule_id, label in deadlines(
            file, custody.get(code, {}), rules, code in destroyed
        ):
            status = _status(when, today, rules.warn_days)
            if status is DueStatus.UPCOMING and not include_upcoming:
                continue
            items.append(
                DueItem(
                    code,
                    str(file.get("Title") or ""),
                    str(file.get("FondCode") or ""),
                    str(file.get("Maintenance") or ""),
                    stage,
                    when,
                    rule_id,
                    label,
                    (when - today).days,
                    status,
                )
            )
    items.sort(key=lambda i: (i.deadline, i.file_code, i.stage.value))
    return items
