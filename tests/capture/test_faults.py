"""Bad input and faults: uploads refused with reasons, a full disk, a re-run after a crash."""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from appliance.capture.batch import Capture, ingest_upload
from appliance.capture.errors import DecompressionBomb, DiskFull, ImageRejected, UnsafePdf
from appliance.capture.queue import BatchState
from appliance.capture.separator import Target
from appliance.datadir import init_data_dir
from appliance.store import Store
from tests.conftest import ORG_ID, ORG_NAME, incoming

from .images import encode, text_page
from .test_pipeline import _pdf_with, _png_claiming


def test_upload_with_fields_registers_an_incoming_document(store: Store, hoso: str) -> None:
    """An upload with the registration fields gets the next số đến and its scan, in one entry."""
    files = [("p1.jpg", encode(text_page(), "JPEG")), ("p2.png", encode(text_page(), "PNG"))]
    res = ingest_upload(store, files, target=Target(file_code=hoso), metadata=incoming())
    (doc,) = res.documents
    assert doc.data["Status"] == "registered" and doc.data["ArrivalNumber"] == 1
    assert doc.data["PageAmount"] == 2 and doc.data["FileCode"] == hoso
    assert len(doc.data["Content"]) == 1


@pytest.mark.parametrize(
    ("bad", "error", "word"),
    [
        (b"", ImageRejected, "empty"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 50, ImageRejected, "damaged|not an image"),
        (_png_claiming(60_000, 60_000), DecompressionBomb, "refused"),
        (_pdf_with("js"), UnsafePdf, "scripts"),
    ],
)
def test_bad_upload_is_refused_and_nothing_is_lost(
    store: Store, bad: bytes, error: type[Exception], word: str
) -> None:
    """One bad file refuses the upload with its name and reason; every file stays spooled."""
    good = encode(text_page(), "PNG")
    with pytest.raises(error, match=word) as err:
        ingest_upload(store, [("good.png", good), ("bad.bin", bad)])
    assert "bad.bin" in str(err.value)
    assert store.count("document") == 0
    cap = Capture(store)
    (batch,) = cap.queue.batches()
    assert batch.state is BatchState.REJECTED and batch.error and "bad.bin" in batch.error
    assert [d for _, d in cap.queue.spooled(batch.id)] == [good, bad]


def test_rerun_after_a_crash_finds_the_filed_document(store: Store) -> None:
    """Filed, but the batch was not marked so (a crash): processing again makes no duplicate."""
    cap = Capture(store)
    batch = cap.start("upload")
    cap.queue.add_page(batch, "p.png", encode(text_page(), "PNG"))
    first = cap.process(batch)
    cap.queue.update(batch, state=BatchState.PROCESSING)
    spool = cap.queue.spool_dir(batch)
    spool.mkdir(parents=True)
    (spool / "00001-p.png").write_bytes(encode(text_page(), "PNG"))  # as if never cleaned up
    second = cap.process(batch)
    assert [d.id for d in second.documents] == [d.id for d in first.documents]
    assert store.count("document") == 1


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MB tmpfs mounted for the test (needs root); unmounted after."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()})")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _noisy_page(seed: int) -> bytes:
    """A 200 dpi page whose noise does not compress: about 0.75 MB as PNG."""
    img = text_page(dpi=200)
    noise = Image.frombytes("RGB", (500, 500), os.urandom(500 * 500 * 3))
    img.paste(noise, (100 + seed, 1200))
    return encode(img, "PNG", dpi=200)


def test_full_disk_keeps_every_page_already_captured(small_disk: Path) -> None:
    """Pages spooled until the disk is full: a clear error naming the safe pages; after space
    is freed the batch resumes and is filed with every kept page, bit for bit."""
    data_dir = small_disk / "appliance"
    init_data_dir(data_dir, ORG_ID, ORG_NAME, "software")
    with Store.open(data_dir) as store:
        cap = Capture(store)
        batch = cap.start("sane:test")
        sent: list[bytes] = []
        with pytest.raises(DiskFull) as err:
            for i in range(20):
                page = _noisy_page(i)
                cap.queue.add_page(batch, f"p{i}.png", page)
                sent.append(page)
        kept = len(sent)
        assert kept >= 1 and f"pages 1–{kept}" in str(err.value)
        assert "Free space" in str(err.value)
        assert [d for _, d in cap.queue.spooled(batch)] == sent
        subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
        res = cap.resume(batch)
        (doc,) = res.documents
        assert doc.data["PageAmount"] == kept
        sha = doc.data["Content"][0]["sha256"]
        with store.content.open(sha) as fh:
            assert hashlib.sha256(fh.read()).hexdigest() == sha


def test_full_disk_while_filing_keeps_the_spool(small_disk: Path) -> None:
    """The disk fills after scanning: filing fails clearly, the pages stay, resume files them."""
    data_dir = small_disk / "appliance"
    init_data_dir(data_dir, ORG_ID, ORG_NAME, "software")
    with Store.open(data_dir) as store:
        cap = Capture(store)
        batch = cap.start("sane:test")
        pages = [_noisy_page(1)]
        cap.queue.add_page(batch, "p.png", pages[0])
        ballast = small_disk / "ballast"
        # Unbuffered: a buffered file keeps the tail of a short write and fails again on close
        # when the free space is not a multiple of the chunk.
        with ballast.open("wb", buffering=0) as fh, pytest.raises(OSError):
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        with pytest.raises(DiskFull, match="disk is full"):
            cap.process(batch)
        assert [d for _, d in cap.queue.spooled(batch)] == pages
        assert store.count("document") == 0
        ballast.unlink()
        res = cap.resume(batch)
        assert len(res.documents) == 1 and store.count("document") == 1
