"""Watch folder (stable files only, never lost or imported twice) and a serial barcode reader."""

from __future__ import annotations

import hashlib
import os
import time
import tty
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.capture.batch import Capture
from appliance.capture.page import load_pages
from appliance.capture.pipeline import images_to_pdf
from appliance.capture.routing import BarcodeRouter, SerialReader, parse_code, store_exists
from appliance.capture.separator import Target, payload
from appliance.capture.sources.folder import WatchFolder
from appliance.store import Store
from tests import active_pdfs

from .images import encode, text_page


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    d = tmp_path / "scan-to-folder"
    d.mkdir()
    return d


def test_stable_file_imported_once_and_moved(store: Store, inbox: Path) -> None:
    """A file is filed and moved to processed/; the same bytes dropped again are not re-filed."""
    data = encode(text_page(), "JPEG", quality=85)
    (inbox / "scan0001.jpg").write_bytes(data)
    folder = WatchFolder(inbox, Capture(store))
    (out,) = folder.run_once(settle_s=0)
    assert out.result is not None and len(out.result.documents) == 1
    assert not (inbox / "scan0001.jpg").exists()
    assert (inbox / "processed" / "scan0001.jpg").read_bytes() == data
    (inbox / "again.jpg").write_bytes(data)
    (dup,) = folder.run_once(settle_s=0)
    assert dup.duplicate_of == out.result.batch_id and dup.result is None
    assert store.count("document") == 1
    assert (inbox / "processed" / "again.jpg").exists()


def test_growing_file_waits_until_it_stops(store: Store, inbox: Path) -> None:
    """A file still being written is not taken; once unchanged for settle_s it is."""
    folder = WatchFolder(inbox, Capture(store), settle_s=0.5)
    data = encode(text_page(), "PNG")
    path = inbox / "mfp.png"
    path.write_bytes(data[:1000])
    t0 = time.monotonic()
    assert folder.ready(now=t0) == []
    with path.open("ab") as fh:
        fh.write(data[1000:5000])
    assert folder.ready(now=t0 + 0.6) == []  # it grew: the clock starts again
    with path.open("ab") as fh:
        fh.write(data[5000:])
    assert folder.ready(now=t0 + 1.0) == []
    assert folder.ready(now=t0 + 1.2) == []
    assert folder.ready(now=t0 + 1.6) == [path]
    (out,) = WatchFolder(inbox, folder.capture).run_once(settle_s=0)
    assert out.result is not None


def test_crash_before_the_move_does_not_import_twice(store: Store, inbox: Path) -> None:
    """Filed but not moved (a crash): the next run sees the ledger and only moves the file."""
    data = encode(text_page(), "PNG")
    (inbox / "a.png").write_bytes(data)
    cap = Capture(store)
    batch = cap.start("folder", origin_sha256=hashlib.sha256(data).hexdigest())
    cap.queue.add_page(batch, "a.png", data)
    cap.process(batch)  # ... and the process died before moving the file
    (out,) = WatchFolder(inbox, cap).run_once(settle_s=0)
    assert out.duplicate_of == batch and store.count("document") == 1
    assert (inbox / "processed" / "a.png").exists()


def test_crash_before_filing_resumes_the_same_batch(store: Store, inbox: Path) -> None:
    """Spooled but not filed (a crash): the next run files that batch, once."""
    data = encode(text_page(), "PNG")
    (inbox / "b.png").write_bytes(data)
    cap = Capture(store)
    batch = cap.start("folder", origin_sha256=hashlib.sha256(data).hexdigest())
    cap.queue.add_page(batch, "b.png", data)
    (out,) = WatchFolder(inbox, cap).run_once(settle_s=0)
    assert out.result is not None and out.result.batch_id == batch
    assert store.count("document") == 1 and cap.queue.status(batch).pages_scanned == 1


