"""The capture pipeline: an ordered list of small steps over one batch's pages.

normalise → drop blank pages → split at separator sheets → assemble (img2pdf, lossless).
Each step is pure over the batch's work (files in, PDFs out); storing, OCR and signing are
the edges that follow (filing.py, worker.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from PIL import ImageFilter

from . import separator
from .errors import ImageRejected
from .page import MAX_PIXELS, MIN_DPI, Page, load_pages
from .separator import Target


@dataclass(frozen=True)
class InputFile:
    """One file as a source delivered it (a scanned page, an upload, a PDF from a folder)."""

    name: str
    data: bytes


@dataclass
class Segment:
    """The pages of one document and, once assembled, its PDF."""

    target: Target
    pages: list[Page]
    pdf: bytes = b""


@dataclass
class Work:
    """What the steps read and write for one batch."""

    files: Sequence[InputFile]
    default: Target = field(default_factory=Target)
    created: datetime | None = None  # fixed PDF dates: the same pages give the same bytes
    pages: list[Page] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    blank_dropped: int = 0
    separators: int = 0
    notes: list[str] = field(default_factory=list)


class Step(Protocol):
    @property
    def name(self) -> str: ...

    def run(self, work: Work) -> None: ...


@dataclass(frozen=True)
class Normalise:
    """Decode and check every file: damage, bombs, unsafe PDFs, real resolution, colour mode."""

    min_dpi: int = MIN_DPI
    max_pixels: int = MAX_PIXELS
    name: str = "normalise"

    def run(self, work: Work) -> None:
        pages: list[Page] = []
        for f in work.files:
            pages.extend(
                load_pages(f.data, f.name, min_dpi=self.min_dpi, max_pixels=self.max_pixels)
            )
        for n, p in enumerate(pages, start=1):
            work.notes.extend(f"page {n}: {w}" for w in p.warnings)
        work.pages = pages


def ink_fraction(page: Page) -> float:
    """Share of clearly dark pixels away from the edges, specks removed."""
    im = page.thumb
    if im is None:
        return 1.0
    w, h = im.size
    mx, my = int(w * 0.04), int(h * 0.04)
    core = im.crop((mx, my, w - mx, h - my)).filter(ImageFilter.MedianFilter(3))
    hist = core.histogram()
    total = sum(hist)
    if not total:
        return 0.0
    acc, median = 0, 255
    for value, count in enumerate(hist):
        acc += count
        if acc * 2 >= total:
            median = value
            break
    if median < 128:
        return 1.0  # a dark page (lid open, black test page) is never taken for blank
    threshold = min(160, median - 60)
    return sum(hist[:threshold]) / total


@dataclass(frozen=True)
class DropBlank:
    """Drop the empty backs of a duplex scan; a page with a few words of ink stays."""

    max_ink: float = 0.0003
    name: str = "drop_blank"

    def run(self, work: Work) -> None:
        kept = [p for p in work.pages if ink_fraction(p) >= self.max_ink]
        work.blank_dropped += len(work.pages) - len(kept)
        work.pages = kept


@dataclass(frozen=True)
class SplitAtSeparators:
    """Start a new document at each separator sheet; the sheets themselves are not kept."""

    decode: Callable[[object], Target | None] = separator.decode
    name: str = "split"

    def run(self, work: Work) -> None:
        segments: list[Segment] = []
        current = Segment(work.default, [])
        for p in work.pages:
            found = self.decode(p.thumb) if p.thumb is not None else None
            if found is None:
                current.pages.append(p)
                continue
            work.separators += 1
            if current.pages:
                segments.append(current)
            current = Segment(work.default if found.is_default else found, [])
        if current.pages:
            segments.append(current)
        work.segments = segments


def images_to_pdf(pages: Sequence[Page], created: datetime | None = None) -> bytes:
    """One PDF of ``pages`` at 100% scale; the image bytes are embedded as they are."""
    import img2pdf

    if not pages:
        raise ImageRejected("no pages to assemble")
    dpis = iter([p.dpi for p in pages])

    def layout(width_px: int, height_px: int, _ndpi: object) -> tuple[float, ...]:
        # img2pdf asks once per image, in order; the page's real resolution (not the file's
        # own tag, which cameras get wrong) gives the paper size.
        dpi = next(dpis)
        w, h = 72.0 * width_px / dpi, 72.0 * height_px / dpi
        return w, h, w, h

    # img2pdf's own writer: deterministic (pikepdf's gives each file a random /ID), so a
    # re-run after a crash produces the same bytes and finds the document already filed.
    kwargs: dict[str, object] = {
        "layout_fun": layout,
        "creator": "luutru capture",
        "engine": img2pdf.Engine.internal,
    }
    if created is not None:
        kwargs.update(creationdate=created, moddate=created)
    try:
        out = img2pdf.convert([p.data for p in pages], **kwargs)
    except Exception as exc:  # img2pdf raises its own classes and ValueError
        raise ImageRejected(f"the pages cannot be assembled into a PDF ({exc})") from exc
    assert isinstance(out, bytes)
    return out


@dataclass(frozen=True)
class Assemble:
    """Build each document's PDF losslessly with img2pdf."""

    name: str = "assemble"

    def run(self, work: Work) -> None:
        for seg in work.segments:
            seg.pdf = images_to_pdf(seg.pages, work.created)


DEFAULT_STEPS: tuple[Step, ...] = (Normalise(), DropBlank(), SplitAtSeparators(), Assemble())


def run_steps(
    work: Work,
    steps: Sequence[Step] = DEFAULT_STEPS,
    on_step: Callable[[str, Work], None] | None = None,
) -> Work:
    """Run ``steps`` in order over ``work``; ``on_step`` hears each step's name as it starts."""
    for step in steps:
        if on_step is not None:
            on_step(step.name, work)
        step.run(work)
    return work
