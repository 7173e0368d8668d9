"""Import legacy registers: JSON Lines with Phụ lục VI element names, or CSV/XLSX exported
from paper-era registers with the Vietnamese column headers of Phụ lục IV.

A bad row is reported with its line and reason and does not stop the good ones; rows commit
in batches, and a bad row fails alone inside its batch, so nothing half-written remains.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .codelists import CodeLists
from .errors import LuutruError, ValidationError
from .identifiers import split_so_ky_hieu
from .legacy import Context, ImportOutcome, prepare, submit_batch
from .store import Store
from .text import fold, nfc

BATCH = 2000

# Phụ lục IV register columns (folded) -> our field, for each register.
INCOMING_HEADERS = {
    "ngay den": "ArrivalDate",
    "so den": "ArrivalNumber",
    "tac gia": "OrganName",
    "so, ky hieu van ban": "_so_ky_hieu",
    "ngay thang van ban": "IssuedDate",
    "ten loai va trich yeu noi dung van ban": "_type_subject",
    "don vi hoac nguoi nhan": "ToPlaces",
    "ngay chuyen": "_ngay_chuyen",
    "ky nhan": "_ky_nhan",
    "ghi chu": "Description",
}
OUTGOING_HEADERS = {
    "so, ky hieu van ban": "_so_ky_hieu",
    "ngay thang van ban": "IssuedDate",
    "ten loai va trich yeu noi dung van ban": "_type_subject",
    "nguoi ky": "_signer",
    "noi nhan van ban": "To",
    "don vi, nguoi nhan ban luu": "_ban_luu",
    "so luong ban": "IssuedAmount",
    "ngay chuyen": "_ngay_chuyen",
    "ky nhan": "_ky_nhan",
    "ghi chu": "Description",
}
SIGNER_TITLES = (
    "KT. Chủ tịch",
    "TM. Ủy ban nhân dân",
    "Phó Chủ tịch",
    "Chủ tịch",
    "Q. Chủ tịch",
    "TL. Chủ tịch",
    "TUQ. Chủ tịch",
)


@dataclass
class ImportReport:
    imported: int = 0
    skipped: int = 0
    failed: list[ImportOutcome] = field(default_factory=list)
    warnings: list[tuple[int, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


Row = tuple[int, dict[str, Any] | None, str | None]  # (line, raw record, parse error)


def read_jsonl(path: Path) -> Iterator[Row]:
    with path.open("r", encoding="utf-8-sig") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                yield n, None, f"not valid JSON: {exc.msg} at column {exc.colno}"
                continue
            if not isinstance(value, dict):
                yield n, None, "each line must be a JSON object"
                continue
            yield n, value, None


def _split_type_subject(text: str, codes: CodeLists) -> tuple[str, str]:
    """'Quyết định về việc …' -> ('Quyết định', 'Về việc …'); 'V/v …' alone is a công văn."""
    text = nfc(text)
    folded = fold(text)
    best: tuple[int, str] | None = None
    for item in codes["typeName"].items:
        for label in (item.label, *[str(a) for a in dict(item.extra).get("aliases", [])]):
            key = fold(label)
            matches = folded.startswith(key + " ") or folded == key
            if matches and (best is None or len(key) > best[0]):
                best = (len(key), item.label)
    if best is not None:
        rest = text[best[0] :].strip(" :-–")
        return best[1], (rest[:1].upper() + rest[1:]) if rest else text
    if folded.startswith("v/v"):
        return "Công văn", text
    return "Khác", text


def _split_signer(text: str) -> tuple[str | None, str]:
    text = nfc(text)
    for title in SIGNER_TITLES:
        if fold(text).startswith(fold(title) + " "):
            return title, text[len(title) :].strip()
    return None, text


def _register_row(kind: str, cells: dict[str, str], codes: CodeLists) -> dict[str, Any]:
    headers = INCOMING_HEADERS if kind == "incoming" else OUTGOING_HEADERS
    out: dict[str, Any] = {"kind": kind}
    trace = []
    notes = []
    for header, value in cells.items():
        target = headers.get(fold(nfc(header)))
        value = nfc(value or "")
        if target is None or not value:
            continue
        if target == "_so_ky_hieu":
            out["CodeNumber"], out["CodeNotation"] = split_so_ky_hieu(
                value, own=kind == "outgoing")
        elif target == "_type_subject":
            out["TypeName"], out["Subject"] = _split_type_subject(value, codes)
        elif target == "_signer":
            out["SignerPosition"], out["SignerFullName"] = _split_signer(value)
        elif target == "_ngay_chuyen":
            trace.append(f"Ngày chuyển: {value}")
        elif target == "_ky_nhan":
            trace.append(f"Ký nhận: {value}")
        elif target == "_ban_luu":
            notes.append(f"Bản lưu: {value}")
        elif target == "To":
            out["To"] = [{"OrganName": p.strip()} for p in value.split(";") if p.strip()]
        elif target == "Description":
            notes.insert(0, value)
        else:
            out[target] = value
    if trace:
        out["TraceHeaderList"] = "\n".join(trace)
    if notes:
        out["Description"] = "; ".join(notes)
    return out


def _detect(headers: list[str]) -> str:
    folded = {fold(nfc(h or "")) for h in headers}
    if "kind" in folded:
        return "elements"
    if "so den" in folded:
        return "incoming"
    if "nguoi ky" in folded or "noi nhan van ban" in folded:
        return "outgoing"
    raise ValidationError(
        "the header row is neither Phụ lục VI element names (with a 'kind' column) nor the "
        "columns of a Sổ đăng ký văn bản đến / đi"
    )


def _table_rows(header_line: int, rows: Iterator[list[Any]], codes: CodeLists) -> Iterator[Row]:
    try:
        headers = [str(h or "").strip() for h in next(rows)]
    except StopIteration:
        return
    layout = _detect(headers)
    for n, values in enumerate(rows, start=header_line + 1):
        cells = {h: ("" if v is None else _cell(v)) for h, v in zip(headers, values, strict=False)}
        if not any(cells.values()):
            continue
        try:
            if layout == "elements":
                raw: dict[str, Any] = {k: v for k, v in cells.items() if k and v != ""}
                if "SignerInfo" in raw:
                    raw["SignerInfo"] = json.loads(raw["SignerInfo"])
                if "To" in raw and raw["To"].startswith("["):
                    raw["To"] = json.loads(raw["To"])
            else:
                raw = _register_row(layout, cells, codes)
        except (LuutruError, ValueError) as exc:
            yield n, None, str(exc)
            continue
        yield n, raw, None


def _cell(value: Any) -> str:
    import datetime as dt

    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        return f"{value.day:02d}/{value.month:02d}/{value.year:04d}"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def read_csv(path: Path, codes: CodeLists) -> Iterator[Row]:
    with path.open("r", encoding="utf-8-sig", newline="") as fh:
        sample = fh.read(4096)
        fh.seek(0)
        try:
            dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t")
        except csv.Error:
            dialect = csv.excel
        yield from _table_rows(1, iter(csv.reader(fh, dialect)), codes)


def read_xlsx(path: Path, codes: CodeLists) -> Iterator[Row]:
    import openpyxl

    wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        ws = wb.worksheets[0]
        yield from _table_rows(1, (list(r) for r in ws.iter_rows(values_only=True)), codes)
    finally:
        wb.close()


def read_rows(path: Path, codes: CodeLists) -> Iterator[Row]:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return read_jsonl(path)
    if suffix in (".csv", ".tsv", ".txt"):
        return read_csv(path, codes)
    if suffix in (".xlsx", ".xlsm"):
        return read_xlsx(path, codes)
    raise ValidationError(f"cannot import {path.name}: use .jsonl, .csv or .xlsx")


# One prepared row: (line, kind, record type or None when it failed, data or the reason).
Prepared = tuple[int, str, str | None, Any]
def prepared_rows(
    path: Path, ctx: Context, fond: str | None
) -> Iterator[Prepared]:
    """Parse and validate every row of ``path``, in order; failures are rows too."""
    for line, raw, error in read_rows(path, ctx.codes):
        if raw is None:
            yield (line, "?", None, error or "unreadable")
            continue
        kind = str(raw.pop("kind", "") or "")
        if fond and "FondCode" not in raw and kind != "fonds":
            raw["FondCode"] = fond
        try:
            record_type, data = prepare(ctx, kind, raw)
        except (LuutruError, ValueError) as exc:
            yield (line, kind, None, str(exc))
            continue
        yield (line, kind, record_type, data)


def import_file(
    store: Store,
    path: Path,
    actor: str | None = None,
    fond: str | None = None,
    on_batch: Callable[[int, ImportReport], None] | None = None,
) -> ImportReport:
    """Import every good row of ``path``; ``on_batch(last_line, report)`` runs after each commit."""
    actor = actor or f"import:{path.name}"
    report = ImportReport()
    batch: list[tuple[int, str, str, dict[str, Any]]] = []
    # One batch commits in the writer while the next is parsed and validated.
    in_flight: list[tuple[int, Future[list[ImportOutcome]]]] = []

    def settle() -> None:
        while in_flight:
            last, fut = in_flight.pop(0)
            for outcome in fut.result():
                _count(report, outcome)
            if on_batch:
                on_batch(last, report)

    def flush(wait: bool = False) -> None:
        if batch:
            fut = submit_batch(store, list(batch), actor)
            last = batch[-1][0]
            batch.clear()
            settle()
            in_flight.append((last, fut))
        if wait:
            settle()

    for line, kind, record_type, data in prepared_rows(path, store, fond):
        if record_type is None:
            report.failed.append(ImportOutcome(line, kind, False, str(data)))
            continue
        batch.append((line, kind, record_type, data))
        if record_type != "document":
            flush(wait=True)  # fonds and files commit before the documents that name them
        elif len(batch) >= BATCH:
            flush()
    flush(wait=True)
    if report.imported >= BATCH:  # a bulk import leaves the search index in many segments
        from .search import optimize_index

        store.writer_or_fail().call(lambda txn: optimize_index(txn.conn))
    return report


def _count(report: ImportReport, outcome: ImportOutcome) -> None:
    if not outcome.ok:
        report.failed.append(outcome)
    elif outcome.skipped:
        report.skipped += 1
    else:
        report.imported += 1
        report.warnings.extend((outcome.line, w) for w in outcome.warnings)


def report_lines(report: ImportReport) -> Iterator[str]:
    for outcome in report.failed:
        yield f"line {outcome.line}: {outcome.message}"
    for line, warning in report.warnings:
        yield f"line {line}: warning: {warning}"
