"""Factories for archive tests: hồ sơ with documents and scanned content files."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from appliance.store import Record, Store
from tests.conftest import incoming, outgoing


def pdf_bytes(text: str, pages: int = 1) -> bytes:
    """A real little PDF with Vietnamese text, as a scan would be."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    from appliance.archive.pdf import _register

    _register()
    out = io.BytesIO()
    c = canvas.Canvas(out, pagesize=A4, initialFontName="DejaVuSans")
    for n in range(pages):
        c.setFont("DejaVuSans", 12)
        c.drawString(72, 760, f"{text} — trang {n + 1}")
        c.showPage()
    c.save()
    return out.getvalue()


@dataclass
class Hoso:
    file: Record
    docs: list[Record]

    @property
    def code(self) -> str:
        return str(self.file.data["FileCode"])


def attach_pdf(store: Store, doc: Record, text: str, pages: int = 1) -> Record:
    body = pdf_bytes(text, pages)
    stored = store.content.put_bytes(body)
    return store.attach_content(
        doc.id,
        [{"sha256": stored.sha256, "size": stored.size, "name": "scan.pdf",
          "mime": "application/pdf"}],
    )


@pytest.fixture
def make_hoso(store: Store) -> Callable[..., Hoso]:
    """A hồ sơ with ``n`` documents (alternating đến/đi), each with a scanned PDF."""
    counter = iter(range(1, 1000))

    def factory(
        n: int = 3, maintenance: str = "01", notation: str | None = None, content: bool = True,
        close: bool = False, **file_fields: object,
    ) -> Hoso:
        k = next(counter)
        f = store.open_file(
            {
                "FileCatalog": 2025,
                "FileNotation": notation or f"{k:02d}.VP",
                "Title": f"Hồ sơ phòng, chống thiên tai năm 2025 (số {k})",
                "Maintenance": maintenance,
                "Creator": "Nguyễn Thị Lan",
                **file_fields,
            }
        )
        docs = []
        for i in range(n):
            if i % 2 == 0:
                d = store.register_incoming(
                    incoming(
                        FileCode=f.data["FileCode"], CodeNumber=str(100 * k + i),
                        IssuedDate=f"2025-09-{i + 1:02d}",
                    )
                ).record
            else:
                draft = store.draft_outgoing(outgoing(FileCode=f.data["FileCode"])).record
                d = store.issue_outgoing(draft.id).record
            if content:
                d = attach_pdf(store, d, f"Văn bản số {i + 1} của hồ sơ {k}", pages=1 + i % 2)
            docs.append(d)
        if close:
            f = store.close_file(f.data["FileCode"])
        return Hoso(f, docs)

    return factory
