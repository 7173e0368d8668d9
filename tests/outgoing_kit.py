"""What the văn bản đi tests share: the office's users, a signer whose key is on SoftHSM2 or in
swtpm, the agency key in swtpm, signature and seal images, and the judges (pyHanko, pdfsig,
pdftotext)."""

from __future__ import annotations

import io
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from PIL import Image, ImageDraw

from appliance.accounts import Accounts, HashParams, ensure_schema
from appliance.keys import agency
from appliance.outgoing import signers
from appliance.store import Store
from tests.pki import CA, SoftHsmToken, make_ca, pem

SIGNER_PIN = "246810"
SIGNER = "lanhdao"
SIGNER_NAME = "Nguyễn Văn An"


def users(store: Store) -> Accounts:
    ensure_schema(store)
    acc = Accounts(store, b"s" * 32, HashParams(opslimit=1, memlimit=8192))
    for name, role, full in (("vanthu", "clerk", "Lê Thị Văn Thư"),
                             ("lanhdao", "leader", SIGNER_NAME),
                             ("phochutich", "leader", "Trần Văn Phó"),
                             ("chuyenvien", "handler", "Phạm Văn Chuyên")):
        acc.add_user(name, role, "mật khẩu đủ dài 2025!", "admin", full_name=full)
    return acc


def signature_png() -> bytes:
    """A blue handwritten-looking stroke on a transparent background."""
    img = Image.new("RGBA", (600, 260), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.line([(30, 190), (140, 70), (230, 200), (330, 60), (450, 190), (570, 90)],
           fill=(20, 50, 190, 255), width=10)
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def seal_png() -> bytes:
    """A red round seal on a transparent background."""
    img = Image.new("RGBA", (420, 420), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.ellipse([6, 6, 414, 414], outline=(210, 20, 20, 255), width=14)
    d.ellipse([70, 70, 350, 350], outline=(210, 20, 20, 255), width=6)
    d.regular_polygon((210, 210, 60), 5, fill=(210, 20, 20, 255))
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def person(name: str, org: str = "Ủy ban nhân dân xã Đông Hải") -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                      x509.NameAttribute(NameOID.COMMON_NAME, name)])


@dataclass
class Office:
    """A data folder set up to sign: the CA, the agency key in swtpm, one signer."""

    store: Store
    ca: CA
    tcti: str


def setup_agency(store: Store, ca: CA, tcti: str) -> None:
    """The agency key generated in the TPM, its certificate from ``ca``, the seal image."""
    agency.create_agency_tpm_key(store.data_dir, tcti)
    with agency.open_agency_key(store.data_dir) as key:
        cert = ca.issue(key.public_key(), agency.agency_subject(store.config.org_name))
    agency.import_agency_cert(store.data_dir, pem(cert) + pem(ca.cert))
    signers.set_seal(store.data_dir, seal_png())


