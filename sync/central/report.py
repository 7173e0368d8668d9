"""The province's picture: per appliance and in total, for `central report` and the dashboard."""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, field
from typing import Any

from appliance.cells import safe_row
from appliance.keys.verify import key_id, load_public_key

from .storage import Alert, Anomaly, ApplianceCounts, ApplianceStatus, CentreView


@dataclass(frozen=True)
class ApplianceRow:
    appliance_id: str
    org_id: str
    org_name: str
    backing: str
    status: str
    enrolled_at: str
    last_contact: str | None
    accepted_size: int
    claimed_size: int
    claimed_at: str | None
    lag: int  # entries the appliance claims that the centre does not hold yet
    entries: int
    withheld: int
    documents: int
    content_expected: int
    content_missing: int  # metadata received, file missing (the content backlog)
    anomalies: int
    anomaly_kinds: str
    open_alerts: int
    key_id: str = ""  # the key that signs the log now (differs from appliance_id once replaced)
    handovers: int = 0  # times a replacement box took the log over


@dataclass(frozen=True)
class Totals:
    appliances: int
    quarantined: int
    entries: int
    withheld: int
    documents: int
    content_expected: int
    content_missing: int
    lagging_entries: int
    anomalies: int
    unknown_key_refusals: int
    open_alerts: int


@dataclass
class Report:
    generated_at: str
    centre: str
    rows: list[ApplianceRow]
    totals: Totals
    alerts: list[Alert] = field(default_factory=list)
    anomalies: list[Anomaly] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "generated_at": self.generated_at,
            "centre": self.centre,
            "totals": asdict(self.totals),
            "appliances": [asdict(r) for r in self.rows],
            "alerts": [asdict(a) for a in self.alerts],
            "anomalies": [
                dict(asdict(a), kind=a.kind.value) for a in self.anomalies
            ],
        }


CSV_HEADER = {
    "appliance_id": "Mã thiết bị",
    "org_id": "Mã định danh cơ quan",
    "org_name": "Tên cơ quan",
    "backing": "Khóa thiết bị",
    "status": "Trạng thái",
    "enrolled_at": "Đăng ký lúc",
    "last_contact": "Liên lạc gần nhất",
    "accepted_size": "Số mục đã nhận",
    "claimed_size": "Số mục thiết bị báo",
    "claimed_at": "Báo lúc",
    "lag": "Còn thiếu (mục)",
    "entries": "Mục lưu tại trung tâm",
    "withheld": "Mục mật (chỉ mã băm)",
    "documents": "Văn bản",
    "content_expected": "Tệp cần có",
    "content_missing": "Tệp còn thiếu",
    "anomalies": "Bất thường",
    "anomaly_kinds": "Loại bất thường",
    "open_alerts": "Cảnh báo mở",
    "key_id": "Khóa hiện tại",
    "handovers": "Số lần thay thiết bị",
}


def build_report(view: CentreView, generated_at: str, centre: str) -> Report:
    rows: list[ApplianceRow] = []
    anomalies = view.anomalies()
    alerts = view.alerts(open_only=True)
    all_counts = view.all_counts()  # grouped scans, not four queries per appliance
    by_app: dict[str | None, list[Anomaly]] = {}
    for a in anomalies:
        by_app.setdefault(a.appliance_id, []).append(a)
    alerts_of: dict[str, int] = {}
    for al in alerts:
        alerts_of[al.appliance_id] = alerts_of.get(al.appliance_id, 0) + 1
    none = ApplianceCounts(0, 0, 0, 0)
    for app in view.appliances():
        counts = all_counts.get(app.id, none)
        mine = by_app.get(app.id, [])
        current = key_id(load_public_key(app.public_key_pem)).hex()
        handovers = len(view.keys(app.id)) if current != app.id else 0
        rows.append(
            ApplianceRow(
                appliance_id=app.id,
                org_id=app.org_id,
                org_name=app.org_name,
                backing=app.backing,
                status=app.status.value,
                enrolled_at=app.enrolled_at,
                last_contact=app.last_contact,
                accepted_size=app.accepted_size,
                claimed_size=app.claimed_size,
                claimed_at=app.claimed_at,
                lag=max(0, app.claimed_size - app.accepted_size),
                entries=counts.entries,
                withheld=app.withheld,
                documents=counts.documents,
                content_expected=counts.content_expected,
                content_missing=counts.content_missing,
                anomalies=sum(a.count for a in mine),
                anomaly_kinds=" ".join(f"{a.kind.value}×{a.count}" for a in mine),
                open_alerts=alerts_of.get(app.id, 0),
                key_id=current,
                handovers=handovers,
            )
        )
    totals = Totals(
        appliances=len(rows),
        quarantined=sum(1 for r in rows if r.status == ApplianceStatus.QUARANTINED.value),
        entries=sum(r.entries for r in rows),
        withheld=sum(r.withheld for r in rows),
        documents=sum(r.documents for r in rows),
        content_expected=sum(r.content_expected for r in rows),
        content_missing=sum(r.content_missing for r in rows),
        lagging_entries=sum(r.lag for r in rows),
        anomalies=sum(a.count for a in anomalies),
        unknown_key_refusals=sum(
            a.count for a in anomalies if a.appliance_id is None and a.kind.value == "unknown_key"
        ),
        open_alerts=len(alerts),
    )
    return Report(generated_at, centre, rows, totals, alerts, anomalies)


def to_csv(report: Report) -> str:
    """One row per appliance, Vietnamese headers, then a totals row (UTF-8 with BOM for Excel).

    Every cell goes through ``safe_row``: names and statuses come from the appliances."""
    buf = io.StringIO()
    buf.write("\ufeff")
    w = csv.writer(buf)
    w.writerow(safe_row(CSV_HEADER.values()))
    for r in report.rows:
        d = asdict(r)
        w.writerow(safe_row("" if d[k] is None else d[k] for k in CSV_HEADER))
    t = report.totals
    w.writerow(safe_row(
        [
            "TỔNG",
            "",
            f"{t.appliances} thiết bị",
            "",
            f"{t.quarantined} cách ly",
            "",
            "",
            "",
            "",
            "",
            t.lagging_entries,
            t.entries,
            t.withheld,
            t.documents,
            t.content_expected,
            t.content_missing,
            t.anomalies,
            f"unknown_key×{t.unknown_key_refusals}",
            t.open_alerts,
        ]
    ))
    return buf.getvalue()
