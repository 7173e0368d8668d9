"""The paperwork of a backup (TT 02/2019 Điều 10, TT 05/2025 Điều 27 and Phụ lục VII):

- ``sets/<id>/metadata.xml`` — the metadata of the records, as XML, on the medium beside the
  data (a full set: every record; an incremental set: the records changed since its base);
- ``sets/<id>/bien-ban-sao-luu.pdf`` — the backup minutes (biên bản sao lưu), Vietnamese;
- ``NHAN-VAT-MANG-TIN.txt`` — the medium's label: what it holds, since when, its rated
  lifetime and the date by which its data must move to a new medium (≥ 1 year before the end
  of its rated life, TT 05/2025 [source-secondary]).

The form of the minutes follows the titles Phụ lục VII gives and the fixity minutes' layout;
the annex's exact wording was not available offline [inference].
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lxml import etree

from ..clock import vn_date
from ..fields import SCHEMAS
from ..fsutil import write_atomic
from ..schema import TABLES, from_row
from .medium import Medium
from .pdf import Doc

if TYPE_CHECKING:
    import sqlite3

    from ..store import Store

LABEL_FILE = "NHAN-VAT-MANG-TIN.txt"
METADATA_FILE = "metadata.xml"
MINUTES_FILE = "bien-ban-sao-luu.pdf"
WARN_DAYS = 366  # "at least a year before the end of its rated life"


@dataclass(frozen=True)
class Lifetime:
    """A medium's rated life: when it came into use, for how many years, what is due."""

    label: str
    installed: dt.date | None
    rated_years: int | None

    @property
    def end(self) -> dt.date | None:
        if self.installed is None or self.rated_years is None:
            return None
        try:
            return self.installed.replace(year=self.installed.year + self.rated_years)
        except ValueError:  # 29 February
            return self.installed.replace(year=self.installed.year + self.rated_years, day=28)

    @property
    def migrate_by(self) -> dt.date | None:
        """The last day to move the data to a new medium: a year before the end."""
        end = self.end
        return None if end is None else end - dt.timedelta(days=WARN_DAYS)

    def warning(self, today: dt.date) -> str | None:
        """A Vietnamese warning once the year before the end of life has begun (or no life
        was recorded for the medium)."""
        if self.end is None:
            return (f"Vật mang tin {self.label}: chưa ghi tuổi thọ (số năm sử dụng) — "
                    "ghi bằng luutru backup --rated-years N")
        if today >= self.end:
            return (f"Vật mang tin {self.label} đã hết tuổi thọ từ {vn_date(self.end)}: "
                    "chuyển dữ liệu sang vật mang tin mới ngay")
        assert self.migrate_by is not None
        if today >= self.migrate_by:
            return (f"Vật mang tin {self.label} hết tuổi thọ ngày {vn_date(self.end)}: "
                    f"phải chuyển dữ liệu sang vật mang tin mới trước {vn_date(self.end)} "
                    f"(hạn khuyến nghị {vn_date(self.migrate_by)})")
        return None

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label,
                "installed": self.installed.isoformat() if self.installed else None,
                "rated_years": self.rated_years,
                "end_of_life": self.end.isoformat() if self.end else None,
                "migrate_by": self.migrate_by.isoformat() if self.migrate_by else None}


def lifetime(medium: Medium) -> Lifetime:
    info = medium.info()
    installed = info.get("installed")
    years = info.get("rated_years")
    return Lifetime(medium.label, dt.date.fromisoformat(installed) if installed else None,
                    int(years) if years else None)


def write_label(store: Store, medium: Medium) -> None:
    """The medium's label file (printable, to stick on the disk's case)."""
    life = lifetime(medium)
    lines = [
        "NHÃN VẬT MANG TIN LƯU TRỮ DỰ PHÒNG",
        f"Cơ quan: {store.config.org_name} (mã định danh {store.config.org_id})",
        f"Nhãn: {medium.label}",
        f"Thiết bị nguồn: {medium.origin}",
        f"Ngày đưa vào sử dụng: {vn_date(life.installed) if life.installed else '(chưa ghi)'}",
        f"Tuổi thọ định mức: {life.rated_years} năm" if life.rated_years
        else "Tuổi thọ định mức: (chưa ghi)",
        f"Hết tuổi thọ: {vn_date(life.end)}" if life.end else "",
        f"Chuyển dữ liệu sang vật mang tin mới trước: {vn_date(life.migrate_by)}"
        if life.migrate_by else "",
        "Nội dung: các bộ sao lưu (sets/), tệp nội dung (content/), siêu dữ liệu XML "
        f"(sets/*/{METADATA_FILE}), biên bản sao lưu (sets/*/{MINUTES_FILE}), nhật ký sao lưu "
        "(backup-log.jsonl).",
    ]
    write_atomic(medium.path / LABEL_FILE,
                 ("\n".join(x for x in lines if x) + "\n").encode("utf-8"))


