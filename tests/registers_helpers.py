"""Test helpers for the registers: writing what other parts of luutru will write.

``set_handling`` gives an incoming document the ``Handling`` the leader's direction and the
handlers' reports write (appliance/handling.py), as a ``document.update`` carrying the
document's full new version, so that a register can be tested in any state (late, answered…)
without walking the whole direction; ``cancel`` is the live cancellation.
"""

from __future__ import annotations

import io
import itertools
import subprocess
import tempfile
from typing import Any

from appliance import writes
from appliance.kinds import Kind
from appliance.store import Store


def _put(store: Store, doc_id: str, **changes: Any) -> None:
    def job(txn: Any) -> None:
        rec = writes.current(txn, "document", id=doc_id)
        writes.put(txn, "document", Kind.DOCUMENT_UPDATE, "test", {**rec.data, **changes},
                   rec.id, rec.version)

    store.writer_or_fail().call(job)


def set_handling(store: Store, doc_id: str, handling: dict[str, Any]) -> None:
    _put(store, doc_id, Handling=handling)


def cancel(store: Store, doc_id: str, reason: str = "Ban hành nhầm") -> None:
    store.cancel_document(doc_id, reason, "test")


def pdf_text(body: bytes) -> str:
    """The PDF's text as pdftotext (poppler) reads it, layout kept."""
    with tempfile.NamedTemporaryFile(suffix=".pdf") as fh:
        fh.write(body)
        fh.flush()
        out = subprocess.run(["pdftotext", "-layout", fh.name, "-"], capture_output=True,
                             check=True)
    return out.stdout.decode()


def xlsx_sheets(body: bytes) -> dict[str, list[list[Any]]]:
    """Every sheet's rows as openpyxl reads them (values, not formulas)."""
    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(body))
    return {ws.title: [list(r) for r in ws.iter_rows(values_only=True)] for ws in wb.worksheets}


def xlsx_cells(body: bytes, sheet: str) -> list[list[Any]]:
    """The cells (objects: value, data_type, number_format) of one sheet."""
    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(body))
    return [list(r) for r in wb[sheet].iter_rows()]


def pdf_words(body: bytes, page: int) -> list[tuple[float, float, str]]:
    """(x, y, word) of every word on one page, as pdftotext -bbox places them (points)."""
    import html
    import re

    with tempfile.NamedTemporaryFile(suffix=".pdf") as fh:
        fh.write(body)
        fh.flush()
        out = subprocess.run(["pdftotext", "-bbox", "-f", str(page), "-l", str(page), fh.name,
                              "-"], capture_output=True, check=True).stdout.decode()
    words = re.findall(r'<word xMin="([\d.]+)" yMin="([\d.]+)"[^>]*>([^<]*)</word>', out)
    return [(float(x), float(y), html.unescape(w)) for x, y, w in words]


def pdf_table(body: bytes, widths_mm: tuple[int, ...], page: int = 2,
              left_mm: float = 12) -> tuple[list[str], list[list[str]]]:
    """The register table on ``page`` read back by the columns' x ranges: each header cell's
    text (the words above the row of column numbers "(1)", "(2)"…), and each column's words
    below it (the page's footer left out)."""
    mm = 72 / 25.4
    words = pdf_words(body, page)
    number_row = min(y for x, y, w in words if w == "(1)")
    footer = (210 - 12) * mm  # A4 landscape: the footer line is in the bottom margin
    edges = [left_mm * mm]
    for w in widths_mm:
        edges.append(edges[-1] + w * mm)
    header, columns = [], []
    for a, b in itertools.pairwise(edges):
        mine = sorted((y, x, w) for x, y, w in words if a <= x < b)
        header.append(" ".join(w for y, _, w in mine if y < number_row - 1))
        columns.append([w for y, _, w in mine if number_row + 1 < y < footer])
    return header, columns
