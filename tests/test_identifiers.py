"""Identifiers (appliance/identifiers.py): mã định danh, mã hồ sơ, số and ký hiệu are parsed
strictly, and malformed ones are refused with the field they belong to."""

from __future__ import annotations

import pytest

from appliance.errors import ValidationError
from appliance.identifiers import (
    FileCode,
    doc_code,
    doc_id,
    format_number,
    normalise_code_number,
    so_ky_hieu,
    split_so_ky_hieu,
    validate_notation,
    validate_organ_id,
)

ORG = "000.21.08.H49"


def test_agency_ids_follow_qd_20_2020() -> None:
    """V1V2V3.Z1Z2.Y1Y2.MX1X2 strictly; bodies outside the state structure only when lax."""
    assert validate_organ_id(f" {ORG} ") == ORG
    for bad in ("000.21.08.h49", "00.21.08.H49", "000.21.08.H4", "000-21-08-H49", ""):
        with pytest.raises(ValidationError, match="is not an agency identifier") as info:
            validate_organ_id(bad, "OrganId")
        assert info.value.field == "OrganId"
    assert validate_organ_id("G12.ABC", strict=False) == "G12.ABC"
    with pytest.raises(ValidationError, match="is not an agency identifier"):
        validate_organ_id("G12.ABC")
    with pytest.raises(ValidationError, match="is not an agency identifier"):
        validate_organ_id("a" * 36, strict=False)


def test_file_codes_build_and_parse_back() -> None:
    """{OrganId}.{YYYY}.{NN.ABBR}: upper-cased notation; str(parse(code)) == code."""
    code = FileCode.build(ORG, "2025", "01.vp")
    assert str(code) == f"{ORG}.2025.01.VP" and code.year == 2025
    assert FileCode.parse(f"{ORG}.2025.01.VP") == code
    nested = FileCode.parse(f"{ORG}.2024.12.TCCB-VP.2")
    assert nested.notation == "12.TCCB-VP.2" and str(nested) == f"{ORG}.2024.12.TCCB-VP.2"


@pytest.mark.parametrize(
    ("year", "notation", "field"),
    [
        ("năm", "01.VP", "FileCatalog"),
        (1899, "01.VP", "FileCatalog"),
        (10000, "01.VP", "FileCatalog"),
        (2025, "1.VP", "FileNotation"),
        (2025, "01", "FileNotation"),
        (2025, "01.V P", "FileNotation"),
        (2025, "01." + "A" * 18, "FileNotation"),
    ],
    ids=["not-a-year", "too-old", "too-far", "one-digit", "no-heading", "space", "too-long"],
)
def test_malformed_file_codes_name_their_field(year: object, notation: str, field: str) -> None:
    """A bad year or file number is refused and says which."""
    with pytest.raises(ValidationError, match=r"year|file number") as info:
        FileCode.build(ORG, year, notation)  # type: ignore[arg-type]
    assert info.value.field == field


def test_a_short_file_code_is_not_parsed() -> None:
    """Fewer than six dotted parts cannot be OrganId.YYYY.NN.ABBR."""
    with pytest.raises(ValidationError, match="is not a mã hồ sơ") as info:
        FileCode.parse(f"{ORG}.2025")
    assert info.value.field == "FileCode"


def test_document_ids_and_codes() -> None:
    """docId is the mã hồ sơ and ordinal; docCode pads the ordinal to 7 digits, 1–9 999 999."""
    assert doc_id(f"{ORG}.2025.01.VP", 3) == f"{ORG}.2025.01.VP.3"
    assert doc_code(f"{ORG}.2025.01.VP", 3) == f"{ORG}.2025.01.VP.0000003"
    for bad in (0, 10_000_000):
        with pytest.raises(ValidationError, match="out of range"):
            doc_code("x", bad)


def test_numbers_below_ten_get_a_leading_zero() -> None:
    """05, 10, 123; digits only; never zero or negative."""
    assert [format_number(n) for n in (1, 9, 10, 123)] == ["01", "09", "10", "123"]
    assert normalise_code_number(" 0005 ") == "05" and normalise_code_number(42) == "42"
    for bad in ("5a", "", "-3", "1" * 12, "5.0"):
        with pytest.raises(ValidationError, match="is not a document number"):
            normalise_code_number(bad)
    for bad_n in (0, -1):
        with pytest.raises(ValidationError, match="must be positive"):
            format_number(bad_n)
    with pytest.raises(ValidationError, match="must be positive"):
        normalise_code_number("0")


def test_notations_are_groups_joined_by_hyphens_and_never_cv() -> None:
    """QĐ-UBND passes; spaces, slashes, empty groups, over 30 characters or CV do not."""
    assert validate_notation(" QĐ-UBND ") == "QĐ-UBND"
    assert validate_notation("UBND-VP") == "UBND-VP"
    for bad in ("QĐ UBND", "QĐ/UBND", "QĐ--UBND", "-UBND", "", "A" * 31):
        with pytest.raises(ValidationError, match="is not a ký hiệu") as info:
            validate_notation(bad)
        assert info.value.field == "CodeNotation"
    with pytest.raises(ValidationError, match="'CV' is not a document-type abbreviation"):
        validate_notation("cv-UBND")


def test_so_ky_hieu_splits_and_joins() -> None:
    """'Số: 05/QĐ-UBND' -> ('05', 'QĐ-UBND'); without '/' it is refused."""
    assert split_so_ky_hieu("Số: 5/QĐ-UBND") == ("05", "QĐ-UBND")
    assert split_so_ky_hieu("123/UBND-VP") == ("123", "UBND-VP")
    assert so_ky_hieu("05", "QĐ-UBND") == "05/QĐ-UBND"
    with pytest.raises(ValidationError, match="is not số/ký hiệu"):
        split_so_ky_hieu("05 QĐ-UBND")
    with pytest.raises(ValidationError, match="is not a ký hiệu"):
        split_so_ky_hieu("05/QĐ UBND")


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: validate_organ_id("０００.２１.０８.H４９"), "is not an agency identifier"),
        (lambda: validate_organ_id("٠٠٠.٢١.٠٨.H٤٩"), "is not an agency identifier"),
        (lambda: validate_organ_id("G١٢.ABC", strict=False), "is not an agency identifier"),
        (lambda: FileCode.build(ORG, 2025, "٠١.VP"), "is not a file number"),
        (lambda: FileCode.build(ORG, 2025, "０１.VP"), "is not a file number"),
    ],
    ids=["fullwidth-id", "arabic-indic-id", "lax-id", "arabic-indic-file", "fullwidth-file"],
)
def test_identifiers_take_only_ascii_digits(build: object, match: str) -> None:
    """Other scripts' digits (fullwidth, Arabic-Indic) are refused, not stored as they are: a
    mã hồ sơ must match what other systems and the SIP export expect."""
    with pytest.raises(ValidationError, match=match):
        build()  # type: ignore[operator]