def test_bad_file_goes_to_rejected_with_the_reason(store: Store, inbox: Path) -> None:
    """A zero-byte and a corrupt file are kept in rejected/ with a note saying why."""
    (inbox / "empty.jpg").write_bytes(b"")
    good = encode(text_page(), "PNG")
    (inbox / "cut.png").write_bytes(good[: len(good) // 3])
    outs = WatchFolder(inbox, Capture(store)).run_once(settle_s=0)
    assert sorted(o.name for o in outs if o.error) == ["cut.png", "empty.jpg"]
    assert (inbox / "rejected" / "cut.png").read_bytes() == good[: len(good) // 3]
    reason = (inbox / "rejected" / "empty.jpg.reason.txt").read_text()
    assert "empty" in reason
    assert store.count("document") == 0


def test_mfp_pdf_is_imported(store: Store, inbox: Path) -> None:
    """A multi-page scanned PDF from the printer becomes one document with its pages."""
    page = load_pages(encode(text_page(), "JPEG", quality=85), "p.jpg")[0]
    (inbox / "doc.pdf").write_bytes(images_to_pdf([page, page, page]))
    (out,) = WatchFolder(inbox, Capture(store)).run_once(settle_s=0)
    assert out.result is not None and out.result.documents[0].data["PageAmount"] == 3


@pytest.fixture
def pty_pair() -> Iterator[tuple[int, str]]:
    """(master fd the simulated reader writes to, slave path the app opens)."""
    master, slave = os.openpty()
    tty.setraw(master)
    yield master, os.ttyname(slave)
    os.close(master)
    os.close(slave)


def test_codes_parse() -> None:
    assert parse_code("000.21.08.H49.2025.01.VP") == Target(file_code="000.21.08.H49.2025.01.VP")
    doc = "3f2b8c1e-0a4d-4e5f-9b6a-1c2d3e4f5a6b"
    assert parse_code(doc.upper()) == Target(document_id=doc)
    assert parse_code(payload(Target(file_code="X"))) == Target(file_code="X")
    assert parse_code("8934567890123") is None


@pytest.mark.parametrize("ending", [b"\r", b"\r\n"])
def test_serial_code_routes_the_next_folder_batch(
    store: Store, inbox: Path, hoso: str, pty_pair: tuple[int, str], ending: bytes
) -> None:
    """A hồ sơ code read over a pty (CR or CRLF) sends the next batch, and only it, there."""
    master, port = pty_pair
    router = BarcodeRouter(store_exists(store))
    reader = SerialReader(port, router, terminator=b"\r", timeout=0.3)
    try:
        os.write(master, b"000.21.08.H49.2099.09.XX" + ending + hoso.encode() + ending)
        first = reader.read_once()
        assert first is not None and first.target is None and "does not exist" in first.message
        second = reader.read_once()
        assert second is not None and second.target == Target(file_code=hoso)
        assert reader.read_once() is None  # only the LF of a CRLF, or nothing, is left
    finally:
        reader.close()
    folder = WatchFolder(inbox, Capture(store), router=router)
    (inbox / "1.png").write_bytes(encode(text_page(["Trang một"]), "PNG"))
    (routed,) = folder.run_once(settle_s=0)
    (inbox / "2.png").write_bytes(encode(text_page(["Trang hai"]), "PNG"))
    (unrouted,) = folder.run_once(settle_s=0)
    assert routed.result is not None and unrouted.result is not None
    assert routed.result.documents[0].data["FileCode"] == hoso
    assert "FileCode" not in unrouted.result.documents[0].data


def test_document_code_adds_the_scan_to_that_document(
    store: Store, inbox: Path, pty_pair: tuple[int, str]
) -> None:
    """Scanning a document's separator code attaches the next batch as a new version of it."""
    from tests.conftest import incoming

    doc = store.register_incoming(incoming()).record
    master, port = pty_pair
    router = BarcodeRouter(store_exists(store))
    reader = SerialReader(port, router, timeout=0.3)
    os.write(master, payload(Target(document_id=doc.id)).encode() + b"\r")
    route = reader.read_once()
    reader.close()
    assert route is not None and route.target == Target(document_id=doc.id)
    (inbox / "x.png").write_bytes(encode(text_page(), "PNG"))
    (out,) = WatchFolder(inbox, Capture(store), router=router).run_once(settle_s=0)
    assert out.result is not None and out.result.documents[0].id == doc.id
    after = store.get("document", doc.id)
    assert after.version == doc.version + 1 and len(after.data["Content"]) == 1
    assert after.data["ArrivalNumber"] == doc.data["ArrivalNumber"]


@pytest.mark.parametrize("case", sorted(active_pdfs.ACTIVE))
def test_pdf_with_active_content_goes_to_rejected(store: Store, inbox: Path, case: str) -> None:
    """Scan-to-folder takes PDFs: one with scripts, actions or attachments is not filed."""
    maker, word = active_pdfs.ACTIVE[case]
    (inbox / "doc.pdf").write_bytes(maker())
    (out,) = WatchFolder(inbox, Capture(store)).run_once(settle_s=0)
    assert out.error and word in out.error
    assert word in (inbox / "rejected" / "doc.pdf.reason.txt").read_text()
    assert store.count("document") == 0 and not list(store.content.iter_hashes())


@pytest.mark.parametrize("case", sorted(active_pdfs.HARMLESS))
def test_pdf_with_links_inside_the_document_is_filed(store: Store, inbox: Path,
                                                    case: str) -> None:
    (inbox / "doc.pdf").write_bytes(active_pdfs.HARMLESS[case]())
    (out,) = WatchFolder(inbox, Capture(store)).run_once(settle_s=0)
    assert out.error is None and out.result is not None and store.count("document") == 1