def _rows(conn: sqlite3.Connection, record_type: str, since: int) -> Iterator[sqlite3.Row]:
    import sqlite3

    before = conn.row_factory
    conn.row_factory = sqlite3.Row
    try:
        yield from conn.execute(
            f"SELECT * FROM {TABLES[record_type]} WHERE log_index >= ? ORDER BY rid", (since,))
    finally:
        conn.row_factory = before  # the store's shared reader keeps its own factory


def metadata_xml(store: Store, manifest: dict[str, Any], since: int) -> bytes:
    """Every record changed at or after log index ``since`` (0: all), field by field."""
    root = etree.Element("SaoLuuSieuDuLieu")
    for key in ("set_id", "kind", "created", "org_id", "tree_size", "root_hash", "base"):
        if manifest.get(key) is not None:
            root.set(key, str(manifest[key]))
    root.set("since_log_index", str(since))
    conn = store.reader()
    names = {"fonds": "Phong", "file": "HoSo", "document": "TaiLieu", "membership": "ThanhVien"}
    for record_type, tag in names.items():
        group = etree.SubElement(root, f"{tag}List")
        for row in _rows(conn, record_type, since):
            data = from_row(record_type, row)  # type: ignore[arg-type]
            el = etree.SubElement(group, tag, id=str(row["id"]), version=str(row["version"]),
                                  log_index=str(row["log_index"]))
            for f in SCHEMAS[record_type]:
                v = data.get(f.name)
                if v is None:
                    continue
                if f.name == "Content":
                    for c in v:
                        etree.SubElement(el, "ContentFile", sha256=str(c["sha256"]),
                                         size=str(c["size"]),
                                         mime=str(c.get("mime") or "")).text = str(c.get("name"))
                elif isinstance(v, list | dict):
                    import json

                    etree.SubElement(el, f.name).text = json.dumps(v, ensure_ascii=False)
                else:
                    etree.SubElement(el, f.name).text = str(v)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


def minutes_pdf(store: Store, medium: Medium, result: dict[str, Any], actor: str,
                metadata_records: int) -> bytes:
    """Biên bản sao lưu (TT 05/2025 Phụ lục VII)."""
    created = dt.datetime.fromisoformat(str(result["created"]))
    life = lifetime(medium)
    kind = "toàn bộ" if result["kind"] == "full" else "gia tăng"
    doc = Doc("Biên bản sao lưu tài liệu lưu trữ số")
    doc.header([store.config.org_name.upper()], ["CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
                                                 "Độc lập - Tự do - Hạnh phúc"])
    doc.space(14)
    doc.heading("BIÊN BẢN SAO LƯU")
    doc.heading("Cơ sở dữ liệu và tài liệu lưu trữ số")
    doc.para(f"Hôm nay, hồi {created.strftime('%H giờ %M')} ngày {vn_date(created.date())}, "
             f"tại {store.config.org_name}, đã tiến hành sao lưu {kind} cơ sở dữ liệu và tài "
             "liệu lưu trữ số của cơ quan.")
    doc.para(f"Người thực hiện: {actor}.")
    rows = [
        ("Cơ sở dữ liệu", f"{store.config.org_name} (mã định danh {store.config.org_id})"),
        ("Hình thức sao lưu", f"Sao lưu {kind} (bộ {result['set_id']}"
                              + (f", dựa trên bộ {result['base']})" if result.get("base")
                                 else ")")),
        ("Vật mang tin", f"{medium.label}"),
        ("Tuổi thọ vật mang tin", f"{life.rated_years} năm, hết ngày {vn_date(life.end)}"
         if life.end else "chưa ghi"),
        ("Nhật ký niêm phong", f"{result['tree_size']} mục; gốc Merkle {result['root_hash']}"),
        ("Cơ sở dữ liệu (ảnh chụp)", f"{result['db']['size']:,} byte; SHA-256 "
                                     f"{result['db']['sha256']}"),
        ("Tệp nội dung", f"{result['content_total']} tệp trong kho; {result['content_new']} "
                         f"tệp chép mới ({result['content_bytes']:,} byte)"),
        ("Siêu dữ liệu XML", f"sets/{result['set_id']}/{METADATA_FILE}: "
                             f"{metadata_records} bản ghi"),
    ]
    doc.table(["Nội dung", "Kết quả"], rows, [140, 370])
    doc.space()
    doc.para("Kết quả: bộ sao lưu đã được ghi đầy đủ, mọi tệp được kiểm tra mã SHA-256 khi "
             "chép; nhật ký sao lưu được ghi trên vật mang tin (backup-log.jsonl).")
    warning = life.warning(created.date())
    if warning:
        doc.para(f"Lưu ý: {warning}.")
    doc.space(24)
    doc.table(["NGƯỜI THỰC HIỆN SAO LƯU", "THỦ TRƯỞNG CƠ QUAN"],
              [("(Ký, ghi rõ họ tên)", "(Ký tên, đóng dấu)")], [255, 255])
    return doc.render()
