"""Identifiers of spec §6: agency codes, mã hồ sơ, document codes, số và ký hiệu."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import ValidationError
from .text import nfc

# re.ASCII: \d is 0–9 only, not every script's digits (fullwidth ０, Arabic-Indic ٠).
# QĐ 20/2020/QĐ-TTg: V1V2V3.Z1Z2.Y1Y2.MX1X2 — 13 characters for bodies of the state.
ORGAN_ID = re.compile(r"^\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2}$", re.ASCII)
# Bodies outside the state structure: up to 35 digits, A–Z and dots.
OTHER_ORGAN_ID = re.compile(r"^[0-9A-Z.]{1,35}$")
# Phụ lục V: file number = Arabic sequence + abbreviation of the heading, e.g. 01.TCCB.
FILE_NOTATION = re.compile(r"^\d{2,}\.[0-9A-ZĐ]+(?:[.-][0-9A-ZĐ]+)*$", re.ASCII)
NOTATION = re.compile(r"^[0-9A-Za-zĐđ]+(?:-[0-9A-Za-zĐđ]+)*$")
CODE_NUMBER = re.compile(r"^\d{1,11}$")


def validate_organ_id(value: str, field: str = "OrganId", strict: bool = True) -> str:
    value = nfc(value)
    if ORGAN_ID.match(value) or (not strict and OTHER_ORGAN_ID.match(value)):
        return value
    raise ValidationError(
        f"'{value}' is not an agency identifier of the form 000.00.00.H49 (QĐ 20/2020)", field
    )


@dataclass(frozen=True)
class FileCode:
    """Mã hồ sơ = {OrganId}.{FileCatalog}.{FileNotation} (NĐ 30 Phụ lục VI, spec §2.5)."""

    organ_id: str
    year: int
    notation: str

    def __str__(self) -> str:
        return f"{self.organ_id}.{self.year:04d}.{self.notation}"

    @classmethod
    def build(cls, organ_id: str, year: int | str, notation: str) -> FileCode:
        organ_id = validate_organ_id(organ_id)
        try:
            y = int(year)
        except (TypeError, ValueError):
            raise ValidationError(f"'{year}' is not a year", "FileCatalog") from None
        if not 1900 <= y <= 9999:
            raise ValidationError(f"year {y} is out of range", "FileCatalog")
        notation = nfc(notation).upper()
        if len(notation) > 20 or not FILE_NOTATION.match(notation):
            raise ValidationError(
                f"'{notation}' is not a file number like 01.VP (≤ 20 characters)", "FileNotation"
            )
        return cls(organ_id, y, notation)

    @classmethod
    def parse(cls, code: str) -> FileCode:
        code = nfc(code)
        parts = code.split(".")
        if len(parts) < 6:
            raise ValidationError(f"'{code}' is not a mã hồ sơ OrganId.YYYY.NN.ABBR", "FileCode")
        return cls.build(".".join(parts[:4]), parts[4], ".".join(parts[5:]))


def doc_id(file_code: str, ordinal: int) -> str:
    """TT 05 docId: mã hồ sơ + '.' + ordinal (≤ 25 characters when the mã hồ sơ is short)."""
    return f"{file_code}.{ordinal}"


def doc_code(file_code: str, ordinal: int) -> str:
    """TT 05 docCode: mã hồ sơ + '.' + the 7-digit ordinal."""
    if not 0 < ordinal < 10_000_000:
        raise ValidationError(f"ordinal {ordinal} out of range", "DocOrdinal")
    return f"{file_code}.{ordinal:07d}"


def format_number(n: int) -> str:
    """Decree 30: numbers below 10 get a leading zero (05); larger ones are written as they are."""
    if n < 1:
        raise ValidationError(f"document number {n} must be positive", "CodeNumber")
    return f"{n:02d}"


def normalise_code_number(value: str | int) -> str:
    text = nfc(str(value))
    if not CODE_NUMBER.match(text):
        raise ValidationError(f"'{value}' is not a document number (digits only)", "CodeNumber")
    return format_number(int(text))


def validate_notation(value: str, copy_or_type_abbrs: set[str] | None = None) -> str:
    """Ký hiệu: groups joined by '-', no spaces; 'CV' is never a type abbreviation."""
    notation = nfc(value)
    if not notation or not NOTATION.match(notation) or len(notation) > 30:
        raise ValidationError(
            f"'{value}' is not a ký hiệu like QĐ-UBND (groups joined by '-', ≤ 30 characters)",
            "CodeNotation",
        )
    if notation.split("-")[0].upper() == "CV":
        raise ValidationError(
            "'CV' is not a document-type abbreviation: a công văn's ký hiệu is the agency "
            "abbreviation and the unit's, e.g. UBND-VP",
            "CodeNotation",
        )
    return notation


# A received document's số and ký hiệu are kept as the sender wrote them (Decree 30 numbers
# only our own): legal normative documents carry the year (12/2025/NQ-HĐND), businesses write
# CV (1234/CV-CTY), numbers may carry letters (15a/UBND). Letters of any alphabet and ASCII
# digits, in groups joined by one of . / - _ or a space.
_ALNUM = r"(?:[^\W\d_]|[0-9])"
RECEIVED = re.compile(rf"^{_ALNUM}+(?:[./\-_ ]{_ALNUM}+)*$")
RECEIVED_LIMITS = {"CodeNumber": 11, "CodeNotation": 30}  # Decree 30 Phụ lục VI lengths


def received_code(value: str | int, field: str) -> str:
    """A received document's số (``CodeNumber``) or ký hiệu (``CodeNotation``) as written:
    checked for length and characters only."""
    text = " ".join(nfc(str(value)).split())
    limit = RECEIVED_LIMITS[field]
    if len(text) > limit:
        raise ValidationError(
            f"{field} has {len(text)} characters; at most {limit} allowed", field,
            msgid="%(label)s has %(n)d characters; at most %(max)d are allowed.",
            n=len(text), max=limit)
    if not RECEIVED.match(text):
        raise ValidationError(
            f"'{value}' holds characters a {field} cannot have", field,
            msgid="%(label)s may hold letters, digits and . / - _ between them, not '%(value)s'.",
            value=str(value))
    return text


def split_so_ky_hieu(value: str, own: bool = True) -> tuple[str, str]:
    """'05/QĐ-UBND' or 'Số: 05/QĐ-UBND' -> ('05', 'QĐ-UBND'). ``own``: our own number, by
    Decree 30's rules; else a received one as written ('12/2025/NQ-HĐND' -> ('12',
    '2025/NQ-HĐND'), '15a/UBND' -> ('15a', 'UBND'))."""
    text = nfc(value).strip()
    if text.lower().startswith("số"):
        text = text[2:].lstrip(" :").strip()
    number, sep, notation = text.partition("/")
    if not sep:
        raise ValidationError(f"'{value}' is not số/ký hiệu like 05/QĐ-UBND", "CodeNumber",
                              msgid="'%(value)s' is not a number and notation like 05/QĐ-UBND.",
                              value=value)
    if own:
        return normalise_code_number(number.strip()), validate_notation(notation.strip())
    return received_code(number, "CodeNumber"), received_code(notation, "CodeNotation")


def so_ky_hieu(number: str, notation: str) -> str:
    return f"{number}/{notation}"
