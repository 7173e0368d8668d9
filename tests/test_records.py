"""Validating a record's fields (appliance/records.py): every field is checked against its
schema and stored normalised (NFC, codes, ISO dates); unknown or malformed fields are refused
with the field named; a document's cross-field rules complete it."""

from __future__ import annotations

import unicodedata
from typing import Any

import pytest

from appliance.codelists import CodeLists, load_bundled
from appliance.errors import ValidationError
from appliance.records import complete_document, normalise

SHA = "ab" * 32


@pytest.fixture(scope="module")
def codes() -> CodeLists:
    return load_bundled()[1]


def test_fields_are_stored_normalised(codes: CodeLists) -> None:
    """Text NFC and trimmed (notes keep their lines), codes by label, dates ISO, numbers as
    ints, yes/no in Vietnamese, empty values dropped."""
    raw = {
        "Subject": unicodedata.normalize("NFD", "  V/v   phòng, chống thiên tai "),
        "Description": "dòng một  \n  dòng hai",
        "Maintenance": "vinh vien", "Priority": "Hỏa tốc", "Mode": "Công khai",
        "IssuedDate": "03/09/2025", "PageAmount": " 12 ", "RiskRecovery": "có",
        "Process": "không", "OrganName": "   ", "Keyword": None,
    }
    assert normalise("document", raw, codes) == {
        "Subject": "V/v phòng, chống thiên tai", "Description": "dòng một\ndòng hai",
        "Maintenance": "01", "Priority": "3", "Mode": "01", "IssuedDate": "2025-09-03",
        "PageAmount": 12, "RiskRecovery": True, "Process": False,
    }


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("Colour", "red", "unknown field 'Colour' for a document"),
        ("Subject", "x" * 501, "has 501 characters; at most 500"),
        ("PageAmount", "mười", "'mười' is not a number"),
        ("PageAmount", True, "must be a number"),
        ("PageAmount", -1, "is out of range"),
        ("PageAmount", 1000, "is out of range"),
        ("IssuedDate", "31/02/2025", "is not a valid date"),
        ("RiskRecovery", "có lẽ", "is not yes/no"),
        ("Direction", "sideways", "is not one of incoming, outgoing"),
        ("To", 5, "must be a list of recipients"),
        ("To", [{"OrganId": "000.21.08.H49"}], "each recipient needs OrganName"),
        ("To", [{"OrganName": "A", "OrganId": "G" * 14}], "longer than 13 characters"),
        ("Content", [{"sha256": SHA.upper(), "size": 1}], "lower-case hex sha256"),
        ("Content", [{"sha256": SHA, "size": -1}], "its size in bytes"),
        ("Content", {"sha256": SHA}, "Content must be a list"),
    ],
)
def test_malformed_fields_are_refused_naming_the_field(
    codes: CodeLists, field: str, value: Any, match: str
) -> None:
    """Each refusal is a ValidationError whose field is the one at fault."""
    with pytest.raises(ValidationError, match=match) as info:
        normalise("document", {field: value}, codes)
    assert info.value.field is not None and info.value.field.split(".")[0] == field


def test_a_value_outside_its_code_list_is_refused(codes: CodeLists) -> None:
    """The message names the value and the list (the code list's own error)."""
    with pytest.raises(ValidationError, match="'mãi mãi' is not in the code list maintenance"):
        normalise("document", {"Maintenance": "mãi mãi"}, codes)


def test_recipients_and_content_are_normalised(codes: CodeLists) -> None:
    """"A; B" becomes two recipients; content keeps hash and size, names NFC, mime defaulted."""
    data = normalise("document", {
        "To": "Các thôn;  Văn phòng ; ",
        "Content": [{"sha256": SHA, "size": 10,
                     "name": unicodedata.normalize("NFD", "bản quét.pdf")}],
    }, codes)
    assert data["To"] == [{"OrganName": "Các thôn"}, {"OrganName": "Văn phòng"}]
    assert data["Content"] == [{"sha256": SHA, "size": 10, "name": "bản quét.pdf",
                                "mime": "application/octet-stream"}]


def test_a_document_is_completed_by_its_cross_field_rules(codes: CodeLists) -> None:
    """TypeName gives TypeCode (an unknown legacy type is Khác, 32), a TypeCode alone gives
    its name; Language and Mode default; số is padded and ký hiệu checked."""
    doc = complete_document({"TypeName": "Quyết định", "Subject": "S", "CodeNumber": "5",
                             "CodeNotation": "QĐ-UBND"}, codes)
    assert (doc["TypeCode"], doc["Language"], doc["Mode"], doc["CodeNumber"]) == (
        "02", "01", "01", "05")
    assert complete_document({"TypeName": "Tờ khai", "Subject": "S"}, codes)["TypeCode"] == "32"
    assert complete_document({"TypeCode": "14", "Subject": "S"}, codes)["TypeName"] == "Báo cáo"


@pytest.mark.parametrize(
    ("data", "match", "field"),
    [
        ({"Subject": "S"}, "TypeName .* is required", "TypeName"),
        ({"TypeName": "Công văn"}, "Subject .* is required", "Subject"),
        ({"TypeName": "Công văn", "Subject": "S", "CodeNotation": "CV-UBND"},
         "'CV' is not a document-type abbreviation", "CodeNotation"),
        ({"TypeName": "Công văn", "Subject": "S", "CodeNumber": "5a"},
         "is not a document number", "CodeNumber"),
    ],
    ids=["no-type", "no-subject", "cv", "bad-number"],
)
def test_an_incomplete_document_is_refused(
    codes: CodeLists, data: dict[str, Any], match: str, field: str
) -> None:
    """A document needs its type and trích yếu, a valid số and a ký hiệu that is not CV."""
    with pytest.raises(ValidationError, match=match) as info:
        complete_document(dict(data), codes)
    assert info.value.field == field
