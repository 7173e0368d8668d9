"""Every way in goes through capture (appliance/capture/intake.py): a phone photo attached to a
registered document comes out as a signed, searchable PDF/A (real tesseract `vie`, the agency
key in swtpm, judged by pyHanko, pdfsig and pikepdf's PDF/A check); a computer-made or signed
PDF stays byte for byte, its text found at once."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image, ImageFilter

from appliance.capture.filing import document_text
from appliance.capture.intake import IntakeFile, status, take_in
from appliance.capture.queue import Queue, queue_exists
from appliance.capture.worker import Worker
from appliance.search import search
from appliance.store import Store
from appliance.verify import verify_data_dir
from tests.archive.conftest import pdf_bytes
from tests.conftest import incoming
from tests.pki import CA

from .images import text_page
from .test_ocr_sign import agency_ca, cer, swtpm, swtpm_factory  # noqa: F401 (fixtures)

pytestmark = pytest.mark.skipif(
    shutil.which("tesseract") is None, reason="tesseract is not installed (tesseract-ocr-vie)"
)

PHOTO_TEXT = [
    "ỦY BAN NHÂN DÂN HUYỆN HẢI HÀ",
    "Số: 12/2025/NQ-HĐND",
    "Về việc tu bổ đê điều và phòng, chống thiên tai",
    "Các xã rà soát đê điều trước mùa mưa bão năm 2025.",
]


def phone_photo() -> bytes:
    """A page photographed by a phone: no dpi tag, a little tilt and blur, JPEG."""
    page = text_page(PHOTO_TEXT, dpi=220, pt=14)
    page = page.rotate(0.8, expand=False, fillcolor="white", resample=Image.BICUBIC)
    out = io.BytesIO()
    page.filter(ImageFilter.GaussianBlur(0.6)).save(out, "JPEG", quality=82)
    return out.getvalue()


def test_a_phone_photo_comes_out_as_a_signed_searchable_pdfa(
    store: Store, agency_ca: CA, tmp_path: Path  # noqa: F811
) -> None:
    from asn1crypto import x509 as asn1_x509
    from cryptography.hazmat.primitives.serialization import Encoding
    from pikepdf import pdfa
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    doc = store.register_incoming(incoming(CodeNumber="12", CodeNotation="2025/NQ-HĐND")).record
    photo = tmp_path / "IMG_2025.jpg"
    photo.write_bytes(phone_photo())
    after = take_in(store, doc.id, [IntakeFile("IMG_2025.jpg", photo, "image/jpeg", False)],
                    "u-clerk")
    (captured,) = after.data["Content"]
    assert captured["mime"] == "application/pdf"
    assert status(store.data_dir, doc.id).step == "ocr"

    done = Worker(store).drain()  # OCR, then the agency's signature
    assert [o.ok for o in done] == [True, True], [o.error for o in done]
    assert status(store.data_dir, doc.id).step == "done"
    content = store.get("document", doc.id).data["Content"]
    # The photo's lossless assembly stays in the log as provenance, its bytes released once
    # the archival PDF/A exists (masters off); the PDF/A is kept as the signed file's prefix.
    assert len(content) == 3 and content[0]["sha256"] == captured["sha256"]
    assert content[0].get("keep") == "none" and not store.content.exists(captured["sha256"])
    with store.content.open(content[-1]["sha256"]) as fh:
        signed = fh.read()
    out = tmp_path / "signed.pdf"
    out.write_bytes(signed)

    root = asn1_x509.Certificate.load(agency_ca.cert.public_bytes(Encoding.DER))
    (sig,) = PdfFileReader(io.BytesIO(signed), strict=False).embedded_signatures
    verdict = validate_pdf_signature(sig, ValidationContext(trust_roots=[root]))
    assert verdict.intact and verdict.valid and verdict.bottom_line
    if shutil.which("pdfsig"):
        said = subprocess.run(["pdfsig", str(out)], capture_output=True, text=True).stdout
        assert "Signature is Valid" in said or "Total document signed" in said, said
    with store.content.open(content[1]["sha256"]) as fh:
        ocr = tmp_path / "ocr.pdf"
        ocr.write_bytes(fh.read())
    assert pdfa.validate_written(ocr, "2b").passed
    text = document_text(store.reader(), doc.id) or ""
    assert cer("\n".join(PHOTO_TEXT), text) <= 0.05, text
    assert [h.id for h in search(store.reader(), "tu bo de dieu")] == [doc.id]
    store.wait_sealed(10)
    assert verify_data_dir(store.data_dir).ok


def test_a_signed_pdf_is_kept_byte_for_byte_and_its_text_found_at_once(
    store: Store, tmp_path: Path
) -> None:
    """The issuer's signature must stay valid: no capture, no new version; pdftotext's
    reading of it is indexed so search finds words only the file holds."""
    from appliance.pdfsign import sign_pdf
    from tests.pki import SoftwareAgencyKey

    key = SoftwareAgencyKey.make("Ủy ban nhân dân huyện Hải Hà")
    made = sign_pdf(pdf_bytes("Thông báo lịch tiếp công dân tháng mười tại nhà văn hoá"), key,
                    agency_name="Ủy ban nhân dân huyện Hải Hà")
    path = tmp_path / "thong-bao.pdf"
    path.write_bytes(made)
    doc = store.register_incoming(incoming()).record
    after = take_in(store, doc.id, [IntakeFile("thong-bao.pdf", path, "application/pdf", True)],
                    "u-clerk")
    (kept,) = after.data["Content"]
    with store.content.open(kept["sha256"]) as fh:
        assert fh.read() == made
    assert not queue_exists(store.data_dir) or not Queue(store.data_dir).jobs(
        document_id=doc.id)
    assert status(store.data_dir, doc.id).step is None
    assert [h.id for h in search(store.reader(), "lich tiep cong dan nha van hoa")] == [doc.id]
    if shutil.which("pdfsig"):
        said = subprocess.run(["pdfsig", str(path)], capture_output=True, text=True).stdout
        assert "Signature is Valid" in said or "Total document signed" in said, said
