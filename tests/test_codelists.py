"""Code lists (appliance/codelists.py): versioned data, looked up by code, label or alias with
diacritics folded, exact matches first (HĐ and HD differ only by đ)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from appliance.codelists import CodeLists, load_bundled, load_file, parse
from appliance.errors import ConfigError, ValidationError


@pytest.fixture(scope="module")
def bundled() -> tuple[bytes, CodeLists]:
    return load_bundled()


def test_the_bundled_lists_are_versioned_and_hashed(bundled: tuple[bytes, CodeLists]) -> None:
    """Version from the file, SHA-256 of its exact bytes, every list of the appliance."""
    raw, codes = bundled
    assert codes.version == json.loads(raw)["version"]
    assert codes.sha256 == hashlib.sha256(raw).hexdigest()
    for name in ("typeName", "language", "maintenance", "mode", "confidenceLevel", "format",
                 "priority", "docTypeAbbreviation"):
        assert codes[name].items, name
    assert codes["maintenance"].codes() == ["01", "02", "03", "04", "05", "06", "07"]


@pytest.mark.parametrize(
    ("value", "code"),
    [("01", "01"), ("Vĩnh viễn", "01"), ("vinh vien", "01"), ("VINH VIEN", "01"),
     ("  Vĩnh   viễn ", "01"), ("70 năm", "02"), ("5 năm", "07")],
)
def test_lookup_by_code_label_or_alias_folding_diacritics(
    bundled: tuple[bytes, CodeLists], value: str | int, code: str
) -> None:
    """What clerks type (with or without tone marks) finds the code."""
    assert bundled[1]["maintenance"].lookup(value).code == code


def test_exact_codes_win_over_folded_ones(bundled: tuple[bytes, CodeLists]) -> None:
    """HĐ is Hợp đồng and HD Hướng dẫn: the exact code decides before folding merges them."""
    abbr = bundled[1]["docTypeAbbreviation"]
    assert abbr.lookup("HĐ").label == "Hợp đồng"
    assert abbr.lookup("HD").label == "Hướng dẫn"
    assert abbr.lookup("ĐA").label == "Đề án" and abbr.lookup("DA").label == "Dự án"


def test_unknown_values_and_lists_are_refused(bundled: tuple[bytes, CodeLists]) -> None:
    """A value not in the list, a code not in it, or a list the version lacks."""
    codes = bundled[1]
    with pytest.raises(ValidationError, match="'99' is not in the code list maintenance"):
        codes["maintenance"].lookup("99")
    with pytest.raises(ValidationError, match="code 'Vĩnh viễn' is not in the code list"):
        codes["maintenance"].by_code("Vĩnh viễn")
    with pytest.raises(ConfigError, match=f"code list nope missing from version {codes.version}"):
        codes["nope"]


def test_extra_attributes_are_kept(bundled: tuple[bytes, CodeLists]) -> None:
    """Fields beyond code/label (typeName, copy) are readable with get()."""
    abbr = bundled[1]["docTypeAbbreviation"]
    assert abbr.by_code("QĐ").get("typeName") == "02"
    assert abbr.by_code("SY").get("copy") is True and abbr.by_code("QĐ").get("copy") is None


def test_a_provinces_own_version_parses_and_differs_by_hash(tmp_path: Path) -> None:
    """A minimal other file: its own version and hash, labels stored NFC."""
    doc = {"version": "tinh-1", "lists": {"mode": {"source": "x", "items": [
        {"code": "01", "label": "Cong khai", "aliases": ["public"]},
        {"code": "03", "label": "Mật"}]}}}
    raw = json.dumps(doc, ensure_ascii=False).encode()
    path = tmp_path / "lists.json"
    path.write_bytes(raw)
    got_raw, codes = load_file(path)
    assert got_raw == raw and codes.version == "tinh-1"
    assert codes["mode"].lookup("public").code == "01" and codes["mode"].lookup("mat").code == "03"
    assert codes.sha256 == hashlib.sha256(raw).hexdigest() != load_bundled()[1].sha256
    assert parse(raw) == codes


def test_an_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    """A missing code-list file names itself."""
    with pytest.raises(ConfigError, match="cannot read code lists"):
        load_file(tmp_path / "missing.json")
