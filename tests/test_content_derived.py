"""The content store's derived versions: a version kept as another's prefix or near-copy."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from appliance.content import ContentStore, DerivedError
from appliance.errors import NotFoundError


def _store(tmp_path: Path) -> ContentStore:
    return ContentStore(tmp_path / "content")


def test_a_prefix_is_kept_inside_the_longer_version(tmp_path: Path) -> None:
    """The unsigned PDF inside the signed one: one file, both readable, hashes checked."""
    cs = _store(tmp_path)
    a = b"%PDF-1.7 archival page " * 500
    s = a + b"\n% incremental update: the signature" * 40
    sa, ss = cs.put_bytes(a).sha256, cs.put_bytes(s).sha256
    assert cs.derive(sa, ss)
    assert not cs.has_file(sa) and cs.exists(sa)
    assert cs.read(sa) == a and cs.size(sa) == len(a) and cs.hash_file(sa) == sa
    with cs.open(sa) as fh:
        assert fh.read() == a
    with cs.as_file(sa) as path:
        assert path.read_bytes() == a
    assert cs.stored_bytes() < len(a) + len(s)
    assert list(cs.iter_derived()) == [sa] and list(cs.iter_hashes()) == [ss]


def test_a_near_copy_keeps_only_the_differing_ranges(tmp_path: Path) -> None:
    """The signed PDF inside the centre's upgrade: the /Contents digits differ, the rest not."""
    cs = _store(tmp_path)
    signed = b"A" * 40_000 + b"<" + b"3082" * 2000 + b"0" * 24_000 + b">" + b"B" * 10_000
    upgraded = bytearray(signed)
    upgraded[40_001:40_001 + 30_000] = b"4" * 30_000  # a time-stamp written into the room
    upgraded += b"% DSS and a document time-stamp" * 100
    s, u = cs.put_bytes(signed).sha256, cs.put_bytes(bytes(upgraded)).sha256
    assert cs.derive(s, u)
    assert cs.read(s) == signed
    assert cs.derived_path(s).stat().st_size < 5_000  # the zeros and the shared bytes cost little


def test_chains_are_rebuilt_and_a_different_file_is_not_derived(tmp_path: Path) -> None:
    """A prefix of a version that is itself derived still reads; unrelated bytes stay files."""
    cs = _store(tmp_path)
    a = bytes(range(256)) * 100
    s = a + b"signed" * 100
    u = s + b"upgraded" * 100
    sa, ss, su = (cs.put_bytes(x).sha256 for x in (a, s, u))
    assert cs.derive(sa, ss) and cs.derive(ss, su)
    assert cs.read(sa) == a and cs.read(ss) == s
    other = cs.put_bytes(hashlib.sha512(b"x").digest() * 2000).sha256
    assert not cs.derive(other, su)
    assert cs.has_file(other)


def test_a_flipped_byte_in_the_base_fails_the_derived_version(tmp_path: Path) -> None:
    """Verification fails closed: a derived version whose base changed does not read."""
    cs = _store(tmp_path)
    a = b"archival" * 1000
    s = a + b"signature" * 100
    sa, ss = cs.put_bytes(a).sha256, cs.put_bytes(s).sha256
    assert cs.derive(sa, ss)
    path = cs.path(ss)
    path.chmod(0o600)
    raw = bytearray(path.read_bytes())
    raw[10] ^= 1
    path.write_bytes(bytes(raw))
    with pytest.raises(DerivedError):
        cs.read(sa)
    assert cs.hash_file(sa) != sa


def test_a_missing_base_is_not_found(tmp_path: Path) -> None:
    cs = _store(tmp_path)
    a, s = b"a" * 1000, b"a" * 1000 + b"s"
    sa, ss = cs.put_bytes(a).sha256, cs.put_bytes(s).sha256
    assert cs.derive(sa, ss)
    cs.release(ss)
    with pytest.raises(NotFoundError):
        cs.read(sa)
