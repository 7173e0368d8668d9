"""Field schemas of the record types: the superset of Decree 30 Phụ lục VI and Circular 05/2025.

Where both instruments define a field, the Decree 30 length (the stricter) is enforced, so a
record always fits both exports; fields that only Circular 05 has take its length. Names are
the instruments' element names so imports, exports and the code read the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    STR = "str"
    TEXT = "text"  # long text, line breaks kept
    INT = "int"
    DATE = "date"  # stored YYYY-MM-DD
    CODE = "code"  # a code from a code list, stored as the code
    BOOL = "bool"
    JSON = "json"  # structured value (lists of recipients, content references)
    ENUM = "enum"  # a small fixed set of internal states


@dataclass(frozen=True)
class Field:
    name: str
    kind: Kind
    label_vi: str
    max_len: int | None = None  # characters for STR/TEXT/CODE; decimal digits for INT
    code_list: str | None = None
    choices: tuple[str, ...] = ()
    source: str = "NĐ30"  # which instrument defines it: NĐ30, TT05, TT02, luutru

    @property
    def max_int(self) -> int | None:
        return 10**self.max_len - 1 if self.kind is Kind.INT and self.max_len else None


S, T, I, D, C, B, J, E = (  # noqa: E741
    Kind.STR,
    Kind.TEXT,
    Kind.INT,
    Kind.DATE,
    Kind.CODE,
    Kind.BOOL,
    Kind.JSON,
    Kind.ENUM,
)

FONDS_FIELDS: tuple[Field, ...] = (
    Field("FondCode", S, "Mã phông", 13, source="TT02"),
    Field("FondName", S, "Tên phông", 200, source="TT02"),
    Field("Status", E, "Trạng thái (đóng, mở)", choices=("open", "closed"), source="TT05"),
    Field("FondHistory", T, "Lịch sử đơn vị hình thành phông", 20000, source="TT02"),
    Field("ArchivesTime", S, "Thời gian tài liệu", 30, source="TT02"),
    Field("PaperTotal", I, "Tổng số tài liệu giấy", 10, source="TT02"),
    Field("PaperDigital", I, "Số lượng tài liệu giấy đã số hóa", 10, source="TT02"),
    Field("KeyGroups", S, "Các nhóm tài liệu chủ yếu", 300, source="TT02"),
    Field("OtherTypes", S, "Các loại hình tài liệu khác", 300, source="TT02"),
    Field("Language", S, "Ngôn ngữ", 100, source="TT02"),
    Field("LookupTools", S, "Công cụ tra cứu", 50, source="TT02"),
    Field("CopyNumber", I, "Số lượng trang tài liệu đã lập bản sao bảo hiểm", 10, source="TT02"),
    Field("RiskRecovery", B, "Chế độ dự phòng", source="TT05"),
    Field("Description", T, "Ghi chú", 1000, source="TT02"),
    Field("ClosedDate", D, "Ngày đóng phông", source="luutru"),
    Field("SuccessorFondCode", S, "Phông tiếp nhận", 13, source="luutru"),
)

FILE_FIELDS: tuple[Field, ...] = (
    Field("FileCode", S, "Mã hồ sơ", 39),
    Field("OrganId", S, "Mã định danh của cơ quan, tổ chức lập danh mục hồ sơ", 13),
    Field("FileCatalog", I, "Năm hình thành hồ sơ", 4),
    Field("FileNotation", S, "Số và ký hiệu hồ sơ", 20),
    Field("FondCode", S, "Mã phông", 13, source="luutru"),
    Field("Title", S, "Tiêu đề hồ sơ", 500),
    Field("Maintenance", C, "Thời hạn bảo quản", 30, code_list="maintenance"),
    Field("RetentionYears", I, "Thời hạn lưu trữ (số năm; trống: vĩnh viễn)", 3, source="luutru"),
    Field("RetentionRef", S, "Loại hồ sơ trong bảng thời hạn lưu trữ", 100, source="luutru"),
    Field("Rights", C, "Chế độ sử dụng", 30, code_list="mode"),
    Field("Creator", S, "Người lập hồ sơ", 30),
    Field("Language", S, "Ngôn ngữ", 50),
    Field("StartDate", D, "Thời gian bắt đầu"),
    Field("EndDate", D, "Thời gian kết thúc"),
    Field("DocTotal", I, "Tổng số văn bản trong hồ sơ", 4),
    Field("PageTotal", I, "Tổng số trang của hồ sơ", 4),
    Field("Description", T, "Ghi chú", 500),
    Field("Keyword", S, "Từ khóa", 100, source="TT05"),
    Field("NumberOfPaper", I, "Số lượng tờ", 10, source="TT05"),
    Field("Format", C, "Tình trạng vật lý", 50, code_list="format", source="TT05"),
    Field("InforSign", S, "Ký hiệu thông tin", 30, source="TT05"),
    Field("ConfidenceLevel", C, "Mức độ tin cậy", 40, code_list="confidenceLevel", source="TT05"),
    Field("PaperFileCode", S, "Mã hồ sơ gốc giấy", 100, source="TT05"),
    Field("RiskRecovery", B, "Chế độ dự phòng", source="TT05"),
    Field("RiskRecoveryStatus", E, "Tình trạng dự phòng", choices=("01", "02"), source="TT05"),
    Field("Heading", S, "Đề mục trong Danh mục hồ sơ", 300, source="luutru"),
    Field("Status", E, "Trạng thái hồ sơ", choices=("open", "closed"), source="luutru"),
)

DOCUMENT_FIELDS: tuple[Field, ...] = (
    Field("Direction", E, "Văn bản đến / đi", choices=("incoming", "outgoing"), source="luutru"),
    Field(
        "Status",
        E,
        "Trạng thái",
        choices=("draft", "registered", "issued", "recalled"),
        source="luutru",
    ),
    Field("FondCode", S, "Mã phông", 13, source="luutru"),
    Field("FileCode", S, "Mã hồ sơ", 39),
    Field("DocOrdinal", I, "Số thứ tự văn bản trong hồ sơ", 3),
    Field("TypeName", S, "Tên loại văn bản", 100),
    Field("TypeCode", C, "Mã tên loại tài liệu (TT 05)", 10, code_list="typeName", source="TT05"),
    Field("CodeNumber", S, "Số của văn bản", 11),
    Field("CodeNotation", S, "Ký hiệu của văn bản", 30),
    Field("IssuedDate", D, "Ngày, tháng, năm văn bản"),
    Field("OrganName", S, "Tên cơ quan, tổ chức ban hành văn bản", 200),
    Field("Subject", S, "Trích yếu nội dung", 500),
    Field("Language", C, "Ngôn ngữ", 30, code_list="language"),
    Field("PageAmount", I, "Số trang của văn bản", 3),
    Field("Description", T, "Ghi chú", 500),
    Field("SignerPosition", S, "Chức vụ của người ký", 100),
    Field("SignerFullName", S, "Họ và tên người ký", 50),
    Field("To", J, "Cơ quan, tổ chức nhận văn bản (mã định danh, tên)"),
    Field("Priority", C, "Mức độ khẩn", 1, code_list="priority"),
    Field("IssuedAmount", I, "Số lượng bản phát hành", 3),
    Field("DueDate", D, "Hạn trả lời / thời hạn giải quyết"),
    Field("ArrivalDate", D, "Ngày, tháng, năm đến"),
    Field("ArrivalNumber", I, "Số đến", 10),
    Field("ToPlaces", S, "Đơn vị hoặc người nhận", 1000),
    Field("TraceHeaderList", T, "Ý kiến phân phối, chỉ đạo, trạng thái xử lý", 100000),
    Field("DocId", S, "Mã định danh tài liệu", 25, source="TT05"),
    Field("Maintenance", C, "Thời hạn lưu trữ", 100, code_list="maintenance", source="TT05"),
    Field("Keyword", S, "Từ khóa", 100, source="TT05"),
    Field("Mode", C, "Chế độ sử dụng", 20, code_list="mode", source="TT05"),
    Field("ConfidenceLevel", C, "Mức độ tin cậy", 30, code_list="confidenceLevel", source="TT05"),
    Field("Autograph", T, "Bút tích", 2000, source="TT05"),
    Field("Format", C, "Tình trạng vật lý", 50, code_list="format", source="TT05"),
    Field("InforSign", S, "Ký hiệu thông tin", 30, source="TT05"),
    Field("RiskRecovery", B, "Chế độ dự phòng", source="TT05"),
    Field("RiskRecoveryStatus", E, "Tình trạng dự phòng", choices=("01", "02"), source="TT05"),
    Field("Process", B, "Quy trình xử lý", source="TT05"),
    Field("Series", S, "Sổ / dãy số đăng ký", 60, source="luutru"),
    Field("Year", I, "Năm của dãy số", 4, source="luutru"),
    Field("Content", J, "Tệp nội dung (SHA-256, tên, kiểu, cỡ)", source="luutru"),
    # Văn bản đến's handling (Decree 30 Điều 24): the leader's direction, the handlers, the
    # deadline, progress and the answer; appliance/handling.py writes and checks it.
    Field("Handling", J, "Chỉ đạo và giải quyết văn bản đến", source="luutru"),
    # A cancelled registration (huỷ) keeps its number in the register, marked with why.
    Field("CancelledDate", D, "Ngày hủy", source="luutru"),
    Field("CancelReason", S, "Lý do hủy", 500, source="luutru"),
    # Văn bản đi from draft to issue (appliance/outgoing/): versions, review, signatures; the
    # deliveries to its nơi nhận; a recall or correction's reference to the document it
    # recalls or corrects (Decree 30: a new document, the old one marked, never altered).
    Field("Drafting", J, "Dự thảo, duyệt và ký văn bản đi", source="luutru"),
    Field("Deliveries", J, "Phát hành, gửi văn bản đi", source="luutru"),
    Field("Relation", J, "Thu hồi, đính chính văn bản", source="luutru"),
)

MEMBERSHIP_FIELDS: tuple[Field, ...] = (
    Field("FileCode", S, "Mã hồ sơ", 39),
    Field("DocumentId", S, "Văn bản", 36, source="luutru"),
    Field("DocOrdinal", I, "Số thứ tự văn bản trong hồ sơ", 3),
)

SCHEMAS: dict[str, tuple[Field, ...]] = {
    "fonds": FONDS_FIELDS,
    "file": FILE_FIELDS,
    "document": DOCUMENT_FIELDS,
    "membership": MEMBERSHIP_FIELDS,
}

# The Phụ lục VI fields the system fills by itself (III.1.g), for the UI to mark read-only.
AUTO_FILLED = {
    "outgoing": ("OrganId", "FileCatalog", "DocOrdinal", "CodeNumber", "IssuedDate", "PageAmount"),
    "incoming": (
        "OrganId",
        "FileCatalog",
        "DocOrdinal",
        "PageAmount",
        "ArrivalDate",
        "ArrivalNumber",
    ),
    "file": ("OrganId", "FileCatalog", "DocTotal", "PageTotal"),
}


def field_map(record_type: str) -> dict[str, Field]:
    return {f.name: f for f in SCHEMAS[record_type]}
