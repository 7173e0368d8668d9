"""Background OCR (real tesseract `vie`) and PAdES signing (agency key in swtpm) of scans."""

from __future__ import annotations

import io
import shutil
import subprocess
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pikepdf
import pytest
from cryptography import x509
from PIL import Image, ImageFilter

from appliance import renditions
from appliance.capture.batch import Capture, ingest_upload
from appliance.capture.config import CaptureConfig
from appliance.capture.filing import document_text
from appliance.capture.ocr import OcrConfig
from appliance.capture.queue import JobKind, JobState
from appliance.capture.separator import Target
from appliance.capture.worker import Worker
from appliance.keys import agency
from appliance.search import search
from appliance.store import Store
from appliance.verify import verify_data_dir
from tests.pki import CA, make_ca, pem
from tests.swtpm import Swtpm, swtpm, swtpm_factory

from .conftest import ORG_NAME_FOR_SIG
from .images import TEXT, encode, text_page

__all__ = ["swtpm", "swtpm_factory"]

pytestmark = pytest.mark.skipif(
    shutil.which("tesseract") is None, reason="tesseract is not installed (tesseract-ocr-vie)"
)


def cer(reference: str, hypothesis: str) -> float:
    """Character error rate on NFC text, diacritics counted, white space collapsed."""
    ref = " ".join(unicodedata.normalize("NFC", reference).split())
    hyp = " ".join(unicodedata.normalize("NFC", hypothesis).split())
    prev = list(range(len(hyp) + 1))
    for i, a in enumerate(ref, start=1):
        cur = [i]
        for j, b in enumerate(hyp, start=1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a != b)))
        prev = cur
    return prev[-1] / max(1, len(ref))


def test_cer_counts_a_missing_diacritic() -> None:
    """The metric itself: one lost tone mark in ten letters is 10%."""
    assert cer("Quyết định", "Quyết đinh") == pytest.approx(0.1)
    assert cer("Quyết định", unicodedata.normalize("NFD", "Quyết định")) == 0


def scanned_page() -> bytes:
    """The known text as a scanner gives it: 0.5° skew, a little blur, JPEG at quality 85."""
    img = text_page().rotate(0.5, expand=False, fillcolor="white", resample=Image.BICUBIC)
    return encode(img.filter(ImageFilter.GaussianBlur(0.7)), "JPEG", quality=85)


def _upload(store: Store, target: Target | None = None) -> str:
    res = ingest_upload(store, [("trang1.jpg", scanned_page())], target=target)
    (doc,) = res.documents
    return doc.id


def _content(store: Store, doc_id: str) -> list[dict[str, object]]:
    return list(store.get("document", doc_id).data["Content"])


def _read(store: Store, sha: object) -> bytes:
    with store.content.open(str(sha)) as fh:
        return fh.read()


def test_ocr_makes_searchable_pdfa_with_vietnamese_text(
    store: Store, hoso: str, tmp_path: Path
) -> None:
    """OCR: CER ≤ 3%, PDF/A-2B in the XMP and by pikepdf's validator, the archival page (paper
    at 200 dpi, ink mask at the scan's 300), pdftotext finds the words, and search finds the
    document by them without diacritics; the lossless scan is released (its hash stays)."""
    doc_id = _upload(store, Target(file_code=hoso))
    worker = Worker(store, CaptureConfig(sign=False))
    outcome = worker.run_once()
    assert outcome is not None and outcome.ok, outcome
    scan, ocr = _content(store, doc_id)
    assert ocr["name"] == f"{hoso}.1.ocr.pdf"
    text = document_text(store.reader(), doc_id) or ""
    assert cer("\n".join(TEXT), text) <= 0.03, text
    pdf = _read(store, ocr["sha256"])
    path = tmp_path / "ocr.pdf"
    path.write_bytes(pdf)
    import pikepdf.pdfa as pdfa

    with pikepdf.open(path) as doc:
        meta = doc.open_metadata()
        assert (meta.get("pdfaid:part"), meta.get("pdfaid:conformance")) == ("2", "B")
        page = doc.pages[0]
        width_in = float(page.mediabox[2]) / 72
        images = list(page.get_images().values())
        colour = [im for im in images if im.get("/ImageMask") is None]
        paper = max(colour, key=lambda im: int(im.Width))
        assert round(int(paper.Width) / width_in) == 200
        assert paper.Filter == "/DCTDecode"
        (ink,) = [im for im in colour if im is not paper]
        assert round(int(ink.Mask.Width) / width_in) == 300
        assert ink.Mask.Filter == "/CCITTFaxDecode" and ink.Mask.ImageMask
    assert pdfa.validate_written(path, "2b").passed
    if shutil.which("pdftotext"):
        out = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True)
        for words in ("Quyết định có hiệu lực", "Ủy ban nhân dân", "phòng, chống thiên tai"):
            assert words in out.stdout
    hits = search(store.reader(), "phong chong thien tai")
    assert [h.id for h in hits] == [doc_id]
    # The lossless assembly: its hash and name stay in the record, its bytes are released.
    assert scan["keep"] == "none" and ocr["from"] == scan["sha256"] and "extends" not in ocr
    assert not store.content.exists(str(scan["sha256"]))
    assert len(pdf) < 150_000
    store.wait_sealed(10)
    report = verify_data_dir(store.data_dir)
    assert report.ok, [f.message for f in report.findings]


