"""The commune's identity (luutru/provision/identity.py): answers parsed strictly, a folder
never re-provisioned for another commune, and applying the identity twice adds nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from appliance import cbor
from appliance.store import Store
from luutru.provision.errors import AnswerError, IdentityMismatchError
from luutru.provision.identity import (
    FondsSpec,
    Identity,
    apply_identity,
    check_same,
    existing_identity,
)

ORG = "000.21.08.H49"
OLD = "000.21.07.H49"


def test_fonds_specs_parse_and_print_back() -> None:
    """CODE|Tên|open, CODE|Tên|closed|dd/mm/yyyy (or đóng), status open by default."""
    assert FondsSpec.parse(f" {OLD} | Phông xã Tân Phú ") == FondsSpec(OLD, "Phông xã Tân Phú")
    closed = FondsSpec.parse(f"{OLD}|Phông xã Tân Phú|đóng|30/06/2025")
    assert closed == FondsSpec(OLD, "Phông xã Tân Phú", "2025-06-30")
    for spec in (closed, FondsSpec(OLD, "Phông mở")):
        assert FondsSpec.parse(spec.spec()) == spec


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (OLD, "write CODE|Tên phông|open"),
        ("|Phông", "write CODE|Tên phông|open"),
        (f"{OLD}|Phông|closed", "needs its closing date"),
        (f"{OLD}|Phông|closed|31/02/2025", "is not a valid date"),
        (f"{OLD}|Phông|sealed", "status must be open or closed"),
        ("mã sai|Phông", "is not an agency identifier"),
    ],
    ids=["no-name", "no-code", "closed-no-date", "bad-date", "bad-status", "bad-code"],
)
def test_malformed_fonds_specs_are_refused(text: str, match: str) -> None:
    """Each mistake is an AnswerError for the fonds field, quoting what was typed."""
    with pytest.raises(AnswerError, match=re.escape(match)) as info:
        FondsSpec.parse(text)
    assert info.value.field == "fonds"


def test_an_identity_is_checked_field_by_field() -> None:
    """mã định danh, name, 5-digit unit code (not 00000), fonds listed once and not the
    commune's own."""
    ident = Identity.build(ORG, " Ủy ban nhân dân  xã Đông Hải ", " 07123 ",
                           fonds=(f"{OLD}|Phông xã cũ|closed|30/06/2025",))
    assert (ident.org_name, ident.unit_code, ident.agency_abbr) == (
        "Ủy ban nhân dân xã Đông Hải", "07123", "UBND")
    assert ident.record()["Fonds"] == [{"FondCode": OLD, "FondName": "Phông xã cũ",
                                        "Status": "closed", "ClosedDate": "2025-06-30"}]
    once = "each fonds is listed once, and not the commune's own"
    cases = [
        ((ORG[:-1], "Xã", "07123"), "org_id", "is not an agency identifier"),
        ((ORG, "", "07123"), "org_name", "name must be 1–200 characters"),
        ((ORG, "Xã", "7123"), "unit_code", "must be the commune's 5 digits"),
        ((ORG, "Xã", "00000"), "unit_code", "must be the commune's 5 digits"),
        ((ORG, "Xã", "07123", "UBND", (f"{OLD}|A", f"{OLD}|B")), "fonds", once),
        ((ORG, "Xã", "07123", "UBND", (f"{ORG}|Phông mình",)), "fonds", once),
    ]
    for args, field, match in cases:
        with pytest.raises(AnswerError, match=re.escape(match)) as info:
            Identity.build(*args)  # type: ignore[arg-type]
        assert info.value.field == field, args


def test_a_folder_belongs_to_one_commune(data_dir: Path, tmp_path: Path) -> None:
    """Empty or absent: new; the same mã định danh: the same; another, or a folder with
    other things in it: refused."""
    ident = Identity.build(ORG, "Xã", "07123")
    assert existing_identity(data_dir) == (ORG, "Ủy ban nhân dân xã Đông Hải")
    assert check_same(data_dir, ident) is True
    assert check_same(tmp_path / "new", ident) is False
    with pytest.raises(IdentityMismatchError, match=f"already belongs to {ORG}"):
        check_same(data_dir, Identity.build("000.21.09.H49", "Xã khác", "07124"))
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("x")
    with pytest.raises(IdentityMismatchError, match="is not empty but holds no appliance"):
        check_same(tmp_path / "junk", ident)


def test_applying_an_identity_twice_adds_nothing_the_second_time(store: Store) -> None:
    """The first run adds the fonds (closing the old one) and one identity entry; the second
    finds both and logs nothing, with or without a stale hint."""
    ident = Identity.build(ORG, "Ủy ban nhân dân xã Đông Hải", "07123",
                           fonds=(f"{OLD}|Phông xã Tân Phú|closed|30/06/2025",))
    first = apply_identity(store, ident, "technician")
    assert first["fonds_added"] == [OLD] and first["logged"] is True
    old = store.find_one("fonds", FondCode=OLD)
    assert old is not None and old.data["Status"] == "closed"
    size = store.tree_head()[0]
    again = apply_identity(store, ident, "technician", known_index=first["identity_entry"])
    stale = apply_identity(store, ident, "technician", known_index=0)
    assert again == stale == {"fonds_added": [], "identity_entry": first["identity_entry"],
                              "logged": False}
    assert store.tree_head()[0] == size
    entry = cbor.loads(dict(store.entries())[first["identity_entry"]])
    assert entry["kind"] == "provision.identity" and entry["data"]["UnitCode"] == "07123"
    renamed = Identity.build(ORG, "Ủy ban nhân dân xã Đông Hải Mới", "07123")
    assert apply_identity(store, renamed, "technician")["logged"] is True


@pytest.mark.parametrize("code", ["０７１２３", "٠٧١٢٣"], ids=["fullwidth", "arabic-indic"])
def test_the_unit_code_takes_ascii_digits_only(code: str) -> None:
    """Digits of other scripts are not the 5-digit mã đơn vị hành chính (they used to be
    accepted and stored as typed)."""
    with pytest.raises(AnswerError, match="must be the commune's 5 digits") as info:
        Identity.build(ORG, "Xã", code)
    assert info.value.field == "unit_code"
