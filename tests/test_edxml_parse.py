"""edXML packages as found in the wild are read; unsafe or inconsistent ones are refused with
a clear reason (XML bombs, external entities, oversize, manifests that do not match)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from appliance.codelists import load_bundled
from appliance.edxml.doctypes import load_mapping, map_type
from appliance.edxml.errors import PackageRefused
from appliance.edxml.parse import parse_package, read_limited
from tests.archive.conftest import pdf_bytes
from tests.edxml_field import NS_2016, NS_OLD, FieldAttachment, FieldDoc, field_package

PDF = pdf_bytes("Công văn về việc phòng, chống thiên tai")


def _pkg(doc: FieldDoc | None = None, attachments: list[FieldAttachment] | None = None,
         ns: str = NS_2016) -> bytes:
    return field_package(None, doc, attachments or [FieldAttachment("cv.pdf", PDF)], ns)


@pytest.mark.parametrize("ns", [NS_2016, NS_OLD])
@pytest.mark.parametrize(("type_name", "code", "want"), [
    ("Công văn", "18", "22"), ("Quyết định", "2", "02"), ("Kế hoạch", "10", "10"),
    ("Giấy mời", "25", "26"), ("Bản cam kết", "21", "32"), ("Nghị định", "", "32"),
])
def test_field_packages_read_every_field(ns: str, type_name: str, code: str, want: str) -> None:
    """Both namespaces, several types, Vietnamese in every field, several attachments; the
    QCVN 102 type maps to its Circular 05 code through the separate table."""
    doc = FieldDoc(type_name=type_name, type_code=code,
                   subject="Về việc ban hành Kế hoạch ứng phó bão, lũ năm 2026 — Đợt I")
    atts = [FieldAttachment("Quyết định 1234.pdf", PDF),
            FieldAttachment("Phụ lục kèm theo.pdf", pdf_bytes("Phụ lục I")),
            FieldAttachment("Danh sách.docx", b"PK\x03\x04 docx bytes",
                            "application/vnd.openxmlformats-officedocument"
                            ".wordprocessingml.document")]
    p = parse_package(_pkg(doc, atts, ns))
    h = p.header
    assert p.namespace == ns and not p.signed
    assert h.sender.organ_id == "000.00.00.H49"
    assert h.sender.organ_name == "Ủy ban nhân dân tỉnh Quảng Ninh"
    assert h.sender.address == "Số 1 đường Hạ Long, tỉnh Quảng Ninh"
    assert [r.organ_id for r in h.recipients] == ["000.21.08.H49", "000.21.09.H49"]
    assert (h.code_number, h.code_notation) == ("1234", "UBND-VX")
    assert h.promulgation_date == "2026-11-28" and h.due_date == "2026-12-15"
    assert h.place == "Hạ Long" and h.type_name == type_name
    assert h.subject == doc.subject and h.content.startswith("Đề nghị các xã")
    assert (h.signer_position, h.signer_full_name) == ("Phó Chủ tịch", "Nguyễn Thị Hồng Hạnh")
    assert h.signer_competence == "Ký thay Chủ tịch"
    assert h.to_places == ("Các sở, ban, ngành tỉnh", "UBND các xã, phường")
    assert (h.priority, h.page_amount, h.promulgation_amount) == ("1", "3", "25")
    assert h.appendixes == ("Phụ lục I: Danh mục nhiệm vụ",) and h.steering_type == "0"
    assert h.sphere == "Liên thông văn bản" and h.typer_notation == "NTH"
    assert [t.organ_id for t in p.traces] == ["000.00.00.H49"]
    assert [a.name for a in p.attachments] == [a.name for a in atts]
    assert [a.data for a in p.attachments] == [a.data for a in atts]  # bytes as sent
    assert map_type(load_bundled()[1], h.type_name, h.doc_type, h.doc_type_detail)[1] == want


def test_type_number_alone_is_mapped_and_the_table_is_versioned() -> None:
    """A package without TypeName is mapped by its number (TypeDetail, else Type)."""
    codes = load_bundled()[1]
    assert map_type(codes, "", "18", "0") == ("Công văn", "22")
    assert map_type(codes, "", "2", "19") == ("Công điện", "23")
    assert map_type(codes, "", "", "") == ("Khác", "32")
    assert load_mapping().version


def test_stray_bytes_before_the_declaration_are_dropped_with_a_warning() -> None:
    raw = b"\r\n\x00garbage" + _pkg()
    p = parse_package(raw)
    assert p.header.subject and any("byte lạ" in w for w in p.warnings)


def _refused(raw: bytes, *words: str, max_bytes: int | None = None) -> str:
    with pytest.raises(PackageRefused) as info:
        parse_package(raw) if max_bytes is None else parse_package(raw, max_bytes)
    for w in words:
        assert w in info.value.reason, info.value.reason
    return info.value.reason


def test_xml_bomb_is_refused_quickly() -> None:
    """Billion laughs: refused for its DOCTYPE before anything expands."""
    lol = '<!ENTITY l0 "lol">' + "".join(
        f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    body = _pkg().decode("utf-8")
    at = body.index("<edXML ")
    bomb = (body[:at] + f"<!DOCTYPE edXML [{lol}]>" + body[at:]).replace(
        "<edXML:Content>", "<edXML:Content>&l9;", 1)
    start = time.monotonic()
    _refused(bomb.encode(), "DOCTYPE", "XML bomb")
    assert time.monotonic() - start < 1.0


def test_external_entity_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("mật khẩu")
    body = _pkg().decode("utf-8")
    at = body.index("<edXML ")
    xxe = (body[:at] + f'<!DOCTYPE edXML [<!ENTITY x SYSTEM "file://{secret}">]>' + body[at:]
           ).replace("<edXML:Subject>", "<edXML:Subject>&x;", 1)
    reason = _refused(xxe.encode(), "ENTITY")
    assert "mật khẩu" not in reason


def test_oversize_package_is_refused_before_it_is_read(tmp_path: Path) -> None:
    """A 200 MB package: refused from its size alone (the file is sparse: never read)."""
    big = tmp_path / "big.edxml"
    with big.open("wb") as fh:
        fh.write(_pkg()[:200])
        fh.truncate(200 * 1024 * 1024)
    with pytest.raises(PackageRefused) as info:
        read_limited(big)
    assert "quá lớn" in info.value.reason and "200.0 MB" in info.value.reason
    _refused(_pkg(), "quá lớn", max_bytes=1000)


def test_manifest_naming_a_missing_attachment_is_refused() -> None:
    _refused(_pkg(FieldDoc(manifest_extra=("Phụ lục thiếu.pdf",))), "Phụ lục thiếu.pdf",
             "không có tệp đó")


def test_attachment_the_manifest_does_not_name_is_refused() -> None:
    body = _pkg().decode("utf-8")
    start = body.index("<edXML:Reference ")
    end = body.index("</edXML:Reference>") + len("</edXML:Reference>")
    _refused((body[:start] + body[end:]).encode(), "không có trong mục lục")


@pytest.mark.parametrize(("doc", "words"), [
    (FieldDoc(subject=""), ("Subject",)),
    (FieldDoc(subject="Về việc " + "rất dài " * 70), ("500",)),
    (FieldDoc(sender_name="Ủy ban " * 40), ("200", "OrganName")),
    (FieldDoc(to=()), ("không có nơi nhận",)),
    (FieldDoc(to=(("000.21.08.H49", "A"), ("000.21.08.H49", "B"))), ("lặp", "000.21.08.H49")),
    (FieldDoc(sender_id="null"), ("null", "mã định danh")),
    (FieldDoc(to=(("xã Đông Hải", "A"),)), ("mã định danh",)),
    (FieldDoc(date="28/11/2026"), ("PromulgationDate", "YYYY/MM/DD")),
    (FieldDoc(to_places=("Nơi nhận " * 20,)), ("150",)),
])
def test_field_rules_of_qcvn_102(doc: FieldDoc, words: tuple[str, ...]) -> None:
    """Subject required and ≤ 500, OrganName ≤ 200, at least one To, no repeated To/OrganId,
    agency identifiers as QĐ 20/2020, dates YYYY/MM/DD, Place ≤ 150 (spec §7.1)."""
    _refused(_pkg(doc), *words)


def test_broken_base64_and_not_xml_are_refused() -> None:
    body = _pkg().decode("utf-8")
    at = body.index("<ContentTransferEncoded>") + len("<ContentTransferEncoded>")
    _refused((body[:at] + "!!!" + body[at:]).encode(), "base64")
    _refused(b"%PDF-1.7 not a package", "XML")
    _refused(b"<html><body>x</body></html>", "không gian tên")