def setup_pkcs11_signer(store: Store, ca: CA, token: SoftHsmToken, username: str = SIGNER,
                        name: str = SIGNER_NAME) -> None:
    """``username``'s key on the SoftHSM2 token (its own label), certificate from ``ca``."""
    import pkcs11
    from pkcs11.util.ec import encode_named_curve_parameters

    label = f"signer-{username}"
    lib = pkcs11.lib(token.module)
    tok = lib.get_token(token_label=token.token_label)
    with tok.open(rw=True, user_pin=token.pin) as session:
        if not list(session.get_objects({pkcs11.Attribute.LABEL: label})):
            params = session.create_domain_parameters(
                pkcs11.KeyType.EC,
                {pkcs11.Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")},
                local=True)
            params.generate_keypair(store=True, label=label)
    signers.configure_pkcs11(store.data_dir, username, token.module, token.token_label, label)
    public = signers.public_key(store.data_dir, signers.require(store.data_dir, username))
    cert = ca.issue(public, person(name))
    signers.import_cert(store.data_dir, username, pem(cert) + pem(ca.cert))
    signers.set_image(store.data_dir, username, signature_png())


def setup_tpm_signer(store: Store, ca: CA, tcti: str, username: str = SIGNER,
                     name: str = SIGNER_NAME, pin: str = SIGNER_PIN) -> None:
    """``username``'s key generated in the TPM with ``pin``; certificate from its CSR."""
    profile = signers.create_tpm_key(store.data_dir, username, pin, tcti)
    request = x509.load_pem_x509_csr(signers.csr(store.data_dir, profile, pin, name,
                                                 store.config.org_name))
    assert request.is_signature_valid
    cert = ca.issue(request.public_key(), request.subject)
    signers.import_cert(store.data_dir, username, pem(cert) + pem(ca.cert))
    signers.set_image(store.data_dir, username, signature_png())


TEMPLATE_BODY = """Căn cứ Luật Tổ chức chính quyền địa phương ngày 16 tháng 6 năm 2025;

Theo đề nghị của Công chức Văn phòng - Thống kê.

QUYẾT ĐỊNH:

Điều 1. Thành lập Tổ công tác phòng, chống thiên tai năm 2025 của xã Đông Hải.

Điều 2. Quyết định này có hiệu lực kể từ ngày ký. Văn phòng và các ông, bà có tên tại Điều 1 \
chịu trách nhiệm thi hành Quyết định này."""


def meta(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "TypeName": "Quyết định",
        "Subject": "Về việc thành lập Tổ công tác phòng, chống thiên tai năm 2025",
        "SignerPosition": "Chủ tịch", "SignerFullName": SIGNER_NAME,
        "To": [{"OrganName": "Như Điều 2"},
               {"OrganId": "000.00.00.H40", "OrganName": "Ủy ban nhân dân tỉnh Ninh Bình"}],
    }
    base.update(over)
    return base


# -- the judges -------------------------------------------------------------------------


def pyhanko_report(pdf: bytes, root: x509.Certificate) -> list[Any]:
    """pyHanko's validation status of every signature, trusting ``root`` only."""
    from asn1crypto import x509 as asn1_x509
    from cryptography.hazmat.primitives.serialization import Encoding
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    reader = PdfFileReader(io.BytesIO(pdf), strict=False)
    out = []
    for sig in reader.embedded_signatures:
        vc = ValidationContext(trust_roots=[asn1_x509.Certificate.load(root.public_bytes(
            Encoding.DER))], allow_fetching=False, revocation_mode="soft-fail")
        out.append(validate_pdf_signature(sig, vc))
    return out


def pdfsig(pdf: bytes) -> str:
    with tempfile.NamedTemporaryFile(suffix=".pdf") as f:
        f.write(pdf)
        f.flush()
        return subprocess.run(["pdfsig", f.name], capture_output=True, text=True).stdout


def pdftotext(pdf: bytes, page: int | None = None) -> str:
    args = ["pdftotext", "-layout"]
    if page is not None:
        args += ["-f", str(page), "-l", str(page)]
    with tempfile.NamedTemporaryFile(suffix=".pdf") as f:
        f.write(pdf)
        f.flush()
        return subprocess.run([*args, f.name, "-"], capture_output=True, text=True).stdout


def render(pdf: bytes, out: Path, dpi: int = 100) -> list[Path]:
    """pdftoppm's PNG of every page, as ``out``-1.png …"""
    with tempfile.NamedTemporaryFile(suffix=".pdf") as f:
        f.write(pdf)
        f.flush()
        subprocess.run(["pdftoppm", "-r", str(dpi), "-png", f.name, str(out)], check=True)
    return sorted(out.parent.glob(f"{out.name}-*.png"))


@pytest.fixture(scope="session")
def office_ca() -> Iterator[CA]:
    yield make_ca()


def typed_pdf(number: bool = True, name: str = SIGNER_NAME) -> bytes:
    """A draft typed elsewhere (as Word would print it): 'Số:    /QĐ-UBND', the date line
    with gaps, the signer's block."""
    from reportlab.pdfgen import canvas

    from appliance.outgoing import layout

    layout._fonts()
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=(layout.PAGE_W, layout.PAGE_H))
    c.setFont("TNR-B", 13)
    c.drawCentredString(170, 780, "ỦY BAN NHÂN DÂN XÃ ĐÔNG HẢI")
    c.drawCentredString(400, 780, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM")
    c.setFont("TNR", 13)
    if number:
        c.drawString(110, 745, "Số:")
        c.drawString(150, 745, "/QĐ-UBND")
    c.setFont("TNR-I", 14)
    c.drawString(300, 745, "Đông Hải, ngày")
    c.drawString(410, 745, "tháng")
    c.drawString(470, 745, "năm 2025")
    c.setFont("TNR", 14)
    c.drawString(90, 600, "Nội dung văn bản được soạn bằng phần mềm soạn thảo.")
    c.setFont("TNR-B", 14)
    c.drawCentredString(420, 330, "CHỦ TỊCH")
    c.drawCentredString(420, 230, name)
    c.showPage()
    c.save()
    return buf.getvalue()


def docx_bytes() -> bytes:
    """A small DOCX (WordprocessingML written by hand) in Times New Roman."""
    import zipfile

    paras = ["ỦY BAN NHÂN DÂN XÃ ĐÔNG HẢI", "Số:     /QĐ-UBND",
             "Đông Hải, ngày      tháng      năm 2025", "QUYẾT ĐỊNH",
             "Về việc thành lập Tổ công tác", "Nội dung của quyết định.", "CHỦ TỊCH", "", "", "",
             SIGNER_NAME]
    runs = "".join(
        f'<w:p><w:r><w:rPr><w:rFonts w:ascii="Times New Roman" w:hAnsi="Times New Roman"/>'
        f'<w:sz w:val="28"/></w:rPr><w:t xml:space="preserve">{p}</w:t></w:r></w:p>'
        for p in paras)
    doc = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
           '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
           f'<w:body>{runs}</w:body></w:document>')
    types = ('<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats'
             '.org/package/2006/content-types"><Default Extension="rels" ContentType="application'
             '/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" '
             'ContentType="application/xml"/><Override PartName="/word/document.xml" '
             'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.'
             'document.main+xml"/></Types>')
    rels = ('<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
            'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http'
            '://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
            'Target="word/document.xml"/></Relationships>')
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", types)
        z.writestr("_rels/.rels", rels)
        z.writestr("word/document.xml", doc)
    return out.getvalue()