def test_ocr_out_of_memory_is_retried_and_the_record_stays(store: Store) -> None:
    """OCR under a 64 MB cap fails with a clear message; the job waits; later it succeeds."""
    doc_id = _upload(store)
    tight = Worker(store, CaptureConfig(sign=False, ocr=OcrConfig(memory_mb=64)))
    outcome = tight.run_once()
    assert outcome is not None and not outcome.ok
    assert outcome.error and "out of memory" in outcome.error and "64 MB" in outcome.error
    (job,) = tight.queue.jobs(document_id=doc_id)
    assert job.state is JobState.QUEUED and job.attempts == 1 and job.error
    assert tight.run_once() is None  # backoff: not due yet
    assert len(_content(store, doc_id)) == 1  # the sealed scan is untouched
    tight.queue.make_due()
    outcome = Worker(store, CaptureConfig(sign=False)).run_once()
    assert outcome is not None and outcome.ok
    assert len(_content(store, doc_id)) == 2


def test_job_interrupted_by_a_restart_runs_again(store: Store) -> None:
    """A job left 'running' by a crash is queued again when the next worker starts."""
    doc_id = _upload(store)
    cap = Capture(store)
    claimed = cap.queue.claim()
    assert claimed is not None and claimed.state is JobState.RUNNING
    worker = Worker(store, CaptureConfig(sign=False))  # the restart
    (job,) = worker.queue.jobs(document_id=doc_id)
    assert job.state is JobState.QUEUED
    assert worker.drain()[0].ok


def test_signing_waits_for_a_missing_agency_key(store: Store) -> None:
    """With no agency key set up, signing is kept waiting with the reason, not dropped."""
    doc_id = _upload(store)
    worker = Worker(store, CaptureConfig(retry_base_s=0.0))
    assert worker.run_once().ok  # type: ignore[union-attr]
    outcome = worker.run_once()
    assert outcome is not None and outcome.job.kind is JobKind.SIGN and not outcome.ok
    assert "agency" in (outcome.error or "")
    sign_job = next(j for j in worker.queue.jobs(document_id=doc_id) if j.kind is JobKind.SIGN)
    assert sign_job.state is JobState.QUEUED
    assert len(_content(store, doc_id)) == 2


@pytest.fixture
def agency_ca(data_dir: Path, swtpm: Swtpm) -> Iterator[CA]:
    """The agency key in swtpm with a certificate from a throwaway CA."""
    agency.create_agency_tpm_key(data_dir, swtpm.tcti)
    with agency.open_agency_key(data_dir) as key:
        csr = x509.load_pem_x509_csr(
            agency.make_csr(key, agency.agency_subject(ORG_NAME_FOR_SIG))
        )
    ca = make_ca()
    agency.import_agency_cert(data_dir, pem(ca.issue(csr.public_key(), csr.subject)) + pem(ca.cert))
    yield ca


