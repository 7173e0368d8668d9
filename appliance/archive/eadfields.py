"""The Circular 05/2025 EAD field lists of a SIP_hoso, as data, and the XSDs made from them.

The circular's own ``ead*.xsd`` files could not be obtained offline; the schemas shipped in
``schemas/`` are generated from these tables (spec §3.3–3.4: element names, types, lengths,
code lists) by ``python -m appliance.archive.eadfields``, and a test checks they match.
One deliberate deviation: ``docId`` is String 25 in the circular, but its own rule
(mã hồ sơ + "." + ordinal) gives 26+ characters for any 13-character agency identifier, so
it is allowed the 100 characters of ``docCode``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SCHEMA_DIR = Path(__file__).with_name("schemas")

# Code-list patterns (spec §3.4); a language value may name several codes, comma-separated.
LANG = "(0[1-9]|1[01])(,(0[1-9]|1[01]))*"
PATTERNS = {
    "maintenance": "0[1-7]",
    "mode": "0[1-3]",
    "language": LANG,
    "confidenceLevel": "0[1-3]",
    "format": "0[1-3]",
    "typeName": "0[1-9]|[12][0-9]|3[0-2]",
    "riskRecoveryStatus": "0[12]",
    "bool": "[01]",
    "date": "(0[1-9]|[12][0-9]|3[01])/(0[1-9]|1[0-2])/[0-9]{4}",
    "typePic": "0[12]",
    "typeMedia": "0[12]",
    "colour": "0[12]",
}


@dataclass(frozen=True)
class EadField:
    name: str
    label_vi: str
    kind: str  # str | int | date | code
    length: int = 0  # characters (str) or digits (int)
    required: bool = False
    code: str = ""  # key of PATTERNS for kind == "code"


def _f(
    name: str, label: str, kind: str, length: int = 0, req: bool = False, code: str = ""
) -> EadField:
    return EadField(name, label, kind, length, req, code or (name if kind == "code" else ""))


# SIP_hoso package level, 18 fields (Phụ lục III; the sample package carries all 18).
EAD_HOSO: tuple[EadField, ...] = (
    _f("fileCode", "Mã hồ sơ", "str", 100, True),
    _f("title", "Tiêu đề hồ sơ", "str", 1000, True),
    _f("maintenance", "Thời hạn lưu trữ", "code", 100, True),
    _f("mode", "Chế độ sử dụng", "code", 30, True),
    _f("language", "Ngôn ngữ", "code", 100, True),
    _f("startDate", "Thời gian bắt đầu", "date", 0, True),
    _f("endDate", "Thời gian kết thúc", "date", 0, True),
    _f("keyword", "Từ khóa", "str", 100),
    _f("totalDoc", "Tổng số tài liệu trong hồ sơ", "int", 10, True),
    _f("numberOfPaper", "Số lượng tờ", "int", 10),
    _f("numberOfPage", "Số lượng trang", "int", 10, True),
    _f("format", "Tình trạng vật lý", "code", 50),
    _f("inforSign", "Ký hiệu thông tin", "str", 30),
    _f("confidenceLevel", "Mức độ tin cậy", "code", 40),
    _f("paperFileCode", "Mã hồ sơ gốc giấy", "str", 100),
    _f("riskRecovery", "Chế độ dự phòng", "code", 1, True, "bool"),
    _f("riskRecoveryStatus", "Tình trạng dự phòng", "code", 2),
    _f("description", "Ghi chú", "str", 2000),
)

# SIP document level, EAD_doc, 21 fields (Phụ lục III §5.1).
EAD_DOC: tuple[EadField, ...] = (
    _f("docId", "Mã định danh tài liệu", "str", 100, True),
    _f("docCode", "Mã lưu trữ của tài liệu", "str", 100, True),
    _f("maintenance", "Thời hạn lưu trữ", "code", 100, True),
    _f("typeName", "Tên loại tài liệu", "code", 10, True),
    _f("codeNumber", "Số của tài liệu", "str", 11),
    _f("codeNotation", "Ký hiệu của tài liệu", "str", 30),
    _f("issuedDate", "Ngày tháng năm tài liệu", "date"),
    _f("organName", "Cơ quan, tổ chức, cá nhân ban hành", "str", 200, True),
    _f("subject", "Trích yếu nội dung", "str", 500, True),
    _f("language", "Ngôn ngữ", "code", 100, True),
    _f("numberOfPage", "Số lượng trang", "int", 4, True),
    _f("inforSign", "Ký hiệu thông tin", "str", 30),
    _f("keyword", "Từ khóa", "str", 100),
    _f("mode", "Chế độ sử dụng", "code", 20, True),
    _f("confidenceLevel", "Mức độ tin cậy", "code", 30),
    _f("autograph", "Bút tích", "str", 2000),
    _f("format", "Tình trạng vật lý", "code", 50),
    _f("riskRecovery", "Chế độ dự phòng", "code", 1, True, "bool"),
    _f("riskRecoveryStatus", "Tình trạng dự phòng", "code", 2),
    _f("process", "Quy trình xử lý", "code", 1, True, "bool"),
    _f("description", "Ghi chú", "str", 500),
)

# Photographs and audio-visual items (spec §3.3); shipped so the package carries all four
# schemas, as the sample does, though the appliance files only text documents today.
EAD_PIC: tuple[EadField, ...] = (
    _f("docCode", "Mã lưu trữ", "str", 100, True),
    _f("maintenance", "Thời hạn lưu trữ", "code", 100, True),
    _f("typePic", "Loại phim, ảnh", "code", 2, True),
    _f("archivesNumber", "Số lưu trữ đặc thù", "str", 50),
    _f("inforSign", "Ký hiệu thông tin", "str", 30),
    _f("eventName", "Tên sự kiện", "str", 500),
    _f("imageTitle", "Tiêu đề phim, ảnh", "str", 500, True),
    _f("photographer", "Tác giả", "str", 300),
    _f("photoPlace", "Địa điểm chụp", "str", 300),
    _f("photoTime", "Thời gian chụp", "date"),
    _f("colour", "Màu sắc", "code", 2),
    _f("filmSize", "Cỡ phim, ảnh", "str", 30),
    _f("docAttached", "Tài liệu đi kèm", "code", 1, False, "bool"),
    _f("mode", "Chế độ sử dụng", "code", 20, True),
    _f("format", "Tình trạng vật lý", "code", 50),
    _f("riskRecovery", "Chế độ dự phòng", "code", 1, True, "bool"),
    _f("riskRecoveryStatus", "Tình trạng dự phòng", "code", 2),
    _f("description", "Ghi chú", "str", 500),
)

EAD_MEDIA: tuple[EadField, ...] = (
    _f("docCode", "Mã lưu trữ", "str", 100, True),
    _f("maintenance", "Thời hạn lưu trữ", "code", 100, True),
    _f("typeMedia", "Loại ghi âm, ghi hình", "code", 2, True),
    _f("archivesNumber", "Số lưu trữ đặc thù", "str", 50),
    _f("inforSign", "Ký hiệu thông tin", "str", 30),
    _f("eventName", "Tên sự kiện", "str", 500),
    _f("movieTitle", "Tiêu đề", "str", 500, True),
    _f("recorder", "Tác giả", "str", 300),
    _f("recordPlace", "Địa điểm", "str", 300),
    _f("recordDate", "Thời gian", "date"),
    _f("language", "Ngôn ngữ", "code", 100),
    _f("playTime", "Thời lượng", "str", 8),
    _f("docAttached", "Tài liệu đi kèm", "code", 1, False, "bool"),
    _f("mode", "Chế độ sử dụng", "code", 20, True),
    _f("quality", "Chất lượng", "str", 50),
    _f("format", "Tình trạng vật lý", "code", 50),
    _f("riskRecovery", "Chế độ dự phòng", "code", 1, True, "bool"),
    _f("riskRecoveryStatus", "Tình trạng dự phòng", "code", 2),
    _f("description", "Ghi chú", "str", 500),
)

SCHEMAS = {
    "ead.xsd": ("SIP_hoso: hồ sơ (EAD.xml)", EAD_HOSO),
    "ead_doc.xsd": ("Tài liệu văn bản (EAD_DOC_*.xml)", EAD_DOC),
    "ead_pic.xsd": ("Phim âm bản, ảnh (EAD_PIC_*.xml)", EAD_PIC),
    "ead_media.xsd": ("Ghi âm, ghi hình (EAD_MEDIA_*.xml)", EAD_MEDIA),
}


def _simple_type(f: EadField) -> str:
    if f.kind == "date":
        base = f'<xs:restriction base="xs:string"><xs:pattern value="{PATTERNS["date"]}"/>'
    elif f.kind == "int":
        base = f'<xs:restriction base="xs:nonNegativeInteger"><xs:totalDigits value="{f.length}"/>'
    elif f.kind == "code":
        base = (
            f'<xs:restriction base="xs:string"><xs:maxLength value="{f.length}"/>'
            f'<xs:pattern value="{PATTERNS[f.code]}"/>'
        )
    else:
        base = f'<xs:restriction base="xs:string"><xs:maxLength value="{f.length}"/>'
    inner = base + "</xs:restriction>"
    if f.required:
        return f"<xs:simpleType>{inner}</xs:simpleType>"
    # An optional field is present but may be empty, as in the circular's sample package.
    return (
        '<xs:simpleType><xs:union memberTypes="empty">'
        f"<xs:simpleType>{inner}</xs:simpleType></xs:union></xs:simpleType>"
    )


def schema_text(title: str, fields: tuple[EadField, ...]) -> str:
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        "<!-- Thông tư 05/2025/TT-BNV — " + title + ".",
        "     Generated by luutru (appliance/archive/eadfields.py) from the circular's field",
        "     tables; the circular's own XSD could not be obtained. Root <simpledc>, xs:all. -->",
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" elementFormDefault="qualified">',
        '  <xs:simpleType name="empty"><xs:restriction base="xs:string">'
        '<xs:length value="0"/></xs:restriction></xs:simpleType>',
        '  <xs:element name="simpledc">',
        "    <xs:complexType>",
        "      <xs:all>",
    ]
    for f in fields:
        lines.append(
            f'        <xs:element name="{f.name}" minOccurs="1">'
            f"<xs:annotation><xs:documentation>{f.label_vi}</xs:documentation></xs:annotation>"
            f"{_simple_type(f)}</xs:element>"
        )
    lines += ["      </xs:all>", "    </xs:complexType>", "  </xs:element>", "</xs:schema>", ""]
    return "\n".join(lines)


def write_schemas(target: Path = SCHEMA_DIR) -> None:
    for name, (title, fields) in SCHEMAS.items():
        (target / name).write_text(schema_text(title, fields), "utf-8")


if __name__ == "__main__":
    write_schemas()
