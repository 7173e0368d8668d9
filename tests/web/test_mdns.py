"""The appliance's mDNS name (web_ui/mdns.py): a valid DNS label derived from the commune's
name, so that clerks can type ubnd-xa-dong-hai.local."""

from __future__ import annotations

import re

import pytest

from web_ui.mdns import instance_name

LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("Ủy ban nhân dân xã Đông Hải", "ubnd-xa-dong-hai"),
        ("HỘI ĐỒNG NHÂN DÂN phường Bạch Đằng", "hdnd-phuong-bach-dang"),
        ("  Xã   Tân Phú (cũ) — 2025 ", "xa-tan-phu-cu-2025"),
        ("!!!", "luutru"),
        ("", "luutru"),
    ],
)
def test_names_become_dns_labels(name: str, label: str) -> None:
    """Diacritics and đ folded, the usual bodies abbreviated, anything else a hyphen."""
    assert instance_name(name) == label


def test_a_long_name_is_cut_to_63_without_a_trailing_hyphen() -> None:
    """DNS labels are at most 63 characters and cannot end with '-'."""
    label = instance_name("Ủy ban nhân dân xã " + "Đông Hải " * 12)
    assert len(label) <= 63 and LABEL.match(label)
    assert instance_name("a" * 62 + " b") == "a" * 62
