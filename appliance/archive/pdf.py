"""Vietnamese PDF documents (minutes, covers, contents lists) with reportlab and DejaVu Sans."""

from __future__ import annotations

import io
from collections.abc import Sequence

from ..fonts import register_reportlab


def _register() -> None:
    register_reportlab()


class Doc:
    """A simple A4 document: headings, paragraphs and tables, rendered once to bytes."""

    def __init__(self, title: str) -> None:
        _register()
        from reportlab.lib.styles import ParagraphStyle

        self.title = title
        self.flow: list[object] = []
        self.body = ParagraphStyle("body", fontName="DejaVuSans", fontSize=10, leading=13)
        self.small = ParagraphStyle("small", fontName="DejaVuSans", fontSize=8, leading=10)
        self.center = ParagraphStyle(
            "center", fontName="DejaVuSans-Bold", fontSize=11, leading=14, alignment=1
        )
        self.head = ParagraphStyle(
            "head", fontName="DejaVuSans-Bold", fontSize=13, leading=17, alignment=1,
            spaceBefore=6, spaceAfter=6,
        )

    @staticmethod
    def _esc(text: str) -> str:
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    def header(self, left: Sequence[str], right: Sequence[str]) -> None:
        """The two-column heading of an administrative document (agency | motto)."""
        from reportlab.platypus import Paragraph, Table

        cell_l = [Paragraph(self._esc(x), self.center) for x in left]
        cell_r = [Paragraph(self._esc(x), self.center) for x in right]
        from reportlab.platypus import TableStyle

        t = Table([[cell_l, cell_r]], colWidths=[220, 290])
        t.setStyle(TableStyle([("FONT", (0, 0), (-1, -1), "DejaVuSans")]))
        self.flow.append(t)

    def heading(self, text: str) -> None:
        from reportlab.platypus import Paragraph

        self.flow.append(Paragraph(self._esc(text), self.head))

    def para(self, text: str, small: bool = False) -> None:
        from reportlab.platypus import Paragraph

        self.flow.append(Paragraph(self._esc(text), self.small if small else self.body))

    def table(self, header: Sequence[str], rows: Sequence[Sequence[str]],
              widths: Sequence[float] | None = None) -> None:
        from reportlab.lib import colors
        from reportlab.platypus import Paragraph, Table, TableStyle

        data = [[Paragraph(self._esc(h), self.small) for h in header]]
        data += [[Paragraph(self._esc(str(c)), self.small) for c in r] for r in rows]
        t = Table(data, colWidths=list(widths) if widths else None, repeatRows=1)
        t.setStyle(
            TableStyle(
                [
                    ("FONT", (0, 0), (-1, -1), "DejaVuSans"),  # not Helvetica (never embedded)
                    ("GRID", (0, 0), (-1, -1), 0.5, colors.black),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ("BACKGROUND", (0, 0), (-1, 0), colors.lightgrey),
                ]
            )
        )
        self.flow.append(t)

    def space(self, height: float = 8) -> None:
        from reportlab.platypus import Spacer

        self.flow.append(Spacer(1, height))

    def page_break(self) -> None:
        from reportlab.platypus import PageBreak

        self.flow.append(PageBreak())

    def render(self) -> bytes:
        from reportlab.lib.pagesizes import A4
        from reportlab.platypus import SimpleDocTemplate

        out = io.BytesIO()
        doc = SimpleDocTemplate(
            out, pagesize=A4, title=self.title, leftMargin=50, rightMargin=40,
            topMargin=40, bottomMargin=40, initialFontName="DejaVuSans",
        )
        # reportlab's canvas starts every page in Helvetica, which it never embeds: start in
        # DejaVu instead, so every font of the PDF is embedded (PDF/A).
        doc.build(list(self.flow), canvasmaker=_canvas)
        return out.getvalue()


def _canvas(*args: object, **kwargs: object) -> object:
    from reportlab.pdfgen.canvas import Canvas

    kwargs.setdefault("initialFontName", "DejaVuSans")
    return Canvas(*args, **kwargs)