def test_signed_pdfa_validates_top_right_and_keeps_every_version(
    store: Store, hoso: str, agency_ca: CA, tmp_path: Path
) -> None:
    """Scan → OCR → PAdES: pyHanko (trusted by the CA) and pdfsig say valid; the box is top
    right of page 1 with no image; the XMP still says PDF/A-2B; the file name is from the
    mã hồ sơ; all three versions stay on the record."""
    from asn1crypto import x509 as asn1_x509
    from cryptography.hazmat.primitives.serialization import Encoding
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    doc_id = _upload(store, Target(file_code=hoso))
    done = Worker(store).drain()
    assert [o.ok for o in done] == [True, True], [o.error for o in done]
    scan, ocr, signed = _content(store, doc_id)
    assert signed["name"] == f"{hoso}.1.pdf"
    pdf = _read(store, signed["sha256"])
    root = asn1_x509.Certificate.load(agency_ca.cert.public_bytes(Encoding.DER))
    reader = PdfFileReader(io.BytesIO(pdf), strict=False)
    (sig,) = reader.embedded_signatures
    status = validate_pdf_signature(sig, ValidationContext(trust_roots=[root]))
    assert status.intact and status.valid and status.bottom_line
    page = reader.root["/Pages"]["/Kids"][0].get_object()
    width, height = float(page["/MediaBox"][2]), float(page["/MediaBox"][3])
    (widget,) = [a.get_object() for a in page["/Annots"] if a.get_object().get("/FT") == "/Sig"]
    x1, y1, x2, y2 = (float(v) for v in widget["/Rect"])
    assert x1 > width / 2 and y1 > height * 0.8 and x2 <= width and y2 <= height
    ap = widget["/AP"]["/N"].get_object()
    assert "/XObject" not in ap.get("/Resources", {}) or all(
        x.get_object().get("/Subtype") != "/Image"
        for x in ap["/Resources"]["/XObject"].values()
    )
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        meta = doc.open_metadata()
        assert (meta.get("pdfaid:part"), meta.get("pdfaid:conformance")) == ("2", "B")
    assert pdf.startswith(_read(store, ocr["sha256"]))  # incremental: PDF/A first, then signed
    # Stored once: the PDF/A is kept as the signed file's prefix, not as a file of its own.
    assert signed["from"] == ocr["sha256"] and signed["extends"] is True
    assert not store.content.has_file(str(ocr["sha256"]))
    assert store.content.exists(str(ocr["sha256"]))
    assert not store.content.exists(str(scan["sha256"]))
    store.wait_sealed(10)
    report = verify_data_dir(store.data_dir)
    assert report.ok, [f.message for f in report.findings]
    if shutil.which("pdfsig"):
        path = tmp_path / "signed.pdf"
        path.write_bytes(pdf)
        report = subprocess.run(["pdfsig", str(path)], capture_output=True, text=True).stdout
        assert "Signature is Valid" in report and "Total document signed" in report
    assert scan["name"].startswith("scan-")
    # Each rendition names the file it was made from: a package carries the signed one only.
    assert (ocr["from"], ocr["rendition"]) == (scan["sha256"], "ocr")
    assert (signed["from"], signed["rendition"]) == (ocr["sha256"], "signed")
    assert [c["sha256"] for c in renditions.archival([scan, ocr, signed])] == [signed["sha256"]]


def test_signed_archival_pdf_passes_the_pdfa_checks(
    store: Store, hoso: str, agency_ca: CA
) -> None:
    """After signing, Info and XMP still agree (Producer, dates), the XMP says PDF/A-2B, an
    OutputIntent is there and every font (the text layer's and the signature stamp's) is
    embedded; the unsigned PDF/A passes too."""
    from appliance import pdfa

    doc_id = _upload(store, Target(file_code=hoso))
    assert all(o.ok for o in Worker(store).drain())
    _scan, ocr, signed = _content(store, doc_id)
    assert pdfa.check(_read(store, ocr["sha256"])) == []
    assert pdfa.check(_read(store, signed["sha256"])) == []


def test_an_ocr_job_run_again_after_a_crash_adds_nothing(store: Store) -> None:
    """The OCR version was committed but the queue did not record the job as done (a crash
    between the two): run again, it adds no second version, does not need the released scan,
    and leaves the record as it was."""
    import sqlite3

    doc_id = _upload(store)
    worker = Worker(store, CaptureConfig(sign=False))
    first = worker.run_once()
    assert first is not None and first.ok
    content = _content(store, doc_id)
    assert not store.content.exists(str(content[0]["sha256"]))  # the scan was released
    with sqlite3.connect(worker.queue.path) as conn:
        conn.execute("UPDATE jobs SET state = 'queued'")
    again = worker.run_once()
    assert again is not None and again.ok and again.ocr is None, again
    assert again.output_sha256 == content[1]["sha256"]
    assert _content(store, doc_id) == content
